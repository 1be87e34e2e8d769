"""The focal loss (torchvision's `sigmoid_focal_loss`) and its derivatives.

Each function is one case of the same native call as the cross-entropy
functions (`_functional`), with the focal loss's `alpha` and `gamma`.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from numpy.typing import ArrayLike, NDArray

from . import _core
from ._functional import Axis, Loss, OutPair, _Declined, _declined, _native

__all__ = [
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad",
    "sigmoid_focal_loss_grad_and_hess",
    "sigmoid_focal_loss_hess",
    "sigmoid_focal_loss_value_and_grad",
]

_LOSS = _core.Request(loss="focal", value=True, grad=False)
_GRAD = _core.Request(loss="focal", value=False, grad=True)
_BOTH = _core.Request(loss="focal", value=True, grad=True)
_HESS = _core.Request(loss="focal", value=False, grad=False, hess=True)
_DERIVATIVES = _core.Request(loss="focal", value=False, grad=True, hess=True)


def sigmoid_focal_loss(
    input: ArrayLike,
    target: ArrayLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    *,
    weight: Optional[ArrayLike] = None,
    label_smoothing: float = 0.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> Loss:
    """Focal loss on logits, for imbalanced data (Lin et al., 2017).

    The same loss as ``torchvision.ops.sigmoid_focal_loss``: with
    ``p = sigmoid(input)``, ``p_t = p * target + (1 - p) * (1 - target)``
    and ``alpha_t = alpha * target + (1 - alpha) * (1 - target)``::

        loss = weight * alpha_t * (1 - p_t)**gamma * bce_with_logits(input, target)

    ``(1 - p_t)**gamma`` is computed in log space, so the loss and its
    derivatives are finite for every ``gamma >= 0`` (``0 < gamma < 1``
    included, where the usual implementations give NaN gradients at
    confident predictions), every finite logit, and the infinite ones
    (their limits). ``gamma = 0`` gives the plain loss times ``alpha_t``.

    Parameters
    ----------
    input : array_like
        Logits, float16, float32 or float64, of any layout.
    target : array_like
        Targets in [0, 1] of the same shape (float, bool or integer types).
    alpha : float, default 0.25
        Weight of the positive class, in [0, 1]; a negative value turns the
        class weighting off (``alpha_t = 1``), as in torchvision.
    gamma : float, default 2.0
        Focusing parameter, ``>= 0``.
    reduction : {'none', 'mean', 'sum'}, default 'none'
        As torchvision's default, the elementwise loss.
    weight : array_like, optional
        Rescales each element; must broadcast to `input`'s shape.
    label_smoothing : float, default 0.0
        Smooths the targets as Keras does (``y * (1 - ls) + 0.5 * ls``)
        before anything else uses them (``p_t``, ``alpha_t`` and the
        cross-entropy).
    out : ndarray, optional
        With ``reduction='none'``, receives the loss.
    axis : None, int or tuple of ints, optional
        With 'mean' or 'sum', reduce over these axes only.

    Returns
    -------
    numpy scalar or ndarray
        The loss, of `input`'s float dtype.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.sigmoid_focal_loss(np.array([3.0, -1.0, 0.0]), np.array([1.0, 1.0, 0.0]))
    array([2.73208311e-05, 1.75467076e-01, 1.29965096e-01])
    """
    result = _native(_LOSS, input, target, weight, reduction, None, 1.0, out, axis, label_smoothing, None, alpha, gamma)
    if type(result) is _Declined:
        result = _declined(
            _LOSS, input, target, weight, reduction, None, 1.0, out, axis, label_smoothing, None, alpha, gamma
        )
    return result[0]  # type: ignore[no-any-return]


def sigmoid_focal_loss_grad(
    input: ArrayLike,
    target: ArrayLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    *,
    weight: Optional[ArrayLike] = None,
    label_smoothing: float = 0.0,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> NDArray[Any]:
    """Gradient of :func:`sigmoid_focal_loss` with respect to `input`.

    ``alpha_t * (1 - p_t)**gamma * (g + gamma * u * bce)``, where ``g`` is
    the gradient of the plain loss and ``u = (1 - 2 target) * p * (1 - p) /
    (1 - p_t)`` the derivative of ``log(1 - p_t)``; computed without raising
    ``1 - p_t`` to ``gamma - 1``, so it is finite for ``gamma < 1`` too.

    Parameters
    ----------
    input, target, alpha, gamma, reduction, weight, label_smoothing
        As for :func:`sigmoid_focal_loss`.
    grad_output : scalar or array_like, default 1.0
        The gradient of the reduced loss (an array for 'none', or with `axis`).
    out : ndarray, optional
        Receives the gradient.
    axis : None, int or tuple of ints, optional
        The axes the loss is reduced over.

    Returns
    -------
    ndarray
        The gradient, of `input`'s shape and float dtype.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.sigmoid_focal_loss_grad(np.array([3.0, -1.0]), np.array([1.0, 1.0]), gamma=0.5)
    array([-0.00384195, -0.19401546])
    """
    result = _native(
        _GRAD, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing, None, alpha, gamma
    )
    if type(result) is _Declined:
        result = _declined(
            _GRAD, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing, None, alpha, gamma
        )
    return result[1]  # type: ignore[no-any-return]


def sigmoid_focal_loss_hess(
    input: ArrayLike,
    target: ArrayLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    *,
    weight: Optional[ArrayLike] = None,
    label_smoothing: float = 0.0,
    grad_output: ArrayLike = 1.0,
    min_hess: Optional[float] = None,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> NDArray[Any]:
    """Second derivative of :func:`sigmoid_focal_loss` with respect to each
    element of `input`.

    Unlike the cross-entropy's, it is **negative** for confidently wrong
    predictions (``gamma > 0``, a logit far on the wrong side of the
    target): the focal loss is not convex there. Newton steps and
    gradient-boosting libraries need a positive value: pass `min_hess`
    (e.g. ``1e-6``) to floor it.

    Parameters
    ----------
    input, target, alpha, gamma, reduction, weight, label_smoothing
        As for :func:`sigmoid_focal_loss`.
    grad_output, out, axis
        As for :func:`sigmoid_focal_loss_grad`.
    min_hess : float or None, default None
        Floor of each element's second derivative (before the mean's
        division and `grad_output`); None keeps the exact, possibly
        negative, value.

    Returns
    -------
    ndarray
        The second derivative, of `input`'s shape and float dtype.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.sigmoid_focal_loss_hess(np.array([3.0, -6.0]), np.array([1.0, 1.0]))
    array([ 0.00022371, -0.00426159])
    """
    result = _native(
        _HESS, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing, min_hess, alpha, gamma
    )
    if type(result) is _Declined:
        result = _declined(
            _HESS,
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
            alpha,
            gamma,
        )
    return result[2]  # type: ignore[no-any-return]


def sigmoid_focal_loss_value_and_grad(
    input: ArrayLike,
    target: ArrayLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    *,
    weight: Optional[ArrayLike] = None,
    label_smoothing: float = 0.0,
    grad_output: ArrayLike = 1.0,
    out: Optional[NDArray[Any]] = None,
    axis: Axis = None,
) -> Tuple[Loss, NDArray[Any]]:
    """Loss and gradient of :func:`sigmoid_focal_loss` in one pass; `out`
    receives the gradient, and `grad_output` scales only the gradient.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> loss, grad = fb.sigmoid_focal_loss_value_and_grad(
    ...     np.array([3.0, -1.0]), np.array([1.0, 1.0]), reduction="sum")
    >>> print(f"{loss:.6f}", grad)
    0.175494 [-7.87179616e-05 -1.92058681e-01]
    """
    result = _native(
        _BOTH, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing, None, alpha, gamma
    )
    if type(result) is _Declined:
        result = _declined(
            _BOTH, input, target, weight, reduction, None, grad_output, out, axis, label_smoothing, None, alpha, gamma
        )
    return result[0], result[1]


def sigmoid_focal_loss_grad_and_hess(
    input: ArrayLike,
    target: ArrayLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
    *,
    weight: Optional[ArrayLike] = None,
    label_smoothing: float = 0.0,
    grad_output: ArrayLike = 1.0,
    min_hess: Optional[float] = None,
    out: OutPair = None,
    axis: Axis = None,
) -> Tuple[NDArray[Any], NDArray[Any]]:
    """Gradient and second derivative of :func:`sigmoid_focal_loss` in one
    pass (a gradient-boosting objective's two arrays); arguments as for
    :func:`sigmoid_focal_loss_hess`, `out` a pair of arrays (or None).

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> fb.sigmoid_focal_loss_grad_and_hess(np.array([3.0, -6.0]), np.array([1.0, 1.0]), min_hess=1e-6)
    (array([-7.87179616e-05, -2.55534391e-01]), array([2.23709822e-04, 1.00000000e-06]))
    """
    result = _native(
        _DERIVATIVES,
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
        alpha,
        gamma,
    )
    if type(result) is _Declined:
        result = _declined(
            _DERIVATIVES,
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
            alpha,
            gamma,
        )
    return result[1], result[2]
