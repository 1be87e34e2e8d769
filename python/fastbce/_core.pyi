"""The native kernels; use the functions of the ``fastbce`` package instead."""

from typing import Any, Literal, Optional, overload

from numpy.typing import NDArray

__all__ = [
    "CHUNK",
    "OUTPUT_CACHE_MAX_BLOCKS",
    "OUTPUT_CACHE_MIN_BYTES",
    "OverlapError",
    "PARALLEL_MIN_LEN_F32",
    "PARALLEL_MIN_LEN_F64",
    "__version__",
    "available_simd_levels",
    "bce",
    "get_num_threads",
    "get_output_cache",
    "get_simd_level",
    "max_num_threads",
    "pools_built",
    "quick",
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

@overload
def bce(
    probabilities: bool,
    input: NDArray[Any],
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    pos_weight: Optional[NDArray[Any]],
    grad_output: Optional[NDArray[Any]],
    grad_scale: float,
    sum: bool,
    loss_out: Optional[NDArray[Any]],
    grad_out: Optional[NDArray[Any]],
    axis_sums: Optional[NDArray[Any]] = None,
    reduced: Optional[list[bool]] = None,
    exact: Literal[False] = False,
    fresh: bool = False,
    scratch: bool = False,
) -> float: ...
@overload
def bce(
    probabilities: bool,
    input: NDArray[Any],
    target: NDArray[Any],
    weight: Optional[NDArray[Any]],
    pos_weight: Optional[NDArray[Any]],
    grad_output: Optional[NDArray[Any]],
    grad_scale: float,
    sum: bool,
    loss_out: Optional[NDArray[Any]],
    grad_out: Optional[NDArray[Any]],
    axis_sums: Optional[NDArray[Any]] = None,
    reduced: Optional[list[bool]] = None,
    *,
    exact: Literal[True],
    fresh: bool = False,
    scratch: bool = False,
) -> list[float]: ...
def quick(
    probabilities: bool,
    input: object,
    target: object,
    weight: object,
    pos_weight: object,
    reduction: object,
    value: bool,
    grad: bool,
    grad_output: object,
    out: object,
) -> Optional[tuple[Any, Any]]: ...
def sigmoid(input: NDArray[Any], out: NDArray[Any], fresh: bool = False) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def max_num_threads() -> int: ...
def pools_built() -> int: ...
def get_simd_level() -> str: ...
def available_simd_levels() -> list[str]: ...
def set_simd_level(level: str) -> None: ...
def get_output_cache() -> tuple[int, int, int]: ...
def set_output_cache(max_bytes: int) -> None: ...
