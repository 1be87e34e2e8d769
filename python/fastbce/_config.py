"""What runs: the version, the instruction set, the threads."""

from __future__ import annotations

import os
import platform
import warnings
from typing import Any, Dict, Optional

import numpy as np

from . import _core
from ._threads import ENV_VAR as THREADS_ENV_VAR

__all__ = ["show_config"]

SIMD_ENV_VAR = "FASTBCE_SIMD"


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
            "parallel_from_elements": {
                "float32": _core.PARALLEL_MIN_LEN_F32,
                "float64": _core.PARALLEL_MIN_LEN_F64,
            },
            "env": os.environ.get(THREADS_ENV_VAR),
        },
        "reduction_chunk_elements": _core.CHUNK,
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
    print(f"  numpy {info['numpy']}, Python {info['python']}, {info['machine']}")
    return None


def apply_environment() -> None:
    """Apply ``FASTBCE_SIMD``; warn and keep the detected level if it is unusable."""
    value = os.environ.get(SIMD_ENV_VAR, "").strip().lower()
    if not value:
        return
    try:
        _core.set_simd_level(value)
    except ValueError as exc:
        warnings.warn(f"ignoring {SIMD_ENV_VAR}={value!r}: {exc}", RuntimeWarning, stacklevel=3)
