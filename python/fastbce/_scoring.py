"""`fastbce score`: scoring prediction files locally, in chunks of rows.

The options arrive as a `ScoreOptions` (cli.py builds it from the command
line); `score_local` streams the source through a `LossAccumulator`,
writes per-sample losses if asked, and returns a `Summary`. Cluster
scoring (`_cluster.py`) shares the options, weights and summary.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import NDArray

from ._accumulate import CHUNK_ELEMENTS, LossAccumulator
from ._functional import binary_cross_entropy, binary_cross_entropy_with_logits
from ._io import (
    TABLE_SUFFIXES,
    ArrayPairSource,
    InputError,
    NpyRows,
    RowCheck,
    Source,
    SyntheticSource,
    TableSource,
    could_be_probabilities,
    npy_weight,
    open_npz,
    require_pyarrow,
)
from ._threads import get_num_threads

#: An array of any dtype.
Array = NDArray[np.generic]

#: Elements per chunk when --chunk-rows is not given (about 64 MiB of
#: float32 logits and labels).
DEFAULT_CHUNK_ELEMENTS = 1 << 23


def default_chunk_rows(classes: int) -> int:
    """Rows per chunk: about `DEFAULT_CHUNK_ELEMENTS` elements, and a whole
    number of the kernels' reduction chunks, so that scoring in chunks gives
    the bits of one in-memory call."""
    step = CHUNK_ELEMENTS // math.gcd(CHUNK_ELEMENTS, classes)
    return max(step, DEFAULT_CHUNK_ELEMENTS // classes // step * step)


@dataclass(frozen=True)
class ScoreOptions:
    """What `fastbce score` was asked to do (see `fastbce score --help`)."""

    inputs: Tuple[str, ...] = ()
    demo: bool = False
    demo_rows: int = 1_000_000
    probabilities: bool = False
    allow_out_of_range_labels: bool = False
    logits: Optional[str] = None
    labels: Optional[str] = None
    weight: Optional[str] = None
    pos_weight: Optional[str] = None
    per_sample: Optional[str] = None
    threads: Optional[int] = None
    chunk_rows: Optional[int] = None
    json: bool = False
    dask: Optional[str] = None
    dask_timeout: float = 10.0


@dataclass
class Weights:
    """The weights of a run: a fixed weight (numbers), a reader of weight
    rows (a .npy file), and pos_weight."""

    fixed: Optional[Array] = None
    reader: Optional[NpyRows] = None
    pos_weight: Optional[Array] = None


#: A value of the summary, as `--json` prints it.
SummaryValue = Union[str, bool, int, float, None, List[str], List[float], List[Optional[float]]]


@dataclass
class Summary:
    """The result of a run (`--json` prints `to_dict()`)."""

    inputs: str
    probabilities: bool
    rows: int
    classes: int
    class_names: List[str]
    count: int
    sum: float
    mean: float
    per_class_mean: List[float]
    seconds: float
    elements_per_second: float
    threads: int
    per_sample: Optional[str]
    scoring_seconds: Optional[float] = None
    warnings: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, SummaryValue]:
        """The summary with non-finite floats as None (JSON has no NaN or
        infinity)."""

        def safe(value: SummaryValue) -> SummaryValue:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, list) and value and isinstance(value[0], float):
                return [v if math.isfinite(v) else None for v in value if isinstance(v, float)]
            return value

        items: Dict[str, SummaryValue] = dict(self.__dict__)
        if self.scoring_seconds is None:
            del items["scoring_seconds"]
        return {k: safe(v) for k, v in items.items()}


# ------------------------------------------------------------ the arguments


def _numbers(text: str) -> Optional[NDArray[np.float64]]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return None
    return np.array(values[0] if len(values) == 1 else values)


def open_source(args: ScoreOptions) -> Source:
    paths = args.inputs
    if args.demo or not paths:
        if paths:
            raise InputError("--demo scores built-in data; give no input files with it")
        if args.probabilities:
            raise InputError("the demo data are logits; --probabilities does not apply to them")
        return SyntheticSource(rows=args.demo_rows)
    if len(paths) == 2:
        for p in paths:
            if not p.endswith(".npy"):
                raise InputError(f"two inputs must be .npy files (logits, labels), got {p}")
        return ArrayPairSource(NpyRows(paths[0]), NpyRows(paths[1]))
    if len(paths) != 1:
        raise InputError(f"give one table or .npz file, or two .npy files; got {len(paths)} inputs")
    path = paths[0]
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return ArrayPairSource(*open_npz(path, args.logits or "logits", args.labels or "labels"))
    if suffix in TABLE_SUFFIXES:
        if not args.logits or not args.labels:
            raise InputError(f"{path} is a table: name its columns with --logits COLS and --labels COLS")
        weight_columns = None
        if args.weight and _numbers(args.weight) is None and not args.weight.endswith(".npy"):
            weight_columns = args.weight
        return TableSource(path, args.logits, args.labels, weight_columns)
    if suffix == ".npy":
        raise InputError(f"{path}: give the labels too (two .npy files: logits, then labels)")
    known = ", ".join(sorted({".npy", ".npz", *TABLE_SUFFIXES}))
    raise InputError(f"{path}: unknown file type {suffix or '(none)'}; fastbce reads {known}")


def weights_of(args: ScoreOptions, source: Source) -> Weights:
    """The weights the options ask for."""
    classes = len(source.class_names)
    fixed = reader = None
    if args.weight:
        fixed = _numbers(args.weight)
        if fixed is None and args.weight.endswith(".npy"):
            if source.rows is None:
                raise InputError("a --weight file needs inputs whose row count is known up front")
            reader, fixed = npy_weight(args.weight, source.rows, classes)
        elif fixed is None and not isinstance(source, TableSource):
            raise InputError(f"--weight {args.weight!r} is neither numbers nor a .npy file")
        # Otherwise: weight columns of the table, which the source reads.
    pos_weight: Optional[Array] = None
    if args.pos_weight:
        pos_weight = _numbers(args.pos_weight)
        if pos_weight is None:
            if not args.pos_weight.endswith(".npy"):
                raise InputError(f"--pos-weight {args.pos_weight!r} is neither numbers nor a .npy file")
            try:
                pos_weight = np.load(args.pos_weight)
            except OSError as exc:
                raise InputError(f"cannot read {args.pos_weight}: {exc.strerror or exc}") from None
        if pos_weight.ndim == 1 and pos_weight.shape != (classes,):
            raise InputError(f"--pos-weight has {pos_weight.size} values but the data have {classes} classes")
    elif isinstance(source, SyntheticSource):
        pos_weight = source.pos_weight()
    if args.probabilities and pos_weight is not None:
        raise InputError("--pos-weight applies to logits, not to --probabilities")
    return Weights(fixed, reader, pos_weight)


class PerSampleWriter:
    """Writes per-row losses to `.npy` or `.parquet` under a temporary name,
    renamed into place only when everything was written."""

    def __init__(self, path: str, rows: Optional[int], inputs: Sequence[str]) -> None:
        self.path = Path(path)
        self.kind = self.path.suffix.lower()
        if self.kind not in (".npy", ".parquet"):
            raise InputError(f"--per-sample writes .npy or .parquet files, not {self.path.name}")
        if self.path.is_dir():
            raise InputError(f"--per-sample {path} is a directory; give a file name")
        for name in inputs if self.path.exists() else ():
            if os.path.exists(name) and os.path.samefile(self.path, name):
                raise InputError(f"--per-sample {path} is the input {name}; write the losses to another file")
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.rows = rows
        self.written = 0
        self.writer: Any = None
        try:
            if self.kind == ".parquet":
                pa = require_pyarrow()
                import pyarrow.parquet as pq

                self.pa = pa
                self.writer = pq.ParquetWriter(str(self.tmp), pa.schema([("loss", pa.float64())]))
            else:
                self.file: IO[bytes] = open(self.tmp, "wb")
                if rows is not None:
                    np.lib.format.write_array_header_1_0(
                        self.file, {"descr": "<f8", "fortran_order": False, "shape": (rows,)}
                    )
        except OSError as exc:
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None

    def write(self, losses: NDArray[np.float64]) -> None:
        try:
            if self.kind == ".parquet":
                self.writer.write_table(self.pa.table({"loss": losses}))
            else:
                self.file.write(np.ascontiguousarray(losses, "<f8").tobytes())
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.written += losses.size

    def commit(self) -> None:
        try:
            self._commit()
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _commit(self) -> None:
        if self.kind == ".parquet":
            self.writer.close()
        elif self.rows is None:
            # The row count is known only now: write the header, then the data.
            self.file.close()
            final = self.tmp.with_suffix(".npy-final")
            with open(self.tmp, "rb") as data, open(final, "wb") as out:
                header = {"descr": "<f8", "fortran_order": False, "shape": (self.written,)}
                np.lib.format.write_array_header_1_0(out, header)
                while block := data.read(1 << 24):
                    out.write(block)
            os.replace(final, self.tmp)
        else:
            self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            if self.kind == ".parquet":
                self.writer.close()
            else:
                self.file.close()
        except OSError:
            pass  # the file goes anyway
        finally:
            for leftover in (self.tmp, self.tmp.with_suffix(".npy-final")):
                leftover.unlink(missing_ok=True)


class Progress:
    """A progress line on stderr, when stderr is a terminal."""

    def __init__(self, total_rows: Optional[int], columns: int, stream: IO[str], enabled: bool) -> None:
        self.total, self.columns, self.stream, self.enabled = total_rows, columns, stream, enabled
        self.done = 0
        self.start = self.last = time.perf_counter()

    def update(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.1:
            return
        self.last = now
        rate = self.done * self.columns / max(now - self.start, 1e-9)
        if self.total:
            frac = self.done / self.total
            bar = "#" * int(30 * frac)
            eta = (now - self.start) * (1 - frac) / max(frac, 1e-9)
            text = (
                f"scoring {frac:4.0%} [{bar:<30}] {self.done:,}/{self.total:,} rows, "
                f"{rate / 1e6:.1f} M/s, {eta:.0f} s left"
            )
        else:
            text = f"scoring {self.done:,} rows, {rate / 1e6:.1f} M elements/s"
        self.stream.write("\r" + text[:120].ljust(80))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 120 + "\r")
            self.stream.flush()


# --------------------------------------------------------------- scoring


def per_sample(
    probabilities: bool,
    x: Array,
    y: Array,
    weight: Optional[Array],
    pos_weight: Optional[Array],
) -> NDArray[np.float64]:
    if probabilities:
        losses = binary_cross_entropy(x, y, weight, "mean" if x.ndim == 2 else "none", axis=-1 if x.ndim == 2 else None)
    else:
        losses = binary_cross_entropy_with_logits(
            x, y, weight, "mean" if x.ndim == 2 else "none", pos_weight, axis=-1 if x.ndim == 2 else None
        )
    return np.asarray(losses, np.float64)


def input_paths(args: ScoreOptions) -> List[str]:
    """The files a run reads (which it must never write)."""
    files = [args.weight, args.pos_weight]
    return [*args.inputs, *(f for f in files if f and f.endswith(".npy"))]


def probabilities_warning(maybe: bool, rows: int) -> List[str]:
    if not (maybe and rows):
        return []
    return [
        "every logit lies in [0, 1] and every label is 0 or 1: if the inputs are probabilities, pass --probabilities"
    ]


def row_check(args: ScoreOptions, source: Source) -> RowCheck:
    return RowCheck(source.class_names, source.label_names, args.probabilities, args.allow_out_of_range_labels)


def score_local(args: ScoreOptions, source: Source) -> Summary:
    """Scores `source` chunk by chunk on this machine."""
    weights = weights_of(args, source)
    fixed, reader, pos_weight = weights.fixed, weights.reader, weights.pos_weight
    classes = len(source.class_names)
    chunk_rows = args.chunk_rows or default_chunk_rows(classes)
    acc = LossAccumulator(args.probabilities, weight=fixed, pos_weight=pos_weight)
    writer = PerSampleWriter(args.per_sample, source.rows, input_paths(args)) if args.per_sample else None
    progress = Progress(source.rows, classes, sys.stderr, sys.stderr.isatty())
    start = time.perf_counter()
    kernel = 0.0
    row = 0
    maybe_probabilities = not args.probabilities
    check = row_check(args, source)
    try:
        for x, y, w in source.chunks(chunk_rows):
            check(x, y, row)
            maybe_probabilities = maybe_probabilities and could_be_probabilities(x, y)
            tick = time.perf_counter()
            if reader is not None:
                w = reader.read(row, row + len(x))
            if w is not None and x.ndim == 2 and w.ndim == 1:
                w = w.reshape(-1, 1)
            weight = fixed if w is None else w
            try:
                acc.update(x, y, weight)
                if writer is not None:
                    writer.write(per_sample(args.probabilities, x, y, weight, pos_weight))
            except (ValueError, TypeError) as exc:
                raise InputError(f"rows {row:,} to {row + len(x) - 1:,}: {exc}") from None
            kernel += time.perf_counter() - tick
            row += len(x)
            progress.update(len(x))
        if not row:
            raise InputError(f"{source.description}: no rows to score")
        seconds = time.perf_counter() - start
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        progress.close()
        if reader is not None:
            reader.close()
    summary = summarize(args, source, acc.count, acc.total, acc.per_class_sum, seconds, row)
    summary.scoring_seconds = kernel
    summary.warnings = probabilities_warning(maybe_probabilities, row)
    return summary


def summarize(
    args: ScoreOptions,
    source: Source,
    count: int,
    total: float,
    per_class_sum: NDArray[np.float64],
    seconds: float,
    rows: int,
) -> Summary:
    """The summary of a run that scored `count` elements in `rows` rows."""
    classes = len(source.class_names)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class_mean = per_class_sum / rows if rows else np.full(classes, math.nan)
    return Summary(
        inputs=source.description,
        probabilities=bool(args.probabilities),
        rows=rows,
        classes=classes,
        class_names=list(source.class_names),
        count=count,
        sum=total,
        mean=total / count if count else math.nan,
        per_class_mean=[float(v) for v in np.broadcast_to(per_class_mean, (classes,))],
        seconds=seconds,
        elements_per_second=count / seconds if seconds > 0 else math.inf,
        threads=get_num_threads(),
        per_sample=args.per_sample,
    )
