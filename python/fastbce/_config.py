"""What runs: the version, the instruction set, the threads, the output cache."""

from __future__ import annotations

import numbers
import os
import platform
import sys
import warnings
from typing import Any, Dict, Optional

import numpy as np

from . import _core
from ._threads import ENV_VAR as THREADS_ENV_VAR

__all__ = ["set_output_cache", "show_config"]

SIMD_ENV_VAR = "FASTBCE_SIMD"
OUTPUT_CACHE_ENV_VAR = "FASTBCE_OUTPUT_CACHE"


def config() -> Dict[str, Any]:
    """The configuration as a dictionary (see :func:`show_config`)."""
    return {
        "version": _core.__version__,
        "simd": {
            "level": _core.get_simd_level(),
            "available": _core.available_simd_levels(),
            "env": os.environ.get(SIMD_ENV_VAR),
        },
        "threads": {
            "count": _core.get_num_threads(),
            "max": _core.max_num_threads(),
            "pools_built": _core.pools_built(),
            "parallel_from_elements": {
                "float32": _core.PARALLEL_MIN_LEN_F32,
                "float64": _core.PARALLEL_MIN_LEN_F64,
            },
            "env": os.environ.get(THREADS_ENV_VAR),
        },
        "reduction_chunk_elements": _core.CHUNK,
        "output_cache": _output_cache(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}",
    }


def show_config(mode: str = "stdout") -> Optional[Dict[str, Any]]:
    """Show which version, instruction set and thread count fastbce uses.

    The kernels pick the best instruction set the CPU has when fastbce is
    imported (AVX-512, AVX2+FMA or SSE2 on x86-64; NEON on aarch64). The
    environment variable ``FASTBCE_SIMD`` (``avx2``, ``sse2``, ...) forces
    a lower one, for comparison or to rule a level out.

    Parameters
    ----------
    mode : {'stdout', 'dicts'}, default 'stdout'
        Print the configuration, or return it as a dictionary.

    Examples
    --------
    >>> import fastbce as fb
    >>> fb.show_config("dicts")["simd"]["level"] in fb.show_config("dicts")["simd"]["available"]
    True
    """
    info = config()
    if mode == "dicts":
        return info
    if mode != "stdout":
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    simd, threads = info["simd"], info["threads"]
    start = threads["parallel_from_elements"]
    forced = f"; {SIMD_ENV_VAR}={simd['env']}" if simd["env"] else ""
    from_env = f"; {THREADS_ENV_VAR}={threads['env']}" if threads["env"] else ""
    print(f"fastbce {info['version']}")
    print(f"  SIMD level:   {simd['level']} (this CPU runs: {', '.join(simd['available'])}{forced})")
    print(
        f"  threads:      {threads['count']} (parallel from {start['float32']:,} float32"
        f" / {start['float64']:,} float64 elements{from_env})"
    )
    print(f"  reductions:   float64, chunks of {info['reduction_chunk_elements']:,} elements, exact combination")
    cache = info["output_cache"]
    mib = 1 << 20
    print(
        f"  output cache: up to {cache['max_bytes'] / mib:,.0f} MiB in {cache['max_blocks']} blocks of"
        f" {cache['min_bytes'] / mib:.0f} MiB or more (holding {cache['blocks']}: {cache['bytes'] / mib:,.1f} MiB)"
    )
    print(f"  numpy {info['numpy']}, Python {info['python']}, {info['machine']}")
    return None


def _output_cache() -> Dict[str, Any]:
    max_bytes, blocks, held = _core.get_output_cache()
    return {
        "max_bytes": max_bytes,
        "blocks": blocks,
        "bytes": held,
        "max_blocks": _core.OUTPUT_CACHE_MAX_BLOCKS,
        "min_bytes": _core.OUTPUT_CACHE_MIN_BYTES,
        "env": os.environ.get(OUTPUT_CACHE_ENV_VAR),
    }


def set_output_cache(max_bytes: int) -> None:
    """Bound the memory fastbce keeps from large outputs after they are freed.

    A new output array of 8 MiB or more (``reduction="none"``, gradients
    without ``out=``) takes its memory from a cache of the blocks of freed
    outputs, when one of the same size is there: fresh memory would have to
    be zeroed by the system first, which at 1e7 elements costs as much as
    computing the loss. The cache holds at most 4 blocks and `max_bytes`
    bytes (1 GiB by default, or the environment variable
    ``FASTBCE_OUTPUT_CACHE`` when fastbce was imported). Held blocks are
    marked as reclaimable on Linux: the system takes their pages back when
    it runs short of memory. The arrays themselves are ordinary NumPy arrays
    that own their data.

    Parameters
    ----------
    max_bytes : int
        At least 0; 0 turns the cache off and releases what it holds.

    Raises
    ------
    TypeError
        `max_bytes` is not an integer.
    ValueError
        `max_bytes` is negative.

    Examples
    --------
    >>> import fastbce as fb
    >>> fb.set_output_cache(0)
    >>> fb.show_config("dicts")["output_cache"]["bytes"]
    0
    >>> fb.set_output_cache(1 << 30)
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral):
        raise TypeError(f"max_bytes must be an integer, got {type(max_bytes).__name__}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be at least 0, got {max_bytes}")
    _core.set_output_cache(min(int(max_bytes), sys.maxsize))


def apply_environment() -> None:
    """Apply ``FASTBCE_SIMD`` and ``FASTBCE_OUTPUT_CACHE``; warn and keep the default for unusable values."""
    value = os.environ.get(OUTPUT_CACHE_ENV_VAR, "").strip()
    if value:
        try:
            set_output_cache(int(value))
        except ValueError:
            warnings.warn(
                f"ignoring {OUTPUT_CACHE_ENV_VAR}={value!r}: expected a number of bytes (an integer of at least 0)",
                RuntimeWarning,
                stacklevel=3,
            )
    value = os.environ.get(SIMD_ENV_VAR, "").strip().lower()
    if not value:
        return
    try:
        _core.set_simd_level(value)
    except ValueError as exc:
        warnings.warn(f"ignoring {SIMD_ENV_VAR}={value!r}: {exc}", RuntimeWarning, stacklevel=3)
