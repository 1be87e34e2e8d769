"""The `fastbce` command: `fastbce score` scores prediction files.

    fastbce score --demo                              # built-in data
    fastbce score logits.npy labels.npy               # two .npy files
    fastbce score data.npz --logits x --labels y      # two .npz members
    fastbce score preds.parquet --logits 'logit_*' --labels 'label_*'
    fastbce score 'preds/date=*/' --logits score --labels clicked \
        --group-by date --metrics logloss,brier,ece,auc --plot calibration.png
    fastbce demo                                      # the worked example, timed

Inputs are read in chunks of rows, so files larger than memory are scored
with memory bounded by a few chunks (see `--chunk-rows`; AUC and equal-mass
bins keep the scores, about 5 bytes per element). Weighted metrics divide by
the sum of the weights, as scikit-learn's `sample_weight`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType
from typing import Optional, Sequence

from ._io import InputError
from ._metrics import STRATEGIES, parse_metrics
from ._result import ScoreResult
from ._scoring import ScoreOptions, open_source, score_local, weights_of
from ._threads import set_num_threads


def options_of(args: argparse.Namespace) -> ScoreOptions:
    """The typed options of `fastbce score`'s parsed command line."""
    return ScoreOptions(
        inputs=tuple(args.inputs),
        demo=args.demo,
        demo_rows=args.demo_rows,
        probabilities=args.probabilities,
        allow_out_of_range_labels=args.allow_out_of_range_labels,
        logits=args.logits,
        labels=args.labels,
        weight=args.weight,
        pos_weight=args.pos_weight,
        per_sample=args.per_sample,
        threads=args.threads,
        chunk_rows=args.chunk_rows,
        json=args.json,
        dask=args.dask,
        dask_timeout=args.dask_timeout,
        metrics=_metrics(args.metrics or ("logloss,brier,ece,auc" if args.demo or not args.inputs else "logloss")),
        bins=args.bins,
        strategy=args.bin_strategy,
        group_by=args.group_by,
        filters=tuple(args.filter or ()),
        drop_null=args.drop_null,
        id_column=args.id,
        class_names=tuple(n.strip() for n in args.class_names.split(",")) if args.class_names else None,
        output=args.output,
        plot=args.plot,
        progress=args.progress,
        auc_memory=None if args.auc_memory == 0 else args.auc_memory << 20,
    )


def _metrics(text: str) -> tuple[str, ...]:
    try:
        return parse_metrics(text)
    except ValueError as exc:
        raise InputError(f"--metrics: {exc}") from None


def score(args: ScoreOptions) -> ScoreResult:
    """Runs `fastbce score` with the options `args`."""
    if args.threads is not None:
        if args.threads < 1:
            raise InputError(f"--threads must be at least 1, got {args.threads}")
        set_num_threads(args.threads)
    if args.chunk_rows is not None and args.chunk_rows < 1:
        raise InputError(f"--chunk-rows must be at least 1, got {args.chunk_rows}")
    if args.bins < 1:
        raise InputError(f"--bins must be at least 1, got {args.bins}")
    if args.output and not args.output.lower().endswith((".csv", ".parquet", ".json")):
        raise InputError(f"--output writes .csv, .parquet or .json files, not {args.output}")
    if args.plot:
        require_matplotlib()
    if args.dask_timeout <= 0:
        raise InputError(f"--dask-timeout must be more than 0 seconds, got {args.dask_timeout:g}")
    source = open_source(args)
    try:
        if not args.dask:
            return score_local(args, source)
        try:
            from ._cluster import score_cluster
        except ImportError:
            raise InputError("--dask needs Dask: pip install 'fastbce[dask]'") from None
        return score_cluster(args, source, weights_of(args, source))
    finally:
        source.close()


def cmd_score(args: argparse.Namespace) -> int:
    options = options_of(args)
    result = score(options)
    for warning in result.warnings:
        print(f"fastbce score: warning: {warning}", file=sys.stderr)
    if options.output:
        write_output(result, options.output)
    if options.plot:
        from ._plot import plot

        plot(result, options.plot)
    if options.json:
        import json

        json.dump(result.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(result.summary())
    return 0


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'fastbce[plot]'") from None


def write_output(result: ScoreResult, path: str) -> None:
    """The metrics table (a row per group and class) to CSV or Parquet, or
    everything (as --json prints it) to JSON."""
    try:
        if path.lower().endswith(".json"):
            import json

            with open(path, "w") as f:
                json.dump(result.to_dict(), f, indent=1)
            return
        table = result.to_arrow()
        if path.lower().endswith(".csv"):
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, path)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


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
        "inputs",
        nargs="*",
        help="two .npy files (logits, labels), an .npz file, or Parquet/Arrow/CSV files, directories (hive "
        "partitions key=value become columns) or globs",
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
        "--metrics",
        help="comma-separated, among logloss, brier, ece, auc (default logloss; all four for --demo)",
    )
    score.add_argument("--bins", type=int, default=10, help="reliability bins for ece (default 10)")
    score.add_argument(
        "--bin-strategy",
        choices=STRATEGIES,
        default="uniform",
        help="bins of equal width (uniform, default) or equal mass (quantile)",
    )
    score.add_argument(
        "--auc-memory",
        type=int,
        default=1024,
        metavar="MIB",
        help="memory for exact AUC and equal-mass bins (default 1024; 0: no limit); past it AUC is binned, "
        "with its error bound stated",
    )
    score.add_argument("--group-by", metavar="COLS", help="metrics per group of these columns (tables only)")
    score.add_argument(
        "--filter",
        action="append",
        metavar="EXPR",
        help="keep rows where COLUMN OP VALUE holds (OP: = != < <= > >=; 'COL=a,b' keeps either); repeatable",
    )
    score.add_argument("--drop-null", action="store_true", help="skip rows with missing values (counted)")
    score.add_argument("--class-names", metavar="NAMES", help="comma-separated class names (default: label columns)")
    score.add_argument("--output", metavar="FILE", help="write the metrics table to .csv or .parquet (or all to .json)")
    score.add_argument("--plot", metavar="FILE", help="draw the reliability diagram (and per-group loss) to .png")
    score.add_argument(
        "--per-sample", metavar="OUT", help="write per-row losses (mean over classes) to .npy, .parquet or .csv"
    )
    score.add_argument("--id", metavar="COL", help="the id column of --per-sample (default: the row number)")
    score.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress line on stderr (default: when stderr is a terminal)",
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


def _terminate(signum: int, frame: Optional[FrameType]) -> None:
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
