"""The `fastbce` command: `fastbce score` scores prediction files.

    fastbce score --demo                              # built-in data
    fastbce score logits.npy labels.npy               # two .npy files
    fastbce score data.npz --logits x --labels y      # two .npz members
    fastbce score preds.parquet --logits 'logit_*' --labels 'label_*'
    fastbce demo                                      # the worked example, timed

Inputs are read in chunks of rows, so files larger than memory are scored
with memory bounded by a few chunks (see `--chunk-rows`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple

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
from ._threads import get_num_threads, set_num_threads

#: Elements per chunk when --chunk-rows is not given (about 64 MiB of
#: float32 logits and labels).
DEFAULT_CHUNK_ELEMENTS = 1 << 23


def default_chunk_rows(classes: int) -> int:
    """Rows per chunk: about `DEFAULT_CHUNK_ELEMENTS` elements, and a whole
    number of the kernels' reduction chunks, so that scoring in chunks gives
    the bits of one in-memory call."""
    step = CHUNK_ELEMENTS // math.gcd(CHUNK_ELEMENTS, classes)
    return max(step, DEFAULT_CHUNK_ELEMENTS // classes // step * step)


# ------------------------------------------------------------ the arguments


def _numbers(text: str) -> Optional[NDArray[np.float64]]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return None
    return np.array(values[0] if len(values) == 1 else values)


def open_source(args: argparse.Namespace) -> Source:
    paths: List[str] = args.inputs
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


def _weights(
    args: argparse.Namespace, source: Source
) -> Tuple[Optional[NDArray[Any]], Optional[NpyRows], Optional[NDArray[Any]]]:
    """(fixed weight, weight rows reader, pos_weight) from the options."""
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
    pos_weight: Optional[NDArray[Any]] = None
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
    return fixed, reader, pos_weight


# -------------------------------------------------------------- the outputs


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


def _per_sample(
    probabilities: bool,
    x: NDArray[Any],
    y: NDArray[Any],
    weight: Optional[NDArray[Any]],
    pos_weight: Optional[NDArray[Any]],
) -> NDArray[np.float64]:
    if probabilities:
        losses = binary_cross_entropy(x, y, weight, "mean" if x.ndim == 2 else "none", axis=-1 if x.ndim == 2 else None)
    else:
        losses = binary_cross_entropy_with_logits(
            x, y, weight, "mean" if x.ndim == 2 else "none", pos_weight, axis=-1 if x.ndim == 2 else None
        )
    return np.asarray(losses, np.float64)


def input_paths(args: argparse.Namespace) -> List[str]:
    """The files a run reads (which it must never write)."""
    files = [args.weight, args.pos_weight]
    return [*args.inputs, *(f for f in files if f and f.endswith(".npy"))]


def probabilities_warning(maybe: bool, rows: int) -> List[str]:
    if not (maybe and rows):
        return []
    return [
        "every logit lies in [0, 1] and every label is 0 or 1: if the inputs are probabilities, pass --probabilities"
    ]


def row_check(args: argparse.Namespace, source: Source) -> RowCheck:
    return RowCheck(source.class_names, source.label_names, args.probabilities, args.allow_out_of_range_labels)


def score_local(args: argparse.Namespace, source: Source) -> Dict[str, Any]:
    fixed, reader, pos_weight = _weights(args, source)
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
                    writer.write(_per_sample(args.probabilities, x, y, weight, pos_weight))
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
    summary = _summary(args, source, acc.count, acc.total, acc.per_class_sum, seconds, row)
    summary["scoring_seconds"] = kernel
    summary["warnings"] = probabilities_warning(maybe_probabilities, row)
    return summary


def _summary(
    args: argparse.Namespace,
    source: Source,
    count: int,
    total: float,
    per_class_sum: NDArray[np.float64],
    seconds: float,
    rows: int,
) -> Dict[str, Any]:
    classes = len(source.class_names)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class_mean = per_class_sum / rows if rows else np.full(classes, math.nan)
    return {
        "inputs": source.description,
        "probabilities": bool(args.probabilities),
        "rows": rows,
        "classes": classes,
        "class_names": source.class_names,
        "count": count,
        "sum": total,
        "mean": total / count if count else math.nan,
        "per_class_mean": [float(v) for v in np.broadcast_to(per_class_mean, (classes,))],
        "seconds": seconds,
        "elements_per_second": count / seconds if seconds > 0 else math.inf,
        "threads": get_num_threads(),
        "per_sample": args.per_sample,
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def print_summary(summary: Dict[str, Any], stream: IO[str]) -> None:
    kind = "probabilities" if summary["probabilities"] else "logits"
    stream.write(f"fastbce score: {summary['inputs']} ({kind})\n")
    stream.write(f"  elements   {summary['count']:,} ({summary['rows']:,} rows x {summary['classes']} classes)\n")
    stream.write(f"  mean loss  {summary['mean']:.8g}\n")
    stream.write(f"  sum        {summary['sum']:.10g}\n")
    if summary["classes"] > 1:
        width = max(len(n) for n in summary["class_names"])
        stream.write(f"  per class (mean loss per row):\n    {'class':<{width}}  mean\n")
        for name, value in zip(summary["class_names"], summary["per_class_mean"], strict=True):
            stream.write(f"    {name:<{width}}  {value:.6g}\n")
    rate = summary["elements_per_second"]
    stream.write(
        f"  time       {summary['seconds']:.3f} s, {rate / 1e6:.1f} M elements/s on {summary['threads']} threads\n"
    )
    if summary.get("scoring_seconds"):
        scoring = summary["count"] / summary["scoring_seconds"]
        stream.write(
            f"             of which scoring {summary['scoring_seconds']:.3f} s ({scoring / 1e6:.0f} M elements/s)\n"
        )
    if summary["per_sample"]:
        stream.write(f"  per-sample losses written to {summary['per_sample']}\n")


def cmd_score(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be at least 1, got {args.threads}")
        set_num_threads(args.threads)
    if args.chunk_rows is not None and args.chunk_rows < 1:
        raise InputError(f"--chunk-rows must be at least 1, got {args.chunk_rows}")
    if args.dask_timeout <= 0:
        raise InputError(f"--dask-timeout must be more than 0 seconds, got {args.dask_timeout:g}")
    source = open_source(args)
    try:
        if args.dask:
            try:
                from .dask import score_source
            except ImportError:
                raise InputError("--dask needs Dask: pip install 'fastbce[dask]'") from None
            summary = score_source(args, source, _weights(args, source), _summary)
        else:
            summary = score_local(args, source)
    finally:
        source.close()
    for warning in summary["warnings"]:
        print(f"fastbce score: warning: {warning}", file=sys.stderr)
    if args.json:
        json.dump({k: _json_safe(v) for k, v in summary.items()}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print_summary(summary, sys.stdout)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run

    run(sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastbce",
        description="Fast, numerically stable binary cross-entropy. With no command: the worked example (demo).",
    )
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="the worked example and a timed 10-million-element batch")
    demo.set_defaults(func=cmd_demo)
    score = commands.add_parser(
        "score",
        help="score prediction files (or built-in data) in chunks",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=(
            "Exit status: 0 on success, 1 for bad input, 2 for bad usage, 130 when interrupted (Ctrl-C), "
            "143 when terminated (SIGTERM), 141 when the output pipe is closed."
        ),
    )
    score.add_argument(
        "inputs", nargs="*", help="two .npy files (logits, labels), or one .npz/Parquet/Feather/CSV file"
    )
    score.add_argument("--demo", action="store_true", help="score built-in synthetic multi-label data")
    score.add_argument("--demo-rows", type=int, default=1_000_000, help="rows of the demo data (default 1,000,000)")
    score.add_argument("--probabilities", action="store_true", help="the inputs are probabilities, not logits")
    score.add_argument(
        "--allow-out-of-range-labels",
        action="store_true",
        help="score labels outside [0, 1] by the formula (refused by default: -1/+1 labels are a common mistake)",
    )
    score.add_argument("--logits", metavar="COLS", help="logit columns (comma-separated names or globs) or .npz member")
    score.add_argument("--labels", metavar="COLS", help="label columns (comma-separated names or globs) or .npz member")
    score.add_argument("--weight", help="a number, a .npy file ((C,), (N,) or (N, C)) or weight column(s)")
    score.add_argument("--pos-weight", help="a number, C comma-separated numbers or a .npy file of shape (C,)")
    score.add_argument(
        "--per-sample", metavar="OUT", help="write per-row losses (mean over classes) to .npy or .parquet"
    )
    score.add_argument("--threads", type=int, help="threads to use (default: all)")
    score.add_argument("--chunk-rows", type=int, help="rows per chunk (default: about 8 million elements)")
    score.add_argument("--json", action="store_true", help="print a machine-readable summary")
    score.add_argument("--dask", metavar="ADDRESS", help="score through a Dask cluster (scheduler address, or 'local')")
    score.add_argument(
        "--dask-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the Dask scheduler to answer (default 10)",
    )
    score.set_defaults(func=cmd_score)
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: stop as on Ctrl-C."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return cmd_demo(args)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except InputError as exc:
        print(f"fastbce {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fastbce {args.command}: interrupted; no output was written", file=sys.stderr)
        return 130
    except Terminated:
        print(f"fastbce {args.command}: terminated; no output was written", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # The reader has gone (`fastbce score ... | head`): nothing more to
        # say, and nothing for the interpreter to flush at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def run() -> None:
    """The console script."""
    sys.exit(main())
