"""Makes tests/data/golden.npz and golden.json: the golden cases.

The expected values come from an accurate float64 evaluation of the
formulas of docs/design.md (stable softplus and sigmoid on both sides,
exact summation with math.fsum) on the case's inputs upcast to float64, so
that a float32 implementation is judged against the true value, not against
any library's float32 rounding. Every case's elements (up to 400 of them) are
checked against mpmath at 50 digits, and the script stops if any differs by
more than 1e-13 relative (a gradient: of its larger term). The notes record where PyTorch's float64 autograd
differs (measured when the data were first made): it
cancels for very negative logits with target 0, and in the gradient for
very positive logits with target 1, and gives NaN for infinite logits whose
limit exists (docs/design.md, "What differs from PyTorch").

    python tools/make_golden.py                 # rewrites tests/data/golden.*
    python tools/make_golden.py --out /tmp/g    # elsewhere (tests/test_golden.py
                                                # checks that this reproduces them)

The second derivatives, label smoothing and the focal loss have their own
cases (golden_extensions.*), elementwise, whose expected values are mpmath's
own (tests/reference.py's exact functions, at 60 digits), with the scale of
each value's largest term for the quantities that are differences.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
sys.path.insert(0, str(DATA.parent))
from reference import exact_focal, exact_logits_smoothed, exact_probabilities_hess  # noqa: E402


def _softplus(z):
    with np.errstate(over="ignore"):
        return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(z):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _times(coef, value):
    """coef * value, where a zero coefficient gives zero even for inf."""
    with np.errstate(invalid="ignore"):
        return np.where(coef == 0, 0.0, coef * value)


def _reduce(elems, reduction):
    if reduction == "none":
        return elems
    total = math.fsum(elems.ravel().tolist())
    if reduction == "sum":
        return np.float64(total)
    return np.float64(total / elems.size) if elems.size else np.float64(np.nan)


def reference(fn, x, y, weight, pos_weight, reduction, grad_output):
    """Loss and d(loss)/d(input) in float64 by the formulas of docs/design.md."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.ones_like(x) if weight is None else np.broadcast_to(np.asarray(weight, np.float64), x.shape)
    if fn == "bce_with_logits":
        p = 1.0 if pos_weight is None else np.broadcast_to(np.asarray(pos_weight, np.float64), x.shape)
        a, b = 1.0 - y, p * y
        elems = w * (_times(a, _softplus(x)) + _times(b, _softplus(-x)))
        dx = w * (_times(a, _sigmoid(x)) - _times(b, _sigmoid(-x)))
    else:
        with np.errstate(divide="ignore"):
            logp = np.maximum(np.log(x), -100.0)
            log1mp = np.maximum(np.log1p(-x), -100.0)
        elems = -w * (y * logp + (1.0 - y) * log1mp)
        dx = w * (x - y) / np.maximum(x * (1.0 - x), 1e-12)
    go = np.asarray(grad_output, np.float64)
    loss = _reduce(elems, reduction)
    scaled = dx / x.size if reduction == "mean" else dx
    return loss, scaled * go, elems, dx


def mpmath_reference(fn, x, y, weight, pos_weight):
    """Loss and gradient elements with 50 significant digits (mpmath), from
    the textbook formulas (log of the sigmoid; no stable rewriting needed),
    and per gradient element the size of its terms: a difference of two
    terms is accurate relative to the larger one."""
    import mpmath as mp

    mp.mp.dps = 50
    shape = np.shape(x)
    w = np.broadcast_to(1.0 if weight is None else np.asarray(weight, np.float64), shape)
    pw = np.broadcast_to(1.0 if pos_weight is None else np.asarray(pos_weight, np.float64), shape)
    loss, grad, size = [], [], []
    for xi, yi, wi, pi in zip(*(np.asarray(a, np.float64).ravel().tolist() for a in (x, y, w, pw)), strict=True):
        X, Y, W = mp.mpf(xi), mp.mpf(yi), mp.mpf(wi)
        if fn == "bce_with_logits":
            s, t = 1 / (1 + mp.exp(-X)), 1 / (1 + mp.exp(X))  # sigmoid(x), sigmoid(-x)
            a, b = 1 - Y, mp.mpf(pi) * Y
            loss.append(W * (a * mp.log1p(mp.exp(X)) + b * mp.log1p(mp.exp(-X))))
            grad.append(W * (a * s - b * t))
            size.append(abs(W) * (abs(a * s) + abs(b * t)))
        else:
            logp = max(mp.log(X), -100) if X > 0 else mp.mpf(-100)
            log1mp = max(mp.log1p(-X), -100) if X < 1 else mp.mpf(-100)
            loss.append(-W * (Y * logp + (1 - Y) * log1mp))
            grad.append(W * (X - Y) / max(X * (1 - X), mp.mpf(1e-12)))
            size.append(abs(W) * (abs(X) + abs(Y)) / max(X * (1 - X), mp.mpf(1e-12)))
    return loss, grad, size


#: Elements per case checked against mpmath (all of them in smaller cases).
CHECKED = 400


def check_against_mpmath(fn, x, y, weight, pos_weight, elems, dx):
    """Stops if a float64 element differs from mpmath's by more than 1e-13
    relative (for the gradient: of its larger term): the reference itself
    must be accurate."""
    x = np.asarray(x, np.float64)
    finite = np.isfinite(x).ravel()
    index = np.flatnonzero(finite)[:: max(1, finite.sum() // CHECKED)]
    if not index.size:
        return
    pick = lambda a: None if a is None else np.broadcast_to(np.asarray(a, np.float64), x.shape).ravel()[index]  # noqa: E731
    want_loss, want_grad, size = mpmath_reference(fn, pick(x), pick(y), pick(weight), pick(pos_weight))
    checks = ((np.ravel(elems)[index], want_loss, want_loss), (np.ravel(dx)[index], want_grad, size))
    for got, want, scale in checks:
        for g, m, e in zip(got.tolist(), want, scale, strict=True):
            if abs(g - float(m)) > 1e-13 * abs(float(e)) + 1e-300:
                raise SystemExit(f"the float64 reference is off: {g!r} against mpmath's {float(m)!r}")


class Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []

    def logits(self, shape, dtype, scale=3.0):
        return (self.rng.standard_normal(shape) * scale).astype(dtype)

    def probs(self, shape, dtype):
        p = self.rng.uniform(0.0, 1.0, shape)
        return p.astype(dtype)

    def targets(self, shape, kind):
        if kind == "soft":
            return self.rng.uniform(0.0, 1.0, shape)
        hard = self.rng.integers(0, 2, shape)
        return {
            "hard": hard.astype(np.float64),
            "bool": hard.astype(bool),
            "uint8": hard.astype(np.uint8),
            "int64": hard.astype(np.int64),
            "float32": hard.astype(np.float32),
        }[kind]

    def add(
        self,
        name,
        fn,
        x,
        y,
        *,
        weight=None,
        pos_weight=None,
        reduction="mean",
        grad_output=None,
        expected=None,
        expected_grad=None,
        note="",
    ):
        assert name not in {c["name"] for c in self.cases}, name
        x = np.asarray(x)
        if grad_output is None:
            grad_output = np.float64(1.0) if reduction != "none" else self.rng.standard_normal(x.shape)
        ref_loss, ref_grad, elems, dx = reference(fn, x, y, weight, pos_weight, reduction, grad_output)
        check_against_mpmath(fn, x, y, weight, pos_weight, elems, dx)
        if expected is not None:
            ref_loss = np.asarray(expected, dtype=np.float64)
        if expected_grad is not None:
            ref_grad = np.asarray(expected_grad, dtype=np.float64)
        arrays = {
            "input": x,
            "target": np.asarray(y),
            "grad_output": np.asarray(grad_output),
            "expected": np.asarray(ref_loss),
            "expected_grad": ref_grad,
        }
        if weight is not None:
            arrays["weight"] = np.asarray(weight)
        if pos_weight is not None:
            arrays["pos_weight"] = np.asarray(pos_weight)
        for key, arr in arrays.items():
            self.arrays[f"{name}/{key}"] = arr
        self.cases.append(
            {
                "name": name,
                "fn": fn,
                "reduction": reduction,
                "input_dtype": str(x.dtype),
                "target_dtype": str(np.asarray(y).dtype),
                "shape": list(x.shape),
                "has_weight": weight is not None,
                "has_pos_weight": pos_weight is not None,
                "note": note,
            }
        )

    def save(self, out_dir: Path, stem: str):
        np.savez_compressed(out_dir / f"{stem}.npz", **self.arrays)
        (out_dir / f"{stem}.json").write_text(
            json.dumps(
                {"how": "made by tools/make_golden.py; expected values are float64", "cases": self.cases}, indent=1
            )
            + "\n"
        )


SEED_X = [[-0.4089, -1.2471, 0.5907], [-0.4897, -0.8267, -0.7349], [0.5241, -0.1246, -0.4751]]
SEED_Y = [[0, 1, 1], [0, 0, 1], [1, 0, 1]]


def public_cases(b: Builder):
    # The two worked examples that motivate the project.
    x = np.array(SEED_X, np.float32)
    y = np.array(SEED_Y, np.float32)
    b.add("worked_example_logits", "bce_with_logits", x, y, note="the 3x3 example: mean loss 0.7193")
    sig = (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    b.add("worked_example_sigmoid_bce", "bce", sig, y, note="BCE on sigmoid of the 3x3 example: 0.7193")
    x2 = np.array([[-0.6117, 0.1446, 0.0415], [-1.5376, -0.2599, -0.9680]], np.float32)
    y2 = np.array([[0, 1, 0], [0, 1, 1]], np.float32)
    b.add("worked_example_2x3", "bce_with_logits", x2, y2, note="the 2x3 multi-label example: mean loss 0.6812")

    # Reductions x dtypes x target kinds over a few shapes.
    for dtype in (np.float32, np.float64):
        dn = np.dtype(dtype).name
        for shape in [(7,), (64, 10), (3, 4, 5)]:
            sn = "x".join(map(str, shape))
            for red in ("mean", "sum", "none"):
                for tk in ("hard", "soft"):
                    b.add(
                        f"logits_{dn}_{sn}_{red}_{tk}",
                        "bce_with_logits",
                        b.logits(shape, dtype),
                        b.targets(shape, tk).astype(dtype),
                        reduction=red,
                    )
                    p = b.probs(shape, dtype)
                    b.add(f"probs_{dn}_{sn}_{red}_{tk}", "bce", p, b.targets(shape, tk).astype(dtype), reduction=red)

    # Integer and boolean targets (PyTorch needs float targets; the expected
    # values are computed from the same labels as float64).
    for tk in ("bool", "uint8", "int64"):
        shape = (32, 5)
        b.add(
            f"logits_target_{tk}",
            "bce_with_logits",
            b.logits(shape, np.float32),
            b.targets(shape, tk),
            reduction="none",
        )
        b.add(f"probs_target_{tk}", "bce", b.probs(shape, np.float32), b.targets(shape, tk), reduction="mean")

    # float16 predictions: computed in float32 or wider, result in float16.
    b.add(
        "logits_float16_none",
        "bce_with_logits",
        b.logits((50,), np.float16),
        b.targets((50,), "soft").astype(np.float16),
        reduction="none",
    )
    b.add(
        "logits_float16_mean",
        "bce_with_logits",
        b.logits((50,), np.float16),
        b.targets((50,), "hard").astype(np.float16),
    )

    # weight and pos_weight broadcasting over an (N, C) batch.
    n, c = 16, 6
    for red in ("mean", "sum", "none"):
        x = b.logits((n, c), np.float32)
        y = b.targets((n, c), "hard").astype(np.float32)
        b.add(
            f"weight_full_{red}",
            "bce_with_logits",
            x,
            y,
            weight=b.rng.uniform(0, 2, (n, c)).astype(np.float32),
            reduction=red,
        )
        b.add(
            f"weight_per_class_{red}",
            "bce_with_logits",
            x,
            y,
            weight=b.rng.uniform(0, 2, (c,)).astype(np.float32),
            reduction=red,
        )
        b.add(
            f"weight_per_sample_{red}",
            "bce_with_logits",
            x,
            y,
            weight=b.rng.uniform(0, 2, (n, 1)).astype(np.float32),
            reduction=red,
        )
        b.add(
            f"pos_weight_per_class_{red}",
            "bce_with_logits",
            x,
            y,
            pos_weight=b.rng.uniform(0.5, 5, (c,)).astype(np.float32),
            reduction=red,
        )
        b.add(
            f"pos_weight_and_weight_{red}",
            "bce_with_logits",
            x,
            y,
            weight=b.rng.uniform(0, 2, (1, c)).astype(np.float32),
            pos_weight=b.rng.uniform(0.5, 5, (c,)).astype(np.float32),
            reduction=red,
        )
        b.add(
            f"probs_weight_per_class_{red}",
            "bce",
            b.probs((n, c), np.float32),
            y,
            weight=b.rng.uniform(0, 2, (c,)).astype(np.float32),
            reduction=red,
        )
    b.add(
        "pos_weight_scalar",
        "bce_with_logits",
        b.logits((n, c), np.float64),
        b.targets((n, c), "soft"),
        pos_weight=np.float64(3.0),
        reduction="sum",
    )
    b.add(
        "pos_weight_soft_targets",
        "bce_with_logits",
        b.logits((n, c), np.float64),
        b.targets((n, c), "soft"),
        pos_weight=b.rng.uniform(0.5, 5, (c,)),
        reduction="none",
    )
    b.add(
        "grad_output_scaled_mean",
        "bce_with_logits",
        b.logits((n, c), np.float64),
        b.targets((n, c), "hard"),
        reduction="mean",
        grad_output=np.float64(0.25),
    )

    # Large enough to take any parallel path.
    big = 65_537
    b.add(
        "large_float32_mean",
        "bce_with_logits",
        b.logits((big,), np.float32),
        b.targets((big,), "hard").astype(np.float32),
        reduction="mean",
    )
    b.add(
        "large_float32_pos_weight_sum",
        "bce_with_logits",
        b.logits((big // 7, 7), np.float32),
        b.targets((big // 7, 7), "soft").astype(np.float32),
        pos_weight=b.rng.uniform(0.5, 5, (7,)).astype(np.float32),
        reduction="sum",
    )
    b.add("large_probs_float64_mean", "bce", b.probs((big,), np.float64), b.targets((big,), "soft"), reduction="mean")

    # Extreme but finite values and the BCE clamp.
    x = np.array([-1e30, -200.0, -40.0, -1e-8, 0.0, 1e-8, 40.0, 200.0, 1e30])
    torch_differs = {
        "zeros": "PyTorch float64 differs in 2 loss and 0 gradient values",
        "ones": "PyTorch float64 differs in 0 loss and 2 gradient values",
        "half": "",
    }
    for tk, y in (("zeros", np.zeros(9)), ("ones", np.ones(9)), ("half", np.full(9, 0.5))):
        b.add(f"extreme_logits_{tk}", "bce_with_logits", x, y, reduction="none", note=torch_differs[tk])
    p = np.array([0.0, 1e-300, 1e-50, 0.5, 1 - 1e-16, 1.0])
    b.add(
        "probs_clamp_ones",
        "bce",
        p,
        np.ones(6),
        reduction="none",
        note="log is clamped at -100, as in PyTorch; PyTorch float64 differs in 0 loss and 4 gradient values",
    )
    b.add(
        "probs_clamp_zeros",
        "bce",
        p,
        np.zeros(6),
        reduction="none",
        note="log is clamped at -100, as in PyTorch; PyTorch float64 differs in 0 loss and 4 gradient values",
    )

    # Infinite logits: the mathematical limits, where PyTorch gives NaN.
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, np.inf, -np.inf])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    b.add(
        "infinite_logits",
        "bce_with_logits",
        x,
        y,
        reduction="none",
        grad_output=np.ones(6),
        note="the limits: loss [0, 0, inf, inf, inf, inf], "
        "gradient [0, 0, 1, -1, 0.5, -0.5]; "
        "PyTorch float64 differs in 4 loss and 0 gradient values",
    )

    # Empty and zero-dimensional inputs.
    b.add("empty_sum", "bce_with_logits", np.zeros((0, 3)), np.zeros((0, 3)), reduction="sum")
    b.add(
        "empty_mean",
        "bce_with_logits",
        np.zeros((0, 3)),
        np.zeros((0, 3)),
        reduction="mean",
        note="the mean of nothing is NaN, as in NumPy and PyTorch",
    )
    b.add("empty_none", "bce_with_logits", np.zeros((0, 3)), np.zeros((0, 3)), reduction="none")
    b.add("zero_dim_mean", "bce_with_logits", np.float64(1.5), np.float64(1.0))


GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 5.0]
# Logits over the whole range, both signs, and the infinite ones.
EXTENSION_LOGITS = [0.0, 1e-6, 0.3, 1.0, 2.5, 7.0, 15.0, 30.0, 88.0, 300.0, 1e4]
EXTENSION_LOGITS = sorted({s * v for v in EXTENSION_LOGITS for s in (-1.0, 1.0)})


class ExtensionBuilder:
    """Elementwise cases of the functions added with the second
    derivatives: `function` (its public name), its scalar arguments, the
    arrays, and the exact values (and term scales) from mpmath."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.arrays: dict[str, np.ndarray] = {}
        self.cases: list[dict] = []

    def add(self, name, function, x, y, expected, *, scale=None, weight=None, pos_weight=None, **arguments):
        assert name not in {c["name"] for c in self.cases}, name
        arrays = {"input": x, "target": y, "expected": np.asarray(expected, np.float64)}
        if scale is not None:
            arrays["scale"] = np.asarray(scale, np.float64)
        if weight is not None:
            arrays["weight"] = weight
        if pos_weight is not None:
            arrays["pos_weight"] = pos_weight
        for key, arr in arrays.items():
            self.arrays[f"{name}/{key}"] = np.asarray(arr)
        self.cases.append({"name": name, "function": function, "dtype": str(x.dtype), "arguments": arguments})

    def save(self, out_dir: Path, stem: str):
        np.savez_compressed(out_dir / f"{stem}.npz", **self.arrays)
        how = "made by tools/make_golden.py; expected values are mpmath's, rounded to float64"
        (out_dir / f"{stem}.json").write_text(json.dumps({"how": how, "cases": self.cases}, indent=1) + "\n")


def extension_cases(b: ExtensionBuilder):
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        x = np.array(EXTENSION_LOGITS, dtype)
        n = x.size
        for kind in ("hard", "soft"):
            y = (b.rng.integers(0, 2, n) if kind == "hard" else b.rng.uniform(0, 1, n)).astype(dtype)
            w = b.rng.uniform(0.5, 2.0, n).astype(dtype)
            pw = b.rng.uniform(0.5, 3.0, n).astype(dtype)
            for ls in (0.0, 0.1):
                exact = np.array(
                    [exact_logits_smoothed(float(x[i]), float(y[i]), float(w[i]), float(pw[i]), ls) for i in range(n)]
                )
                tag = f"{name}_{kind}_ls{ls}"
                args = dict(reduction="none", label_smoothing=ls)
                b.add(
                    f"logits_hess_{tag}",
                    "binary_cross_entropy_with_logits_hess",
                    x,
                    y,
                    exact[:, 3],
                    weight=w,
                    pos_weight=pw,
                    **args,
                )
                if ls:
                    b.add(
                        f"logits_loss_{tag}",
                        "binary_cross_entropy_with_logits",
                        x,
                        y,
                        exact[:, 0],
                        weight=w,
                        pos_weight=pw,
                        **args,
                    )
                    b.add(
                        f"logits_grad_{tag}",
                        "binary_cross_entropy_with_logits_grad",
                        x,
                        y,
                        exact[:, 1],
                        scale=exact[:, 2],
                        weight=w,
                        pos_weight=pw,
                        **args,
                    )
            p = b.rng.uniform(0.001, 0.999, n).astype(dtype)
            for ls in (0.0, 0.2):
                exact = [exact_probabilities_hess(float(p[i]), float(y[i]), float(w[i]), ls) for i in range(n)]
                b.add(
                    f"probabilities_hess_{name}_{kind}_ls{ls}",
                    "binary_cross_entropy_hess",
                    p,
                    y,
                    exact,
                    weight=w,
                    reduction="none",
                    label_smoothing=ls,
                )
            for gamma in GAMMAS:
                for alpha, ls in ((0.25, 0.0), (-1.0, 0.1)):
                    exact = np.array(
                        [exact_focal(float(x[i]), float(y[i]), float(w[i]), alpha, gamma, ls) for i in range(n)]
                    )
                    tag = f"{name}_{kind}_gamma{gamma}_alpha{alpha}_ls{ls}"
                    args = dict(alpha=alpha, gamma=gamma, label_smoothing=ls)
                    b.add(f"focal_loss_{tag}", "sigmoid_focal_loss", x, y, exact[:, 0], weight=w, **args)
                    b.add(
                        f"focal_grad_{tag}",
                        "sigmoid_focal_loss_grad",
                        x,
                        y,
                        exact[:, 1],
                        scale=exact[:, 2],
                        weight=w,
                        **args,
                    )
                    b.add(
                        f"focal_hess_{tag}",
                        "sigmoid_focal_loss_hess",
                        x,
                        y,
                        exact[:, 3],
                        scale=exact[:, 4],
                        weight=w,
                        **args,
                    )
        # Infinite logits: the limits.
        x = np.array([np.inf, -np.inf, np.inf, -np.inf], dtype)
        y = np.array([1.0, 0.0, 0.0, 1.0], dtype)
        for gamma in GAMMAS:
            args = dict(alpha=-1.0, gamma=gamma)
            b.add(
                f"focal_loss_{name}_infinite_gamma{gamma}", "sigmoid_focal_loss", x, y, [0, 0, np.inf, np.inf], **args
            )
            b.add(f"focal_grad_{name}_infinite_gamma{gamma}", "sigmoid_focal_loss_grad", x, y, [0, 0, 1, -1], **args)
            b.add(f"focal_hess_{name}_infinite_gamma{gamma}", "sigmoid_focal_loss_hess", x, y, [0, 0, 0, 0], **args)
        b.add(
            f"logits_hess_{name}_infinite",
            "binary_cross_entropy_with_logits_hess",
            x,
            y,
            [0, 0, 0, 0],
            reduction="none",
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--out", type=Path, default=DATA)
    args = ap.parse_args()
    b = Builder(args.seed)
    public_cases(b)
    b.save(args.out, "golden")
    print(f"{len(b.cases)} cases written to {args.out}")
    e = ExtensionBuilder(args.seed)
    extension_cases(e)
    e.save(args.out, "golden_extensions")
    print(f"{len(e.cases)} extension cases written to {args.out}")


if __name__ == "__main__":
    main()
