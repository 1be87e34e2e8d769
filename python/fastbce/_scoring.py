"""Scoring a source of rows in chunks: `fastbce score` and `fastbce.score`.

The options arrive as a `ScoreOptions` (cli.py builds it from the command
line, `score` below from its arguments); `score_local` streams the source
through a `Tally` (the metrics' sums, per group and class), writes
per-sample losses if asked, and returns a `ScoreResult`. Cluster scoring
(`_cluster.py`) shares the options, weights and result.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._accumulate import CHUNK_ELEMENTS
from ._functional import binary_cross_entropy, binary_cross_entropy_with_logits
from ._io import (
    ArrayPairSource,
    Chunk,
    InputError,
    NpyRows,
    RowCheck,
    Source,
    SyntheticSource,
    could_be_probabilities,
    npy_weight,
    open_npz,
    require_pyarrow,
)
from ._metrics import DEFAULT_MEMORY, Tally, parse_metrics
from ._result import ScoreResult
from ._tables import TABLE_SUFFIXES, ArrowSource, ColumnSpec, factorize, open_files, open_object, read_ahead, sort_key
from ._threads import get_num_threads

#: An array of any dtype.
Array = NDArray[np.generic]

#: Elements per chunk when --chunk-rows is not given (about 20 MiB of
#: float32 logits and uint8 labels; two chunks are held while reading ahead).
DEFAULT_CHUNK_ELEMENTS = 1 << 22


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
    metrics: Tuple[str, ...] = ("logloss",)
    bins: int = 10
    strategy: str = "uniform"
    group_by: Optional[str] = None
    filters: Tuple[str, ...] = ()
    drop_null: bool = False
    id_column: Optional[str] = None
    class_names: Optional[Tuple[str, ...]] = None
    output: Optional[str] = None
    plot: Optional[str] = None
    progress: Optional[bool] = None
    auc_memory: Optional[int] = DEFAULT_MEMORY


@dataclass
class Weights:
    """The weights of a run: a fixed weight (numbers), a reader of weight
    rows (a .npy file), pos_weight, and what the weight was, in words."""

    fixed: Optional[Array] = None
    reader: Optional[NpyRows] = None
    pos_weight: Optional[Array] = None
    described: Optional[str] = None


# ------------------------------------------------------------ the arguments


def _numbers(text: str) -> Optional[NDArray[np.float64]]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return None
    return np.array(values[0] if len(values) == 1 else values)


def _table_only(args: ScoreOptions) -> None:
    for given, flag in ((args.group_by, "--group-by"), (args.filters, "--filter"), (args.id_column, "--id"),
                        (args.drop_null, "--drop-null")):  # fmt: skip
        if given:
            raise InputError(f"{flag} needs table input (Parquet, Arrow IPC or CSV files)")


def open_source(args: ScoreOptions) -> Source:
    paths = args.inputs
    if args.demo or not paths:
        if paths:
            raise InputError("--demo scores built-in data; give no input files with it")
        if args.probabilities:
            raise InputError("the demo data are logits; --probabilities does not apply to them")
        _table_only(args)
        return SyntheticSource(rows=args.demo_rows)
    suffixes = [Path(p).suffix.lower() for p in paths]
    if ".npy" in suffixes:
        if len(paths) != 2 or suffixes != [".npy", ".npy"]:
            if len(paths) == 1:
                raise InputError(f"{paths[0]}: give the labels too (two .npy files: logits, then labels)")
            raise InputError(f"two inputs must be .npy files (logits, labels), got {', '.join(paths)}")
        _table_only(args)
        return ArrayPairSource(NpyRows(paths[0]), NpyRows(paths[1]))
    if suffixes == [".npz"]:
        _table_only(args)
        return ArrayPairSource(*open_npz(paths[0], args.logits or "logits", args.labels or "labels"))
    for path in paths:
        suffix = Path(path).suffix.lower()
        if os.path.isfile(path) and suffix not in TABLE_SUFFIXES:
            known = ", ".join(sorted({".npy", ".npz", *TABLE_SUFFIXES}))
            raise InputError(f"{path}: unknown file type {suffix or '(none)'}; fastbce reads {known}")
    if not args.logits or not args.labels:
        what = paths[0] if len(paths) == 1 else "the inputs"
        raise InputError(f"{what} is a table: name its columns with --logits COLS and --labels COLS")
    weight_columns = None
    if args.weight and _numbers(args.weight) is None and not args.weight.endswith(".npy"):
        weight_columns = args.weight
    return open_files(
        paths,
        args.filters,
        logits=args.logits,
        labels=args.labels,
        weight=weight_columns,
        group_by=args.group_by,
        id_column=args.id_column,
        drop_null=args.drop_null,
    )


def weights_of(args: ScoreOptions, source: Source) -> Weights:
    """The weights the options ask for."""
    classes = len(source.class_names)
    fixed = reader = None
    described = None
    if args.weight:
        fixed = _numbers(args.weight)
        described = args.weight
        if fixed is None and args.weight.endswith(".npy"):
            if source.rows is None:
                raise InputError("a --weight file needs inputs whose row count is known up front")
            reader, fixed = npy_weight(args.weight, source.rows, classes)
            described = f"file {args.weight}"
        elif fixed is None and not isinstance(source, ArrowSource):
            raise InputError(f"--weight {args.weight!r} is neither numbers nor a .npy file")
        elif fixed is None:
            described = f"column {', '.join(getattr(source, 'weight_columns', []))}"
        if fixed is not None and fixed.ndim == 1 and fixed.shape != (classes,):
            raise InputError(f"--weight has {fixed.size} values but the data have {classes} classes")
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
    return Weights(fixed, reader, pos_weight, described)


class PerSampleWriter:
    """Writes per-row losses under a temporary name, renamed into place only
    when everything was written: `.npy` (the losses, in row order), or
    `.parquet` and `.csv` (an id column, the row number or `--id`, and the
    loss)."""

    KINDS = (".npy", ".parquet", ".csv")

    def __init__(self, path: str, rows: Optional[int], inputs: Sequence[str], id_name: str = "row") -> None:
        self.path = Path(path)
        self.kind = self.path.suffix.lower()
        if self.kind not in self.KINDS:
            raise InputError(f"--per-sample writes .npy, .parquet or .csv files, not {self.path.name}")
        if self.path.is_dir():
            raise InputError(f"--per-sample {path} is a directory; give a file name")
        for name in inputs if self.path.exists() else ():
            if os.path.exists(name) and os.path.samefile(self.path, name):
                raise InputError(f"--per-sample {path} is the input {name}; write the losses to another file")
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.rows, self.id_name = rows, id_name
        self.written = 0
        self.writer: Any = None
        try:
            if self.kind != ".npy":
                self.pa = require_pyarrow()
            self.file: IO[bytes] = open(self.tmp, "wb")
            if self.kind == ".npy" and rows is not None:
                np.lib.format.write_array_header_1_0(
                    self.file, {"descr": "<f8", "fortran_order": False, "shape": (rows,)}
                )
        except OSError as exc:
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None

    def write(self, losses: NDArray[np.float64], ids: Any) -> None:
        """Adds the losses of some rows; `ids` their ids (ignored by .npy)."""
        try:
            if self.kind == ".npy":
                self.file.write(np.ascontiguousarray(losses, "<f8").tobytes())
            else:
                table = self.pa.table({self.id_name: ids, "loss": losses})
                if self.writer is None:
                    self.writer = self._open(table.schema)
                self.writer.write_table(table)
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.written += losses.size

    def _open(self, schema: Any) -> Any:
        if self.kind == ".parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(self.file, schema)
        import pyarrow.csv as pcsv

        return pcsv.CSVWriter(self.file, schema)

    def commit(self) -> None:
        try:
            self._commit()
        except OSError as exc:
            raise InputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _commit(self) -> None:
        if self.kind != ".npy":
            if self.writer is None:
                self.writer = self._open(self.pa.schema([(self.id_name, self.pa.int64()), ("loss", self.pa.float64())]))
            self.writer.close()
            self.file.close()
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
            if self.writer is not None:
                self.writer.close()
            self.file.close()
        except (OSError, ValueError):
            pass  # the file goes anyway
        finally:
            for leftover in (self.tmp, self.tmp.with_suffix(".npy-final")):
                leftover.unlink(missing_ok=True)


class Progress:
    """A progress line on stderr while a terminal shows it: rows done, the
    rate in rows per second and, once the rate has settled, the time left;
    as wide as the terminal."""

    def __init__(self, total_rows: Optional[int], stream: IO[str], enabled: bool) -> None:
        self.total, self.stream, self.enabled = total_rows, stream, enabled
        self.done = 0
        self.start = self.last = time.perf_counter()
        self.shown = False

    def line(self, now: float, width: int) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        speed = f"{rate / 1e6:,.1f} M rows/s" if rate >= 1e5 else f"{rate:,.0f} rows/s"
        if not self.total:
            return f"scoring: {self.done:,} rows, {speed}"[:width]
        frac = min(self.done / self.total, 1.0)
        left = f", {(self.total - self.done) / rate:,.0f} s left" if elapsed >= 1 and rate > 0 else ""
        tail = f" {self.done:,}/{self.total:,} rows, {speed}{left}"
        head = f"scoring {frac:4.0%} "
        bar = max(0, min(30, width - len(head) - len(tail) - 2))
        text = head + (f"[{'#' * int(bar * frac):<{bar}}]" if bar >= 5 else "") + tail
        return text[:width]

    def update(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if not self.enabled or now - self.last < 0.2:
            return
        self.last = now
        width = shutil.get_terminal_size((80, 24)).columns - 1
        self.stream.write("\r" + self.line(now, width).ljust(width))
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.enabled and self.shown:
            width = shutil.get_terminal_size((80, 24)).columns - 1
            self.stream.write("\r" + " " * width + "\r")
            self.stream.flush()


# --------------------------------------------------------------- scoring


def per_sample(
    probabilities: bool, chunk: Chunk, weight: Optional[Any], pos_weight: Optional[Array]
) -> NDArray[np.float64]:
    """The loss of each row of a chunk: the (weighted) mean over its classes."""
    classes = len(chunk.logits) if isinstance(chunk.logits, list) else None
    if classes is None:
        x, y = np.asarray(chunk.logits), np.asarray(chunk.labels)
        w = weight.reshape(-1, 1) if isinstance(weight, np.ndarray) and weight.ndim == 1 and x.ndim == 2 else weight
        return _row_losses(probabilities, x, y, w, pos_weight)
    total = np.zeros(chunk.rows)
    for c in range(classes):
        w = None if weight is None else weight[c] if isinstance(weight, list) and len(weight) > 1 else (
            weight[0] if isinstance(weight, list) else weight[:, c] if weight.ndim == 2 else weight)  # fmt: skip
        pw = None if pos_weight is None else np.broadcast_to(pos_weight, (classes,))[c]
        total += _row_losses(probabilities, chunk.logits[c], chunk.labels[c], w, pw)
    return total / classes


def _row_losses(probabilities: bool, x: Array, y: Array, w: Any, pw: Any) -> NDArray[np.float64]:
    reduction, axis = ("mean", -1) if x.ndim == 2 else ("none", None)
    if probabilities:
        losses = binary_cross_entropy(x, y, w, reduction, axis=axis)
    else:
        losses = binary_cross_entropy_with_logits(x, y, w, reduction, pw, axis=axis)
    return np.asarray(losses, np.float64)


def chunk_weight(chunk: Chunk, weights: Weights, classes: int) -> Optional[Any]:
    """The weight of a chunk's rows: its own columns, rows of a weight
    file, or the fixed weight broadcast to the chunk."""
    if chunk.weight is not None:
        return chunk.weight
    if weights.reader is not None:
        return weights.reader.read(chunk.first_row, chunk.first_row + chunk.rows)
    fixed = weights.fixed
    if fixed is None:
        return None
    return np.broadcast_to(fixed, (chunk.rows, classes) if fixed.ndim == 1 else (chunk.rows,))


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


def tally_settings(args: ScoreOptions, weights: Weights) -> Dict[str, Any]:
    """The keyword arguments of the run's `Tally`."""
    return dict(
        metrics=args.metrics,
        bins=args.bins,
        strategy=args.strategy,
        probabilities=args.probabilities,
        pos_weight=None if args.probabilities else weights.pos_weight,
        memory=args.auc_memory,
    )


def score_local(args: ScoreOptions, source: Source, weights: Optional[Weights] = None) -> ScoreResult:
    """Scores `source` chunk by chunk on this machine."""
    weights = weights_of(args, source) if weights is None else weights
    classes = len(source.class_names)
    chunk_rows = args.chunk_rows or default_chunk_rows(classes)
    tally = Tally(classes, **tally_settings(args, weights))
    id_name = args.id_column or "row"
    writer = None
    if args.per_sample:
        known = source.rows if isinstance(source, (ArrayPairSource, SyntheticSource)) else None
        writer = PerSampleWriter(args.per_sample, known, input_paths(args), id_name)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = Progress(source.rows if show else None, sys.stderr, show)
    start = time.perf_counter()
    kernel = 0.0
    rows = dropped = 0
    maybe_probabilities = not args.probabilities
    check = row_check(args, source)
    try:
        for chunk in read_ahead(source.chunks(chunk_rows)):
            check(chunk.logits, chunk.labels, chunk.first_row, chunk.row_numbers)
            maybe_probabilities = maybe_probabilities and could_be_probabilities(chunk.logits, chunk.labels)
            tick = time.perf_counter()
            weight = chunk_weight(chunk, weights, classes)
            codes, keys = factorize(chunk.groups) if chunk.groups else (None, [()])
            try:
                tally.update(chunk.logits, chunk.labels, weight, codes, keys)
                if writer is not None:
                    losses = per_sample(args.probabilities, chunk, weight, weights.pos_weight)
                    writer.write(losses, row_ids(chunk))
            except InputError:
                raise
            except (ValueError, TypeError) as exc:
                last = chunk.first_row + chunk.rows + chunk.dropped - 1
                raise InputError(f"rows {chunk.first_row:,} to {last:,}: {exc}") from None
            kernel += time.perf_counter() - tick
            rows += chunk.rows
            dropped += chunk.dropped
            progress.update(chunk.rows + chunk.dropped)
        if not rows:
            raise InputError(f"{source.description}: no rows to score")
        result = result_of(args, source, tally, weights, dropped)
        result.seconds = time.perf_counter() - start
        if writer is not None:
            writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        progress.close()
        if weights.reader is not None:
            weights.reader.close()
    result.scoring_seconds = kernel
    result.warnings = probabilities_warning(maybe_probabilities, rows)
    return result


def row_ids(chunk: Chunk) -> Any:
    if chunk.ids is not None:
        return chunk.ids
    if chunk.row_numbers is not None:
        return chunk.row_numbers
    return np.arange(chunk.first_row, chunk.first_row + chunk.rows, dtype=np.int64)


def result_of(args: ScoreOptions, source: Source, tally: Tally, weights: Weights, dropped: int) -> ScoreResult:
    """The result of a run from its tally."""
    order = sorted(range(len(tally.keys)), key=lambda g: sort_key(tally.keys[g]))
    try:
        table, bins = tally.finish(order, pooled=bool(args.group_by))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    names = list(args.class_names) if args.class_names else list(source.label_names)
    if len(names) != len(source.class_names):
        raise InputError(f"--class-names gives {len(names)} names but the data have {len(source.class_names)} classes")
    pos_weight = weights.pos_weight
    return ScoreResult(
        inputs=source.description,
        probabilities=bool(args.probabilities),
        class_names=names,
        label_names=list(source.label_names),
        metric_names=tally.metrics,
        bins=tally.bins,
        strategy=tally.strategy,
        group_by=getattr(source, "group_columns", []) if args.group_by else [],
        weight=weights.described,
        pos_weight=None if pos_weight is None else [float(v) for v in np.broadcast_to(pos_weight, (tally.classes,))],
        rows=int(tally.rows.sum()),
        dropped_rows=dropped,
        count=int(tally.count.sum()),
        sum=tally.total_loss(),
        weight_sum=float(tally.weight.sum()),
        table=table,
        bin_rows=bins,
        threads=get_num_threads(),
        per_sample=args.per_sample,
    )


# ------------------------------------------------------------- the API


def score(
    data: Any,
    *,
    logits: ColumnSpec = "logits",
    labels: ColumnSpec = "labels",
    weight: Optional[Union[ColumnSpec, ArrayLike]] = None,
    pos_weight: Optional[ArrayLike] = None,
    group_by: Optional[ColumnSpec] = None,
    metrics: Union[str, Iterable[str]] = ("logloss",),
    bins: int = 10,
    strategy: str = "uniform",
    probabilities: bool = False,
    drop_null: bool = False,
    filter: Optional[Union[str, Sequence[str]]] = None,
    class_names: Optional[Sequence[str]] = None,
    allow_out_of_range_labels: bool = False,
    chunk_rows: Optional[int] = None,
    progress: bool = False,
    auc_memory: Optional[int] = DEFAULT_MEMORY,
) -> ScoreResult:
    """Evaluates predictions: log-loss, Brier score, calibration and ROC
    AUC, per class and per group, streaming the rows in chunks.

    Parameters
    ----------
    data
        The rows: a dict of arrays (1-D columns, or `logits` and `labels`
        naming whole (N, C) arrays); anything that exports the Arrow C stream
        interface (a pyarrow Table, RecordBatchReader or Dataset, a Polars
        or pandas DataFrame, a DuckDB result); or a path, glob or directory
        of Parquet, Arrow IPC or CSV files (hive partitions ``key=value``
        become columns), or a list of them.
    logits, labels : str or list of str
        The columns of the logits (or probabilities) and of the labels, one
        per class: names or globs (``"logit_*"``), comma-separated in text.
    weight : str, list of str, float or array_like, optional
        `sample_weight`: a column (per row), one column per class, a number,
        or one number per class. Weighted means divide by the sum of the
        weights, as scikit-learn does.
    pos_weight : float or array_like, optional
        The weight of the positive term, per class (logits only).
    group_by : str or list of str, optional
        Columns whose values group the rows: metrics per group.
    metrics : str or list of str, default "logloss"
        Among ``"logloss"``, ``"brier"``, ``"ece"``, ``"auc"``.
    bins, strategy : int, {"uniform", "quantile"}
        The reliability bins of ``"ece"``: equal width, or equal mass (as
        ``sklearn.calibration.calibration_curve``).
    probabilities : bool, default False
        The predictions are probabilities, not logits.
    drop_null : bool, default False
        Skip (and count) rows with a missing value instead of refusing them.
    filter : str or list of str, optional
        For files and datasets: ``"COLUMN OP VALUE"`` conditions (all must
        hold), e.g. ``"date>=2026-11-03"``.
    class_names : list of str, optional
        The classes' names (default: the label columns).
    allow_out_of_range_labels : bool, default False
        Score labels outside [0, 1] by the formula instead of refusing them.
    chunk_rows : int, optional
        Rows per chunk (default: about 4 million elements).
    progress : bool, default False
        Show a progress line on stderr.
    auc_memory : int or None, default 2**30
        Bytes of predictions kept for exact AUC (and equal-mass bins). Past
        it, AUC counts weights per fine bin of the scores instead (memory
        bounded by the bins) and states its largest possible error (in
        ``auc_error`` of each row); equal-mass bins refuse. None: no limit.

    Returns
    -------
    ScoreResult
        ``.metrics``, ``.per_class``, ``.groups``, ``.reliability``,
        ``.summary()``, ``.to_dict()``, ``.to_arrow()``, ``.to_pandas()``.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> data = {"logit": np.array([2.0, -1.0, 0.5, -3.0]), "label": np.array([1, 0, 0, 0]),
    ...         "day": np.array(["mon", "mon", "tue", "tue"])}
    >>> result = fb.score(data, logits="logit", labels="label", group_by="day", metrics="logloss,auc")
    >>> [(g["day"], round(g["logloss"], 4)) for g in result.groups]
    [('mon', 0.22), ('tue', 0.5068)]
    >>> result.metrics["auc"]
    1.0
    """
    if chunk_rows is not None and chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    filters = (filter,) if isinstance(filter, str) else tuple(filter or ())
    weight_columns = weight if isinstance(weight, str) or _is_names(weight) else None
    columns: dict[str, Any] = dict(logits=logits, labels=labels, weight=weight_columns, group_by=group_by,
                                   drop_null=drop_null, api=True)  # fmt: skip
    if isinstance(data, (str, os.PathLike)) or (isinstance(data, (list, tuple)) and data and _is_names(data)):
        paths = [os.fspath(data)] if isinstance(data, (str, os.PathLike)) else [os.fspath(p) for p in data]
        source: Source = open_files(paths, filters, **columns)
    else:
        if filters and not _is_dataset(data):
            raise ValueError("filter applies to files and pyarrow datasets; filter data frames before scoring")
        if filters:
            columns["filter"] = _dataset_filter(data, filters)
        source = open_object(data, **columns)
    options = ScoreOptions(
        probabilities=probabilities,
        allow_out_of_range_labels=allow_out_of_range_labels,
        chunk_rows=chunk_rows,
        metrics=parse_metrics(metrics),
        bins=bins,
        strategy=strategy,
        group_by=",".join([group_by] if isinstance(group_by, str) else group_by) if group_by else None,
        drop_null=drop_null,
        class_names=tuple(class_names) if class_names is not None else None,
        progress=progress,
        auc_memory=auc_memory,
    )
    Tally(1, metrics=options.metrics, bins=bins, strategy=strategy)  # checks the settings before any reading
    fixed = None if weight is None or weight_columns is not None else np.asarray(weight, np.float64)
    pw = None if pos_weight is None else np.asarray(pos_weight, np.float64)
    if probabilities and pw is not None:
        raise ValueError("pos_weight applies to logits, not to probabilities")
    described = None if weight is None else f"column {weight}" if weight_columns is not None else str(weight)
    try:
        return score_local(options, source, Weights(fixed, None, pw, described))
    finally:
        source.close()


def _is_names(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, (str, os.PathLike)) for v in value)


def _is_dataset(data: Any) -> bool:
    try:
        import pyarrow.dataset as ds
    except ImportError:
        return False
    return isinstance(data, ds.Dataset)


def _dataset_filter(data: Any, filters: Sequence[str]) -> Any:
    from ._tables import parse_filter

    expression = None
    for text in filters:
        one = parse_filter(text, data.schema)
        expression = one if expression is None else expression & one
    return expression
