"""`fastbce score`: every input kind, the same numbers as the in-memory API,
bounded memory, and clear failures."""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import fastbce as fb
from fastbce import _scoring
from fastbce._io import SyntheticSource

from reference import one_call_sum

FASTBCE = [sys.executable, "-m", "fastbce"]


def run_cli(*args, check=True, **kwargs):
    done = subprocess.run([*FASTBCE, *map(str, args)], capture_output=True, text=True, timeout=600, **kwargs)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def score_json(*args):
    return json.loads(run_cli("score", *args, "--json").stdout)


def make_batch(rows, cols, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (rows, cols)).astype(np.float32)
    y = (rng.uniform(size=(rows, cols)) < 0.25).astype(np.uint8)
    return x, y


def in_memory(x, y, **kwargs):
    """Sum, mean and per-class means of the in-memory API, in float64."""
    x64 = x.astype(np.float64)
    elements = fb.binary_cross_entropy_with_logits(x64, y, reduction="none", **kwargs)
    total = math.fsum(elements.ravel())
    per_class = elements.reshape(len(x), -1).mean(axis=0)
    return total, total / elements.size, per_class


def assert_matches(summary, x, y, rtol=1e-12, **kwargs):
    total, mean, per_class = in_memory(x, y, **kwargs)
    assert summary["count"] == x.size
    # The files hold float32 logits: both sides score the same values, in
    # float32 here and float64 in the reference, so they agree to float32's
    # precision; the stream against one in-memory float32 call agrees to rtol.
    assert math.isclose(summary["mean"], mean, rel_tol=1e-6)
    one_call = one_call_sum(x, y, None, kwargs.get("pos_weight"))
    assert math.isclose(summary["sum"], one_call, rel_tol=rtol)
    np.testing.assert_allclose(summary["per_class_mean"], per_class, rtol=1e-6)
    for key in ("count", "mean", "sum", "per_class_mean", "seconds", "elements_per_second"):
        assert key in summary


def test_npy_pair_gives_the_in_memory_result(tmp_path):
    x, y = make_batch(50_000, 7)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    summary = score_json(tmp_path / "x.npy", tmp_path / "y.npy", "--chunk-rows", 4096)
    assert_matches(summary, x, y)
    assert summary["rows"] == 50_000 and summary["classes"] == 7
    assert summary["elements_per_second"] > 0


def test_default_chunks_give_the_in_memory_bits(tmp_path):
    x, y = make_batch(300_000, 5, seed=1)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    summary = score_json(tmp_path / "x.npy", tmp_path / "y.npy", "--chunk-rows", _scoring.default_chunk_rows(5) // 8)
    assert summary["sum"] == one_call_sum(x, y)


def test_one_dimensional_npy_pair(tmp_path):
    x, y = make_batch(10_000, 1, seed=2)
    np.save(tmp_path / "x.npy", x.ravel())
    np.save(tmp_path / "y.npy", y.ravel())
    summary = score_json(tmp_path / "x.npy", tmp_path / "y.npy")
    assert summary["classes"] == 1
    assert math.isclose(summary["mean"], in_memory(x, y)[1], rel_tol=1e-6)


def test_npz_members_stream_even_when_compressed(tmp_path):
    x, y = make_batch(20_000, 4, seed=3)
    np.savez_compressed(tmp_path / "data.npz", scores=x, truth=y)
    summary = score_json(tmp_path / "data.npz", "--logits", "scores", "--labels", "truth", "--chunk-rows", 3000)
    assert_matches(summary, x, y)
    done = run_cli("score", tmp_path / "data.npz", check=False)
    assert done.returncode == 1
    assert "has no member 'logits'; it has scores, truth" in done.stderr


def _table(x, y, extra=None):
    columns = {f"logit_{c}": x[:, c] for c in range(x.shape[1])}
    columns.update({f"label_{c}": y[:, c] for c in range(y.shape[1])})
    columns.update(extra or {})
    return pa.table(columns)


@pytest.mark.parametrize("kind", ["parquet", "feather", "csv"])
def test_tables_with_glob_columns(tmp_path, kind):
    x, y = make_batch(12_000, 3, seed=4)
    if kind == "csv":
        x = np.round(x.astype(np.float64), 3)  # what the text holds, read back as float64
    table = _table(x, y, {"id": np.arange(len(x))})
    path = tmp_path / f"scores.{kind}"
    if kind == "parquet":
        pq.write_table(table, path, row_group_size=5000)
    elif kind == "feather":
        feather.write_feather(table, path, chunksize=5000)
    else:
        pcsv.write_csv(table, path)
    summary = score_json(path, "--logits", "logit_*", "--labels", "label_0,label_1,label_2", "--chunk-rows", 2048)
    assert summary["class_names"] == ["label_0", "label_1", "label_2"]  # named by the label columns
    assert_matches(summary, x, y, rtol=1e-12)


def test_weights_and_pos_weights_from_numbers_files_and_columns(tmp_path):
    x, y = make_batch(9_000, 3, seed=5)
    row_weight = np.random.default_rng(6).uniform(0.5, 2, 9_000)
    pq.write_table(_table(x, y, {"w": row_weight}), tmp_path / "t.parquet", row_group_size=4000)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", row_weight)
    np.save(tmp_path / "pw.npy", np.array([1.0, 2.0, 3.0]))
    # Weighted means divide by the sum of the weights (scikit-learn's
    # sample_weight), not by the element count (the tensor API's "mean").
    total = in_memory(x, y, weight=row_weight[:, None], pos_weight=np.array([1.0, 2.0, 3.0]))[0]
    want = total / (row_weight.sum() * 3)
    for args in (
        [tmp_path / "t.parquet", "--logits", "logit_*", "--labels", "label_*", "--weight", "w"],
        [tmp_path / "x.npy", tmp_path / "y.npy", "--weight", tmp_path / "w.npy"],
    ):
        for pw in ("1,2,3", tmp_path / "pw.npy"):
            summary = score_json(*args, "--pos-weight", pw, "--chunk-rows", 1000)
            assert math.isclose(summary["mean"], want, rel_tol=1e-6), (args, pw)
    summary = score_json(tmp_path / "x.npy", tmp_path / "y.npy", "--weight", "0.5", "--pos-weight", "2")
    assert math.isclose(summary["mean"], in_memory(x, y, pos_weight=2.0)[1], rel_tol=1e-6)  # a constant cancels
    assert math.isclose(summary["sum"], in_memory(x, y, weight=0.5, pos_weight=2.0)[0], rel_tol=1e-6)
    assert summary["weight"] == "0.5" and summary["pos_weight"] == [2.0, 2.0, 2.0]
    assert summary["weight_sum"] == 0.5 * x.size


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_per_sample_output(tmp_path, suffix):
    x, y = make_batch(7_000, 6, seed=7)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / f"per_sample{suffix}"
    summary = score_json(tmp_path / "x.npy", tmp_path / "y.npy", "--per-sample", out, "--chunk-rows", 999)
    assert summary["per_sample"] == str(out)
    got = np.load(out) if suffix == ".npy" else pq.read_table(out).column("loss").to_numpy()
    want = fb.binary_cross_entropy_with_logits(x, y, axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got.shape == (7_000,)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["x.npy", "y.npy", out.name])


def test_per_sample_from_a_csv_of_unknown_length(tmp_path):
    x, y = make_batch(3_000, 2, seed=8)
    x = np.round(x.astype(np.float64), 3)
    pcsv.write_csv(_table(x, y), tmp_path / "t.csv")
    out = tmp_path / "loss.npy"
    score_json(tmp_path / "t.csv", "--logits", "logit_*", "--labels", "label_*", "--per-sample", out)
    np.testing.assert_allclose(np.load(out), fb.binary_cross_entropy_with_logits(x, y, axis=-1), rtol=1e-6)


def test_probabilities(tmp_path):
    x, y = make_batch(5_000, 2, seed=9)
    p = fb.sigmoid(x)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    summary = score_json(tmp_path / "p.npy", tmp_path / "y.npy", "--probabilities")
    want = fb.binary_cross_entropy(p.astype(np.float64), y)
    assert summary["probabilities"] is True
    assert math.isclose(summary["mean"], want, rel_tol=1e-6)


def test_demo_is_deterministic_for_any_chunking():
    a = score_json("--demo", "--demo-rows", 100_000)
    b = score_json("--demo", "--demo-rows", 100_000, "--chunk-rows", 777, "--threads", 1)
    assert a["count"] == 2_000_000 and a["classes"] == 20
    assert math.isclose(a["mean"], b["mean"], rel_tol=1e-12)
    source = SyntheticSource(rows=100_000)
    x = np.concatenate([c.logits for c in source.chunks(30_000)])
    y = np.concatenate([c.labels for c in source.chunks(30_000)])
    total, mean, per_class = in_memory(x, y, pos_weight=source.pos_weight())
    assert math.isclose(a["mean"], mean, rel_tol=1e-6)


def test_human_summary_and_quiet_stderr():
    done = run_cli("score", "--demo", "--demo-rows", 20_000, "--metrics", "logloss,auc")
    lines = done.stdout.splitlines()
    assert "  scored     20,000 rows x 20 classes = 400,000 elements" in lines
    assert "  weight     none" in lines and lines[3].startswith("  pos_weight 49, 24, 15.67, 11.5, 9, ")
    header = next(line for line in lines if line.lstrip().startswith("class"))
    assert header.split() == ["class", "rows", "positives", "logloss", "auc"]
    table = lines[lines.index(header) : lines.index(header) + 22]
    assert [row.split()[0] for row in table[1:]] == [*(f"class_{c:02d}" for c in range(20)), "all"]
    # Aligned: every row of the table is as wide as the header, numbers in fixed decimals.
    assert {len(row) for row in table} == {len(header)}
    assert all(len(row.split()[3].split(".")[1]) == 6 for row in table[1:])
    assert "M elements/s, 2 threads" in done.stdout or "M elements/s, 1 thread)" in done.stdout
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


def test_one_class_one_thread_and_one_row_are_singular(tmp_path):
    np.save(tmp_path / "x.npy", np.array([0.5]))
    np.save(tmp_path / "y.npy", np.array([1.0]))
    done = run_cli("score", tmp_path / "x.npy", tmp_path / "y.npy", "--threads", 1)
    assert "  scored     1 row x 1 class = 1 element" in done.stdout.splitlines()
    assert "1 thread)" in done.stdout


def test_progress_bar_on_a_terminal():
    stream = io.StringIO()
    progress = _scoring.Progress(1000, stream, enabled=True)
    progress.start -= 2  # two seconds in: the estimate is shown
    progress.last -= 1
    progress.update(500)
    progress.close()
    assert "500/1,000 rows, 250 rows/s, 2 s left" in stream.getvalue()
    wide = progress.line(progress.start + 2, 120)
    assert wide == "scoring  50% [###############               ] 500/1,000 rows, 250 rows/s, 2 s left"
    # Rows per second, never elements; at most one line of the terminal.
    line = progress.line(progress.start + 2, 60)
    assert len(line) <= 60 and line.startswith("scoring  50% [") and line.endswith("2 s left")
    narrow = progress.line(progress.start + 2, 40)
    assert len(narrow) <= 40 and "[" not in narrow  # no room for a bar: none drawn
    assert "left" not in _scoring.Progress(1000, stream, enabled=True).line(time.perf_counter(), 80)


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (None, ["missing.npy", "y.npy"], "cannot read missing.npy: No such file or directory"),
        ("dir", ["adir.npy", "y.npy"], "cannot read adir.npy: Is a directory"),
        ("text", ["x.txt"], "x.txt: unknown file type .txt; fastbce reads"),
        ("notnpy", ["bad.npy", "y.npy"], "bad.npy is not a .npy array"),
        ("shapes", ["x.npy", "y2.npy"], "x.npy has shape (100, 3) but y2.npy has shape (99, 3); they must match"),
        ("table", ["t.parquet", "--logits", "logit_*", "--labels", "nope"],
         "t.parquet has no column matching 'nope' (for --labels); its columns are: logit_0"),
        ("table", ["t.parquet", "--logits", "logit_*", "--labels", "label_0"],
         "3 logit columns but 1 label columns"),
        ("table", ["t.parquet"], "t.parquet is a table: name its columns with --logits COLS and --labels COLS"),
        ("probs", ["p.npy", "y.npy", "--probabilities"], "row 50, column 1: 1.5 is not a probability (outside [0, 1])"),
        ("nan", ["p.npy", "y.npy", "--probabilities"], "row 50, column 1: nan is not a probability (outside [0, 1])"),
        ("ok", ["x.npy", "y.npy", "--pos-weight", "1,2"], "--pos-weight has 2 values but the data have 3 classes"),
        ("ok", ["x.npy", "y.npy", "--weight", "heavy"], "--weight 'heavy' is neither numbers nor a .npy file"),
        ("ok", ["x.npy", "y.npy", "--per-sample", "out.txt"], "--per-sample writes .npy, .parquet or .csv files"),
        ("ok", ["x.npy", "y.npy", "--threads", "0"], "--threads must be at least 1, got 0"),
        ("ok", ["x.npy", "y.npy", "--probabilities", "--pos-weight", "2"], "--pos-weight applies to logits"),
        ("ok", ["--demo", "--probabilities"], "the demo data are logits; --probabilities does not apply"),
        ("ok", ["--demo", "x.npy"], "--demo scores built-in data; give no input files with it"),
    ],
)  # fmt: skip
def test_bad_input_is_a_message_not_a_traceback(tmp_path, setup, args, message):
    x, y = make_batch(100, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    if setup == "dir":
        (tmp_path / "adir.npy").mkdir()
    elif setup == "text":
        (tmp_path / "x.txt").write_text("1 2 3")
    elif setup == "notnpy":
        (tmp_path / "bad.npy").write_bytes(b"not an array at all")
    elif setup == "shapes":
        np.save(tmp_path / "y2.npy", y[:99])
    elif setup == "table":
        pq.write_table(_table(x, y), tmp_path / "t.parquet")
    elif setup in ("probs", "nan"):
        p = fb.sigmoid(x)
        p[50, 1] = 1.5 if setup == "probs" else np.nan
        np.save(tmp_path / "p.npy", p)
    done = run_cli("score", *args, check=False, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("fastbce score: error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob(".*tmp*")) and not (tmp_path / "out.txt").exists()


def test_usage_errors_exit_2():
    done = run_cli("score", "--chunk-rows", "many", check=False)
    assert done.returncode == 2 and "invalid int value" in done.stderr


def test_failed_run_leaves_no_partial_output(tmp_path):
    x, y = make_batch(20_000, 2, seed=10)
    p = fb.sigmoid(x)
    p[15_000, 0] = 2.0  # found in the second chunk, after output was written
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    done = run_cli("score", "p.npy", "y.npy", "--probabilities", "--per-sample", "out.npy", "--chunk-rows", 10_000,
                   check=False, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and "row 15,000, column 0: 2.0 is not a probability" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npy", "y.npy"]


@pytest.mark.parametrize(
    "sig, code, message, output",
    [(signal.SIGINT, 130, "interrupted", "out.parquet"), (signal.SIGTERM, 143, "terminated", "out.npy")],
)
def test_ctrl_c_or_sigterm_stops_with_no_output(tmp_path, sig, code, message, output):
    proc = subprocess.Popen(
        [*FASTBCE, "score", "--demo", "--demo-rows", "50000000", "--chunk-rows", "20000",
         "--per-sample", output],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 60
    while not list(tmp_path.glob(f".{output}.tmp-*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert stderr == f"fastbce score: {message}; no output was written\n"
    assert list(tmp_path.iterdir()) == []


LARGER_THAN_MEMORY = textwrap.dedent(
    """
    import resource, sys
    import numpy, pyarrow, fastbce, fastbce.cli
    def status(field):  # bytes; VmHWM is this process's own peak RSS
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    budget = int(sys.argv[1])
    if sys.argv[2] == "address-space":
        limit = status("VmSize") + budget
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = status("VmRSS")
    code = fastbce.cli.main(["score", *sys.argv[3:], "--json"])
    print("PEAK", status("VmHWM"), "START", start, file=sys.stderr)
    sys.exit(code)
    """
)


def _large_files(tmp_path, kind, rows, cols):
    """Files of `rows` x `cols` float32 logits and uint8 labels, written a
    million rows at a time; the arguments that score them."""
    rng = np.random.default_rng(11)
    if kind == "npy":
        x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(rows, cols))
        y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.uint8, shape=(rows, cols))
        for start in range(0, rows, 1_000_000):
            x[start : start + 1_000_000] = rng.normal(0, 3, (1_000_000, cols))
            y[start : start + 1_000_000] = rng.uniform(size=(1_000_000, cols)) < 0.3
        x.flush()
        y.flush()
        return [tmp_path / "x.npy", tmp_path / "y.npy"]
    path = tmp_path / f"big.{kind}"
    writers = {"parquet": pq.ParquetWriter, "arrow": pa.ipc.new_file, "csv": pcsv.CSVWriter}
    writer = None
    for _ in range(0, rows, 1_000_000):
        x = rng.normal(0, 3, (1_000_000, cols)).astype(np.float32)
        y = (rng.uniform(size=(1_000_000, cols)) < 0.3).astype(np.uint8)
        batch = _table(x, y)
        writer = writer or writers[kind](str(path), batch.schema)
        writer.write_table(batch)
    writer.close()
    return [path, "--logits", "logit_*", "--labels", "label_*"]


@pytest.mark.slow
@pytest.mark.parametrize("kind, rows, budget", [("npy", 10_000_000, 160), ("parquet", 20_000_000, 256),
                                                ("arrow", 20_000_000, 256), ("csv", 8_000_000, 256)])  # fmt: skip
def test_files_larger_than_the_memory_allowed(tmp_path, kind, rows, budget):
    # .npy: 40e6 float32 logits and uint8 labels, 191 MiB of files, scored
    # with address space limited to 160 MiB beyond what the interpreter (with
    # pyarrow loaded) holds. Tables: files of 360-480 MiB held to 256 MiB of
    # peak resident memory. (pyarrow's thread stacks and allocator reserve
    # address space they never touch, so an address-space limit stops it from
    # starting; and it decodes a whole Parquet row group or IPC batch, here a
    # million rows, whatever the chunk size.)
    cols = 4
    args = _large_files(tmp_path, kind, rows, cols)
    files = sum(p.stat().st_size for p in tmp_path.iterdir())
    budget <<= 20
    assert files > budget
    done = subprocess.run(
        [sys.executable, "-c", LARGER_THAN_MEMORY, str(budget), "address-space" if kind == "npy" else "resident",
         *map(str, args)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["count"] == rows * cols
    peak, start = (int(v) for v in done.stderr.split("PEAK")[1].split()[::2][:2])
    print(f"\n{kind}: scored {files / 2**20:.0f} MiB of files with {budget / 2**20:.0f} MiB allowed "
          f"beyond the interpreter's; peak RSS {peak / 2**20:.0f} MiB ({(peak - start) / 2**20:.0f} MiB "
          "above the interpreter)")  # fmt: skip
    assert peak - start < budget
    if kind == "npy":
        mean = float(fb.binary_cross_entropy_with_logits(np.load(tmp_path / "x.npy", mmap_mode="r"),
                                                         np.load(tmp_path / "y.npy", mmap_mode="r")))  # fmt: skip
        assert math.isclose(summary["mean"], mean, rel_tol=1e-6)


def test_without_pyarrow_tables_name_the_extra(tmp_path):
    x, y = make_batch(10, 2)
    pq.write_table(_table(x, y), tmp_path / "t.parquet")
    code = "import sys; sys.modules['pyarrow'] = None\nfrom fastbce.cli import main\nsys.exit(main(sys.argv[1:]))"
    args = ["score", "t.parquet", "--logits", "logit_*", "--labels", "label_*"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert "needs pyarrow: pip install 'fastbce[io]'" in done.stderr and "Traceback" not in done.stderr


def test_console_script_and_module_entry_points():
    done = subprocess.run(["fastbce", "score", "--help"], capture_output=True, text=True, env=dict(
        os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")))  # fmt: skip
    assert done.returncode == 0 and "--per-sample OUT" in done.stdout


def assert_one_line_error(done, message, code=1):
    assert done.returncode == code, done.stderr
    assert done.stderr == f"fastbce score: error: {message}\n"


@pytest.mark.parametrize(
    "labels, value",
    [(np.where(np.arange(300) % 3, 1, -1).astype(np.int8), "-1"), (np.full(300, 2, np.int8), "2"),
     (np.full(300, np.iinfo(np.uint64).max, np.uint64), "18446744073709551615"), (np.full(300, np.nan), "nan")],
)  # fmt: skip
def test_labels_outside_the_unit_interval_are_refused(tmp_path, labels, value):
    x = np.random.default_rng(0).normal(0, 2, (100, 3)).astype(np.float32)
    y = labels.reshape(100, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    done = run_cli("score", "x.npy", "y.npy", check=False, cwd=tmp_path)
    assert_one_line_error(
        done,
        f"row 0, label column 0: {value} is outside [0, 1] (-1/+1 labels? map -1 to 0); "
        "--allow-out-of-range-labels scores such labels by the formula",
    )
    if value != "nan":
        summary = json.loads(
            run_cli("score", "x.npy", "y.npy", "--allow-out-of-range-labels", "--json", cwd=tmp_path).stdout
        )
        want = float(fb.binary_cross_entropy_with_logits(x, y, reduction="sum"))  # rounded to float32
        assert math.isclose(summary["sum"], want, rel_tol=1e-6)


def test_a_bad_label_is_reported_by_row_and_column_of_the_table(tmp_path):
    x, y = make_batch(1000, 3)
    y = y.astype(np.float32)
    y[737, 2] = 1.25
    pq.write_table(_table(x, y), tmp_path / "t.parquet", row_group_size=300)
    args = ["score", "t.parquet", "--logits", "logit_*", "--labels", "label_*", "--chunk-rows", 200]
    done = run_cli(*args, check=False, cwd=tmp_path)
    assert_one_line_error(
        done,
        "row 737, label column label_2: 1.25 is outside [0, 1] (-1/+1 labels? map -1 to 0); "
        "--allow-out-of-range-labels scores such labels by the formula",
    )


def test_probabilities_scored_as_logits_get_a_warning(tmp_path):
    x, y = make_batch(500, 2)
    np.save(tmp_path / "p.npy", fb.sigmoid(x))
    np.save(tmp_path / "y.npy", y)
    warning = (
        "fastbce score: warning: every logit lies in [0, 1] and every label is 0 or 1: "
        "if the inputs are probabilities, pass --probabilities\n"
    )
    done = run_cli("score", "p.npy", "y.npy", "--json", cwd=tmp_path)
    assert done.stderr == warning
    assert json.loads(done.stdout)["warnings"] == [warning.split("warning: ")[1].strip()]
    for args in (["--probabilities"], []):
        files = ["p.npy", "y.npy"] if args else ["x.npy", "y.npy"]
        np.save(tmp_path / "x.npy", x)
        done = run_cli("score", *files, *args, "--json", cwd=tmp_path)
        assert done.stderr == "" and json.loads(done.stdout)["warnings"] == []


def test_per_sample_output_may_not_be_an_input(tmp_path):
    x, y = make_batch(100, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    os.symlink(tmp_path / "x.npy", tmp_path / "link.npy")
    os.link(tmp_path / "y.npy", tmp_path / "hard.npy")
    for target, name in (("x.npy", "x.npy"), ("link.npy", "x.npy"), ("hard.npy", "y.npy")):
        done = run_cli("score", "x.npy", "y.npy", "--per-sample", target, check=False, cwd=tmp_path)
        assert_one_line_error(done, f"--per-sample {target} is the input {name}; write the losses to another file")
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), y)
    (tmp_path / "out").mkdir()
    done = run_cli("score", "x.npy", "y.npy", "--per-sample", "out", check=False, cwd=tmp_path)
    assert_one_line_error(done, "--per-sample writes .npy, .parquet or .csv files, not out")
    (tmp_path / "out.npy").mkdir()
    done = run_cli("score", "x.npy", "y.npy", "--per-sample", "out.npy", check=False, cwd=tmp_path)
    assert_one_line_error(done, "--per-sample out.npy is a directory; give a file name")


def _npy_with_header(path, x, old, new):
    """`x` saved, with `old` replaced by `new` (of the same length) in its header."""
    np.save(path, x)
    data = path.read_bytes()
    assert len(old) == len(new) and old in data[:128]
    path.write_bytes(data.replace(old, new, 1))


def test_damaged_and_empty_inputs_are_one_line(tmp_path):
    x, y = make_batch(100, 3)
    np.save(tmp_path / "y.npy", y)
    _npy_with_header(tmp_path / "open.npy", x, b"(100, 3)", b"(100, 3 ")
    done = run_cli("score", "open.npy", "y.npy", check=False, cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("fastbce score: error: open.npy is not a .npy array: ")
    assert done.stderr.count("\n") == 1
    _npy_with_header(tmp_path / "negative.npy", x, b"(100, 3)", b"(-10, 3)")
    done = run_cli("score", "negative.npy", "negative.npy", check=False, cwd=tmp_path)
    assert_one_line_error(done, "negative.npy has shape (-10, 3); expected (N,) or (N, C)")
    np.save(tmp_path / "none.npy", np.zeros((100, 0), np.float32))
    done = run_cli("score", "none.npy", "none.npy", check=False, cwd=tmp_path)
    assert_one_line_error(done, "none.npy has shape (100, 0): no classes to score")
    np.save(tmp_path / "rows0.npy", np.zeros((0, 3), np.float32))
    done = run_cli("score", "rows0.npy", "rows0.npy", check=False, cwd=tmp_path)
    assert_one_line_error(done, "rows0.npy, rows0.npy: no rows to score")
    (tmp_path / "head.csv").write_text("logit_0,label_0\n")
    done = run_cli("score", "head.csv", "--logits", "logit_0", "--labels", "label_0", check=False, cwd=tmp_path)
    assert_one_line_error(done, "head.csv: no rows to score")
    pq.write_table(_table(x[:0], y[:0]), tmp_path / "empty.parquet")
    done = run_cli("score", "empty.parquet", "--logits", "logit_*", "--labels", "label_*", check=False, cwd=tmp_path)
    assert_one_line_error(done, "empty.parquet: no rows to score")


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    import resource

    x, y = make_batch(300_000, 1)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)

    def small_files():  # writes past 1 MiB fail, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    done = subprocess.run(
        [*FASTBCE, "score", "x.npy", "y.npy", "--per-sample", "losses.npy"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, preexec_fn=small_files,
    )  # fmt: skip
    assert_one_line_error(done, "cannot write losses.npy: File too large")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]


def test_a_closed_output_pipe_is_no_error():
    proc = subprocess.Popen(
        [*FASTBCE, "score", "--demo", "--demo-rows", "100000", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    proc.stdout.close()  # as `| head` does once it has read enough
    with proc.stderr:
        stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert stderr == b""


def test_dask_missing_or_unreachable_is_one_line(tmp_path):
    x, y = make_batch(100, 3)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    code = "import sys; sys.modules['dask'] = None\nfrom fastbce.cli import main\nsys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "score", "x.npy", "y.npy", "--dask", "local"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert_one_line_error(done, "--dask needs Dask: pip install 'fastbce[dask]'")
    start = time.monotonic()
    done = run_cli(
        "score", "x.npy", "y.npy", "--dask", "tcp://127.0.0.1:9", "--dask-timeout", "1", check=False, cwd=tmp_path
    )
    assert time.monotonic() - start < 30
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "fastbce score: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s ("
    )
