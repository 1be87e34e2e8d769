"""Benchmark fastbce against NumPy, PyTorch, JAX, numba and a C loop.

Every peer is measured in this one process, on the same arrays, and its
result is checked against a float64 reference before its time counts.
Times are medians of several repeats, the peers of a row taking turns
repeat by repeat; ratios come from the same run.

    python benches/bench.py                       # default sizes and cases
    python benches/bench.py --sizes 1e6,1e7,1e8 --cases mean --dtypes float32
    python benches/bench.py --peers numpy,c --threads 1 --markdown table.md
    python benches/bench.py --memory              # peak memory of a 1e8 mean
    python benches/bench.py --small               # calls on 100 elements vs np.add
    python benches/bench.py --scaling             # 1 vs 2 threads around the threshold
    python benches/bench.py --operands --sizes 1e6,1e7  # pos_weight, uint8 vs the plain mean
    python benches/bench.py --alternating         # calls of changing sizes vs one size at a time
    python benches/bench.py --checks --sizes 1e6  # out= on probabilities: the cost of checking first
    python benches/bench.py --extensions --sizes 1e6,1e7  # second derivatives and the focal loss

Peers that are not installed are left out (PyTorch, JAX, numba); the C
loop (benches/roofline.c, vectorized with glibc's libmvec under
-ffast-math, OpenMP) is built when gcc is on the PATH.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

# OpenMP threads must not spin between calls, or they steal the cores from
# the peer measured next; set before libgomp loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

import fastbce as fb  # noqa: E402

HERE = Path(__file__).resolve().parent
CASES = {
    "mean": "loss, reduction='mean'",
    "none_out": "loss, reduction='none', into out=",
    "none_new": "loss, reduction='none', into a new array",
    "vg_out": "loss and gradient of the mean, gradient into out=",
    "vg_new": "loss and gradient of the mean, gradient into a new array",
    "pos_weight": "mean with a (100,) pos_weight over (N/100, 100)",
    "uint8": "mean with uint8 targets",
}
PEERS = ["fastbce", "fastbce-1t", "numpy", "torch", "jax", "numba", "c"]


@dataclass
class Problem:
    case: str
    dtype: Any
    n: int
    x: np.ndarray
    y: np.ndarray
    pos_weight: Optional[np.ndarray]
    out: np.ndarray
    want_loss: Any
    want_grad: Optional[np.ndarray]


def make_problem(case: str, dtype: Any, n: int, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 3.0, n).astype(dtype)
    labels = rng.random(n) < 0.3
    y = labels.astype(np.uint8 if case == "uint8" else dtype)
    pos_weight = None
    if case == "pos_weight":
        x = x.reshape(-1, 100)
        y = y.reshape(-1, 100)
        pos_weight = rng.uniform(0.5, 4.0, 100).astype(dtype)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    p64 = 1.0 if pos_weight is None else pos_weight.astype(np.float64)
    softplus_neg = np.log1p(np.exp(-np.abs(x64))) + np.maximum(-x64, 0.0)
    loss = (1.0 - y64) * x64 + (1.0 + (p64 - 1.0) * y64) * softplus_neg
    want_grad = None
    if case.startswith("vg"):
        sig = np.exp(-np.logaddexp(0.0, -x64))
        want_grad = (sig - y64) / x64.size
    want_loss = loss if case.startswith("none") else np.mean(loss)
    return Problem(case, dtype, n, x, y, pos_weight, np.empty_like(x), want_loss, want_grad)


# ---------------------------------------------------------------- the peers
# Each returns a callable computing the case, returning (loss, grad or None),
# or None when the peer does not do that case.


def fastbce_peer(threads: int) -> Callable[[Problem], Optional[Callable[[], Any]]]:
    def make(p: Problem) -> Optional[Callable[[], Any]]:
        def run(fn: Callable[[], Any]) -> Any:
            with fb.num_threads(threads):
                return fn()

        if p.case in ("mean", "uint8", "pos_weight"):
            return lambda: run(lambda: (fb.binary_cross_entropy_with_logits(p.x, p.y, pos_weight=p.pos_weight), None))
        if p.case == "none_out":
            return lambda: run(
                lambda: (fb.binary_cross_entropy_with_logits(p.x, p.y, reduction="none", out=p.out), None)
            )
        if p.case == "none_new":
            return lambda: run(lambda: (fb.binary_cross_entropy_with_logits(p.x, p.y, reduction="none"), None))
        if p.case == "vg_out":
            return lambda: run(lambda: fb.binary_cross_entropy_with_logits_value_and_grad(p.x, p.y, out=p.out))
        if p.case == "vg_new":
            return lambda: run(lambda: fb.binary_cross_entropy_with_logits_value_and_grad(p.x, p.y))
        return None

    return make


def numpy_peer(p: Problem) -> Optional[Callable[[], Any]]:
    def loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        y = y.astype(x.dtype, copy=False)
        sp = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)
        if p.pos_weight is None:
            return (1 - y) * x + sp
        return (1 - y) * x + (1 + (p.pos_weight - 1) * y) * sp

    if p.case in ("mean", "uint8", "pos_weight"):
        return lambda: (np.mean(loss(p.x, p.y), dtype=np.float64), None)
    if p.case.startswith("none"):
        return lambda: (loss(p.x, p.y), None)
    if p.case.startswith("vg"):

        def vg() -> Any:
            e = np.exp(-np.abs(p.x))
            sig = np.where(p.x >= 0, 1 / (1 + e), e / (1 + e))
            value = np.mean((1 - p.y) * p.x + np.log1p(e) + np.maximum(-p.x, 0), dtype=np.float64)
            return value, (sig - p.y) / p.x.size

        return vg
    return None


def torch_peer(threads: int) -> Optional[Callable[[Problem], Optional[Callable[[], Any]]]]:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)

    def make(p: Problem) -> Optional[Callable[[], Any]]:
        x, y = torch.from_numpy(p.x), torch.from_numpy(p.y)
        if p.case == "uint8":
            return lambda: (F.binary_cross_entropy_with_logits(x, y.to(x.dtype)).item(), None)
        pw = None if p.pos_weight is None else torch.from_numpy(p.pos_weight)
        if p.case in ("mean", "pos_weight"):
            return lambda: (F.binary_cross_entropy_with_logits(x, y, pos_weight=pw).item(), None)
        if p.case == "none_new":
            return lambda: (F.binary_cross_entropy_with_logits(x, y, reduction="none"), None)
        if p.case.startswith("vg"):

            def vg() -> Any:
                xr = x.detach().requires_grad_(True)
                loss = F.binary_cross_entropy_with_logits(xr, y)
                loss.backward()
                return loss.item(), xr.grad

            return vg
        return None

    return make


def jax_peer() -> Optional[Callable[[Problem], Optional[Callable[[], Any]]]]:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def elements(x: Any, y: Any, pw: Any) -> Any:
        sp = jax.nn.softplus(-x)
        return (1 - y) * x + (1 + (pw - 1) * y) * sp

    mean = jax.jit(lambda x, y, pw: jnp.mean(elements(x, y.astype(x.dtype), pw), dtype=jnp.float64))
    none = jax.jit(lambda x, y: elements(x, y, 1.0))
    vg = jax.jit(jax.value_and_grad(lambda x, y: jnp.mean(elements(x, y, 1.0))))

    def make(p: Problem) -> Optional[Callable[[], Any]]:
        x, y = jnp.asarray(p.x), jnp.asarray(p.y)
        pw = jnp.asarray(1.0 if p.pos_weight is None else p.pos_weight, dtype=p.x.dtype)
        if p.case in ("mean", "uint8", "pos_weight"):
            return lambda: (mean(x, y, pw).block_until_ready(), None)
        if p.case == "none_new":
            return lambda: (none(x, y).block_until_ready(), None)
        if p.case == "vg_new":

            def run() -> Any:
                value, grad = vg(x, y)
                return value.block_until_ready(), grad.block_until_ready()

            return run
        return None

    return make


def numba_peer(threads: int) -> Optional[Callable[[Problem], Optional[Callable[[], Any]]]]:
    try:
        import numba
    except ImportError:
        return None
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))

    @numba.njit(parallel=True, cache=False)
    def mean(x: Any, y: Any) -> float:
        total = 0.0
        for i in numba.prange(x.size):
            xi = x[i]
            total += (1 - y[i]) * xi + np.log1p(np.exp(-abs(xi))) + max(-xi, 0)
        return total / x.size

    def make(p: Problem) -> Optional[Callable[[], Any]]:
        if p.case in ("mean", "uint8"):
            return lambda: (mean(p.x, p.y), None)
        return None

    return make


def c_peer(threads: int) -> Optional[Callable[[Problem], Optional[Callable[[], Any]]]]:
    if shutil.which("gcc") is None:
        return None
    build = Path(tempfile.mkdtemp(prefix="fastbce-bench-")) / "roofline.so"
    cmd = [
        "gcc",
        "-O3",
        "-march=native",
        "-ffast-math",
        "-fopenmp",
        "-mprefer-vector-width=512",
        "-fPIC",
        "-shared",
        "-o",
        str(build),
        str(HERE / "roofline.c"),
        "-lmvec",
        "-lm",
    ]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        return None
    lib = ctypes.CDLL(str(build))
    ptr, long, cint = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    for suffix in ("f32", "f64", "f32_u8", "f64_u8"):
        for name, argtypes, restype in [
            ("mean", [ptr, ptr, long, cint], ctypes.c_double),
            ("none", [ptr, ptr, ptr, long, cint], None),
            ("value_and_grad", [ptr, ptr, ptr, long, cint], ctypes.c_double),
            ("pos_weight", [ptr, ptr, ptr, long, long, cint], ctypes.c_double),
        ]:
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes, fn.restype = argtypes, restype

    def make(p: Problem) -> Optional[Callable[[], Any]]:
        suffix = ("f32" if p.dtype == np.float32 else "f64") + ("_u8" if p.case == "uint8" else "")
        x, y, out, n = p.x.ctypes.data, p.y.ctypes.data, p.out.ctypes.data, p.x.size
        if p.case in ("mean", "uint8"):
            return lambda: (getattr(lib, f"mean_{suffix}")(x, y, n, threads), None)
        if p.case == "none_out":

            def none() -> Any:
                getattr(lib, f"none_{suffix}")(x, y, out, n, threads)
                return p.out, None

            return none
        if p.case == "vg_out":
            return lambda: (getattr(lib, f"value_and_grad_{suffix}")(x, y, out, n, threads), p.out)
        if p.case == "pos_weight":
            assert p.pos_weight is not None
            pw, rows = p.pos_weight.ctypes.data, p.x.shape[0]
            return lambda: (getattr(lib, f"pos_weight_{suffix}")(x, y, pw, rows, 100, threads), None)
        return None

    return make


# ----------------------------------------------------------------- measuring


def correct(p: Problem, result: Any) -> bool:
    """The peer's loss (and gradient) match the float64 reference to the
    working precision of the dtype, relative to the values' typical size
    (elementwise losses of ~1e-9 where the usual formula cancels in float32
    are not held against a peer)."""
    loss, grad = result
    rtol = 2e-5 if p.dtype == np.float32 else 1e-9
    loss = np.asarray(loss, dtype=np.float64)
    scale = float(np.mean(np.abs(p.want_loss)))
    if not np.allclose(loss, p.want_loss, rtol=rtol, atol=rtol * scale):
        return False
    if p.want_grad is not None:
        grad = np.asarray(grad, dtype=np.float64)
        scale = 1.0 / p.x.size
        return bool(np.allclose(grad, p.want_grad, rtol=rtol, atol=rtol * scale))
    return True


def median_times(fns: Dict[str, Callable[[], Any]], repeats: int, budget: float = 0.05) -> Dict[str, float]:
    """Per function, the median over `repeats` of the mean time of enough
    back-to-back calls to last `budget` s. The functions take turns, repeat
    by repeat, so that the machine's slow spells fall on all of them alike
    and their ratios stay fair; an untimed call starts each turn, so that
    none is timed while the caches still hold the previous one's data."""
    inner = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        fn()
        inner[name] = max(1, int(budget / max(time.perf_counter() - start, 1e-7)))
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()
            start = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            times[name].append((time.perf_counter() - start) / inner[name])
    return {name: statistics.median(t) for name, t in times.items()}


def fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def show_config_text() -> str:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        fb.show_config()
    return buf.getvalue()


def peak_memory_of_mean(n: int) -> None:
    """Peak RSS growth of a float32 mean on `n` elements, beyond its inputs."""
    # VmHWM is this process's own peak RSS (getrusage's maxrss can carry the
    # parent's across exec).
    code = f"""
import numpy as np, fastbce as fb
def peak_kib():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
x = np.full({n}, -1.5, np.float32); y = np.full({n}, 0.5, np.float32)  # both resident
fb.binary_cross_entropy_with_logits(x[:10**6], y[:10**6])  # starts the thread pool
before = peak_kib()
fb.binary_cross_entropy_with_logits(x, y)
print(before, peak_kib())
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = (int(v) for v in done.stdout.split())
    inputs = 2 * 4 * n / 1024
    print(
        f"peak RSS: inputs {inputs / 1024:.0f} MiB; before the call {before / 1024:.1f} MiB, "
        f"after {after / 1024:.1f} MiB: the call added {(after - before) / 1024:.3f} MiB"
    )


def markdown(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def small_calls(repeats: int) -> str:
    """The cost of calls on 100 elements, against a one-element np.add."""
    one = np.ones(1, np.float32)
    rng = np.random.default_rng(0)
    calls: List[tuple] = []
    for dtype in (np.float32, np.float64):
        x = rng.normal(0.0, 3.0, 100).astype(dtype)
        y = (rng.random(100) < 0.3).astype(dtype)
        out = np.empty_like(x)
        calls += [
            ("mean", dtype, lambda x=x, y=y: fb.binary_cross_entropy_with_logits(x, y)),
            ("sum", dtype, lambda x=x, y=y: fb.binary_cross_entropy_with_logits(x, y, reduction="sum")),
            (
                "none, out=",
                dtype,
                lambda x=x, y=y, o=out: fb.binary_cross_entropy_with_logits(x, y, reduction="none", out=o),
            ),
            ("none", dtype, lambda x=x, y=y: fb.binary_cross_entropy_with_logits(x, y, reduction="none")),
            ("grad, out=", dtype, lambda x=x, y=y, o=out: fb.binary_cross_entropy_with_logits_grad(x, y, out=o)),
            ("value and grad", dtype, lambda x=x, y=y: fb.binary_cross_entropy_with_logits_value_and_grad(x, y)),
        ]
    try:
        import torch
        import torch.nn.functional as F

        # One thread: with OMP_WAIT_POLICY=PASSIVE (set above), PyTorch's
        # OpenMP pool would cost it tens of microseconds per small call.
        torch.set_num_threads(1)
        tx, ty = (torch.from_numpy(a.astype(np.float32)) for a in (x, y))
        calls.append(("torch mean, 1 thread", np.float32, lambda: F.binary_cross_entropy_with_logits(tx, ty)))
    except ImportError:
        pass
    fns = {"np.add": lambda: np.add(one, one)}
    fns.update((f"{label}/{i}", fn) for i, (label, _, fn) in enumerate(calls))
    times = median_times(fns, repeats)
    base = times["np.add"]
    rows = [["np.add", "float32", "1", fmt_time(base), "1.00"]]
    for i, (label, dtype, _) in enumerate(calls):
        t = times[f"{label}/{i}"]
        rows.append([label, np.dtype(dtype).name, "100", fmt_time(t), f"{t / base:.2f}"])
    return markdown(["call", "dtype", "N", "time", "× np.add"], rows)


def scaling(repeats: int, dtypes: List[Any], threads: int) -> str:
    """1 against `threads` threads over sizes around the parallel threshold,
    calls back to back (how `PARALLEL_MIN_LEN_*` were chosen)."""
    rows = []
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for n in [2**k for k in range(13, 21)] + [10**6, 10**7]:
            x = rng.normal(0.0, 3.0, n).astype(dtype)
            y = (rng.random(n) < 0.3).astype(dtype)
            out = np.empty_like(x)
            for label, fn in (
                ("mean", lambda x=x, y=y: fb.binary_cross_entropy_with_logits(x, y)),
                (
                    "value and grad",
                    lambda x=x, y=y, o=out: fb.binary_cross_entropy_with_logits_value_and_grad(x, y, out=o),
                ),
            ):

                def on(k: int, fn: Callable[[], Any] = fn) -> Callable[[], Any]:
                    def run() -> Any:
                        with fb.num_threads(k):
                            return fn()

                    return run

                measured = median_times({"one": on(1), "many": on(threads)}, repeats)
                times = {1: measured["one"], threads: measured["many"]}
                speedup = times[1] / times[threads]
                rows.append(
                    [
                        label,
                        np.dtype(dtype).name,
                        str(n),
                        fmt_time(times[1]),
                        fmt_time(times[threads]),
                        f"{speedup:.2f}",
                    ]
                )
                print(" | ".join(rows[-1]), flush=True)
    return markdown(["call", "dtype", "N", "1 thread", f"{threads} threads", "speedup"], rows)


def operand_costs(repeats: int, dtypes: List[Any], sizes: List[int], threads: int) -> str:
    """The mean with a per-class pos_weight and with uint8 targets against the
    plain mean of the same size, the three taking turns."""
    rows = []
    make = fastbce_peer(threads)
    for dtype in dtypes:
        for n in sizes:
            fns = {}
            for case in ("mean", "pos_weight", "uint8"):
                p = make_problem(case, dtype, n)
                fn = make(p)
                assert fn is not None and correct(p, fn()), case
                fns[case] = fn
            times = median_times(fns, repeats)
            for case, t in times.items():
                rows.append([case, np.dtype(dtype).name, f"{n:.0e}", fmt_time(t), f"{t / times['mean']:.3f}"])
                print(" | ".join(rows[-1]), flush=True)
    return markdown(["call", "dtype", "N", "time", "× plain mean"], rows)


ALTERNATING_SIZES = [4 * fb.CHUNK_ELEMENTS, 5 * fb.CHUNK_ELEMENTS, 40_000, 100_000, 300_000]


def alternating(repeats: int, thread_counts: List[int]) -> str:
    """float32 means whose sizes change call by call (each asks a different
    number of helpers), against the same calls one size at a time: with one
    pool per thread setting the two cost the same."""
    rows = []
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 3.0, max(ALTERNATING_SIZES)).astype(np.float32)
    y = (rng.random(x.size) < 0.3).astype(np.float32)
    rounds = 20
    calls = [(x[:n], y[:n]) for n in ALTERNATING_SIZES]

    def changing() -> None:
        for _ in range(rounds):
            for a, b in calls:
                fb.binary_cross_entropy_with_logits(a, b)

    def grouped() -> None:
        for a, b in calls:
            for _ in range(rounds):
                fb.binary_cross_entropy_with_logits(a, b)

    for threads in thread_counts:
        with fb.num_threads(threads):
            built = fb.show_config("dicts")["threads"]["pools_built"]  # type: ignore[index]
            times = median_times({"changing": changing, "grouped": grouped}, repeats)
            rebuilt = fb.show_config("dicts")["threads"]["pools_built"] - built  # type: ignore[index]
        per_call = {k: t / (rounds * len(calls)) for k, t in times.items()}
        rows.append(
            [
                str(threads),
                fmt_time(per_call["changing"]),
                fmt_time(per_call["grouped"]),
                f"{times['changing'] / times['grouped']:.3f}",
                str(rebuilt),
            ]
        )
        print(" | ".join(rows[-1]), flush=True)
    sizes = ", ".join(f"{n:,}" for n in ALTERNATING_SIZES)
    header = ["threads", "sizes changing", "one size at a time", "ratio", "pools built"]
    return f"float32 mean, sizes {sizes}, per call\n\n" + markdown(header, rows)


def check_costs(repeats: int, dtypes: List[Any], sizes: List[int], threads: int) -> str:
    """binary_cross_entropy writing into the caller's out= checks every
    element before it writes anything. Its time against the same call into
    a new array, which checks as it goes (for out= that would leave part of
    it written when an element is bad; the new array comes from the output
    cache, so its allocation costs little), and against the other safe
    design, computing into a new array and copying that into out=."""
    rows = []
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        for n in sizes:
            p = rng.uniform(0.01, 0.99, n).astype(dtype)
            t = (rng.random(n) < 0.3).astype(dtype)
            for grad in (False, True):
                fns = _check_designs(p, t, grad)
                with fb.num_threads(threads):
                    times = median_times(fns, repeats)
                base = times["checked along"]
                cells = [f"{fmt_time(times[k])} ({times[k] / base:.2f})" for k in fns]
                rows.append(["gradient" if grad else "loss, none", np.dtype(dtype).name, f"{n:.0e}", *cells])
                print(" | ".join(rows[-1]), flush=True)
    designs = (f"{k} (× checked along)" for k in ("checked first", "checked along", "new, copied"))
    return markdown(["call", "dtype", "N", *designs], rows)


def _check_designs(p: np.ndarray, t: np.ndarray, grad: bool) -> Dict[str, Callable[[], Any]]:
    out = np.empty_like(p)
    public = fb.binary_cross_entropy_grad if grad else fb.binary_cross_entropy
    return {
        "checked first": lambda: public(p, t, reduction="none", out=out),
        "checked along": lambda: public(p, t, reduction="none"),
        "new, copied": lambda: np.copyto(out, public(p, t, reduction="none")),
    }


def _numpy_focal_value_and_grad(x: np.ndarray, y: np.ndarray, alpha: float, gamma: float) -> Any:
    """The focal loss's mean and gradient as NumPy writes them (torchvision's
    formula, its gradient by hand): what fastbce replaces."""
    p = 1 / (1 + np.exp(-x))
    ce = np.logaddexp(0, x) - x * y
    m = p * (1 - y) + (1 - p) * y
    alpha_t = alpha * y + (1 - alpha) * (1 - y)
    loss = alpha_t * m**gamma * ce
    s = p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = alpha_t * m**gamma * ((p - y) + gamma * (1 - 2 * y) * s / m * ce)
    return loss.mean(), grad / x.size


def _torchvision_focal(threads: int) -> Optional[Callable[[np.ndarray, np.ndarray], Callable[[], Any]]]:
    """torchvision's sigmoid_focal_loss, forward and backward of the mean."""
    try:
        import torch
        from torchvision.ops import sigmoid_focal_loss
    except ImportError:
        return None
    torch.set_num_threads(threads)

    def make(x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def run() -> Any:
            xg = tx.detach().requires_grad_(True)
            loss = sigmoid_focal_loss(xg, ty, alpha=0.25, gamma=2.0, reduction="mean")
            loss.backward()
            return loss, xg.grad

        return run

    return make


def _extension_calls(x: np.ndarray, y: np.ndarray, soft: np.ndarray) -> Dict[str, Callable[[], Any]]:
    g, h = np.empty_like(x), np.empty_like(x)
    return {
        "focal, soft targets": lambda: fb.sigmoid_focal_loss_value_and_grad(x, soft, reduction="mean", out=g),
        "value_and_grad": lambda: fb.binary_cross_entropy_with_logits_value_and_grad(x, y, out=g),
        "grad_and_hess": lambda: fb.binary_cross_entropy_with_logits_grad_and_hess(x, y, out=(g, h)),
        "focal value_and_grad": lambda: fb.sigmoid_focal_loss_value_and_grad(x, y, reduction="mean", out=g),
        "numpy focal": lambda: _numpy_focal_value_and_grad(x, y, 0.25, 2.0),
    }


def extensions(repeats: int, dtypes: List[Any], sizes: List[int], threads: int) -> str:
    """The second derivatives and the focal loss against the loss and
    gradient they extend, all into out=: grad_and_hess against
    value_and_grad, the focal value_and_grad (hard targets, 30% positive;
    and soft ones) against the plain one, and against NumPy's and (when
    installed) torchvision's focal loss."""
    rows = []
    rng = np.random.default_rng(0)
    torchvision = _torchvision_focal(threads)
    for dtype in dtypes:
        for n in sizes:
            x = (rng.standard_normal(n) * 3).astype(dtype)
            y = (rng.random(n) < 0.3).astype(dtype)
            soft = rng.random(n).astype(dtype)
            fns = _extension_calls(x, y, soft)
            if torchvision is not None:
                fns["torchvision focal"] = torchvision(x, y)
            with fb.num_threads(threads):
                times = median_times(fns, repeats)
            plain, focal = times["value_and_grad"], times["focal value_and_grad"]
            cells = [
                fmt_time(plain),
                f"{fmt_time(times['grad_and_hess'])} ({times['grad_and_hess'] / plain:.2f})",
                f"{fmt_time(focal)} ({focal / plain:.2f})",
                f"{fmt_time(times['focal, soft targets'])} ({times['focal, soft targets'] / plain:.2f})",
                f"{fmt_time(times['numpy focal'])} ({times['numpy focal'] / focal:.1f}×)",
                f"{fmt_time(times['torchvision focal'])} ({times['torchvision focal'] / focal:.1f}×)"
                if "torchvision focal" in times
                else "–",
            ]
            rows.append([np.dtype(dtype).name, f"{n:.0e}", *cells])
            print(" | ".join(rows[-1]), flush=True)
    header = [
        "dtype",
        "N",
        "value_and_grad",
        "grad_and_hess (÷ value_and_grad)",
        "focal value_and_grad (÷ value_and_grad)",
        "focal, soft targets (÷ value_and_grad)",
        "NumPy focal (× focal)",
        "torchvision focal fwd+bwd (× focal)",
    ]
    return markdown(header, rows)


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e3,1e5,1e6,1e7", help="comma-separated element counts")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--cases", default=",".join(CASES), help=f"any of {', '.join(CASES)}")
    ap.add_argument("--threads", type=int, default=fb.get_num_threads(), help="threads for every peer")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"any of {', '.join(PEERS)}")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    ap.add_argument("--plot", type=Path, help="write a PNG of throughput against N (needs matplotlib)")
    ap.add_argument("--memory", action="store_true", help="measure the peak memory of a 1e8 float32 mean")
    ap.add_argument("--small", action="store_true", help="time calls on 100 elements against np.add")
    ap.add_argument("--scaling", action="store_true", help="time 1 against --threads threads around the threshold")
    ap.add_argument(
        "--operands", action="store_true", help="time pos_weight and uint8 targets against the plain mean (--sizes)"
    )
    ap.add_argument(
        "--alternating",
        action="store_true",
        help="time calls of changing sizes against one size at a time (--threads, and 4x the CPUs)",
    )
    ap.add_argument(
        "--checks", action="store_true", help="time out= on probabilities: checked first, checked along (--sizes)"
    )
    ap.add_argument(
        "--extensions", action="store_true", help="time grad_and_hess and the focal loss against value_and_grad"
    )
    args = ap.parse_args(argv)
    if args.scaling and args.threads < 2:
        ap.error(f"--scaling compares 1 thread with --threads, which must be 2 or more (got {args.threads})")

    print(show_config_text())
    if args.memory:
        peak_memory_of_mean(10**8)
        return
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    dtypes = [np.dtype(d).type for d in args.dtypes.split(",")]
    if args.small or args.scaling or args.operands or args.alternating or args.checks or args.extensions:
        if args.small:
            text = small_calls(args.repeats)
        elif args.scaling:
            text = scaling(args.repeats, dtypes, args.threads)
        elif args.alternating:
            text = alternating(args.repeats, sorted({args.threads, 4 * (os.cpu_count() or 1)}))
        elif args.checks:
            text = check_costs(args.repeats, dtypes, sizes, args.threads)
        elif args.extensions:
            text = extensions(args.repeats, dtypes, sizes, args.threads)
        else:
            text = operand_costs(args.repeats, dtypes, sizes, args.threads)
        print("\n" + text)
        if args.markdown:
            args.markdown.write_text(text + "\n")
        return
    cases = args.cases.split(",")
    wanted = args.peers.split(",")
    makers: Dict[str, Callable[[Problem], Optional[Callable[[], Any]]]] = {}
    for name, factory in [
        ("fastbce", lambda: fastbce_peer(args.threads)),
        ("fastbce-1t", lambda: fastbce_peer(1)),
        ("numpy", lambda: numpy_peer),
        ("torch", lambda: torch_peer(args.threads)),
        ("jax", jax_peer),
        ("numba", lambda: numba_peer(args.threads)),
        ("c", lambda: c_peer(args.threads)),
    ]:
        if name in wanted:
            maker = factory()
            if maker is not None:
                makers[name] = maker
    peers = list(makers)
    print(f"peers: {', '.join(peers)}; threads: {args.threads}; {platform.processor() or platform.machine()}")
    print("cell: median time (fastbce's speedup over that peer); 'wrong' = failed the float64 check\n")

    header = ["case", "dtype", "N", *peers, "fastbce Gelem/s"]
    rows = []
    results: Dict[tuple, Dict[str, float]] = {}
    for case in cases:
        for dtype in dtypes:
            for n in sizes:
                p = make_problem(case, dtype, n)
                cells: Dict[str, str] = {}
                timed: Dict[str, Callable[[], Any]] = {}
                for name in peers:
                    fn = makers[name](p)
                    if fn is None:
                        cells[name] = "–"
                        continue
                    try:
                        ok = correct(p, fn())
                    except Exception as exc:  # a peer that fails is reported, not fatal
                        cells[name] = f"error: {type(exc).__name__}"
                        continue
                    if not ok:
                        cells[name] = "wrong"
                        continue
                    timed[name] = fn
                times = median_times(timed, args.repeats)
                ours = times.get("fastbce")
                for name, t in times.items():
                    ratio = f" ({t / ours:.2f}×)" if ours and name != "fastbce" else ""
                    cells[name] = fmt_time(t) + ratio
                rate = f"{n / ours / 1e9:.2f}" if ours else "–"
                row = [case, np.dtype(dtype).name, f"{n:.0e}", *[cells[name] for name in peers], rate]
                rows.append(row)
                results[(case, np.dtype(dtype).name, n)] = times
                print(" | ".join(row), flush=True)

    table = markdown(header, rows)
    print("\n" + table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    if args.plot:
        plot(results, args.plot)


def plot(results: Dict[tuple, Dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: Dict[tuple, List[tuple]] = {}
    for (case, dtype, n), times in results.items():
        for peer, t in times.items():
            series.setdefault((case, dtype, peer), []).append((n, n / t / 1e9))
    keys = sorted({(c, d) for c, d, _ in series})
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 3.2 * len(keys)), squeeze=False)
    for ax, (case, dtype) in zip(axes[:, 0], keys, strict=True):
        for (c, d, peer), points in sorted(series.items()):
            if (c, d) == (case, dtype):
                ns, rates = zip(*sorted(points), strict=True)
                ax.loglog(ns, rates, marker="o", label=peer)
        ax.set_title(f"{case}, {dtype}")
        ax.set_xlabel("N")
        ax.set_ylabel("Gelem/s")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
