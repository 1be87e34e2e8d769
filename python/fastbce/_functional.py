"""The functional API: the public functions, and what only Python can do.

What a call means (its checks and errors, outputs, reductions, `axis=`) is
defined once, in the native `_core.evaluate` (src/py/call.rs). Each public
function makes that one native call with its `_core.Request` (which loss;
value, gradient or both) and its own arguments, in its own order. The call
declines, with a typed reason, only what this module must do first: convert
an argument that is not a NumPy array of native byte order (a list, a NumPy
float32 scalar, a big-endian array), then call again, or compute apart when
`out` overlaps an input in part.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Tuple, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_grad_and_hess",
    "binary_cross_entropy_hess",
    "binary_cross_entropy_value_and_grad",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_grad_and_hess",
    "binary_cross_entropy_with_logits_hess",
    "binary_cross_entropy_with_logits_value_and_grad",
    "sigmoid",
]

Loss = Union[np.floating[Any], NDArray[np.floating[Any]]]
Axis = Union[None, int, Tuple[int, ...]]
Reduced = Literal["mean", "sum"]

_native = _core.evaluate
check_reduction = _core.check_reduction
_Declined = _core.Declined
_CONVERT = _core.Decline.Convert
_Request = _core.Request

# What each public function asks for.
_LOSS_ON_LOGITS = _Request(loss="logits", value=True, grad=False)
_GRAD_ON_LOGITS = _Request(loss="logits", value=False, grad=True)
_BOTH_ON_LOGITS = _Request(loss="logits", value=True, grad=True)
_HESS_ON_LOGITS = _Request(loss="logits", value=False, grad=False, hess=True)
_DERIVATIVES_ON_LOGITS = _Request(loss="logits", value=False, grad=True, hess=True)
_ALL_ON_LOGITS = _Request(loss="logits", value=True, grad=True, hess=True)
_LOSS_ON_PROBABILITIES = _Request(loss="probabilities", value=True, grad=False)
_GRAD_ON_PROBABILITIES = _Request(loss="probabilities", value=False, grad=True)
_BOTH_ON_PROBABILITIES = _Request(loss="probabilities", value=True, grad=True)
_HESS_ON_PROBABILITIES = _Request(loss="probabilities", value=False, grad=False, hess=True)
_DERIVATIVES_ON_PROBABILITIES = _Request(loss="probabilities", value=False, grad=True, hess=True)
_ALL_ON_PROBABILITIES = _Request(loss="probabilities", value=True, grad=True, hess=True)

# The native call's arguments after input and target, in its order.
_ARGUMENTS = (
    "weight",
    "reduction",
    "pos_weight",
    "grad_output",
    "out",
    "axis",
    "label_smoothing",
    "min_hess",
    "alpha",
    "gamma",
)


def as_numeric(name: str, value: ArrayLike) -> NDArray[Any]:
    """`value` as an ndarray in native byte order (arrays are not copied).

    Which dtypes the kernels read is checked by the native call; masked
    arrays are refused there (their mask would be dropped).
    """
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise _core.conversion_error(name, exc) from None
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def check_arguments(
    probabilities: bool,
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    grad: bool = False,
    grad_output: ArrayLike = 1.0,
    axis: Axis = None,
    label_smoothing: float = 0.0,
) -> Tuple[np.dtype[Any], Optional[Tuple[bool, ...]]]:
    """Checks a call's arguments as the call itself would (raising its
    errors) without running it: the result dtype, and per input axis
    whether `axis` reduces it (None for the plain reduction). Arrays may be
    stand-ins of the right shape and dtype (`np.broadcast_to`)."""
    request = _Request(loss="probabilities" if probabilities else "logits", value=True, grad=grad)
    arguments = dict(weight=weight, reduction=reduction, pos_weight=pos_weight, grad_output=grad_output, axis=axis)
    dtype, reduced = _run(request, input, target, arguments, check_only=True)
    return dtype, None if reduced is None else tuple(reduced)


def _run(request: _core.Request, input: Any, target: Any, arguments: dict[str, Any], **options: Any) -> Any:
    """The native call of `request` with `arguments`, doing what it
    declines and calling again."""
    while True:
        result = _native(request, input, target, **arguments, **options)
        if type(result) is not _Declined:
            return result
        argument = result.argument
        if result.reason == _CONVERT:
            if argument == "input":
                input = as_numeric("input", input)
            elif argument == "target":
                target = as_numeric("target", target)
            else:
                arguments[argument] = as_numeric(argument, arguments[argument])
            continue
        return _compute_apart(request, input, target, arguments)


def _compute_apart(request: _core.Request, input: Any, target: Any, arguments: dict[str, Any]) -> Any:
    """`out` shares memory with an input without being that array: compute
    into new arrays, then copy (as NumPy's ufuncs do)."""
    out = arguments["out"]
    results = list(_run(request, input, target, {**arguments, "out": None}))
    if request.grad and request.hess:
        given = [(1, out[0]), (2, out[1])]
    else:
        given = [(2 if request.hess else 1 if request.grad else 0, out)]
    for slot, array in given:
        if array is not None:
            np.copyto(array, results[slot])
            results[slot] = array
    return tuple(results)


def _declined(request: _core.Request, input: ArrayLike, target: ArrayLike, *arguments: Any) -> Any:
    """A call the native call declined: done again, converting what it
    declines (the public functions call `_native` directly first, with the
    arguments after `target` in its order)."""
    return _run(request, input, target, dict(zip(_ARGUMENTS[: len(arguments)], arguments, strict=True)))


def sum64(
    probabilities: bool,
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    pos_weight: Optional[ArrayLike] = None,
    into: Optional[_core.RunningSums] = None,
    axis: Axis = None,
    label_smoothing: float = 0.0,
) -> None:
    """Adds the loss summed in float64 (unrounded to the input's dtype) to
    the running sums `into` (a `_core.RunningSums`): the total, and with
    `axis` the sums per kept index."""
    request = _LOSS_ON_PROBABILITIES if probabilities else _LOSS_ON_LOGITS
    arguments = dict(weight=weight, reduction="sum", pos_weight=pos_weight, axis=axis)
    _run(request, input, target, arguments, into=into)


@overload
def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> np.floating[Any]: ...


@overload
def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike],
    reduction: Literal["none"],
    pos_weight: Optional[ArrayLike] = ...,
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> NDArray[np.floating[Any]]: ...


@overload
def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    *,
    reduction: Literal["none"],
    pos_weight: Optional[ArrayLike] = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> NDArray[np.floating[Any]]: ...


@overload
def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: Union[int, Tuple[int, ...]],
    label_smoothing: float = ...,
) -> NDArray[np.floating[Any]]: ...


@overload
def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: Axis = ...,
    label_smoothing: float = ...,
) -> Loss: ...


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    pos_weight: Optional[ArrayLike] = None,
    *,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
    label_smoothing: float = 0.0,
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
    label_smoothing : float, default 0.0
        Smooths the targets as Keras does: each target ``y`` becomes
        ``y * (1 - label_smoothing) + 0.5 * label_smoothing``. Between 0
        and 1.

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
    result = _native(_LOSS_ON_LOGITS, input, target, weight, reduction, pos_weight, 1.0, out, axis, label_smoothing)
    if type(result) is _Declined:
        result = _declined(
            _LOSS_ON_LOGITS, input, target, weight, reduction, pos_weight, 1.0, out, axis, label_smoothing
        )
    return result[0]  # type: ignore[no-any-return]


@overload
def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> np.floating[Any]: ...


@overload
def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike],
    reduction: Literal["none"],
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> NDArray[np.floating[Any]]: ...


@overload
def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    *,
    reduction: Literal["none"],
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> NDArray[np.floating[Any]]: ...


@overload
def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: Union[int, Tuple[int, ...]],
    label_smoothing: float = ...,
) -> NDArray[np.floating[Any]]: ...


@overload
def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    *,
    out: Optional[NDArray[Any]] = ...,
    axis: Axis = ...,
    label_smoothing: float = ...,
) -> Loss: ...


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
    label_smoothing: float = 0.0,
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
    label_smoothing : float, default 0.0
        Smooths the targets as Keras does: each target ``y`` becomes
        ``y * (1 - label_smoothing) + 0.5 * label_smoothing``. Between 0
        and 1.

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
    result = _native(_LOSS_ON_PROBABILITIES, input, target, weight, reduction, None, 1.0, out, axis, label_smoothing)
    if type(result) is _Declined:
        result = _declined(
            _LOSS_ON_PROBABILITIES, input, target, weight, reduction, None, 1.0, out, axis, label_smoothing
        )
    return result[0]  # type: ignore[no-any-return]


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
    label_smoothing: float = 0.0,
) -> NDArray[Any]:
    """Gradient of :func:`binary_cross_entropy_with_logits` with respect to `input`.

    Elementwise ``weight * ((1 - target) * sigmoid(input) - pos_weight *
    target * sigmoid(-input))``, divided by ``input.size`` for 'mean', times
    `grad_output`. Both sigmoids are computed directly, so the gradient keeps
    full relative precision where one term vanishes.

    Parameters
    ----------
    input, target, weight, reduction, pos_weight, label_smoothing
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
    result = _native(
        _GRAD_ON_LOGITS, input, target, weight, reduction, pos_weight, grad_output, out, axis, label_smoothing
    )
    if type(result) is _Declined:
        result = _declined(
            _GRAD_ON_LOGITS, input, target, weight, reduction, pos_weight, grad_output, out, axis, label_smoothing
        )
    return result[1]  # type: ignore[no-any-return]


def binary_cross_entropy_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
    label_smoothing: float = 0.0,
) -> NDArray[Any]:
    """Gradient of :func:`binary_cross_entropy` with respect to `input`.

    Elementwise ``weight * (input - target) / max(input * (1 - input),
    1e-12)`` as in PyTorch, divided by ``input.size`` for 'mean', times
    `grad_output`.

    Parameters
    ----------
    input, target, weight, reduction, label_smoothing
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
    result = _native(
        _GRAD_ON_PROBABILITIES, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing
    )
    if type(result) is _Declined:
        result = _declined(
            _GRAD_ON_PROBABILITIES, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing
        )
    return result[1]  # type: ignore[no-any-return]


@overload
def binary_cross_entropy_with_logits_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> Tuple[np.floating[Any], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_with_logits_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike],
    reduction: Literal["none"],
    pos_weight: Optional[ArrayLike] = ...,
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> Tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_with_logits_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    *,
    reduction: Literal["none"],
    pos_weight: Optional[ArrayLike] = ...,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> Tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_with_logits_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: Union[int, Tuple[int, ...]],
    label_smoothing: float = ...,
) -> Tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_with_logits_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: Axis = ...,
    label_smoothing: float = ...,
) -> Tuple[Loss, NDArray[Any]]: ...


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
    label_smoothing: float = 0.0,
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
    result = _native(
        _BOTH_ON_LOGITS, input, target, weight, reduction, pos_weight, grad_output, out, axis, label_smoothing
    )
    if type(result) is _Declined:
        result = _declined(
            _BOTH_ON_LOGITS, input, target, weight, reduction, pos_weight, grad_output, out, axis, label_smoothing
        )
    return result[0], result[1]


@overload
def binary_cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> Tuple[np.floating[Any], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike],
    reduction: Literal["none"],
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> Tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    *,
    reduction: Literal["none"],
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: None = ...,
    label_smoothing: float = ...,
) -> Tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: Reduced = ...,
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: Union[int, Tuple[int, ...]],
    label_smoothing: float = ...,
) -> Tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]: ...


@overload
def binary_cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    *,
    grad_output: ArrayLike = ...,
    out: Optional[NDArray[Any]] = ...,
    axis: Axis = ...,
    label_smoothing: float = ...,
) -> Tuple[Loss, NDArray[Any]]: ...


def binary_cross_entropy_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
    label_smoothing: float = 0.0,
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
    result = _native(
        _BOTH_ON_PROBABILITIES, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing
    )
    if type(result) is _Declined:
        result = _declined(
            _BOTH_ON_PROBABILITIES, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing
        )
    return result[0], result[1]


def binary_cross_entropy_with_logits_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    pos_weight: Optional[ArrayLike] = None,
    *,
    grad_output: ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    min_hess: Optional[float] = 0.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> NDArray[Any]:
    """Second derivative of :func:`binary_cross_entropy_with_logits` with
    respect to each element of `input` (the Hessian's diagonal; it has no
    other non-zero entries).

    Elementwise ``weight * (1 - target + pos_weight * target) *
    sigmoid(input) * sigmoid(-input)``, floored at `min_hess`, divided by
    ``input.size`` for 'mean', times `grad_output`. Both sigmoids are
    computed directly (never as ``p * (1 - p)``), so the value keeps full
    relative precision in the tails, where it is tiny.

    Parameters
    ----------
    input, target, weight, reduction, pos_weight, label_smoothing
        As for :func:`binary_cross_entropy_with_logits`.
    grad_output, axis
        As for :func:`binary_cross_entropy_with_logits_grad`: the second
        derivative is scaled as the gradient is.
    min_hess : float or None, default 0.0
        Floor of each element's second derivative (before the mean's
        division and `grad_output`): gradient-boosting libraries need it
        positive. None: no floor.
    out : ndarray, optional
        Receives the result: a writeable array of `input`'s shape and the
        result dtype. May be `input` itself.

    Returns
    -------
    ndarray
        The second derivative, of `input`'s shape and float dtype.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.binary_cross_entropy_with_logits_hess(np.array([0.0, 2.0]), np.array([1.0, 0.0]), reduction="sum")
    array([0.25      , 0.10499359])
    """
    result = _native(
        _HESS_ON_LOGITS, input, target, weight, reduction, pos_weight, grad_output, out, axis, label_smoothing, min_hess
    )
    if type(result) is _Declined:
        result = _declined(
            _HESS_ON_LOGITS,
            input,
            target,
            weight,
            reduction,
            pos_weight,
            grad_output,
            out,
            axis,
            label_smoothing,
            min_hess,
        )
    return result[2]  # type: ignore[no-any-return]


Derivatives = Tuple[NDArray[Any], NDArray[Any]]
OutPair = Optional[Tuple[Optional[NDArray[Any]], Optional[NDArray[Any]]]]


@overload
def binary_cross_entropy_with_logits_grad_and_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    grad_output: ArrayLike = ...,
    label_smoothing: float = ...,
    min_hess: Optional[float] = ...,
    out: OutPair = ...,
    axis: Axis = ...,
    return_loss: Literal[False] = ...,
) -> Derivatives: ...


@overload
def binary_cross_entropy_with_logits_grad_and_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    pos_weight: Optional[ArrayLike] = ...,
    *,
    grad_output: ArrayLike = ...,
    label_smoothing: float = ...,
    min_hess: Optional[float] = ...,
    out: OutPair = ...,
    axis: Axis = ...,
    return_loss: Literal[True],
) -> Tuple[Loss, NDArray[Any], NDArray[Any]]: ...


def binary_cross_entropy_with_logits_grad_and_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    pos_weight: Optional[ArrayLike] = None,
    *,
    grad_output: ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    min_hess: Optional[float] = 0.0,
    out: OutPair = None,
    axis: Axis = None,
    return_loss: bool = False,
) -> Union[Derivatives, Tuple[Loss, NDArray[Any], NDArray[Any]]]:
    """Gradient and second derivative of
    :func:`binary_cross_entropy_with_logits` in one pass (what Newton steps
    and gradient boosting need).

    Arguments are those of :func:`binary_cross_entropy_with_logits_hess`.

    Parameters
    ----------
    out : (ndarray or None, ndarray or None), optional
        Receive the gradient and the second derivative.
    return_loss : bool, default False
        Also return the loss (reduced by `reduction`), from the same pass.

    Returns
    -------
    (grad, hess), or (loss, grad, hess) with `return_loss`

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> g, h = fb.binary_cross_entropy_with_logits_grad_and_hess(
    ...     np.array([0.0, 2.0]), np.array([1.0, 0.0]), reduction="sum")
    >>> g, h
    (array([-0.5       ,  0.88079708]), array([0.25      , 0.10499359]))
    """
    request = _ALL_ON_LOGITS if return_loss else _DERIVATIVES_ON_LOGITS
    result = _native(
        request, input, target, weight, reduction, pos_weight, grad_output, out, axis, label_smoothing, min_hess
    )
    if type(result) is _Declined:
        result = _declined(
            request, input, target, weight, reduction, pos_weight, grad_output, out, axis, label_smoothing, min_hess
        )
    return result if return_loss else (result[1], result[2])


def binary_cross_entropy_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    grad_output: ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    min_hess: Optional[float] = 0.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> NDArray[Any]:
    """Second derivative of :func:`binary_cross_entropy` with respect to
    each element of `input`.

    The derivative of :func:`binary_cross_entropy_grad` as PyTorch clamps
    it: elementwise ``weight * (target / input**2 + (1 - target) / (1 -
    input)**2)`` where ``input * (1 - input) > 1e-12``, and ``weight /
    1e-12`` where the gradient's clamp holds its denominator (at 0 and 1),
    floored at `min_hess`, divided by ``input.size`` for 'mean', times
    `grad_output`.

    Parameters
    ----------
    input, target, weight, reduction, label_smoothing
        As for :func:`binary_cross_entropy`.
    grad_output, min_hess, out, axis
        As for :func:`binary_cross_entropy_with_logits_hess`.

    Returns
    -------
    ndarray
        The second derivative, of `input`'s shape and float dtype.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.binary_cross_entropy_hess(np.array([0.5, 0.8]), np.array([1.0, 0.0]), reduction="sum")
    array([ 4., 25.])
    """
    result = _native(
        _HESS_ON_PROBABILITIES,
        input,
        target,
        weight,
        reduction,
        None,
        grad_output,
        out,
        axis,
        label_smoothing,
        min_hess,
    )
    if type(result) is _Declined:
        result = _declined(
            _HESS_ON_PROBABILITIES,
            input,
            target,
            weight,
            reduction,
            None,
            grad_output,
            out,
            axis,
            label_smoothing,
            min_hess,
        )
    return result[2]  # type: ignore[no-any-return]


@overload
def binary_cross_entropy_grad_and_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    *,
    grad_output: ArrayLike = ...,
    label_smoothing: float = ...,
    min_hess: Optional[float] = ...,
    out: OutPair = ...,
    axis: Axis = ...,
    return_loss: Literal[False] = ...,
) -> Derivatives: ...


@overload
def binary_cross_entropy_grad_and_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = ...,
    reduction: str = ...,
    *,
    grad_output: ArrayLike = ...,
    label_smoothing: float = ...,
    min_hess: Optional[float] = ...,
    out: OutPair = ...,
    axis: Axis = ...,
    return_loss: Literal[True],
) -> Tuple[Loss, NDArray[Any], NDArray[Any]]: ...


def binary_cross_entropy_grad_and_hess(
    input: ArrayLike,
    target: ArrayLike,
    weight: Optional[ArrayLike] = None,
    reduction: str = "mean",
    *,
    grad_output: ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    min_hess: Optional[float] = 0.0,
    out: OutPair = None,
    axis: Axis = None,
    return_loss: bool = False,
) -> Union[Derivatives, Tuple[Loss, NDArray[Any], NDArray[Any]]]:
    """Gradient and second derivative of :func:`binary_cross_entropy` in
    one pass; arguments and results as for
    :func:`binary_cross_entropy_with_logits_grad_and_hess`.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.binary_cross_entropy_grad_and_hess(np.array([0.5, 0.8]), np.array([1.0, 0.0]), reduction="sum")
    (array([-2.,  5.]), array([ 4., 25.]))
    """
    request = _ALL_ON_PROBABILITIES if return_loss else _DERIVATIVES_ON_PROBABILITIES
    result = _native(request, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing, min_hess)
    if type(result) is _Declined:
        result = _declined(
            request, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing, min_hess
        )
    return result if return_loss else (result[1], result[2])


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
    result = _core.sigmoid(x, out=out)
    if type(result) is _Declined:
        if result.reason == _CONVERT:
            return sigmoid(as_numeric("x", x), out=out)
        assert out is not None
        np.copyto(out, _core.sigmoid(x))
        return out
    return result  # type: ignore[no-any-return]
