"""fastbce.dask on a LocalCluster of 2 worker processes: the in-memory
results, the same bits on every run and scheduler, and `score --dask`."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import dask
import dask.array as da
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster

import fastbce as fb
import fastbce.dask as fbd

from reference import one_call_sum


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(21)
    x = rng.normal(0, 3, (40_000, 12)).astype(np.float32)
    y = (rng.uniform(size=x.shape) < 0.3).astype(np.uint8)
    pw = rng.uniform(0.5, 4, 12).astype(np.float32)
    w = rng.uniform(0.5, 2, (40_000, 1))
    return x, y, pw, w


def _lazy(batch):
    x, y, pw, w = batch
    return da.from_array(x, chunks=(7_000, 5)), da.from_array(y, chunks=(9_000, 12)), pw, w


def test_reductions_match_in_memory(client, batch):
    x, y, pw, w = batch
    dx, dy, _, _ = _lazy(batch)
    for reduction in ("mean", "sum"):
        for axis in (None, 0, -1):
            got = fbd.binary_cross_entropy_with_logits(dx, dy, w, reduction, pw, axis=axis)
            assert isinstance(got, da.Array)
            want = fb.binary_cross_entropy_with_logits(x, y, w, reduction, pw, axis=axis)
            np.testing.assert_allclose(got.compute(), want, rtol=1e-6)
    # float64 sums agree to 1e-12 with the in-memory kernel's.
    exact = one_call_sum(x, y, np.broadcast_to(w, x.shape), pw)
    total = fbd.partial_sums(False, *fbd._operands(dx, dy, w, pw), (0, 1)).compute()
    assert math.isclose(total, exact, rel_tol=1e-12)


def test_elementwise_losses_and_gradients_match_in_memory(client, batch):
    x, y, pw, w = batch
    dx, dy, _, _ = _lazy(batch)
    np.testing.assert_array_equal(
        fbd.binary_cross_entropy_with_logits(dx, dy, w, "none", pw).compute(),
        fb.binary_cross_entropy_with_logits(x, y, w, "none", pw),
    )
    for reduction, axis, go in (("mean", None, 0.5), ("sum", 0, np.linspace(1, 2, 12)), ("mean", -1, 2.0)):
        got = fbd.binary_cross_entropy_with_logits_grad(dx, dy, w, reduction, pw, grad_output=go, axis=axis)
        want = fb.binary_cross_entropy_with_logits_grad(x, y, w, reduction, pw, grad_output=go, axis=axis)
        np.testing.assert_allclose(got.compute(), want, rtol=1e-6, atol=1e-12)
    p = fb.sigmoid(x)
    loss, grad = fbd.binary_cross_entropy_value_and_grad(da.from_array(p, chunks=5_000), dy)
    np.testing.assert_allclose(loss.compute(), fb.binary_cross_entropy(p, y), rtol=1e-6)
    np.testing.assert_allclose(grad.compute(), fb.binary_cross_entropy_grad(p, y), rtol=1e-6, atol=1e-12)


def test_same_bits_on_every_run_and_any_scheduler(client, batch):
    dx, dy, pw, w = _lazy(batch)
    loss = fbd.binary_cross_entropy_with_logits(dx, dy, w, "sum", pw, axis=0)
    runs = {loss.compute().tobytes() for _ in range(3)}
    with dask.config.set(scheduler="synchronous"):
        runs.add(loss.compute().tobytes())
    with dask.config.set(scheduler="threads", num_workers=3):
        runs.add(loss.compute().tobytes())
    assert len(runs) == 1


def test_errors_are_the_in_memory_ones(batch):
    dx, dy, pw, w = _lazy(batch)
    with pytest.raises(ValueError, match="^pos_weight of shape"):
        fbd.binary_cross_entropy_with_logits(dx, dy, pos_weight=np.ones(5))
    with pytest.raises(ValueError, match="^reduction must be 'mean', 'sum' or 'none'"):
        fbd.binary_cross_entropy_with_logits(dx, dy, reduction="avg")
    with pytest.raises(ValueError, match="^target must have the same shape as input"):
        fbd.binary_cross_entropy_with_logits(dx, dy[:10])


def _error(fn, *args, **kwargs):
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


def test_every_error_is_worded_as_the_in_memory_call_words_it(batch):
    # The lazy functions check through the same native call (on stand-ins
    # of the Dask arrays): the same exception and message, word for word.
    x, y, pw, _ = batch
    dx, dy, _, _ = _lazy(batch)
    bad = [
        ("binary_cross_entropy_with_logits", {"pos_weight": np.ones(5)}),
        ("binary_cross_entropy_with_logits", {"weight": np.ones((2, 40_000, 12))}),
        ("binary_cross_entropy_with_logits", {"reduction": "avg"}),
        ("binary_cross_entropy_with_logits", {"reduction": None}),
        ("binary_cross_entropy_with_logits", {"axis": 2}),
        ("binary_cross_entropy_with_logits", {"axis": (0, -2)}),
        ("binary_cross_entropy_with_logits", {"axis": "rows"}),
        ("binary_cross_entropy_with_logits", {"reduction": "none", "axis": 0}),
        ("binary_cross_entropy_with_logits", {"weight": np.ma.array(np.ones(12))}),
        ("binary_cross_entropy_with_logits_grad", {"grad_output": np.ones(3)}),
        ("binary_cross_entropy_with_logits_grad", {"grad_output": np.ones(5), "axis": 0}),
        ("binary_cross_entropy_with_logits_grad", {"reduction": "none", "grad_output": np.ones(7)}),
        ("binary_cross_entropy_grad", {"weight": np.ones(7)}),
    ]
    for name, kwargs in bad:
        eager = _error(getattr(fb, name), x, y, **kwargs)
        lazy = _error(getattr(fbd, name), dx, dy, **kwargs)
        assert lazy == eager, (name, kwargs)
    assert _error(fbd.binary_cross_entropy_with_logits, dx, dy[:10]) == _error(
        fb.binary_cross_entropy_with_logits, x, y[:10]
    )
    assert _error(fbd.binary_cross_entropy_with_logits, dx.astype(np.complex64), dy) == _error(
        fb.binary_cross_entropy_with_logits, x.astype(np.complex64), y
    )


def test_score_through_the_cluster(client, batch, tmp_path):
    x, y, pw, _ = batch
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    columns = {f"logit_{c}": x[:, c] for c in range(12)} | {f"label_{c}": y[:, c] for c in range(12)}
    pq.write_table(pa.table(columns), tmp_path / "t.parquet", row_group_size=15_000)
    want = one_call_sum(x, y, None, pw)
    pw_arg = ",".join(map(str, pw.tolist()))
    address = client.scheduler.address
    for inputs in ([tmp_path / "x.npy", tmp_path / "y.npy"],
                   [tmp_path / "t.parquet", "--logits", "logit_*", "--labels", "label_*"]):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "fastbce", "score", *map(str, inputs), "--pos-weight", pw_arg,
             "--dask", address, "--chunk-rows", "6000", "--json", "--per-sample", str(tmp_path / "ps.npy")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["count"] == x.size
        assert math.isclose(summary["sum"], want, rel_tol=1e-12)
        np.testing.assert_allclose(
            summary["per_class_mean"], fb.binary_cross_entropy_with_logits(x, y, pos_weight=pw, axis=0), rtol=1e-6
        )
        np.testing.assert_allclose(
            np.load(tmp_path / "ps.npy"), fb.binary_cross_entropy_with_logits(x, y, pos_weight=pw, axis=-1), rtol=1e-6
        )


def test_fastbce_works_without_dask_and_names_the_extra():
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
        "import numpy as np, fastbce as fb\n"
        "assert abs(fb.binary_cross_entropy_with_logits(np.zeros(3), np.ones(3)) - np.log(2)) < 1e-12\n"
        "try:\n    import fastbce.dask\nexcept ImportError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "fastbce.dask needs Dask: pip install 'fastbce[dask]'" in done.stdout


def test_score_refuses_what_the_local_path_refuses_with_the_same_line(client, tmp_path):
    rng = np.random.default_rng(8)
    x = rng.normal(0, 2, (1000, 3)).astype(np.float32)
    y = (rng.uniform(size=x.shape) < 0.3).astype(np.float32)
    logits = pa.array(x[:, 1], mask=np.arange(1000) == 613)  # one missing value
    table = pa.table({"logit_0": x[:, 0], "logit_1": logits, "label_0": y[:, 0], "label_1": y[:, 1]})
    pq.write_table(table, tmp_path / "nulls.parquet", row_group_size=300)
    p = fb.sigmoid(x)
    p[702, 2] = 1.5
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", y)
    bad_y = y.copy()
    bad_y[415, 0] = -1
    np.save(tmp_path / "bad_y.npy", bad_y)
    np.save(tmp_path / "x.npy", x)
    cases = {
        "t.parquet: column 'logit_1' has a missing value at row 613 (--drop-null skips rows with missing values)": [
            "nulls.parquet", "--logits", "logit_*", "--labels", "label_*"],
        "row 702, column 2: 1.5 is not a probability (outside [0, 1])": ["p.npy", "y.npy", "--probabilities"],
        "row 415, label column 0: -1.0 is outside [0, 1] (-1/+1 labels? map -1 to 0); "
        "--allow-out-of-range-labels scores such labels by the formula": ["x.npy", "bad_y.npy"],
    }  # fmt: skip
    for message, args in cases.items():
        message = message.replace("t.parquet", "nulls.parquet")
        for where in ([], ["--dask", client.scheduler.address]):
            done = subprocess.run(
                [sys.executable, "-m", "fastbce", "score", *args, "--chunk-rows", "250", *where],
                capture_output=True, text=True, timeout=300, cwd=tmp_path,
            )  # fmt: skip
            # (The cluster's workers run elsewhere: they read the files by their absolute paths.)
            assert done.returncode == 1, done.stderr
            assert done.stderr == f"fastbce score: error: {message}\n", where
    # A cluster started by the command itself adds no worker logs to the line.
    done = subprocess.run(
        [sys.executable, "-m", "fastbce", "score", *cases[next(iter(cases))], "--dask", "local"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "fastbce score: error: nulls.parquet: column 'logit_1' has a missing value at row 613 "
        "(--drop-null skips rows with missing values)\n"
    )
