"""fastbce: fast, numerically stable binary cross-entropy over NumPy arrays.

The functions and classes follow ``torch.nn.functional`` and ``torch.nn``
(same names, arguments and numbers), computed by a Rust core that reads
arrays of any layout in place, on all cores, with the GIL released.
"""

from __future__ import annotations

from . import _core
from ._accumulate import CHUNK_ELEMENTS, LossAccumulator
from ._config import apply_environment as _apply_simd_environment
from ._config import set_output_cache, show_config
from ._focal import (
    sigmoid_focal_loss,
    sigmoid_focal_loss_grad,
    sigmoid_focal_loss_grad_and_hess,
    sigmoid_focal_loss_hess,
    sigmoid_focal_loss_value_and_grad,
)
from ._functional import (
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
    sigmoid,
)
from ._modules import BCELoss, BCEWithLogitsLoss, SigmoidFocalLoss
from ._result import ScoreResult
from ._scoring import score
from ._threads import apply_environment as _apply_environment
from ._threads import get_num_threads, num_threads, set_num_threads

__version__: str = _core.__version__

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CHUNK_ELEMENTS",
    "LossAccumulator",
    "ScoreResult",
    "SigmoidFocalLoss",
    "__version__",
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
    "get_num_threads",
    "num_threads",
    "score",
    "set_num_threads",
    "set_output_cache",
    "show_config",
    "sigmoid",
    "sigmoid_focal_loss",
    "sigmoid_focal_loss_grad",
    "sigmoid_focal_loss_grad_and_hess",
    "sigmoid_focal_loss_hess",
    "sigmoid_focal_loss_value_and_grad",
]

_apply_environment()
_apply_simd_environment()
