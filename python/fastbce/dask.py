"""The loss and its gradient over Dask arrays, for more than one machine.

    import dask.array as da, fastbce.dask as fbd
    x = da.from_zarr(...)                     # logits, chunked
    loss = fbd.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
    loss.compute()                            # runs fastbce's kernels per block

Everything is lazy. Each block is computed by the same Rust kernels as the
in-memory functions; reductions add float64 partial sums per block, then
combine them in the fixed tree of the Dask graph, so a result is the same on
every run and for any number of workers, given the chunking, and equals the
in-memory result to about 1e-12 relative. Needs the `dask` extra:
``pip install 'fastbce[dask]'``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray

try:
    import dask.array as da
except ImportError:  # pragma: no cover - exercised without the extra
    raise ImportError("fastbce.dask needs Dask: pip install 'fastbce[dask]'") from None

from . import _core
from . import _functional as eager
from ._functional import Axis, check_arguments, sum64

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_value_and_grad",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_value_and_grad",
    "score",
]


def _stand_in(value: Any) -> Any:
    """What the eager checks see of an argument: a Dask array as a
    zero-memory NumPy array of its shape and dtype, anything else as is."""
    if isinstance(value, da.Array):
        return np.broadcast_to(np.empty((), value.dtype), value.shape)
    return value


def _checked(
    probabilities: bool,
    arguments: Tuple[Any, Any, Any, Any],
    reduction: str,
    axis: Axis,
    grad_output: Any = None,
) -> Tuple[np.dtype[Any], Tuple[int, ...]]:
    """The call checked exactly as the eager call checks it (same errors):
    its result dtype, and the axes a mean or sum reduces."""
    x, y, w, pw = (_stand_in(a) for a in arguments)
    grad = grad_output is not None
    go = _stand_in(grad_output) if grad else 1.0
    dtype, reduced = check_arguments(
        probabilities, x, y, w, None if probabilities else pw, reduction, grad=grad, grad_output=go, axis=axis
    )
    ndim = np.ndim(x)
    axes = tuple(range(ndim)) if reduced is None else tuple(d for d in range(ndim) if reduced[d])
    return dtype, axes


def _spread(name: str, value: Any, x: Any) -> Any:
    """`value` (checked to broadcast to the input `x`) as a Dask array with
    its chunks (per block a view with zero strides); None stays None."""
    if value is None:
        return None
    arr = value if isinstance(value, da.Array) else da.asarray(eager.as_numeric(name, value))
    # Chunk the axes it shares with the input as the input is chunked.
    lead = x.ndim - arr.ndim
    arr = arr.rechunk(tuple(x.chunks[lead + d] if n != 1 else (1,) for d, n in enumerate(arr.shape)))
    return da.broadcast_to(arr, x.shape, chunks=x.chunks)


def _operands(input: Any, target: Any, weight: Any, pos_weight: Any) -> Tuple[Any, Any, Any, Any]:
    """The (checked) operands as Dask arrays with the input's chunks."""
    x = input if isinstance(input, da.Array) else da.asarray(eager.as_numeric("input", input))
    y = target if isinstance(target, da.Array) else da.asarray(eager.as_numeric("target", target))
    return x, y.rechunk(x.chunks), _spread("weight", weight, x), _spread("pos_weight", pos_weight, x)


BlockFn = Callable[[NDArray[Any], NDArray[Any], Optional[NDArray[Any]], Optional[NDArray[Any]], int], NDArray[Any]]


def _blocks(fn: BlockFn, x: Any, y: Any, w: Any, pw: Any, **kwargs: Any) -> Any:
    """`fn(x, y, w, pw, first_row)` per block, passing only the operands
    present; `first_row` is the block's first index along axis 0."""
    present = [a is not None for a in (w, pw)]

    def block(xb: Any, yb: Any, *rest: Any, block_info: Any = None) -> Any:
        it = iter(rest)
        wb, pwb = (next(it) if p else None for p in present)
        first_row = block_info[0]["array-location"][0][0] if block_info and xb.ndim else 0
        return fn(xb, yb, wb, pwb, first_row)

    return da.map_blocks(block, x, y, *(a for a in (w, pw) if a is not None), **kwargs)


def _loss(
    probabilities: bool, input: Any, target: Any, weight: Any, pos_weight: Any, reduction: str, axis: Axis
) -> Any:
    pos_weight = None if probabilities else pos_weight
    dtype, axes = _checked(probabilities, (input, target, weight, pos_weight), reduction, axis)
    x, y, w, pw = _operands(input, target, weight, pos_weight)
    if reduction == "none":

        def elements(xb: Any, yb: Any, wb: Any, pwb: Any, first_row: int) -> Any:
            if probabilities:
                return eager.binary_cross_entropy(xb, yb, wb, "none")
            return eager.binary_cross_entropy_with_logits(xb, yb, wb, "none", pwb)

        return _blocks(elements, x, y, w, pw, dtype=dtype)
    total = partial_sums(probabilities, x, y, w, pw, axes)
    if reduction == "mean":
        count = math.prod(x.shape[d] for d in axes)
        total = total / count if count else total * math.nan
    return total.astype(dtype)


RowCheck = Callable[[NDArray[Any], NDArray[Any], int], None]


def partial_sums(
    probabilities: bool, x: Any, y: Any, w: Any, pw: Any, axes: Tuple[int, ...], check: Optional[RowCheck] = None
) -> Any:
    """The loss summed over `axes` in float64 (lazy): one partial sum per
    block and kept index, combined in the fixed tree of the Dask graph.
    `check(x, y, first_row)` runs on each block first."""
    partial_chunks = tuple((1,) * len(c) if d in axes else c for d, c in enumerate(x.chunks))
    everything = len(axes) == x.ndim

    def partial(xb: Any, yb: Any, wb: Any, pwb: Any, first_row: int) -> Any:
        if check is not None:
            check(xb, yb, first_row)
        kept = [1 if d in axes else n for d, n in enumerate(xb.shape)]
        sums = _core.RunningSums(None if everything else math.prod(kept))
        sum64(probabilities, xb, yb, wb, pwb, into=sums, axis=None if everything else axes)
        per_index = sums.sums
        return np.full(kept, sums.total) if per_index is None else per_index.reshape(kept)

    sums = _blocks(partial, x, y, w, pw, dtype=np.float64, chunks=partial_chunks)
    return sums.sum(axis=axes, split_every=8)


def _grad(
    probabilities: bool,
    input: Any,
    target: Any,
    weight: Any,
    pos_weight: Any,
    reduction: str,
    grad_output: Any,
    axis: Axis,
) -> Any:
    pos_weight = None if probabilities else pos_weight
    dtype, axes = _checked(probabilities, (input, target, weight, pos_weight), reduction, axis, grad_output)
    x, y, w, pw = _operands(input, target, weight, pos_weight)
    if reduction == "none":
        axes = ()
    count = math.prod(x.shape[d] for d in axes) if reduction == "mean" else 1
    g = grad_output if isinstance(grad_output, da.Array) else eager.as_numeric("grad_output", grad_output)
    scale = 1.0 / count if count else 1.0
    if g.ndim == 0:
        scale *= float(g)
        go = None
    else:
        kept = tuple(n for d, n in enumerate(x.shape) if d not in axes)
        go = _spread("grad_output", da.expand_dims(da.broadcast_to(da.asarray(g), kept), axes), x)

    def block(xb: Any, yb: Any, *rest: Any) -> Any:
        it = iter(rest)
        wb = next(it) if w is not None else None
        pwb = next(it) if pw is not None else None
        gob = scale * next(it) if go is not None else scale
        if probabilities:
            return eager.binary_cross_entropy_grad(xb, yb, wb, "none", grad_output=gob)
        return eager.binary_cross_entropy_with_logits_grad(xb, yb, wb, "none", pwb, grad_output=gob)

    operands = [a for a in (w, pw, go) if a is not None]
    return da.map_blocks(block, x, y, *operands, dtype=dtype)


def binary_cross_entropy_with_logits(
    input: Any,
    target: Any,
    weight: Optional[Any] = None,
    reduction: str = "mean",
    pos_weight: Optional[Any] = None,
    *,
    axis: Axis = None,
) -> Any:
    """:func:`fastbce.binary_cross_entropy_with_logits` over Dask arrays (lazy).

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastbce.dask as fbd
    >>> x = da.from_array(np.linspace(-3, 3, 12).reshape(6, 2), chunks=(2, 2))
    >>> y = da.from_array(np.tile([0.0, 1.0], (6, 1)), chunks=(2, 2))
    >>> print(f"{fbd.binary_cross_entropy_with_logits(x, y).compute():.6f}")
    1.026954
    """
    return _loss(False, input, target, weight, pos_weight, reduction, axis)


def binary_cross_entropy(
    input: Any, target: Any, weight: Optional[Any] = None, reduction: str = "mean", *, axis: Axis = None
) -> Any:
    """:func:`fastbce.binary_cross_entropy` over Dask arrays (lazy)."""
    return _loss(True, input, target, weight, None, reduction, axis)


def binary_cross_entropy_with_logits_grad(
    input: Any,
    target: Any,
    weight: Optional[Any] = None,
    reduction: str = "mean",
    pos_weight: Optional[Any] = None,
    *,
    grad_output: Any = 1.0,
    axis: Axis = None,
) -> Any:
    """:func:`fastbce.binary_cross_entropy_with_logits_grad` over Dask arrays (lazy)."""
    return _grad(False, input, target, weight, pos_weight, reduction, grad_output, axis)


def binary_cross_entropy_grad(
    input: Any,
    target: Any,
    weight: Optional[Any] = None,
    reduction: str = "mean",
    *,
    grad_output: Any = 1.0,
    axis: Axis = None,
) -> Any:
    """:func:`fastbce.binary_cross_entropy_grad` over Dask arrays (lazy)."""
    return _grad(True, input, target, weight, None, reduction, grad_output, axis)


def binary_cross_entropy_with_logits_value_and_grad(
    input: Any,
    target: Any,
    weight: Optional[Any] = None,
    reduction: str = "mean",
    pos_weight: Optional[Any] = None,
    *,
    grad_output: Any = 1.0,
    axis: Axis = None,
) -> Tuple[Any, Any]:
    """(loss, gradient) over Dask arrays, both lazy (two passes per block)."""
    return (
        _loss(False, input, target, weight, pos_weight, reduction, axis),
        _grad(False, input, target, weight, pos_weight, reduction, grad_output, axis),
    )


def binary_cross_entropy_value_and_grad(
    input: Any,
    target: Any,
    weight: Optional[Any] = None,
    reduction: str = "mean",
    *,
    grad_output: Any = 1.0,
    axis: Axis = None,
) -> Tuple[Any, Any]:
    """(loss, gradient) over Dask arrays, both lazy (two passes per block)."""
    return (
        _loss(True, input, target, weight, None, reduction, axis),
        _grad(True, input, target, weight, None, reduction, grad_output, axis),
    )


def score(
    logits: Any,
    labels: Any,
    weight: Any = None,
    groups: Any = None,
    *,
    pos_weight: Any = None,
    metrics: Any = ("logloss",),
    bins: int = 10,
    strategy: str = "uniform",
    probabilities: bool = False,
    class_names: Optional[Sequence[str]] = None,
) -> Any:
    """:func:`fastbce.score` over Dask arrays (lazy): a `dask.delayed` whose
    result is a `fastbce.ScoreResult`.

    `logits` and `labels` are (N,) or (N, C) Dask arrays (one class per
    column); `weight` per row (N,), per element (N, C), per class (C,) or a
    number; `groups` one (N,) array or a list of them, whose values group the
    rows. Each block is tallied by the in-memory code on a worker, and the
    tallies are merged in a fixed tree, so the sums equal the in-memory ones
    to about 1e-12 relative (AUC and equal-mass bins gather the scores).
    """
    from dask.delayed import delayed

    from ._metrics import parse_metrics

    pw = None if pos_weight is None else np.asarray(pos_weight, np.float64)
    if probabilities and pw is not None:
        raise ValueError("pos_weight applies to logits, not to probabilities")
    settings = dict(metrics=parse_metrics(metrics), bins=bins, strategy=strategy, probabilities=probabilities,
                    pos_weight=pw)  # fmt: skip
    names = list(groups) if isinstance(groups, dict) else None
    tally = tally_of(logits, labels, weight, list(groups.values()) if isinstance(groups, dict) else groups, settings)
    return delayed(_result)(tally, class_names, names, pos_weight, probabilities)


def tally_of(
    logits: Any, labels: Any, weight: Any, groups: Any, settings: Dict[str, Any], check: Optional[RowCheck] = None
) -> Any:
    """The merged `Tally` (made with `settings`, its keyword arguments) of
    the rows of `score`'s arrays, lazy (`dask.delayed`)."""
    from dask.delayed import delayed

    from ._metrics import Tally

    x = logits if isinstance(logits, da.Array) else da.asarray(eager.as_numeric("logits", logits))
    if x.ndim not in (1, 2):
        raise ValueError(f"logits must be (N,) or (N, C), got shape {x.shape}")
    x = x.rechunk({1: -1}) if x.ndim == 2 else x
    y = labels if isinstance(labels, da.Array) else da.asarray(eager.as_numeric("labels", labels))
    if y.shape != x.shape:
        raise ValueError(f"labels has shape {y.shape} but logits has shape {x.shape}; they must match")
    y = y.rechunk(x.chunks)
    classes = x.shape[1] if x.ndim == 2 else 1
    Tally(classes, **settings)  # checks the settings now
    rows = x.chunks[0]
    w = _row_blocks("weight", weight, x, classes)
    group_arrays = [] if groups is None else [groups] if isinstance(groups, da.Array) or np.ndim(groups) == 1 and not (
        isinstance(groups, list)) else list(groups)  # fmt: skip
    g = [da.asarray(a).rechunk((rows,)) for a in group_arrays]
    for a in g:
        if a.shape != (x.shape[0],):
            raise ValueError(f"groups must be (N,) arrays of the {x.shape[0]} rows, got shape {a.shape}")
    starts = np.cumsum([0, *rows[:-1]]).tolist()
    parts = []
    for i, first in enumerate(starts):
        key = (i, 0) if x.ndim == 2 else (i,)
        wb = w[i] if isinstance(w, list) else w
        parts.append(delayed(_tally_block)(x.blocks[key], y.blocks[key], wb, [a.blocks[i] for a in g], first,
                                           classes, settings, check))  # fmt: skip
    while len(parts) > 1:
        parts = [delayed(_merged)(parts[i : i + 8]) for i in range(0, len(parts), 8)]
    return parts[0] if parts else delayed(Tally(classes, **settings))


def _row_blocks(name: str, weight: Any, x: Any, classes: int) -> Any:
    """A weight as per-block pieces (per row or element) or one value (a
    number, or per class)."""
    if weight is None:
        return None
    if not isinstance(weight, da.Array):
        value = eager.as_numeric(name, weight)
        if value.ndim == 0 or value.shape == (classes,) and value.shape != (x.shape[0],):
            return value
        weight = da.asarray(value)
    if weight.shape[0] != x.shape[0] or weight.ndim > 2:
        raise ValueError(f"{name} has shape {weight.shape}; give (N,), (N, C), (C,) or a number for {x.shape}")
    weight = weight.rechunk((x.chunks[0], *((-1,) if weight.ndim == 2 else ())))
    return [weight.blocks[(i, 0) if weight.ndim == 2 else (i,)] for i in range(len(x.chunks[0]))]


def _tally_block(
    xb: Any, yb: Any, wb: Any, gb: Any, first_row: int, classes: int, settings: Any, check: Optional[RowCheck]
) -> Any:
    from ._metrics import Tally

    tally = Tally(classes, **settings)
    if check is not None:
        check(xb, yb, first_row)
    if isinstance(wb, np.ndarray) and wb.ndim == 1 and wb.shape == (classes,) and len(xb) != classes:
        wb = np.broadcast_to(wb, xb.shape)
    elif isinstance(wb, np.ndarray) and wb.ndim == 0:
        wb = np.broadcast_to(wb, (len(xb),))
    if gb:
        from ._tables import factorize

        codes, keys = factorize(gb)
        tally.update(xb, yb, wb, codes, keys)
    else:
        tally.update(xb, yb, wb)
    tally.settle()
    return tally


def _merged(tallies: Any) -> Any:
    first = tallies[0]
    for other in tallies[1:]:
        first.merge(other)
    return first


def _result(tally: Any, class_names: Any, group_names: Any, pos_weight: Any, probabilities: bool) -> Any:
    from ._result import ScoreResult
    from ._tables import sort_key

    grouped = bool(tally.keys and tally.keys[0])
    order = sorted(range(len(tally.keys)), key=lambda i: sort_key(tally.keys[i]))
    table, bins = tally.finish(order, pooled=grouped)
    names = list(class_names) if class_names is not None else [str(c) for c in range(tally.classes)]
    width = len(tally.keys[0]) if grouped else 0
    return ScoreResult(
        inputs="dask arrays",
        probabilities=probabilities,
        class_names=names,
        label_names=names,
        metric_names=tally.metrics,
        bins=tally.bins,
        strategy=tally.strategy,
        group_by=list(group_names) if group_names else [f"group_{i}" for i in range(width)],
        weight=None,
        pos_weight=None if pos_weight is None else [float(v) for v in np.broadcast_to(pos_weight, (tally.classes,))],
        rows=int(tally.rows.sum()),
        dropped_rows=0,
        count=int(tally.count.sum()),
        sum=tally.total_loss(),
        weight_sum=float(tally.weight.sum()),
        table=table,
        bin_rows=bins,
    )
