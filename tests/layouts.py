"""The same logical array in every memory layout the kernels must read in place."""

from __future__ import annotations

import numpy as np

LAYOUTS = ("c", "fortran", "transposed", "strided", "reversed", "broadcast")


def in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """A view equal to `a` (for 'broadcast': equal to `a`'s first index along
    axis 0, repeated) laid out in memory as `layout` says."""
    a = np.asarray(a)
    if layout == "c" or a.ndim == 0:
        return np.ascontiguousarray(a)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "transposed":
        return np.ascontiguousarray(a.T).T
    if layout == "strided":
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "reversed":
        flipped = np.ascontiguousarray(np.flip(a))
        return np.flip(flipped)
    if layout == "broadcast":
        return np.broadcast_to(a[:1], a.shape)
    raise ValueError(layout)


def broadcastable_shape(shape: tuple, keep: list, drop_leading: int) -> tuple:
    """`shape` with the axes where `keep` is False set to 1, and the first
    `drop_leading` axes removed: a shape that broadcasts to `shape`."""
    out = tuple(n if k else 1 for n, k in zip(shape, keep, strict=True))
    return out[drop_leading:]
