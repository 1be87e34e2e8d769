"""The output cache: large new outputs reuse the memory of freed ones, stay
ordinary NumPy arrays, and the cache keeps within its bounds."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastbce as fb
from fastbce import _core

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name

# float32 elements in an output just large enough for the cache.
N = _core.OUTPUT_CACHE_MIN_BYTES // 4


@pytest.fixture()
def batch():
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3, N).astype(np.float32)
    y = (rng.uniform(size=N) < 0.4).astype(np.float32)
    return x, y


@pytest.fixture(autouse=True)
def empty_cache():
    gc.collect()  # arrays of earlier tests kept alive by cycles
    fb.set_output_cache(0)
    fb.set_output_cache(1 << 30)
    yield
    fb.set_output_cache(1 << 30)


def address(a):
    return a.__array_interface__["data"][0]


def held():
    info = fb.show_config("dicts")["output_cache"]
    return info["blocks"], info["bytes"]


def test_a_freed_output_is_reused_by_the_next_of_its_size(batch):
    x, y = batch
    first = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert get_handler_name(first) == "fastbce_output_cache"
    assert get_handler_name() != "fastbce_output_cache", "the handler is installed only while the output is made"
    assert first.flags.owndata and first.flags.writeable and first.base is None
    expected = first.copy()
    where = address(first)
    del first
    assert held() == (1, N * 4)
    again = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert address(again) == where
    assert held() == (0, 0)
    np.testing.assert_array_equal(again, expected)
    into = np.empty_like(x)
    fb.binary_cross_entropy_with_logits(x, y, reduction="none", out=into)
    np.testing.assert_array_equal(again, into)


def test_value_and_grad_outputs_come_back_too(batch):
    x, y = batch
    loss, grad = fb.binary_cross_entropy_with_logits_value_and_grad(x, y, reduction="none")
    places = {address(loss), address(grad)}
    expected = loss.copy(), grad.copy()
    del loss, grad
    assert held() == (2, 2 * N * 4)
    loss, grad = fb.binary_cross_entropy_with_logits_value_and_grad(x, y, reduction="none")
    assert {address(loss), address(grad)} == places
    np.testing.assert_array_equal(loss, expected[0])
    np.testing.assert_array_equal(grad, expected[1])


def test_small_outputs_use_numpys_allocator(batch):
    x, y = batch
    small = fb.binary_cross_entropy_with_logits(x[: N // 2 - 1], y[: N // 2 - 1], reduction="none")
    assert get_handler_name(small) == "default_allocator"


def test_cached_arrays_resize_and_pickle_like_any_other(batch):
    x, y = batch
    out = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    expected = out.copy()
    out.resize(2 * N, refcheck=False)
    np.testing.assert_array_equal(out[:N], expected)
    assert np.all(out[N:] == 0)
    out.resize(N, refcheck=False)
    np.testing.assert_array_equal(out, expected)
    import pickle

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(out)), expected)


def test_the_cache_keeps_within_its_bounds(batch):
    x, y = batch
    blocks = _core.OUTPUT_CACHE_MAX_BLOCKS
    outs = [fb.binary_cross_entropy_with_logits(x, y, reduction="none") for _ in range(blocks + 2)]
    del outs
    assert held() == (blocks, blocks * N * 4)
    fb.set_output_cache(2 * N * 4)
    assert held() == (2, 2 * N * 4)
    fb.set_output_cache(0)
    assert held() == (0, 0)
    out = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert get_handler_name(out) == "default_allocator", "a cache of 0 bytes is off"
    fb.set_output_cache(1 << 30)
    del out
    assert held() == (0, 0)


def test_set_output_cache_checks_its_argument():
    with pytest.raises(TypeError, match="^max_bytes must be an integer, got float$"):
        fb.set_output_cache(1e9)
    with pytest.raises(ValueError, match="^max_bytes must be at least 0, got -1$"):
        fb.set_output_cache(-1)


def _cache_in_fresh_process(value):
    env = dict(os.environ, FASTBCE_OUTPUT_CACHE=value)
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "import fastbce; print(fastbce.show_config('dicts')['output_cache']['max_bytes'])"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout), done.stderr


def test_environment_variable_sets_the_bound():
    assert _cache_in_fresh_process("1000") == (1000, "")
    assert _cache_in_fresh_process("0") == (0, "")
    bound, err = _cache_in_fresh_process("1G")
    assert bound == 1 << 30
    assert "RuntimeWarning: ignoring FASTBCE_OUTPUT_CACHE='1G': expected a number of bytes" in err


def test_show_config_reports_the_cache(capsys, batch):
    x, y = batch
    out = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    del out
    fb.show_config()
    text = capsys.readouterr().out
    expected = "output cache: up to 1,024 MiB in 4 blocks of 8 MiB or more (holding 1: 8.0 MiB)"
    assert expected in text


def test_python_threads_share_the_cache_safely(batch):
    x, y = batch
    expected = fb.binary_cross_entropy_with_logits(x, y, reduction="none").copy()
    failures = []

    def work():
        for _ in range(8):
            out = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
            if not np.array_equal(out, expected):
                failures.append(address(out))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    blocks, held_bytes = held()
    assert blocks <= _core.OUTPUT_CACHE_MAX_BLOCKS and held_bytes == blocks * N * 4
