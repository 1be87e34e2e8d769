"""Threads: deterministic reductions for every thread count, safe concurrent
calls, and the controls (set/get, context manager, environment variable)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastbce as fb
from fastbce import _core

N = 3_000_000
THREAD_COUNTS = [1, 2, 3, 4, 8]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(2026)
    x = rng.normal(0, 4, N).astype(np.float32)
    y = (rng.uniform(size=N) < 0.3).astype(np.float32)
    pw = rng.uniform(0.5, 4, (N // 100, 100)).astype(np.float32)[0]
    return x, y, pw


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reductions_are_bitwise_equal_for_any_thread_count(batch, reduction):
    x, y, pw = batch
    results = {}
    for n in THREAD_COUNTS:
        with fb.num_threads(n):
            results[n] = (
                fb.binary_cross_entropy_with_logits(x, y, reduction=reduction),
                fb.binary_cross_entropy_with_logits(
                    x.reshape(-1, 100), y.reshape(-1, 100), reduction=reduction, pos_weight=pw
                ),
                fb.binary_cross_entropy_with_logits_value_and_grad(x, y, reduction=reduction)[0],
                fb.binary_cross_entropy(fb.sigmoid(x[:100_000]), y[:100_000], reduction=reduction),
            )
    first = results[1]
    for n, values in results.items():
        assert [v.tobytes() for v in values] == [v.tobytes() for v in first], f"{n} threads"
    # And it is the right number, not just a stable one.
    exact = np.sum(np.logaddexp(0, x.astype(np.float64)) - y * x.astype(np.float64))
    want = exact / N if reduction == "mean" else exact
    assert abs(float(first[0]) - want) <= 2e-6 * abs(want)


def test_runs_repeat_bitwise(batch):
    x, y, _ = batch
    values = {fb.binary_cross_entropy_with_logits(x, y).tobytes() for _ in range(5)}
    assert len(values) == 1


def test_gradients_do_not_depend_on_thread_count(batch):
    x, y, _ = batch
    with fb.num_threads(1):
        serial = fb.binary_cross_entropy_with_logits_grad(x, y)
    with fb.num_threads(4):
        parallel = fb.binary_cross_entropy_with_logits_grad(x, y)
    np.testing.assert_array_equal(serial, parallel)


def test_calls_streaming_from_memory_give_the_results_of_small_calls():
    # 9e6 float32 elements: 72 MB of contiguous inputs, over the size where
    # the blocks prefetch their inputs; slices of 1e6 stay under it.
    rng = np.random.default_rng(7)
    x = rng.normal(0, 4, 9_000_000).astype(np.float32)
    y = (rng.uniform(size=x.size) < 0.3).astype(np.float32)
    pieces = [slice(i, i + 1_000_000) for i in range(0, x.size, 1_000_000)]
    whole = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    parts = np.concatenate([fb.binary_cross_entropy_with_logits(x[s], y[s], reduction="none") for s in pieces])
    assert whole.tobytes() == parts.tobytes()
    grad = fb.binary_cross_entropy_with_logits_grad(x, y, reduction="sum")
    grads = np.concatenate([fb.binary_cross_entropy_with_logits_grad(x[s], y[s], reduction="sum") for s in pieces])
    assert grad.tobytes() == grads.tobytes()
    with fb.num_threads(1):
        serial = fb.binary_cross_entropy_with_logits(x, y)
    assert serial.tobytes() == fb.binary_cross_entropy_with_logits(x, y).tobytes()
    assert abs(float(serial) - np.sum(whole, dtype=np.float64) / x.size) <= 1e-6 * float(serial)


def test_concurrent_python_threads_get_the_serial_results():
    rng = np.random.default_rng(5)
    jobs = []
    for k in range(8):
        n = 200_000 + 37_000 * k
        jobs.append((rng.normal(0, 3, n).astype(np.float64 if k % 2 else np.float32), rng.uniform(0, 1, n)))

    def compute(x, y):
        loss, grad = fb.binary_cross_entropy_with_logits_value_and_grad(x, y.astype(x.dtype))
        return loss, grad, fb.binary_cross_entropy(fb.sigmoid(x), y.astype(x.dtype), reduction="sum")

    with fb.num_threads(1):
        serial = [compute(x, y) for x, y in jobs]
    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def worker(i):
        barrier.wait()
        for _ in range(3):
            results[i] = compute(*jobs[i])

    with fb.num_threads(2):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for (loss, grad, total), (want_loss, want_grad, want_total) in zip(results, serial, strict=True):
        assert loss.tobytes() == want_loss.tobytes()
        assert total.tobytes() == want_total.tobytes()
        np.testing.assert_array_equal(grad, want_grad)


def _mean_bytes_in_child(x, y):
    with fb.num_threads(2):
        return [fb.binary_cross_entropy_with_logits(x, y).tobytes() for _ in range(3)]


def test_a_forked_child_computes_with_its_own_threads(batch):
    # The helper threads of the parent do not exist in a child made by fork
    # (they may even be mid-call when it forks): the child makes its own.
    import multiprocessing
    import warnings

    x, y, _ = batch
    with fb.num_threads(2):
        want = fb.binary_cross_entropy_with_logits(x, y).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (Python 3.12+)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            got = pool.apply_async(_mean_bytes_in_child, (x, y)).get(timeout=120)
    assert got == [want] * 3


def test_context_manager_restores_the_count_even_on_error():
    fb.set_num_threads(3)
    with pytest.raises(RuntimeError):
        with fb.num_threads(1):
            assert fb.get_num_threads() == 1
            raise RuntimeError
    assert fb.get_num_threads() == 3


def _fresh_get_num_threads(env_value):
    env = dict(os.environ, FASTBCE_NUM_THREADS=env_value)
    code = "import warnings; warnings.simplefilter('always')\nimport fastbce; print(fastbce.get_num_threads())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout), done.stderr


def test_environment_variable_sets_the_default():
    assert _fresh_get_num_threads("3") == (3, "")
    n, err = _fresh_get_num_threads("zero")
    assert n == len(os.sched_getaffinity(0))
    assert "RuntimeWarning: ignoring FASTBCE_NUM_THREADS='zero': expected an integer of at least 1" in err


def _run_script(code, timeout=300, env=None):
    """Runs `code` in a fresh interpreter (fork warnings of Python 3.12+ off)."""
    return subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_children_forked_during_calls_never_hang():
    # A thread keeps calling with changing sizes and thread counts (so pools
    # are built and dropped all the time) while the main thread forks; each
    # child must compute a parallel call, with its own helpers, at once.
    # (Children once hung, 7 of 40, on a lock held across a pool build; and
    # about 1 in 200 aborted, its heap corrupt, when forked while a helper
    # thread was starting or ending.)
    done = _run_script(
        """
        import os, signal, threading, time
        import numpy as np
        import fastbce as fb

        rng = np.random.default_rng(3)
        x = rng.normal(0, 3, 300_000).astype(np.float32)
        y = (rng.uniform(size=x.size) < 0.3).astype(np.float32)
        with fb.num_threads(1):
            want = fb.binary_cross_entropy_with_logits(x, y).tobytes()
        stop = threading.Event()

        def churn():
            k = 0
            while not stop.is_set():
                fb.set_num_threads(2 + k % 3)
                n = 40_000 * (1 + k % 7)
                fb.binary_cross_entropy_with_logits(x[:n], y[:n])
                k += 1

        threading.Thread(target=churn, daemon=True).start()
        hung = wrong = 0
        for _ in range(100):
            time.sleep(0.005)
            pid = os.fork()
            if pid == 0:
                fb.set_num_threads(2)
                ok = fb.binary_cross_entropy_with_logits(x, y).tobytes() == want
                os._exit(0 if ok else 3)
            deadline = time.monotonic() + 10
            while True:
                got, status = os.waitpid(pid, os.WNOHANG)
                if got:
                    wrong += os.waitstatus_to_exitcode(status) != 0
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    hung += 1
                    break
                time.sleep(0.002)
        stop.set()
        print(hung, wrong)
        """,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0"], "children hung, wrong: " + done.stdout


def _fastbce_threads():
    """The helper threads alive in this process (Linux)."""
    count = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                count += f.read().startswith("fastbce-")
        except FileNotFoundError:
            pass
    return count


def _wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_calls_of_every_size_share_one_pool_per_setting(batch):
    x, y, _ = batch
    # 4 and 5 chunks, and the sizes of a 16-thread server's slow case: each
    # uses a different number of helpers of the same pool.
    sizes = [4 * fb.CHUNK_ELEMENTS, 5 * fb.CHUNK_ELEMENTS, 40_000, 100_000, 300_000]
    with fb.num_threads(1):
        want = [fb.binary_cross_entropy_with_logits(x[:n], y[:n]).tobytes() for n in sizes]
    with fb.num_threads(8):
        fb.binary_cross_entropy_with_logits(x, y)
        built = _core.pools_built()
        for _ in range(50):
            got = [fb.binary_cross_entropy_with_logits(x[:n], y[:n]).tobytes() for n in sizes]
            assert got == want
        assert _core.pools_built() == built
        assert _wait_for(lambda: _fastbce_threads() == 7)
    # A new setting builds one new pool, once.
    with fb.num_threads(3):
        for n in sizes * 3:
            fb.binary_cross_entropy_with_logits(x[:n], y[:n])
        assert _core.pools_built() == built + 1


def test_helpers_end_when_the_setting_goes_down(batch):
    x, y, _ = batch
    most = 8 * os.cpu_count()
    fb.set_num_threads(most)
    fb.binary_cross_entropy_with_logits(x, y)
    assert _wait_for(lambda: _fastbce_threads() == most - 1)
    fb.set_num_threads(1)
    # No later parallel call is needed for them to go.
    assert _wait_for(lambda: _fastbce_threads() == 0), f"{_fastbce_threads()} helpers left"
    assert fb.binary_cross_entropy_with_logits(x, y) == fb.binary_cross_entropy_with_logits(x, y)
    assert _fastbce_threads() == 0


def test_environment_variable_far_above_the_cpus_is_capped():
    most = 8 * os.cpu_count()
    n, err = _fresh_get_num_threads("100000")
    assert n == most
    assert f"RuntimeWarning: FASTBCE_NUM_THREADS='100000' is more than 8 threads per CPU; using {most}" in err


def test_bookkeeping_does_not_grow_with_the_element_count():
    # 2^46 broadcast elements (once: a 412 GB allocation and an abort) run
    # for hours; two seconds of it must not have added more than a few MiB.
    done = _run_script(
        """
        import os, threading, time
        import numpy as np
        import fastbce as fb

        def peak_kib():
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))

        fb.set_num_threads(2)
        x = np.broadcast_to(np.float32(0.5), (2**46,))
        before = peak_kib()
        threading.Thread(target=fb.binary_cross_entropy_with_logits, args=(x, x), daemon=True).start()
        time.sleep(2)
        print(peak_kib() - before, flush=True)
        os._exit(0)
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) < 8 * 1024, f"{done.stdout} KiB more"


def test_a_broadcast_call_past_two_to_the_31_is_exact():
    x = np.broadcast_to(np.float32(-1.5), (2**31 + 3 * fb.CHUNK_ELEMENTS + 5,))
    y = np.broadcast_to(np.float32(0.25), x.shape)
    # Every chunk holds equal values, so every chunk sum, and the exactly
    # combined total, is the same whatever thread ran it.
    with fb.num_threads(1):
        serial = fb.binary_cross_entropy_with_logits(x, y, reduction="sum")
    with fb.num_threads(2):
        assert fb.binary_cross_entropy_with_logits(x, y, reduction="sum").tobytes() == serial.tobytes()
    element = 0.75 * np.logaddexp(0, -1.5) + 0.25 * np.logaddexp(0, 1.5)
    assert abs(float(serial) / x.size - element) < 1e-6 * element


def test_sums_too_large_to_hold_raise_memory_error():
    # axis=() keeps every index: 2^48 float64 sums cannot be allocated, and
    # the call says so instead of aborting the process.
    x = np.broadcast_to(np.float32(0.5), (2**24, 2**24))
    with pytest.raises(MemoryError, match="^could not allocate 2251799813685248 bytes$"):
        fb.binary_cross_entropy_with_logits(x, x, reduction="sum", axis=())
    with pytest.raises(MemoryError, match="^could not allocate 9223372036854775800 bytes$"):
        fb._core.RunningSums(2**60 - 1)
