"""The functional API: argument checks, broadcasting and dispatch to the kernels.

Every public function here checks its arguments, describes the arrays to
the native kernels without copying them (weights are broadcast as views with
zero strides), and turns the float64 sums the kernels return into NumPy
scalars of the result dtype. The common call, on NumPy arrays, is a single
native call (`_core.quick`: checks, outputs, kernel and result in Rust,
2-3x a one-element `np.add` for 100 elements); it declines (returns None)
anything this module must check or convert first.
"""

from __future__ import annotations

import math
import operator
from typing import Any, List, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_value_and_grad",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_value_and_grad",
    "sigmoid",
]

REDUCTIONS = ("mean", "sum", "none")

Loss = Union[np.floating[Any], NDArray[np.floating[Any]]]
Axis = Union[None, int, Tuple[int, ...]]

_FLOAT_RESULTS = {np.dtype(t): np.dtype(t) for t in (np.float16, np.float32, np.float64)}
_FLOAT64 = np.dtype(np.float64)


def as_numeric(name: str, value: ArrayLike) -> NDArray[Any]:
    """`value` as an ndarray of a dtype the kernels read in place.

    Arrays are returned as they are (no copy); only non-native byte order is
    converted. Complex, object, string and other dtypes raise TypeError, as
    do masked arrays (see `refuse_masked`).
    """
    if type(value) is np.ndarray:
        arr = value
    else:
        refuse_masked(name, value)
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{name} could not be converted to a NumPy array: {exc}") from None
    dtype = arr.dtype
    if dtype.kind not in "biuf" or (dtype.kind == "f" and dtype.itemsize > 8):
        raise TypeError(f"{name} has dtype {dtype}; expected float16, float32, float64, an integer type or bool")
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def refuse_masked(name: str, value: object) -> None:
    """TypeError for a masked array: its mask would be silently dropped."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array, and fastbce does not apply masks: pass np.ma.getdata({name}) to count "
            f"the masked elements, or only the unmasked ones (input[~mask], target[~mask]) to leave them out"
        )


def check_reduction(reduction: object) -> str:
    """`reduction` if it is one of 'mean', 'sum', 'none'; ValueError otherwise."""
    if not (isinstance(reduction, str) and reduction in REDUCTIONS):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def result_dtype(input_dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The dtype of the loss and gradient: the input's float type (in native
    byte order), else float64."""
    if not input_dtype.isnative:
        input_dtype = input_dtype.newbyteorder("=")
    return _FLOAT_RESULTS.get(input_dtype, _FLOAT64)


def broadcast_to_input(name: str, value: ArrayLike, shape: Tuple[int, ...]) -> NDArray[Any]:
    """`value` broadcast to the input's `shape` as a view (zero strides).

    It must broadcast by NumPy's rules without changing `shape`.
    """
    arr = as_numeric(name, value)
    if arr.shape == shape:
        return arr
    try:
        joint = np.broadcast_shapes(arr.shape, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {arr.shape} does not broadcast to the input shape {shape}") from None
    if joint != shape:
        raise ValueError(
            f"{name} of shape {arr.shape} would broadcast the input shape {shape} to "
            f"{joint}; it must broadcast to the input shape without changing it"
        )
    return np.broadcast_to(arr, shape)


def check_out(out: object, shape: Tuple[int, ...], dtype: np.dtype[Any], what: str) -> NDArray[Any]:
    """`out` if it is a writeable ndarray of `shape` and `dtype`."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    refuse_masked("out", out)
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but the {what} has shape {shape}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, but the {what} has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only; pass a writeable array")
    return out


_ndarray = np.ndarray
_quick = _core.quick


def _checked(
    x: NDArray[Any],
    y: NDArray[Any],
    w: Optional[NDArray[Any]],
    pw: Optional[NDArray[Any]],
    go: Optional[NDArray[Any]],
) -> Tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]], Optional[NDArray[Any]], Optional[NDArray[Any]]]:
    """The operands fully checked (raising the errors of DESIGN.md) and in
    native byte order: the slow path, taken when the kernels refused the
    fast one."""
    x, y = as_numeric("input", x), as_numeric("target", y)
    if y.shape != x.shape:
        raise ValueError(
            f"target must have the same shape as input, got target shape {y.shape} and input shape {x.shape}"
        )
    shape = x.shape
    w = None if w is None else broadcast_to_input("weight", w, shape)
    pw = None if pw is None else broadcast_to_input("pos_weight", pw, shape)
    go = None if go is None else broadcast_to_input("grad_output", go, shape)
    return x, y, w, pw, go


def _evaluate(
    probabilities: bool,
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike],
    pos_weight: Optional[ArrayLike],
    reduction: str,
    *,
    value: bool,
    grad: bool,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> Tuple[Optional[Loss], Optional[NDArray[Any]]]:
    """The loss (if `value`) and its gradient (if `grad`) of one call.

    The fast path hands the arrays to the kernels as they are; the kernels
    check what memory safety needs (dtypes, shapes, broadcasting, overlap).
    If they refuse, the slow path checks everything in Python, raising
    the documented error, or converts what needs converting and retries.
    """
    if axis is not None:
        return _evaluate_axis(
            probabilities, input, target, weight, pos_weight, reduction, value, grad, grad_output, out, axis
        )
    if reduction == "mean" or reduction == "sum":
        total = value
    elif reduction == "none":
        total = False
    else:
        check_reduction(reduction)
    go: Any = None
    scale = 1.0
    if grad and (type(grad_output) is float or type(grad_output) is int):
        scale = float(grad_output)
    elif grad:
        g = as_numeric("grad_output", grad_output)
        if g.ndim == 0:
            scale = float(g)
        elif reduction != "none":
            raise ValueError(f"grad_output must be a scalar for reduction={reduction!r}, got shape {g.shape}")
        else:
            go = g
    # Arrays pass as they are (the kernels check their dtypes); anything
    # else goes through `as_numeric`.
    x = input if type(input) is _ndarray else as_numeric("input", input)
    y = target if type(target) is _ndarray else as_numeric("target", target)
    w = weight if weight is None or type(weight) is _ndarray else as_numeric("weight", weight)
    pw = None if probabilities or pos_weight is None else pos_weight
    if pw is not None and type(pw) is not _ndarray:
        pw = as_numeric("pos_weight", pw)
    n = x.size
    if reduction == "mean" and n:
        scale /= n

    loss_out = grad_out = None
    if grad or (value and reduction == "none"):
        dtype = result_dtype(x.dtype)
    if grad:
        grad_out = (
            np.empty_like(x, dtype=dtype, subok=False) if out is None else check_out(out, x.shape, dtype, "gradient")
        )
    if value and reduction == "none":
        if grad or out is None:
            loss_out = np.empty_like(x, dtype=dtype, subok=False)
        else:
            loss_out = check_out(out, x.shape, dtype, "loss")
    elif value and out is not None and not grad:
        raise ValueError(
            f"out receives the elementwise loss, so it needs reduction='none', got reduction={reduction!r}"
        )

    fresh = out is None or (grad and value and reduction == "none")
    s = _call(probabilities, x, y, w, pw, go, scale, total, loss_out, grad_out, fresh=fresh, scratch=out is None)
    if total:
        scalar = result_dtype(x.dtype).type
        return scalar(s if reduction == "sum" else s / n if n else math.nan), grad_out
    return loss_out, grad_out


def _call(
    probabilities: bool,
    x: NDArray[Any],
    y: NDArray[Any],
    w: Optional[NDArray[Any]],
    pw: Optional[NDArray[Any]],
    go: Optional[NDArray[Any]],
    scale: float,
    total: bool,
    loss_out: Optional[NDArray[Any]],
    grad_out: Optional[NDArray[Any]],
    sums: Optional[NDArray[np.float64]] = None,
    reduced: Optional[List[bool]] = None,
    fresh: bool = False,
    scratch: bool = False,
) -> float:
    """One kernel call; on refusal, the slow path (see `_evaluate`). `fresh`:
    an output was just allocated; `scratch`: every output and `sums` are new
    arrays that are dropped if the call fails."""
    outputs = (scale, total, loss_out, grad_out, sums, reduced)
    try:
        return _core.bce(probabilities, x, y, w, pw, go, *outputs, fresh=fresh, scratch=scratch)
    except _core.OverlapError:
        return _apart(probabilities, x, y, w, pw, go, *outputs, scratch)
    except (ValueError, TypeError):
        checked = _checked(x, y, w, pw, go)  # raises the documented error
        if all(a is b for a, b in zip(checked, (x, y, w, pw, go), strict=True)):
            raise
        x, y, w, pw, go = checked
        return _core.bce(probabilities, x, y, w, pw, go, *outputs, fresh=fresh, scratch=scratch)


def normalize_axis(axis: Union[int, Tuple[int, ...]], ndim: int) -> Tuple[int, ...]:
    """`axis` (an int or a tuple of ints, negative from the end) as sorted
    non-negative axes of an `ndim`-dimensional input."""
    items = axis if isinstance(axis, tuple) else (axis,)
    axes = []
    for item in items:
        try:
            a = operator.index(item)
        except TypeError:
            raise TypeError(f"axis must be None, an int or a tuple of ints, got {axis!r}") from None
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for an input of {ndim} dimensions")
        axes.append(a % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axis {axis!r} repeats an axis")
    return tuple(sorted(axes))


def _evaluate_axis(
    probabilities: bool,
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike],
    pos_weight: Optional[ArrayLike],
    reduction: str,
    value: bool,
    grad: bool,
    grad_output: ArrayLike,
    out: Optional[NDArray[Any]],
    axis: Union[int, Tuple[int, ...]],
) -> Tuple[Optional[Loss], Optional[NDArray[Any]]]:
    """`_evaluate` for a mean or sum over some axes: one pass, summed in
    float64 per kept index inside the kernel."""
    check_reduction(reduction)
    if reduction == "none":
        raise ValueError(f"axis needs reduction='mean' or 'sum', got reduction={reduction!r}")
    x, y = as_numeric("input", input), as_numeric("target", target)
    axes = normalize_axis(axis, x.ndim)
    if x.ndim and len(axes) == x.ndim:
        return _evaluate(
            probabilities, x, y, weight, pos_weight, reduction, value=value, grad=grad, grad_output=grad_output, out=out
        )
    reduced = [d in axes for d in range(x.ndim)]
    kept = tuple(n for n, r in zip(x.shape, reduced, strict=True) if not r)
    count = math.prod(x.shape[d] for d in axes)
    dtype = result_dtype(x.dtype)
    w = None if weight is None else as_numeric("weight", weight)
    pw = None if probabilities or pos_weight is None else as_numeric("pos_weight", pos_weight)

    go = None
    scale = 1.0
    grad_out = None
    if grad:
        g = as_numeric("grad_output", grad_output)
        if g.ndim == 0:
            scale = float(g)
        else:
            go = np.expand_dims(broadcast_to_input("grad_output", g, kept), axes)
        if reduction == "mean" and count:
            scale /= count
        grad_out = (
            np.empty_like(x, dtype=dtype, subok=False) if out is None else check_out(out, x.shape, dtype, "gradient")
        )
    sums = np.zeros(kept, np.float64) if value else None
    _call(
        probabilities, x, y, w, pw, go, scale, False, None, grad_out, sums, reduced if value else None,
        fresh=out is None, scratch=out is None,
    )  # fmt: skip
    if sums is None:
        return None, grad_out
    if reduction == "mean":
        with np.errstate(invalid="ignore"):
            sums /= count
    if out is not None and not grad:
        np.copyto(check_out(out, kept, dtype, "loss"), sums, casting="unsafe")
        return out, grad_out
    return sums.astype(dtype, copy=False), grad_out


def sum64(
    probabilities: bool,
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    axes: Optional[Tuple[int, ...]] = None,
) -> Any:
    """The loss summed in float64, unrounded to the input's dtype: a float
    (`axes` None), or the sums over `axes` with those axes kept as size 1.
    Partial sums for combining results (the Dask functions)."""
    x, y = as_numeric("input", input), as_numeric("target", target)
    w = None if weight is None else as_numeric("weight", weight)
    pw = None if probabilities or pos_weight is None else as_numeric("pos_weight", pos_weight)
    if axes is None:
        return _call(probabilities, x, y, w, pw, None, 1.0, True, None, None, scratch=True)
    reduced = [d in axes for d in range(x.ndim)]
    sums = np.zeros([n for n, r in zip(x.shape, reduced, strict=True) if not r])
    _call(probabilities, x, y, w, pw, None, 1.0, False, None, None, sums, reduced, scratch=True)
    return np.expand_dims(sums, axes)


def _apart(
    probabilities: bool,
    x: NDArray[Any],
    y: NDArray[Any],
    w: Optional[NDArray[Any]],
    pw: Optional[NDArray[Any]],
    go: Optional[NDArray[Any]],
    scale: float,
    total: bool,
    loss_out: Optional[NDArray[Any]],
    grad_out: Optional[NDArray[Any]],
    sums: Optional[NDArray[np.float64]],
    reduced: Optional[List[bool]],
    scratch: bool,
) -> float:
    """An output shares memory with an input without being that array:
    compute into fresh arrays, then copy (as NumPy's ufuncs do)."""
    fresh_loss = None if loss_out is None else np.empty_like(loss_out)
    fresh_grad = None if grad_out is None else np.empty_like(grad_out)
    result = _core.bce(
        probabilities, x, y, w, pw, go, scale, total, fresh_loss, fresh_grad, sums, reduced,
        fresh=True, scratch=scratch or sums is None,
    )  # fmt: skip
    if loss_out is not None and fresh_loss is not None:
        np.copyto(loss_out, fresh_loss)
    if grad_out is not None and fresh_grad is not None:
        np.copyto(grad_out, fresh_grad)
    return result


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    pos_weight: Optional[ArrayLike] = None,
    *,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> Loss:
    """Binary cross-entropy between logits and targets.

    The same loss as ``torch.nn.functional.binary_cross_entropy_with_logits``,
    computed in a numerically stable form that keeps full relative precision
    in the tails::

        loss = weight * ((1 - target) * softplus(input)
                         + pos_weight * target * softplus(-input))

    Parameters
    ----------
    input : array_like
        Logits, float16, float32 or float64 (integer and bool input is
        computed in float64). Arrays of any memory layout are read in place.
    target : array_like
        Targets of the same shape as `input`: float16/32/64, bool or any
        integer type, read in place. Soft labels in [0, 1] are allowed.
    weight : array_like, optional
        Rescales each element; must broadcast to `input`'s shape without
        changing it.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' and 'sum' reduce in float64 and return a scalar; 'none'
        returns the elementwise loss.
    pos_weight : array_like, optional
        Weight of the positive term; for an ``(N, C)`` batch a ``(C,)``
        array weights each class. Must broadcast to `input`'s shape without
        changing it.
    out : ndarray, optional
        With ``reduction='none'``, receives the loss: a writeable array of
        `input`'s shape and the result dtype. May be `input` itself.
    axis : None, int or tuple of ints, optional
        With 'mean' or 'sum', reduce over these axes only, as NumPy does:
        ``axis=-1`` gives the per-sample losses of an ``(N, C)`` batch,
        ``axis=0`` the per-class losses. The sums are accumulated in float64
        in the same single pass. ``None`` (the default) reduces everything.

    Returns
    -------
    numpy scalar or ndarray
        The loss, of `input`'s float dtype (float64 for integer input).

    Raises
    ------
    ValueError
        Mismatched shapes, a bad `reduction` or `out`.
    TypeError
        Complex, object or string arrays; masked arrays (their mask would be
        dropped: the message says how to count or leave out the masked
        elements).

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> x = np.array([[-0.4089, -1.2471, 0.5907],
    ...               [-0.4897, -0.8267, -0.7349],
    ...               [0.5241, -0.1246, -0.4751]], dtype=np.float32)
    >>> y = np.array([[0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=np.float32)
    >>> print(f"{fb.binary_cross_entropy_with_logits(x, y):.4f}")
    0.7193
    >>> fb.binary_cross_entropy_with_logits(x, y, reduction="none").shape
    (3, 3)
    """
    # The common call in one step (None: check and convert in Python first).
    done = axis is None and _quick(False, input, target, weight, pos_weight, reduction, True, False, 1.0, out)
    if done:
        return done[0]  # type: ignore[no-any-return]
    loss, _ = _evaluate(False, input, target, weight, pos_weight, reduction, value=True, grad=False, out=out, axis=axis)
    assert loss is not None
    return loss


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> Loss:
    """Binary cross-entropy between probabilities and targets.

    The same numbers as ``torch.nn.functional.binary_cross_entropy``,
    including its clamp of each log at -100::

        loss = -weight * (target * max(log(input), -100)
                          + (1 - target) * max(log1p(-input), -100))

    Parameters
    ----------
    input : array_like
        Probabilities in [0, 1], float16, float32 or float64.
    target : array_like
        Targets in [0, 1] of the same shape as `input` (float, bool or
        integer types, read in place).
    weight : array_like, optional
        Rescales each element; must broadcast to `input`'s shape without
        changing it.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How to reduce the elementwise loss.
    out : ndarray, optional
        With ``reduction='none'``, receives the loss (may be `input`).
    axis : None, int or tuple of ints, optional
        With 'mean' or 'sum', reduce over these axes only, as NumPy does:
        ``axis=-1`` gives the per-sample losses of an ``(N, C)`` batch,
        ``axis=0`` the per-class losses. The sums are accumulated in float64
        in the same single pass. ``None`` (the default) reduces everything.

    Returns
    -------
    numpy scalar or ndarray
        The loss, of `input`'s float dtype (float64 for integer input).

    Raises
    ------
    ValueError
        An input or target element outside [0, 1] or NaN, mismatched
        shapes, a bad `reduction` or `out`. Every element is checked before
        anything is written into `out` (or `input`, in place), so a call
        that raises leaves them unchanged.
    TypeError
        Complex, object or string arrays; masked arrays.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> p = np.array([0.9, 0.2, 0.6])
    >>> y = np.array([1.0, 0.0, 1.0])
    >>> print(f"{fb.binary_cross_entropy(p, y):.6f}")
    0.279777
    """
    # The common call in one step (None: check and convert in Python first).
    done = axis is None and _quick(True, input, target, weight, None, reduction, True, False, 1.0, out)
    if done:
        return done[0]  # type: ignore[no-any-return]
    loss, _ = _evaluate(True, input, target, weight, None, reduction, value=True, grad=False, out=out, axis=axis)
    assert loss is not None
    return loss


def binary_cross_entropy_with_logits_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    pos_weight: Optional[ArrayLike] = None,
    *,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> NDArray[Any]:
    """Gradient of :func:`binary_cross_entropy_with_logits` with respect to `input`.

    Elementwise ``weight * ((1 - target) * sigmoid(input) - pos_weight *
    target * sigmoid(-input))``, divided by ``input.size`` for 'mean', times
    `grad_output`. Both sigmoids are computed directly, so the gradient keeps
    full relative precision where one term vanishes.

    Parameters
    ----------
    input, target, weight, reduction, pos_weight
        As for :func:`binary_cross_entropy_with_logits`.
    grad_output : scalar or array_like, default 1.0
        The gradient of the reduced loss: a scalar for 'mean' and 'sum'; a
        scalar or an array broadcastable to `input`'s shape for 'none'.
    out : ndarray, optional
        Receives the gradient: a writeable array of `input`'s shape and the
        result dtype. May be `input` itself.
    axis : None, int or tuple of ints, optional
        The axes the loss is reduced over (see
        :func:`binary_cross_entropy_with_logits`); `grad_output` may then be
        an array broadcastable to the reduced shape.

    Returns
    -------
    ndarray
        The gradient, of `input`'s shape and float dtype.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.binary_cross_entropy_with_logits_grad(np.array([0.0, 2.0]), np.array([1.0, 0.0]))
    array([-0.25      ,  0.44039854])
    """
    done = axis is None and _quick(False, input, target, weight, pos_weight, reduction, False, True, grad_output, out)
    if done:
        return done[1]  # type: ignore[no-any-return]
    _, grad = _evaluate(
        False,
        input,
        target,
        weight,
        pos_weight,
        reduction,
        value=False,
        grad=True,
        grad_output=grad_output,
        out=out,
        axis=axis,
    )
    assert grad is not None
    return grad


def binary_cross_entropy_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> NDArray[Any]:
    """Gradient of :func:`binary_cross_entropy` with respect to `input`.

    Elementwise ``weight * (input - target) / max(input * (1 - input),
    1e-12)`` as in PyTorch, divided by ``input.size`` for 'mean', times
    `grad_output`.

    Parameters
    ----------
    input, target, weight, reduction
        As for :func:`binary_cross_entropy`.
    grad_output : scalar or array_like, default 1.0
        A scalar for 'mean' and 'sum'; a scalar or an array broadcastable
        to `input`'s shape for 'none'.
    out : ndarray, optional
        Receives the gradient (may be `input`).
    axis : None, int or tuple of ints, optional
        The axes the loss is reduced over (see
        :func:`binary_cross_entropy_with_logits`); `grad_output` may then be
        an array broadcastable to the reduced shape.

    Returns
    -------
    ndarray
        The gradient, of `input`'s shape and float dtype.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.binary_cross_entropy_grad(np.array([0.5, 0.8]), np.array([1.0, 0.0]), reduction="sum")
    array([-2., 5.])
    """
    done = axis is None and _quick(True, input, target, weight, None, reduction, False, True, grad_output, out)
    if done:
        return done[1]  # type: ignore[no-any-return]
    _, grad = _evaluate(
        True,
        input,
        target,
        weight,
        None,
        reduction,
        value=False,
        grad=True,
        grad_output=grad_output,
        out=out,
        axis=axis,
    )
    assert grad is not None
    return grad


def binary_cross_entropy_with_logits_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    pos_weight: Optional[ArrayLike] = None,
    *,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> Tuple[Loss, NDArray[Any]]:
    """Loss and gradient of :func:`binary_cross_entropy_with_logits` in one pass.

    Reads the arrays once: the loss is reduced while the gradient is
    written. Arguments are those of
    :func:`binary_cross_entropy_with_logits_grad`; `out` receives the
    gradient, and `grad_output` scales only the gradient.

    Returns
    -------
    (loss, grad)
        The loss as :func:`binary_cross_entropy_with_logits` returns it, and
        the gradient as :func:`binary_cross_entropy_with_logits_grad` does.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> loss, grad = fb.binary_cross_entropy_with_logits_value_and_grad(
    ...     np.array([0.0, 2.0]), np.array([1.0, 0.0]))
    >>> print(f"{loss:.6f}", grad)
    1.410038 [-0.25        0.44039854]
    """
    done = axis is None and _quick(False, input, target, weight, pos_weight, reduction, True, True, grad_output, out)
    if done:
        return done
    loss, grad = _evaluate(
        False,
        input,
        target,
        weight,
        pos_weight,
        reduction,
        value=True,
        grad=True,
        grad_output=grad_output,
        out=out,
        axis=axis,
    )
    assert loss is not None and grad is not None
    return loss, grad


def binary_cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> Tuple[Loss, NDArray[Any]]:
    """Loss and gradient of :func:`binary_cross_entropy` in one pass.

    Arguments are those of :func:`binary_cross_entropy_grad`; `out`
    receives the gradient.

    Returns
    -------
    (loss, grad)

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> loss, grad = fb.binary_cross_entropy_value_and_grad(
    ...     np.array([0.5, 0.8]), np.array([1.0, 0.0]), reduction="sum")
    >>> print(f"{loss:.6f}", grad)
    2.302585 [-2.  5.]
    """
    done = axis is None and _quick(True, input, target, weight, None, reduction, True, True, grad_output, out)
    if done:
        return done
    loss, grad = _evaluate(
        True,
        input,
        target,
        weight,
        None,
        reduction,
        value=True,
        grad=True,
        grad_output=grad_output,
        out=out,
        axis=axis,
    )
    assert loss is not None and grad is not None
    return loss, grad


def sigmoid(x: ArrayLike, *, out: Optional[NDArray[Any]] = None) -> NDArray[Any]:
    """The logistic sigmoid ``1 / (1 + exp(-x))``, computed stably.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 (integer and bool input gives float64).
    out : ndarray, optional
        Receives the result: a writeable array of `x`'s shape and the result
        dtype. May be `x` itself.

    Returns
    -------
    ndarray
        ``sigmoid(x)``; tiny values keep full relative precision.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.sigmoid(np.array([-40.0, 0.0, 3.0]))
    array([4.24835426e-18, 5.00000000e-01, 9.52574127e-01])
    """
    arr = as_numeric("x", x)
    dtype = result_dtype(arr.dtype)
    fresh = out is None
    if out is None:
        out = np.empty_like(arr, dtype=dtype, subok=False)
    else:
        check_out(out, arr.shape, dtype, "result")
    try:
        _core.sigmoid(arr, out, fresh)
    except _core.OverlapError:
        apart = np.empty_like(out)
        _core.sigmoid(arr, apart, True)
        np.copyto(out, apart)
    return out
