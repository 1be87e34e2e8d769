"""Loss objects in the style of ``torch.nn.BCEWithLogitsLoss`` and
``BCELoss``, and the focal loss's."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._focal import (
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    sigmoid_focal_loss_grad_and_hess,
    sigmoid_focal_loss_hess,
    sigmoid_focal_loss_value_and_grad,
)
from ._functional import (
    Loss,
    OutPair,
    as_numeric,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_grad_and_hess,
    binary_cross_entropy_hess,
    binary_cross_entropy_value_and_grad,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
    binary_cross_entropy_with_logits_grad_and_hess,
    binary_cross_entropy_with_logits_hess,
    binary_cross_entropy_with_logits_value_and_grad,
    check_reduction,
)

__all__ = ["BCELoss", "BCEWithLogitsLoss", "SigmoidFocalLoss"]


def _label_smoothing(value: float) -> float:
    """`value` if it is a number in [0, 1] (the modules check it when built)."""
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be between 0 and 1, got {value!r}")
    return float(value)


def _describe(arr: Optional[NDArray[Any]]) -> str:
    if arr is None:
        return "None"
    if arr.size <= 6:
        return np.array2string(arr, separator=", ")
    return f"<{arr.dtype} array of shape {arr.shape}>"


class BCEWithLogitsLoss:
    """Binary cross-entropy with logits, with its weights bound.

    ``BCEWithLogitsLoss(weight, reduction, pos_weight)(input, target)`` is
    :func:`fastbce.binary_cross_entropy_with_logits` with those arguments.

    Parameters
    ----------
    weight : array_like, optional
        Rescales each element; must broadcast to the inputs' shape.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    pos_weight : array_like, optional
        Weight of the positive term, e.g. one per class of an ``(N, C)`` batch.
    label_smoothing : float, default 0.0
        Keras's: each target ``y`` becomes ``y * (1 - ls) + 0.5 * ls``.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> loss = fb.BCEWithLogitsLoss(pos_weight=np.array([1.0, 3.0]))
    >>> loss
    BCEWithLogitsLoss(reduction='mean', pos_weight=[1., 3.])
    >>> x = np.array([[0.5, -1.0], [2.0, 0.1]])
    >>> y = np.array([[1.0, 1.0], [0.0, 1.0]])
    >>> print(f"{loss(x, y):.6f}")
    2.118495
    >>> loss.grad(x, y).shape
    (2, 2)
    """

    __slots__ = ("weight", "reduction", "pos_weight", "label_smoothing")

    def __init__(
        self,
        weight: Optional[ArrayLike] = None,
        reduction: str = "mean",
        pos_weight: Optional[ArrayLike] = None,
        *,
        label_smoothing: float = 0.0,
    ) -> None:
        self.weight = None if weight is None else as_numeric("weight", weight)
        self.reduction = check_reduction(reduction)
        self.pos_weight = None if pos_weight is None else as_numeric("pos_weight", pos_weight)
        self.label_smoothing = _label_smoothing(label_smoothing)

    def __call__(self, input: ArrayLike, target: ArrayLike, *, out: Optional[NDArray[Any]] = None) -> Loss:
        """The loss; see :func:`fastbce.binary_cross_entropy_with_logits`."""
        return binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight, out=out, label_smoothing=self.label_smoothing
        )

    def grad(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        out: Optional[NDArray[Any]] = None,
    ) -> NDArray[Any]:
        """The gradient; see :func:`fastbce.binary_cross_entropy_with_logits_grad`."""
        return binary_cross_entropy_with_logits_grad(
            input,
            target,
            self.weight,
            self.reduction,
            self.pos_weight,
            grad_output=grad_output,
            out=out,
            label_smoothing=self.label_smoothing,
        )

    def value_and_grad(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        out: Optional[NDArray[Any]] = None,
    ) -> Tuple[Loss, NDArray[Any]]:
        """Loss and gradient in one pass; see
        :func:`fastbce.binary_cross_entropy_with_logits_value_and_grad`."""
        return binary_cross_entropy_with_logits_value_and_grad(
            input,
            target,
            self.weight,
            self.reduction,
            self.pos_weight,
            grad_output=grad_output,
            out=out,
            label_smoothing=self.label_smoothing,
        )

    def hess(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        min_hess: Optional[float] = 0.0,
        out: Optional[NDArray[Any]] = None,
    ) -> NDArray[Any]:
        """The second derivative; see :func:`fastbce.binary_cross_entropy_with_logits_hess`."""
        return binary_cross_entropy_with_logits_hess(
            input,
            target,
            self.weight,
            self.reduction,
            self.pos_weight,
            grad_output=grad_output,
            label_smoothing=self.label_smoothing,
            min_hess=min_hess,
            out=out,
        )

    def grad_and_hess(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        min_hess: Optional[float] = 0.0,
        out: OutPair = None,
    ) -> Tuple[NDArray[Any], NDArray[Any]]:
        """Gradient and second derivative in one pass; see
        :func:`fastbce.binary_cross_entropy_with_logits_grad_and_hess`."""
        return binary_cross_entropy_with_logits_grad_and_hess(
            input,
            target,
            self.weight,
            self.reduction,
            self.pos_weight,
            grad_output=grad_output,
            label_smoothing=self.label_smoothing,
            min_hess=min_hess,
            out=out,
        )

    def __repr__(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight={_describe(self.weight)}")
        if self.pos_weight is not None:
            parts.append(f"pos_weight={_describe(self.pos_weight)}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return f"{type(self).__name__}({', '.join(parts)})"


class BCELoss:
    """Binary cross-entropy on probabilities, with its weight bound.

    ``BCELoss(weight, reduction)(input, target)`` is
    :func:`fastbce.binary_cross_entropy` with those arguments.

    Parameters
    ----------
    weight : array_like, optional
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    label_smoothing : float, default 0.0
        Keras's: each target ``y`` becomes ``y * (1 - ls) + 0.5 * ls``.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> loss = fb.BCELoss(reduction="sum")
    >>> loss
    BCELoss(reduction='sum')
    >>> print(f"{loss(np.array([0.9, 0.2]), np.array([1, 0])):.6f}")
    0.328504
    """

    __slots__ = ("weight", "reduction", "label_smoothing")

    def __init__(
        self, weight: Optional[ArrayLike] = None, reduction: str = "mean", *, label_smoothing: float = 0.0
    ) -> None:
        self.weight = None if weight is None else as_numeric("weight", weight)
        self.reduction = check_reduction(reduction)
        self.label_smoothing = _label_smoothing(label_smoothing)

    def __call__(self, input: ArrayLike, target: ArrayLike, *, out: Optional[NDArray[Any]] = None) -> Loss:
        """The loss; see :func:`fastbce.binary_cross_entropy`."""
        return binary_cross_entropy(
            input, target, self.weight, self.reduction, out=out, label_smoothing=self.label_smoothing
        )

    def grad(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        out: Optional[NDArray[Any]] = None,
    ) -> NDArray[Any]:
        """The gradient; see :func:`fastbce.binary_cross_entropy_grad`."""
        return binary_cross_entropy_grad(
            input,
            target,
            self.weight,
            self.reduction,
            grad_output=grad_output,
            out=out,
            label_smoothing=self.label_smoothing,
        )

    def value_and_grad(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        out: Optional[NDArray[Any]] = None,
    ) -> Tuple[Loss, NDArray[Any]]:
        """Loss and gradient in one pass; see
        :func:`fastbce.binary_cross_entropy_value_and_grad`."""
        return binary_cross_entropy_value_and_grad(
            input,
            target,
            self.weight,
            self.reduction,
            grad_output=grad_output,
            out=out,
            label_smoothing=self.label_smoothing,
        )

    def hess(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        min_hess: Optional[float] = 0.0,
        out: Optional[NDArray[Any]] = None,
    ) -> NDArray[Any]:
        """The second derivative; see :func:`fastbce.binary_cross_entropy_hess`."""
        return binary_cross_entropy_hess(
            input,
            target,
            self.weight,
            self.reduction,
            grad_output=grad_output,
            label_smoothing=self.label_smoothing,
            min_hess=min_hess,
            out=out,
        )

    def grad_and_hess(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        min_hess: Optional[float] = 0.0,
        out: OutPair = None,
    ) -> Tuple[NDArray[Any], NDArray[Any]]:
        """Gradient and second derivative in one pass; see
        :func:`fastbce.binary_cross_entropy_grad_and_hess`."""
        return binary_cross_entropy_grad_and_hess(
            input,
            target,
            self.weight,
            self.reduction,
            grad_output=grad_output,
            label_smoothing=self.label_smoothing,
            min_hess=min_hess,
            out=out,
        )

    def __repr__(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight={_describe(self.weight)}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return f"{type(self).__name__}({', '.join(parts)})"


class SigmoidFocalLoss:
    """The focal loss on logits, with its parameters bound.

    ``SigmoidFocalLoss(alpha, gamma, reduction)(input, target)`` is
    :func:`fastbce.sigmoid_focal_loss` with those arguments.

    Parameters
    ----------
    alpha : float, default 0.25
        Weight of the positive class; negative turns the weighting off.
    gamma : float, default 2.0
        Focusing parameter, ``>= 0``.
    reduction : {'none', 'mean', 'sum'}, default 'none'
    weight : array_like, optional
    label_smoothing : float, default 0.0

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> loss = fb.SigmoidFocalLoss(gamma=1.0, reduction="mean")
    >>> loss
    SigmoidFocalLoss(alpha=0.25, gamma=1.0, reduction='mean')
    >>> print(f"{loss(np.array([2.0, -1.0]), np.array([1.0, 0.0])):.6f}")
    0.033485
    """

    __slots__ = ("alpha", "gamma", "reduction", "weight", "label_smoothing")

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        reduction: str = "none",
        *,
        weight: Optional[ArrayLike] = None,
        label_smoothing: float = 0.0,
    ) -> None:
        # Checked now, as the native call would check them.
        sigmoid_focal_loss(np.zeros(0), np.zeros(0), alpha, gamma, label_smoothing=label_smoothing)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.reduction = check_reduction(reduction)
        self.weight = None if weight is None else as_numeric("weight", weight)
        self.label_smoothing = _label_smoothing(label_smoothing)

    def _parameters(self) -> dict[str, Any]:
        return dict(weight=self.weight, label_smoothing=self.label_smoothing)

    def __call__(self, input: ArrayLike, target: ArrayLike, *, out: Optional[NDArray[Any]] = None) -> Loss:
        """The loss; see :func:`fastbce.sigmoid_focal_loss`."""
        return sigmoid_focal_loss(input, target, self.alpha, self.gamma, self.reduction, out=out, **self._parameters())

    def grad(
        self, input: ArrayLike, target: ArrayLike, *, grad_output: ArrayLike = 1.0, out: Optional[NDArray[Any]] = None
    ) -> NDArray[Any]:
        """The gradient; see :func:`fastbce.sigmoid_focal_loss_grad`."""
        return sigmoid_focal_loss_grad(
            input,
            target,
            self.alpha,
            self.gamma,
            self.reduction,
            grad_output=grad_output,
            out=out,
            **self._parameters(),
        )

    def value_and_grad(
        self, input: ArrayLike, target: ArrayLike, *, grad_output: ArrayLike = 1.0, out: Optional[NDArray[Any]] = None
    ) -> Tuple[Loss, NDArray[Any]]:
        """Loss and gradient in one pass; see :func:`fastbce.sigmoid_focal_loss_value_and_grad`."""
        return sigmoid_focal_loss_value_and_grad(
            input,
            target,
            self.alpha,
            self.gamma,
            self.reduction,
            grad_output=grad_output,
            out=out,
            **self._parameters(),
        )

    def hess(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        min_hess: Optional[float] = None,
        out: Optional[NDArray[Any]] = None,
    ) -> NDArray[Any]:
        """The second derivative (negative where confidently wrong); see
        :func:`fastbce.sigmoid_focal_loss_hess`."""
        return sigmoid_focal_loss_hess(
            input,
            target,
            self.alpha,
            self.gamma,
            self.reduction,
            grad_output=grad_output,
            min_hess=min_hess,
            out=out,
            **self._parameters(),
        )

    def grad_and_hess(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        min_hess: Optional[float] = None,
        out: OutPair = None,
    ) -> Tuple[NDArray[Any], NDArray[Any]]:
        """Gradient and second derivative in one pass; see
        :func:`fastbce.sigmoid_focal_loss_grad_and_hess`."""
        return sigmoid_focal_loss_grad_and_hess(
            input,
            target,
            self.alpha,
            self.gamma,
            self.reduction,
            grad_output=grad_output,
            min_hess=min_hess,
            out=out,
            **self._parameters(),
        )

    def __repr__(self) -> str:
        parts = [f"alpha={self.alpha}", f"gamma={self.gamma}", f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight={_describe(self.weight)}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return f"{type(self).__name__}({', '.join(parts)})"
