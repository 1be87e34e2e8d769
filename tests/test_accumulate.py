"""LossAccumulator: batches add up to one call over all the data."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import fastbce as fb

from reference import one_call_sum


def _data(rows, cols, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, (rows, cols)).astype(dtype)
    y = (rng.uniform(size=(rows, cols)) < 0.2).astype(np.uint8)
    return x, y


def _split(rows, sizes):
    edges = np.cumsum([0, *sizes])
    assert edges[-1] == rows
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


@pytest.mark.parametrize("probabilities", [False, True])
def test_any_batches_match_one_call_to_1e_12(probabilities):
    x, y = _data(10_007, 7)
    if probabilities:
        x = fb.sigmoid(x)
    pw = None if probabilities else np.linspace(1, 3, 7)
    acc = fb.LossAccumulator(probabilities, pos_weight=pw)
    for part in _split(10_007, [1, 999, 4000, 17, 4990]):
        acc.update(x[part], y[part])
    fn = fb.binary_cross_entropy if probabilities else fb.binary_cross_entropy_with_logits
    kw = {} if probabilities else {"pos_weight": pw}
    # One call's elements (the same float32 values the batches summed).
    elements = fn(x, y, reduction="none", **kw).astype(np.float64)
    assert acc.count == x.size
    assert math.isclose(acc.total, math.fsum(elements.ravel()), rel_tol=1e-12)
    assert math.isclose(acc.mean, math.fsum(elements.ravel()) / x.size, rel_tol=1e-12)
    np.testing.assert_allclose(acc.per_class_sum, elements.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(acc.per_class_mean, acc.per_class_sum / 10_007, rtol=1e-15)


def test_chunk_aligned_batches_are_bitwise_equal_to_one_call():
    cols = 16  # CHUNK_ELEMENTS / 16 rows per chunk
    rows_per_chunk = fb.CHUNK_ELEMENTS // cols
    rows = 7 * rows_per_chunk + 123
    x, y = _data(rows, cols, seed=3)
    pw = np.linspace(0.5, 5, cols).astype(np.float32)
    one = fb.LossAccumulator(pos_weight=pw)
    one.update(x, y)
    batched = fb.LossAccumulator(pos_weight=pw)
    for part in _split(rows, [2 * rows_per_chunk, rows_per_chunk, 4 * rows_per_chunk, 123]):
        batched.update(x[part], y[part])
    assert batched.total == one.total
    assert batched.mean == one.mean
    assert batched.per_class_sum.tobytes() == one.per_class_sum.tobytes()
    # And one update is one kernel call, bit for bit.
    assert one.total == one_call_sum(x, y, None, pw)


def test_concurrent_updates_give_the_serial_results():
    x, y = _data(64_000, 10, seed=4)
    serial = fb.LossAccumulator()
    parts = [slice(i, i + 4000) for i in range(0, 64_000, 4000)]
    for part in parts:
        serial.update(x[part], y[part])
    shared = fb.LossAccumulator()
    barrier = threading.Barrier(8)

    def worker(k):
        barrier.wait()
        for part in parts[k::8]:
            shared.update(x[part], y[part])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert shared.count == serial.count
    assert shared.total == serial.total  # exact combination: order-free
    np.testing.assert_allclose(shared.per_class_sum, serial.per_class_sum, rtol=1e-12)


def test_one_dimensional_batches_are_one_class():
    acc = fb.LossAccumulator()
    assert acc.count == 0 and math.isnan(acc.mean) and acc.per_class_sum.shape == (0,)
    x = np.array([0.5, -1.0, 2.0])
    acc.update(x, [1, 0, 1])
    acc.update(x[:2], [0, 0])
    assert acc.count == 5
    np.testing.assert_array_equal(acc.per_class_sum, [acc.total])
    assert repr(acc).startswith("LossAccumulator(logits, count=5, mean=")
    acc.reset()
    assert acc.count == 0 and acc.total == 0.0


def test_accumulator_errors():
    acc = fb.LossAccumulator()
    acc.update(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^every batch must have the same classes \(last axis\): this one has 4"):
        acc.update(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"^target must have the same shape as input"):
        acc.update(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="^pos_weight applies to logits only"):
        fb.LossAccumulator(True, pos_weight=[1.0])
    bad = fb.LossAccumulator(True)
    with pytest.raises(ValueError, match="^all elements of input should be between 0 and 1$"):
        bad.update(np.array([[0.5, 1.5]]), np.array([[1, 0]]))
    assert bad.count == 0
