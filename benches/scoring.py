"""Scoring throughput against reading alone, and the metrics' cost against
scikit-learn's.

    python benches/scoring.py                      # 1e8 elements (5e6 x 20), 32-file dataset, CSV, .npy
    python benches/scoring.py --rows 1000000       # smaller and quicker
    python benches/scoring.py --metrics-only

For each format, files of float32 logits and uint8 labels are made once (in
--dir, default a temporary directory), then, in this process, taking turns,
`--repeats` times each:

- read: the same columns read alone by pyarrow, whole, on all threads
  (`pyarrow.parquet.read_table`, `pyarrow.feather.read_table`,
  `pyarrow.csv.read_csv`), every column made a NumPy array; for .npy,
  `np.load` of both files, and the same bytes read into one reused 16 MiB
  buffer (a copy that stays in the CPU's cache: the ceiling of any read);
- score: `fastbce.score` of those files (log-loss per class).

The table gives the medians and score / read throughput (1.0 = scoring as
fast as reading). The metrics table times `fastbce.score` with each metric
against the scikit-learn function on the same in-memory data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

import fastbce as fb


def make_table(rows: int, classes: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns: Dict[str, np.ndarray] = {}
    for c in range(classes):
        y = (rng.uniform(size=rows) < 0.02 + 0.38 * c / max(classes - 1, 1)).astype(np.uint8)
        columns[f"logit_{c:02d}"] = (rng.normal(0, 2, rows) + 1.5 * y).astype(np.float32)
        columns[f"label_{c:02d}"] = y
    return pa.table(columns)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def read_columns(source: object, columns: List[str], fmt: str) -> int:
    """Read the columns alone: `pyarrow.parquet.read_table` (all threads),
    `pyarrow.feather.read_table`, then every column turned into NumPy."""
    if fmt == "parquet":
        table = pq.read_table(source, columns=columns)
    else:
        table = feather.read_table(source, columns=columns)
    return sum(len(column.to_numpy()) for column in table.columns)


def read_npy(paths: List[Path]) -> int:
    """The bytes of .npy files read into one reused buffer."""
    buffer = bytearray(1 << 24)
    view = memoryview(buffer)
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while got := f.readinto(view):
                total += got
    return total


def compare(name: str, elements: int, read: Callable[[], object], score: Callable[[], object], repeats: int) -> None:
    reads, scores = [], []
    for _ in range(repeats):
        reads.append(timed(read))
        scores.append(timed(score))
    r, s = statistics.median(reads), statistics.median(scores)
    print(f"| {name} | {elements:.0e} | {r:.3f} s | {s:.3f} s | {elements / s / 1e6:,.0f} | {r / s:.2f} |", flush=True)


def throughput(args: argparse.Namespace, folder: Path) -> None:
    rows, classes = args.rows, args.classes
    elements = rows * classes
    logits = [f"logit_{c:02d}" for c in range(classes)]
    labels = [f"label_{c:02d}" for c in range(classes)]
    columns = logits + labels
    table = make_table(rows, classes)
    files = {
        "parquet": folder / "one.parquet",
        "ipc": folder / "one.arrow",
    }
    if not files["parquet"].exists():
        pq.write_table(table, files["parquet"], row_group_size=1 << 20)
        feather.write_feather(table, files["ipc"], chunksize=1 << 20)
        parts = folder / "dataset"
        parts.mkdir()
        step = -(-rows // 32)
        for i in range(32):
            pq.write_table(table.slice(i * step, step), parts / f"part-{i:02d}.parquet")
        small = table.slice(0, max(1, rows // 10))
        pcsv.write_csv(small, folder / "small.csv")
        np.save(folder / "x.npy", np.column_stack([table[c].to_numpy() for c in logits]))
        np.save(folder / "y.npy", np.column_stack([table[c].to_numpy() for c in labels]))
    del table
    print(f"\nthreads {fb.get_num_threads()}, {args.repeats} repeats, medians\n")
    print("| source | elements | read alone | fastbce score | M elements/s | score / read throughput |")
    print("|---|---|---|---|---|---|")

    def score(source: object) -> Callable[[], object]:
        return lambda: fb.score(source, logits=logits, labels=labels)

    compare("Parquet file", elements, lambda: read_columns(files["parquet"], columns, "parquet"),
            score(str(files["parquet"])), args.repeats)  # fmt: skip
    compare("Arrow IPC file", elements, lambda: read_columns(str(files["ipc"]), columns, "ipc"),
            score(str(files["ipc"])), args.repeats)  # fmt: skip
    dataset = str(folder / "dataset")
    compare("Parquet dataset, 32 files", elements, lambda: read_columns(dataset, columns, "parquet"),
            score(dataset), args.repeats)  # fmt: skip
    small_rows = max(1, rows // 10)
    csv = str(folder / "small.csv")
    compare("CSV file", small_rows * classes,
            lambda: pcsv.read_csv(csv, convert_options=pcsv.ConvertOptions(include_columns=columns)),
            score(csv), args.repeats)  # fmt: skip
    npy = [folder / "x.npy", folder / "y.npy"]
    from fastbce import cli

    def score_npy() -> object:
        return cli.score(cli.ScoreOptions(inputs=(str(npy[0]), str(npy[1]))))

    compare(".npy pair, against np.load", elements, lambda: [np.load(p) for p in npy], score_npy, args.repeats)
    compare(".npy pair, against reads into one cached buffer", elements, lambda: read_npy(npy), score_npy,
            args.repeats)  # fmt: skip


def against_polars(args: argparse.Namespace, folder: Path) -> None:
    """The Parquet file's log-loss per class by Polars (the stable formula
    as expressions, float64), by the command in a new process, and by
    `fastbce.score` in this one."""
    import subprocess
    import sys

    try:
        import polars as pl
    except ImportError:
        print("\n(Polars is not installed: no comparison with it)")
        return
    path = str(folder / "one.parquet")

    def polars_loss() -> object:
        means = []
        for c in range(args.classes):
            x, y = pl.col(f"logit_{c:02d}").cast(pl.Float64), pl.col(f"label_{c:02d}").cast(pl.Float64)
            means.append((x.clip(lower_bound=0) - x * y + (-(x.abs())).exp().log1p()).mean().alias(str(c)))
        return pl.scan_parquet(path).select(means).collect()

    command = [sys.executable, "-m", "fastbce", "score", path, "--logits", "logit_*", "--labels", "label_*", "--json"]
    cases = {
        "Polars `scan_parquet(...).select(stable loss means)`": polars_loss,
        "`fastbce score FILE --json` (a new process)": lambda: subprocess.run(command, check=True, capture_output=True),
        "`fastbce.score(FILE)` in this process": lambda: fb.score(path, logits="logit_*", labels="label_*"),
    }
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    print(f"\n| {args.rows * args.classes:.0e} elements, Parquet | time |\n|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} s |")


def metrics_cost(args: argparse.Namespace) -> None:
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    n = args.metric_elements
    rng = np.random.default_rng(1)
    y = (rng.uniform(size=n) < 0.3).astype(np.uint8)
    x = rng.normal(0, 2, n) + 1.5 * y
    w = rng.uniform(0.5, 2, n)
    data = {"x": x, "y": y, "w": w}
    p = fb.sigmoid(x)
    cases = {
        "logloss": lambda: log_loss(y, p, sample_weight=w),
        "brier": lambda: brier_score_loss(y, p, sample_weight=w),
        "ece": lambda: calibration_curve(y, p, n_bins=10),
        "auc": lambda: roc_auc_score(y, x, sample_weight=w),
    }
    print(f"\nmetrics on {n:.0e} float64 elements, weighted (scikit-learn's calibration_curve has no weights)\n")
    print("| metric | fastbce.score | scikit-learn | speedup |")
    print("|---|---|---|---|")
    for name, theirs in cases.items():
        ours, ref = [], []
        for _ in range(args.repeats):
            ours.append(timed(lambda name=name: fb.score(data, logits="x", labels="y", weight="w", metrics=name)))
            ref.append(timed(theirs))
        a, b = statistics.median(ours), statistics.median(ref)
        print(f"| {name} | {a * 1e3:,.1f} ms | {b * 1e3:,.1f} ms | {b / a:.1f}x |", flush=True)
    every = [timed(lambda: fb.score(data, logits="x", labels="y", weight="w", metrics="logloss,brier,ece,auc"))
             for _ in range(args.repeats)]  # fmt: skip
    print(f"| all four in one pass | {statistics.median(every) * 1e3:,.1f} ms | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--metric-elements", type=int, default=10_000_000)
    parser.add_argument("--dir", help="where the files are made (kept between runs)")
    parser.add_argument("--metrics-only", action="store_true")
    args = parser.parse_args()
    print(f"fastbce {fb.__version__}, {os.cpu_count()} CPUs")
    if not args.metrics_only:
        if args.dir:
            Path(args.dir).mkdir(parents=True, exist_ok=True)
            throughput(args, Path(args.dir))
            against_polars(args, Path(args.dir))
        else:
            with tempfile.TemporaryDirectory() as folder:
                throughput(args, Path(folder))
                against_polars(args, Path(folder))
    metrics_cost(args)


if __name__ == "__main__":
    main()
