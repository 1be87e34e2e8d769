"""How many threads the kernels use."""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings
from typing import Iterator

from . import _core

__all__ = ["get_num_threads", "set_num_threads", "num_threads"]

ENV_VAR = "FASTBCE_NUM_THREADS"


def get_num_threads() -> int:
    """The number of threads large calls use.

    The default is the number of CPUs this process may run on, or the value
    of the environment variable ``FASTBCE_NUM_THREADS`` when fastbce was
    imported.

    Examples
    --------
    >>> import fastbce as fb
    >>> fb.get_num_threads() >= 1
    True
    """
    return int(_core.get_num_threads())


def set_num_threads(n: int) -> None:
    """Set the number of threads large calls use, for the whole process.

    Arrays below 32,768 elements (float32; 16,384 for float64; see
    :func:`show_config`) are computed on the calling thread, where a second
    thread would cost more than it saves. Results do not depend on the
    thread count: sums are bitwise the same for any `n`. The helper threads
    are started at the first call that needs them and end when the setting
    changes (so a new setting costs starting them again: tens of
    microseconds per thread); a forked child starts its own.

    Parameters
    ----------
    n : int
        At least 1 and at most 8 per CPU (``8 * os.cpu_count()``): more
        threads than that only add switching between them.

    Raises
    ------
    TypeError
        `n` is not an integer.
    ValueError
        `n` is less than 1 or more than 8 per CPU.

    Examples
    --------
    >>> import fastbce as fb
    >>> fb.set_num_threads(2)
    >>> fb.get_num_threads()
    2
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"the number of threads must be an integer, got {type(n).__name__}")
    _core.set_num_threads(int(n))


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Use `n` threads inside a ``with`` block, then restore the previous count.

    The setting is process-wide (like :func:`set_num_threads`): other Python
    threads calling fastbce meanwhile use it too.

    Examples
    --------
    >>> import fastbce as fb
    >>> with fb.num_threads(1):
    ...     fb.get_num_threads()
    1
    """
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)


def apply_environment() -> None:
    """Apply ``FASTBCE_NUM_THREADS``: warn and keep the default if it is not a
    positive integer, warn and cap it above 8 threads per CPU."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return
    try:
        n = int(value)
        if n < 1:
            raise ValueError
    except ValueError:
        warnings.warn(
            f"ignoring {ENV_VAR}={value!r}: expected an integer of at least 1",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    most = _core.max_num_threads()
    if n > most:
        warnings.warn(
            f"{ENV_VAR}={value!r} is more than 8 threads per CPU; using {most}",
            RuntimeWarning,
            stacklevel=3,
        )
        n = most
    _core.set_num_threads(n)
