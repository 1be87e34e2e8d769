"""Loss objects in the style of ``torch.nn.BCEWithLogitsLoss`` and ``BCELoss``."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._functional import (
    Loss,
    as_numeric,
    binary_cross_entropy,
    binary_cross_entropy_grad,
    binary_cross_entropy_value_and_grad,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad,
    binary_cross_entropy_with_logits_value_and_grad,
    check_reduction,
)

__all__ = ["BCELoss", "BCEWithLogitsLoss"]


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

    __slots__ = ("weight", "reduction", "pos_weight")

    def __init__(
        self,
        weight: Optional[ArrayLike] = None,
        reduction: str = "mean",
        pos_weight: Optional[ArrayLike] = None,
    ) -> None:
        self.weight = None if weight is None else as_numeric("weight", weight)
        self.reduction = check_reduction(reduction)
        self.pos_weight = None if pos_weight is None else as_numeric("pos_weight", pos_weight)

    def __call__(self, input: ArrayLike, target: ArrayLike, *, out: Optional[NDArray[Any]] = None) -> Loss:
        """The loss; see :func:`fastbce.binary_cross_entropy_with_logits`."""
        return binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight, out=out)

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
        )

    def __repr__(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight={_describe(self.weight)}")
        if self.pos_weight is not None:
            parts.append(f"pos_weight={_describe(self.pos_weight)}")
        return f"{type(self).__name__}({', '.join(parts)})"


class BCELoss:
    """Binary cross-entropy on probabilities, with its weight bound.

    ``BCELoss(weight, reduction)(input, target)`` is
    :func:`fastbce.binary_cross_entropy` with those arguments.

    Parameters
    ----------
    weight : array_like, optional
    reduction : {'mean', 'sum', 'none'}, default 'mean'

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> loss = fb.BCELoss(reduction="sum")
    >>> loss
    BCELoss(reduction='sum')
    >>> print(f"{loss(np.array([0.9, 0.2]), np.array([1, 0])):.6f}")
    0.328504
    """

    __slots__ = ("weight", "reduction")

    def __init__(self, weight: Optional[ArrayLike] = None, reduction: str = "mean") -> None:
        self.weight = None if weight is None else as_numeric("weight", weight)
        self.reduction = check_reduction(reduction)

    def __call__(self, input: ArrayLike, target: ArrayLike, *, out: Optional[NDArray[Any]] = None) -> Loss:
        """The loss; see :func:`fastbce.binary_cross_entropy`."""
        return binary_cross_entropy(input, target, self.weight, self.reduction, out=out)

    def grad(
        self,
        input: ArrayLike,
        target: ArrayLike,
        *,
        grad_output: ArrayLike = 1.0,
        out: Optional[NDArray[Any]] = None,
    ) -> NDArray[Any]:
        """The gradient; see :func:`fastbce.binary_cross_entropy_grad`."""
        return binary_cross_entropy_grad(input, target, self.weight, self.reduction, grad_output=grad_output, out=out)

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
            input, target, self.weight, self.reduction, grad_output=grad_output, out=out
        )

    def __repr__(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight={_describe(self.weight)}")
        return f"{type(self).__name__}({', '.join(parts)})"
