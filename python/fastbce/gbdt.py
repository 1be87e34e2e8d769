"""Objectives and evaluation metrics for gradient-boosting libraries.

XGBoost, LightGBM and CatBoost take custom objectives as Python callables
that return the gradient and second derivative of the loss with respect to
the raw margin (the logit), and each has its own conventions: argument
order, shapes, dtypes, who applies the sample weights, the sign of the
derivatives, where boosting starts. The objects here follow each library's
conventions exactly, and compute with fastbce's one-pass kernels:

========================  ====================================================
XGBoost                   ``xgb.train(params, dtrain, obj=XGBoostObjective())``
                          or ``XGBClassifier(objective=XGBoostObjective())``
LightGBM                  ``params["objective"] = LightGBMObjective()`` or
                          ``LGBMClassifier(objective=LightGBMObjective())``
CatBoost                  ``CatBoostClassifier(loss_function=CatBoostObjective())``
========================  ====================================================

Each takes ``loss="logloss"`` (binary cross-entropy with logits, with
``pos_weight`` and ``label_smoothing``) or ``loss="focal"`` (the focal loss,
with ``alpha`` and ``gamma``), and the metrics the same. Custom objectives do
not start from the data's log-odds as the built-in ones do:
:func:`initial_margin` gives that start (XGBoost's ``base_score``,
LightGBM's ``init_score``, CatBoost's ``baseline``). See docs/gbdt.md.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._focal import sigmoid_focal_loss, sigmoid_focal_loss_grad_and_hess
from ._functional import (
    as_numeric,
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad_and_hess,
)

__all__ = [
    "CatBoostMetric",
    "CatBoostObjective",
    "LightGBMObjective",
    "LightGBMMetric",
    "XGBoostMetric",
    "XGBoostObjective",
    "initial_margin",
]

LOSSES = ("logloss", "focal")
# XGBoost's and LightGBM's floor of the logistic loss's second derivative.
_LOGISTIC_MIN_HESS = 1e-16


def initial_margin(
    label: ArrayLike,
    weight: Optional[ArrayLike] = None,
    *,
    scale_pos_weight: float = 1.0,
    label_smoothing: float = 0.0,
) -> float:
    """The margin boosting starts from: the log-odds of the weighted mean
    (smoothed) label, where the built-in binary objectives start.

    Parameters
    ----------
    label : array_like
        Labels in [0, 1].
    weight : array_like, optional
        Sample weights.
    scale_pos_weight : float, default 1.0
        XGBoost's weighting of the exact positives, as in the objective.
    label_smoothing : float, default 0.0
        As in the objective.

    Returns
    -------
    float
        ``log(m / (1 - m))`` for the weighted mean label ``m``.

    Examples
    --------
    >>> from fastbce import gbdt
    >>> round(gbdt.initial_margin([1, 0, 0, 0]), 6)
    -1.098612
    """
    y = np.asarray(label, np.float64).ravel()
    w = _weights(y, weight, scale_pos_weight)
    y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    mean = float(np.sum(w * y) / np.sum(w)) if w is not None else float(np.mean(y))
    return float(np.log(mean) - np.log1p(-mean))


def _weights(y: NDArray[Any], weight: Optional[ArrayLike], scale_pos_weight: float) -> Optional[NDArray[Any]]:
    """Sample weights (None for none), times `scale_pos_weight` on the exact positives."""
    w = None if weight is None or np.size(weight) == 0 else np.asarray(weight)
    if scale_pos_weight != 1.0:
        factor = np.where(y == 1, float(scale_pos_weight), 1.0)
        w = factor if w is None else w.reshape(w.shape + (1,) * (y.ndim - w.ndim)) * factor
    return w


class _Loss:
    """The loss an objective or metric computes, with its parameters."""

    def __init__(
        self,
        loss: str,
        pos_weight: Optional[ArrayLike],
        label_smoothing: float,
        alpha: float,
        gamma: float,
        min_hess: Optional[float],
        scale_pos_weight: float = 1.0,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if pos_weight is not None and loss == "focal":
            raise ValueError("pos_weight weights the logloss's positive term; the focal loss uses alpha")
        self.loss = loss
        self.pos_weight = None if pos_weight is None else as_numeric("pos_weight", pos_weight)
        self.label_smoothing = float(label_smoothing)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.min_hess = min_hess
        self.scale_pos_weight = float(scale_pos_weight)
        # Checks the parameters now, as a call would.
        shape = (1,) if self.pos_weight is None else (1,) + self.pos_weight.shape
        self.derivatives(np.zeros(shape), np.zeros(shape), None)

    def derivatives(
        self, margin: NDArray[Any], label: NDArray[Any], weight: Optional[ArrayLike]
    ) -> Tuple[NDArray[Any], NDArray[Any]]:
        """Gradient and second derivative of each element's loss."""
        w = _weights(label, weight, self.scale_pos_weight)
        if w is not None and w.shape != margin.shape:
            w = w.reshape(w.shape + (1,) * (margin.ndim - w.ndim))
        if self.loss == "focal":
            return sigmoid_focal_loss_grad_and_hess(
                margin,
                label,
                self.alpha,
                self.gamma,
                weight=w,
                label_smoothing=self.label_smoothing,
                min_hess=self.min_hess,
            )
        return binary_cross_entropy_with_logits_grad_and_hess(
            margin,
            label,
            w,
            "none",
            self.pos_weight,
            label_smoothing=self.label_smoothing,
            min_hess=self.min_hess,
        )

    def mean(
        self, prediction: NDArray[Any], label: NDArray[Any], weight: Optional[ArrayLike], from_logits: bool
    ) -> float:
        """The weighted mean loss (divided by the sum of the weights)."""
        w = _weights(label, weight, self.scale_pos_weight)
        if w is not None and w.shape != prediction.shape:
            w = np.broadcast_to(w.reshape(w.shape + (1,) * (prediction.ndim - w.ndim)), prediction.shape)
        if not from_logits:
            # Probabilities, as the libraries' built-in objectives pass them:
            # clipped away from 0 and 1 as their logloss metrics clip.
            p = np.clip(np.asarray(prediction, np.float64), 1e-15, 1 - 1e-15)
            if self.loss == "focal":
                prediction, from_logits = np.log(p) - np.log1p(-p), True
            else:
                ls = self.label_smoothing
                summed = binary_cross_entropy(p, label, w, "sum", label_smoothing=ls)
                return float(summed) / (prediction.size if w is None else float(np.sum(w)))
        total: Any
        if self.loss == "focal":
            total = sigmoid_focal_loss(
                prediction, label, self.alpha, self.gamma, "sum", weight=w, label_smoothing=self.label_smoothing
            )
        else:
            total = binary_cross_entropy_with_logits(
                prediction, label, w, "sum", self.pos_weight, label_smoothing=self.label_smoothing
            )
        return float(total) / (prediction.size if w is None else float(np.sum(w)))

    def name(self) -> str:
        return "logloss" if self.loss == "logloss" else f"focal(alpha={self.alpha:g},gamma={self.gamma:g})"


def _is_dataset(value: Any) -> bool:
    """Whether `value` is a library's dataset (XGBoost's DMatrix, LightGBM's Dataset)."""
    return hasattr(value, "get_label") and hasattr(value, "get_weight")


def _margins(predt: Any) -> NDArray[Any]:
    """Raw margins as a float array."""
    margin = np.asarray(predt)
    if margin.dtype.kind != "f":
        margin = margin.astype(np.float64)
    return margin


class XGBoostObjective:
    """A custom objective for XGBoost, in its conventions.

    Works both with ``xgb.train(params, dtrain, obj=objective)`` (called
    with the raw margins and the ``DMatrix``) and with the scikit-learn
    interface, ``XGBClassifier(objective=objective)`` (called with labels,
    margins and ``sample_weight``). Returns the gradient and second
    derivative shaped ``(n_samples, n_targets)``, weighted by the sample
    weights (XGBoost does not weight a custom objective's output) and, as
    XGBoost's ``scale_pos_weight`` does, by `scale_pos_weight` on the
    samples whose label is exactly 1.

    With ``loss="logloss"`` and the defaults it equals XGBoost's
    ``binary:logistic`` (second derivative floored at 1e-16, as XGBoost
    floors it); start it from :func:`initial_margin` (``base_score``).

    Parameters
    ----------
    loss : {'logloss', 'focal'}, default 'logloss'
    pos_weight : array_like, optional
        The logloss's weight of the positive term (soft labels included;
        per target for multi-label data).
    scale_pos_weight : float, default 1.0
        XGBoost's: a weight on the samples labelled exactly 1.
    label_smoothing : float, default 0.0
    alpha, gamma : float
        The focal loss's (see :func:`fastbce.sigmoid_focal_loss`).
    min_hess : float, default 1e-16
        Floor of the second derivative (the focal loss's is negative for
        confidently wrong predictions, which Newton steps cannot use).
    """

    def __init__(
        self,
        loss: str = "logloss",
        *,
        pos_weight: Optional[ArrayLike] = None,
        scale_pos_weight: float = 1.0,
        label_smoothing: float = 0.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        min_hess: float = _LOGISTIC_MIN_HESS,
    ) -> None:
        self._loss = _Loss(loss, pos_weight, label_smoothing, alpha, gamma, min_hess, scale_pos_weight)

    def __call__(
        self, first: Any, second: Any, *, sample_weight: Optional[ArrayLike] = None
    ) -> Tuple[NDArray[Any], NDArray[Any]]:
        if _is_dataset(second):  # xgb.train: (predt, dtrain)
            predt, label, weight = first, second.get_label(), second.get_weight()
        else:  # scikit-learn interface: (y_true, y_pred, sample_weight=...)
            label, predt, weight = first, second, sample_weight
        margin = _margins(predt)
        margin = margin.reshape(margin.shape[0], -1)
        label = np.asarray(label).reshape(margin.shape)
        weight = None if weight is None or np.size(weight) == 0 else np.asarray(weight).reshape(-1, 1)
        return self._loss.derivatives(margin, label, weight)

    def __repr__(self) -> str:
        return f"XGBoostObjective({self._loss.name()})"


class XGBoostMetric:
    """The mean loss as an XGBoost evaluation metric.

    ``xgb.train(..., custom_metric=metric)`` calls it with the predictions
    and the ``DMatrix`` and gets ``(name, value)``; the scikit-learn
    interface (``eval_metric=metric``) calls it with labels and predictions
    and gets the value. The mean is weighted (divided by the sum of the
    sample weights) as XGBoost's ``logloss`` is.

    Parameters
    ----------
    loss, pos_weight, scale_pos_weight, label_smoothing, alpha, gamma
        As for :class:`XGBoostObjective`.
    from_logits : bool, default True
        XGBoost passes raw margins to a metric when the objective is custom,
        probabilities when it is built in (``binary:logistic``): set False
        for the latter.
    """

    def __init__(
        self,
        loss: str = "logloss",
        *,
        pos_weight: Optional[ArrayLike] = None,
        scale_pos_weight: float = 1.0,
        label_smoothing: float = 0.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = True,
    ) -> None:
        self._loss = _Loss(loss, pos_weight, label_smoothing, alpha, gamma, None, scale_pos_weight)
        self.from_logits = from_logits
        self.__name__ = self._loss.name()

    def __call__(self, first: Any, second: Any, *, sample_weight: Optional[ArrayLike] = None) -> Any:
        if _is_dataset(second):
            predt = np.asarray(first)
            label = np.asarray(second.get_label(), np.float64).reshape(predt.shape)
            value = self._loss.mean(predt, label, _per_sample(second.get_weight()), self.from_logits)
            return self.__name__, value
        predt = np.asarray(second)
        label = np.asarray(first, np.float64).reshape(predt.shape)
        return self._loss.mean(predt, label, _per_sample(sample_weight), self.from_logits)


def _per_sample(weight: Optional[ArrayLike]) -> Optional[NDArray[Any]]:
    return None if weight is None or np.size(weight) == 0 else np.asarray(weight)


class LightGBMObjective:
    """A custom objective for LightGBM, in its conventions.

    Works with ``params["objective"] = objective`` in ``lgb.train`` (called
    with the raw scores and the ``Dataset``) and with the scikit-learn
    interface, ``LGBMClassifier(objective=objective)``, in its 2-, 3- and
    4-argument forms (``(y_true, y_pred[, weight[, group]])``). LightGBM
    does not weight a custom objective's output: this one multiplies by the
    ``Dataset``'s (or the given) weights. Returns float32 arrays, the type
    LightGBM keeps them in.

    With ``loss="logloss"`` it equals LightGBM's ``binary`` objective; a
    custom objective starts from 0, so pass :func:`initial_margin` as the
    ``Dataset``'s ``init_score`` (and add it to ``predict(raw_score=True)``).

    Parameters
    ----------
    loss, pos_weight, label_smoothing, alpha, gamma
        As for :class:`XGBoostObjective`.
    min_hess : float, default 1e-16
        Floor of the second derivative.
    """

    def __init__(
        self,
        loss: str = "logloss",
        *,
        pos_weight: Optional[ArrayLike] = None,
        label_smoothing: float = 0.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        min_hess: float = _LOGISTIC_MIN_HESS,
    ) -> None:
        self._loss = _Loss(loss, pos_weight, label_smoothing, alpha, gamma, min_hess)

    def __call__(
        self, first: Any, second: Any, weight: Optional[ArrayLike] = None, group: Any = None
    ) -> Tuple[NDArray[np.float32], NDArray[np.float32]]:
        if _is_dataset(second):  # lgb.train: (preds, train_data)
            preds, label, weight = first, second.get_label(), second.get_weight()
        else:  # scikit-learn: (y_true, y_pred[, weight[, group]])
            label, preds = first, second
        margin = _margins(preds)
        label = np.asarray(label).reshape(margin.shape)
        grad, hess = self._loss.derivatives(margin, label, _per_sample(weight))
        return grad.astype(np.float32, copy=False), hess.astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"LightGBMObjective({self._loss.name()})"


class LightGBMMetric:
    """The mean loss as a LightGBM evaluation metric: ``feval=metric`` in
    ``lgb.train`` (``(preds, eval_data)``) or ``eval_metric=metric`` in the
    scikit-learn interface (``(y_true, y_pred[, weight])``); returns
    ``(name, value, False)`` (lower is better).

    Parameters
    ----------
    loss, pos_weight, label_smoothing, alpha, gamma
        As for :class:`LightGBMObjective`.
    from_logits : bool, default True
        LightGBM passes raw scores when the objective is custom,
        probabilities when it is built in: set False for the latter.
    """

    def __init__(
        self,
        loss: str = "logloss",
        *,
        pos_weight: Optional[ArrayLike] = None,
        label_smoothing: float = 0.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = True,
    ) -> None:
        self._loss = _Loss(loss, pos_weight, label_smoothing, alpha, gamma, None)
        self.from_logits = from_logits

    def __call__(self, first: Any, second: Any, weight: Optional[ArrayLike] = None) -> Tuple[str, float, bool]:
        if _is_dataset(second):
            preds, label, weight = np.asarray(first), second.get_label(), second.get_weight()
        else:
            label, preds = first, np.asarray(second)
        label = np.asarray(label, np.float64).reshape(preds.shape)
        return self._loss.name(), self._loss.mean(preds, label, _per_sample(weight), self.from_logits), False


class CatBoostObjective:
    """A custom objective for CatBoost, in its conventions:
    ``CatBoostClassifier(loss_function=CatBoostObjective())``.

    CatBoost maximizes a log-likelihood: ``calc_ders_range`` returns, per
    sample, the first and second derivatives of minus the loss (``y - p``
    and ``-p (1 - p)`` for the logloss), times the sample weight. The
    class sets ``no_jit`` so that CatBoost does not try to compile the
    method with Numba (it calls fastbce's kernels, which Numba cannot).

    Parameters
    ----------
    loss, pos_weight, label_smoothing, alpha, gamma
        As for :class:`XGBoostObjective`.
    min_hess : float, default 1e-16
        Floor of the loss's second derivative.
    """

    no_jit = True

    def __init__(
        self,
        loss: str = "logloss",
        *,
        pos_weight: Optional[ArrayLike] = None,
        label_smoothing: float = 0.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
        min_hess: float = _LOGISTIC_MIN_HESS,
    ) -> None:
        self._loss = _Loss(loss, pos_weight, label_smoothing, alpha, gamma, min_hess)

    def calc_ders_range(self, approxes: Any, targets: Any, weights: Any) -> Any:
        margin = np.asarray(approxes, np.float64)
        label = np.asarray(targets, np.float64)
        grad, hess = self._loss.derivatives(margin, label, None if weights is None else np.asarray(weights))
        return np.column_stack((-grad, -hess))


class CatBoostMetric:
    """The mean loss as a CatBoost evaluation metric
    (``eval_metric=CatBoostMetric()``): CatBoost passes raw margins
    (``approxes``) to custom metrics; weighted by the sample weights."""

    no_jit = True

    def __init__(
        self,
        loss: str = "logloss",
        *,
        pos_weight: Optional[ArrayLike] = None,
        label_smoothing: float = 0.0,
        alpha: float = 0.25,
        gamma: float = 2.0,
    ) -> None:
        self._loss = _Loss(loss, pos_weight, label_smoothing, alpha, gamma, None)

    def is_max_optimal(self) -> bool:
        return False

    def evaluate(self, approxes: Any, target: Any, weight: Any) -> Tuple[float, float]:
        margin = np.asarray(approxes[0], np.float64)
        label = np.asarray(target, np.float64)
        w = None if weight is None else np.asarray(weight, np.float64)
        mean = self._loss.mean(margin, label, w, True)
        total_weight = float(margin.size if w is None else np.sum(w))
        return mean * total_weight, total_weight

    def get_final_error(self, error: float, weight: float) -> float:
        return error / weight if weight else 0.0
