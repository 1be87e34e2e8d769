"""Every error path: the exception type and a message that names the argument."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import fastbce as fb

X = np.zeros((4, 3), np.float32)
Y = np.zeros((4, 3), np.float32)
P = np.full((4, 3), 0.5, np.float32)

ALL_FUNCS = [
    fb.binary_cross_entropy_with_logits,
    fb.binary_cross_entropy_with_logits_grad,
    fb.binary_cross_entropy_with_logits_value_and_grad,
    fb.binary_cross_entropy,
    fb.binary_cross_entropy_grad,
    fb.binary_cross_entropy_value_and_grad,
]
PROB_FUNCS = ALL_FUNCS[3:]


def raises(exc, message):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


@pytest.mark.parametrize("fn", ALL_FUNCS)
def test_target_shape_must_equal_input_shape(fn):
    with raises(ValueError, "target must have the same shape as input, got target shape (3, 4) and input shape (4, 3)"):
        fn(P, np.zeros((3, 4)))
    with raises(ValueError, "target must have the same shape as input, got target shape (3,) and input shape (4, 3)"):
        fn(P, np.zeros(3))


@pytest.mark.parametrize("fn", ALL_FUNCS)
def test_weight_must_broadcast_without_enlarging(fn):
    with raises(ValueError, "weight of shape (2,) does not broadcast to the input shape (4, 3)"):
        fn(P, Y, np.ones(2))
    with raises(
        ValueError,
        "weight of shape (2, 4, 3) would broadcast the input shape (4, 3) to "
        "(2, 4, 3); it must broadcast to the input shape without changing it",
    ):
        fn(P, Y, np.ones((2, 4, 3)))


def test_pos_weight_must_broadcast_without_enlarging():
    with raises(ValueError, "pos_weight of shape (4,) does not broadcast to the input shape (4, 3)"):
        fb.binary_cross_entropy_with_logits(X, Y, pos_weight=np.ones(4))
    with raises(
        ValueError,
        "pos_weight of shape (5, 1, 3) would broadcast the input shape (4, 3) "
        "to (5, 4, 3); it must broadcast to the input shape without changing it",
    ):
        fb.binary_cross_entropy_with_logits_grad(X, Y, pos_weight=np.ones((5, 1, 3)))


@pytest.mark.parametrize("fn", ALL_FUNCS)
@pytest.mark.parametrize("reduction", ["avg", "MEAN", None, 1])
def test_bad_reduction(fn, reduction):
    with raises(ValueError, f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}"):
        fn(P, Y, reduction=reduction)


def test_loss_classes_check_reduction_early():
    with raises(ValueError, "reduction must be 'mean', 'sum' or 'none', got 'elementwise_mean'"):
        fb.BCEWithLogitsLoss(reduction="elementwise_mean")
    with raises(ValueError, "reduction must be 'mean', 'sum' or 'none', got 'total'"):
        fb.BCELoss(reduction="total")


@pytest.mark.parametrize(
    "name, bad",
    [
        ("input", np.zeros(3, np.complex64)),
        ("input", np.array(["a", "b", "c"])),
        ("input", np.array([1.0, None, 2.0], dtype=object)),
        ("input", np.zeros(3, np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else np.zeros(3, "M8[s]")),
        ("target", np.zeros(3, np.complex128)),
        ("target", np.array([b"x", b"y", b"z"])),
        ("weight", np.zeros(3, np.complex64)),
        ("pos_weight", np.array(["1", "2", "3"])),
    ],
)
def test_unsupported_dtypes_raise_type_error(name, bad):
    args = {"input": np.zeros(3), "target": np.zeros(3), "weight": None, "pos_weight": None}
    args[name] = bad
    with raises(
        TypeError, f"{name} has dtype {bad.dtype}; expected float16, float32, float64, an integer type or bool"
    ):
        fb.binary_cross_entropy_with_logits(**args)


def test_ragged_input_names_the_argument():
    with pytest.raises(ValueError, match="^input could not be converted to a NumPy array: "):
        fb.binary_cross_entropy_with_logits([[1.0, 2.0], [3.0]], [[1.0, 2.0], [3.0]])


@pytest.mark.parametrize("fn", PROB_FUNCS)
@pytest.mark.parametrize("value", [-0.1, 1.5, np.nan, np.inf, -np.inf])
def test_probabilities_outside_unit_interval(fn, value):
    x = P.copy()
    x[2, 1] = value
    with raises(ValueError, "all elements of input should be between 0 and 1"):
        fn(x, Y)
    y = Y.copy()
    y[3, 2] = value
    with raises(ValueError, "all elements of target should be between 0 and 1"):
        fn(P, y)


def test_probability_targets_of_integer_type_are_checked():
    with raises(ValueError, "all elements of target should be between 0 and 1"):
        fb.binary_cross_entropy(P, np.full((4, 3), 2, np.int64))
    big = np.full(100_000, 0.5)
    big[-1] = 1.0001
    with raises(ValueError, "all elements of input should be between 0 and 1"):
        fb.binary_cross_entropy(big, np.zeros_like(big))


def test_out_of_range_in_place_leaves_input_untouched():
    x = np.full(50_000, 0.25)
    x[-3] = 2.0
    before = x.copy()
    with raises(ValueError, "all elements of input should be between 0 and 1"):
        fb.binary_cross_entropy(x, np.zeros_like(x), reduction="none", out=x)
    np.testing.assert_array_equal(x, before)


MASKED = np.ma.array([0.0, 100.0, 0.0], mask=[0, 1, 0])


@pytest.mark.parametrize("position", ["input", "target", "weight", "pos_weight", "grad_output", "out"])
def test_masked_arrays_are_refused_not_unmasked(position):
    # A mask silently dropped would count the masked elements.
    args = {"input": np.zeros(3), "target": np.ones(3), "weight": None, "pos_weight": None}
    kwargs = {}
    if position in args:
        args[position] = MASKED
    else:
        kwargs[position] = MASKED if position == "grad_output" else np.ma.array(np.zeros(3), mask=[0, 1, 0])
        kwargs["reduction"] = "none"
    message = (
        f"{position} is a masked array, and fastbce does not apply masks: pass np.ma.getdata({position}) to count "
        "the masked elements, or only the unmasked ones (input[~mask], target[~mask]) to leave them out"
    )
    fn = fb.binary_cross_entropy_with_logits_grad if position == "grad_output" else fb.binary_cross_entropy_with_logits
    with raises(TypeError, message):
        fn(**args, **kwargs)
    if position in ("input", "target", "weight"):
        del args["pos_weight"]
        args["input"] = MASKED / 200 if position == "input" else np.full(3, 0.5)
        with raises(TypeError, message):
            fb.binary_cross_entropy(**args)
        with raises(TypeError, message):
            fb.LossAccumulator(probabilities=True).update(**args)


def test_the_documented_ways_around_a_mask():
    x, y = MASKED, np.ma.array([1.0, 0.0, 1.0], mask=MASKED.mask)
    counted = fb.binary_cross_entropy_with_logits(np.ma.getdata(x), np.ma.getdata(y))
    assert counted == pytest.approx((2 * np.log(2) + 100) / 3)
    left_out = fb.binary_cross_entropy_with_logits(x[~x.mask].data, y[~x.mask].data)
    assert left_out == pytest.approx(np.log(2))


def _raising_calls(n, bad):
    """Calls that raise, each with the arrays it is given. The input or the
    target holds one bad element at `bad`; `out` is a separate array, an
    input, the weight or grad_output."""
    rng = np.random.default_rng(n)
    p, t = rng.uniform(0.01, 0.99, n), (rng.uniform(size=n) < 0.5).astype(np.float64)
    w, g, o = rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, n), np.full(n, 7.0)
    bad_p, bad_t = p.copy(), t.copy()
    bad_p[bad], bad_t[bad] = 1.5, -0.5
    calls = []
    for x, y in ((bad_p, t), (p, bad_t)):
        calls += [
            (fb.binary_cross_entropy, (x, y), dict(weight=w, reduction="none", out=w)),
            (fb.binary_cross_entropy, (x, y), dict(weight=w, reduction="none", out=o)),
            (fb.binary_cross_entropy, (x, y), dict(reduction="none", out=x)),
            (fb.binary_cross_entropy, (x, y), dict(reduction="none", out=y)),
            (fb.binary_cross_entropy_grad, (x, y), dict(reduction="none", grad_output=g, out=g)),
            (fb.binary_cross_entropy_grad, (x, y), dict(weight=w, out=o)),
            (fb.binary_cross_entropy_grad, (x, y), dict(out=x)),
            (fb.binary_cross_entropy_value_and_grad, (x, y), dict(weight=w, reduction="sum", out=w)),
            (fb.binary_cross_entropy_value_and_grad, (x, y), dict(reduction="none", out=o)),
            (fb.binary_cross_entropy_grad, (x.reshape(-1, 4), y.reshape(-1, 4)), dict(axis=1, out=o.reshape(-1, 4))),
            (fb.binary_cross_entropy, (x.reshape(-1, 4), y.reshape(-1, 4)), dict(axis=0, out=o[:4])),
        ]
    # Errors found before the kernel runs.
    calls += [
        (fb.binary_cross_entropy_with_logits, (p, t), dict(weight=w[:3], reduction="none", out=w)),
        (fb.binary_cross_entropy_with_logits_grad, (p, t[:-1]), dict(out=p)),
        (fb.binary_cross_entropy_with_logits, (p, t), dict(reduction="nope", out=o)),
    ]
    return calls


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("n", "bad"), [(100, 99), (60_000, 59_999), (300_000, 150_001), (300_000, 3)])
def test_a_call_that_raises_changes_no_array(n, bad, threads):
    with fb.num_threads(threads):
        for fn, args, kwargs in _raising_calls(n, bad):
            arrays = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
            before = [a.copy() for a in arrays]
            with pytest.raises(ValueError):
                fn(*args, **kwargs)
            for a, b in zip(arrays, before, strict=True):
                np.testing.assert_array_equal(a, b, err_msg=f"{fn.__name__} {sorted(kwargs)}")


def test_a_batch_that_raises_leaves_the_accumulator_as_it_was():
    rng = np.random.default_rng(9)
    x, y = rng.uniform(0.01, 0.99, (50_000, 6)), rng.uniform(size=(50_000, 6)) < 0.3
    acc = fb.LossAccumulator(probabilities=True)
    acc.update(x, y)
    state = (acc.count, acc.total, acc.per_class_sum)
    bad = x.copy()
    bad[-1, 4] = -0.01
    for threads in (1, 2):
        with fb.num_threads(threads), raises(ValueError, "all elements of input should be between 0 and 1"):
            acc.update(bad, y)
        assert (acc.count, acc.total) == state[:2]
        np.testing.assert_array_equal(acc.per_class_sum, state[2])
    acc.update(x, y)
    assert acc.count == 2 * x.size


@pytest.mark.parametrize(
    "fn", [fb.binary_cross_entropy_with_logits_grad, fb.binary_cross_entropy_with_logits_value_and_grad]
)
def test_bad_out(fn):
    with raises(TypeError, "out must be a numpy.ndarray, got list"):
        fn(X, Y, out=[0.0] * 12)
    with raises(ValueError, "out has shape (3, 4), but the gradient has shape (4, 3)"):
        fn(X, Y, out=np.empty((3, 4), np.float32))
    with raises(ValueError, "out has dtype float64, but the gradient has dtype float32"):
        fn(X, Y, out=np.empty((4, 3), np.float64))
    with raises(ValueError, "out has dtype >f4, but the gradient has dtype float32"):
        fn(X, Y, out=np.empty((4, 3), ">f4"))
    read_only = np.empty((4, 3), np.float32)
    read_only.flags.writeable = False
    with raises(ValueError, "out is read-only; pass a writeable array"):
        fn(X, Y, out=read_only)
    overlapping = np.lib.stride_tricks.as_strided(np.zeros(6, np.float32), (4, 3), (4, 4))
    with raises(
        ValueError,
        "out has elements that share memory (a broadcast or overlapping view); "
        "pass an array whose elements are distinct",
    ):
        fn(X, Y, out=overlapping)


def test_out_needs_reduction_none_for_the_loss():
    with raises(ValueError, "out receives the elementwise loss, so it needs reduction='none', got reduction='mean'"):
        fb.binary_cross_entropy_with_logits(X, Y, out=np.empty((4, 3), np.float32))
    with raises(ValueError, "out has dtype float32, but the loss has dtype float64"):
        fb.binary_cross_entropy(P.astype(np.float64), Y, reduction="none", out=np.empty((4, 3), np.float32))
    with raises(ValueError, "out has dtype float64, but the result has dtype float16"):
        fb.sigmoid(X.astype(np.float16), out=np.empty((4, 3)))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_grad_output_must_be_scalar_for_reduced_losses(reduction):
    with raises(ValueError, f"grad_output must be a scalar for reduction={reduction!r}, got shape (4, 3)"):
        fb.binary_cross_entropy_with_logits_grad(X, Y, reduction=reduction, grad_output=np.ones((4, 3)))


def test_grad_output_must_broadcast_for_reduction_none():
    with raises(ValueError, "grad_output of shape (4,) does not broadcast to the input shape (4, 3)"):
        fb.binary_cross_entropy_grad(P, Y, reduction="none", grad_output=np.ones(4))
    with raises(
        TypeError, "grad_output has dtype complex128; expected float16, float32, float64, an integer type or bool"
    ):
        fb.binary_cross_entropy_grad(P, Y, reduction="none", grad_output=np.ones(3, complex))


def thread_count_message(n):
    cpus = os.cpu_count()
    return f"the number of threads must be between 1 and {8 * cpus} (8 per CPU, {cpus} CPUs), got {n}"


@pytest.mark.parametrize("n", [0, -1, -(2**70)])
def test_thread_count_below_one(n):
    before = fb.get_num_threads()
    with raises(ValueError, thread_count_message(n)):
        fb.set_num_threads(n)
    with raises(ValueError, thread_count_message(n)):
        with fb.num_threads(n):
            pass
    assert fb.get_num_threads() == before


@pytest.mark.parametrize("n", [8 * os.cpu_count() + 1, 2**63, 2**70])
def test_thread_count_far_above_the_cpus(n):
    before = fb.get_num_threads()
    with raises(ValueError, thread_count_message(n)):
        fb.set_num_threads(n)
    assert fb.get_num_threads() == before
    fb.set_num_threads(8 * os.cpu_count())
    assert fb.get_num_threads() == 8 * os.cpu_count()


@pytest.mark.parametrize("n", [2.0, "2", True, None])
def test_thread_count_must_be_an_integer(n):
    with raises(TypeError, f"the number of threads must be an integer, got {type(n).__name__}"):
        fb.set_num_threads(n)
