"""The native kernels; use the functions of the ``fastbce`` package instead."""

from typing import Any, Optional, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CHUNK",
    "OUTPUT_CACHE_MAX_BLOCKS",
    "OUTPUT_CACHE_MIN_BYTES",
    "Decline",
    "Declined",
    "OverlapError",
    "PARALLEL_MIN_LEN_F32",
    "PARALLEL_MIN_LEN_F64",
    "Request",
    "RunningSums",
    "__version__",
    "available_simd_levels",
    "bin_sums",
    "check_reduction",
    "conversion_error",
    "evaluate",
    "get_num_threads",
    "get_output_cache",
    "get_simd_level",
    "max_num_threads",
    "nonzero_per_column",
    "pools_built",
    "set_num_threads",
    "set_output_cache",
    "set_simd_level",
    "sigmoid",
]
__version__: str
CHUNK: int
OUTPUT_CACHE_MAX_BLOCKS: int
OUTPUT_CACHE_MIN_BYTES: int
PARALLEL_MIN_LEN_F32: int
PARALLEL_MIN_LEN_F64: int

class OverlapError(ValueError): ...

@final
class Decline:
    Convert: Decline
    Overlap: Decline

@final
class Declined:
    @property
    def reason(self) -> Decline: ...
    @property
    def argument(self) -> str: ...

@final
class Request:
    def __new__(cls, *, loss: str, value: bool, grad: bool, hess: bool = False) -> Request: ...
    @property
    def loss(self) -> str: ...
    @property
    def value(self) -> bool: ...
    @property
    def grad(self) -> bool: ...
    @property
    def hess(self) -> bool: ...

@final
class RunningSums:
    def __new__(cls, size: Optional[int] = None) -> RunningSums: ...
    @property
    def total(self) -> float: ...
    @property
    def sums(self) -> Optional[NDArray[np.float64]]: ...

def evaluate(
    request: Request,
    input: object,
    target: object,
    weight: object,
    reduction: object,
    pos_weight: object = None,
    grad_output: object = None,
    out: object = None,
    axis: object = None,
    label_smoothing: float = 0.0,
    min_hess: Optional[float] = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
    *,
    into: Optional[RunningSums] = None,
    check_only: bool = False,
) -> Any: ...
def sigmoid(x: object, *, out: object = None) -> Any: ...
def nonzero_per_column(labels: Any) -> list[int]: ...
def bin_sums(
    p: NDArray[np.float64],
    y: NDArray[np.float64],
    weight: Optional[NDArray[np.float64]],
    group: Optional[NDArray[np.int64]],
    groups: int,
    edges: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.uint64]]: ...
def check_reduction(reduction: object) -> str: ...
def conversion_error(name: str, error: BaseException) -> Exception: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def max_num_threads() -> int: ...
def pools_built() -> int: ...
def get_simd_level() -> str: ...
def available_simd_levels() -> list[str]: ...
def set_simd_level(level: str) -> None: ...
def get_output_cache() -> tuple[int, int, int]: ...
def set_output_cache(max_bytes: int) -> None: ...
