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
from typing import Any, Optional, Tuple

import numpy as np

try:
    import dask.array as da
    from dask.delayed import delayed
except ImportError:  # pragma: no cover - exercised without the extra
    raise ImportError("fastbce.dask needs Dask: pip install 'fastbce[dask]'") from None

from . import _functional as eager
from ._functional import Axis, check_reduction, normalize_axis, refuse_masked, result_dtype, sum64

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_value_and_grad",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_with_logits_value_and_grad",
]


def _spread(name: str, value: Any, x: Any) -> Any:
    """`value` broadcast to the input `x` as a Dask array with its chunks
    (per block a view with zero strides); None stays None."""
    if value is None:
        return None
    arr = value if isinstance(value, da.Array) else da.asarray(np.asarray(value))
    try:
        joint = np.broadcast_shapes(arr.shape, x.shape)
    except ValueError:
        joint = None
    if joint != x.shape:
        raise ValueError(f"{name} of shape {arr.shape} does not broadcast to the input shape {x.shape}")
    # Chunk the axes it shares with the input as the input is chunked.
    lead = x.ndim - arr.ndim
    arr = arr.rechunk(tuple(x.chunks[lead + d] if n != 1 else (1,) for d, n in enumerate(arr.shape)))
    return da.broadcast_to(arr, x.shape, chunks=x.chunks)


def _operands(input: Any, target: Any, weight: Any, pos_weight: Any) -> Tuple[Any, ...]:
    """The operands as Dask arrays with the input's chunks (see `_spread`)."""
    for name, value in (("input", input), ("target", target), ("weight", weight), ("pos_weight", pos_weight)):
        refuse_masked(name, value)
    x = input if isinstance(input, da.Array) else da.asarray(input)
    y = da.asarray(target)
    if y.shape != x.shape:
        raise ValueError(
            f"target must have the same shape as input, got target shape {y.shape} and input shape {x.shape}"
        )
    return x, y.rechunk(x.chunks), _spread("weight", weight, x), _spread("pos_weight", pos_weight, x)


def _blocks(fn: Any, x: Any, y: Any, w: Any, pw: Any, **kwargs: Any) -> Any:
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
    check_reduction(reduction)
    x, y, w, pw = _operands(input, target, weight, None if probabilities else pos_weight)
    dtype = result_dtype(x.dtype)
    if reduction == "none":
        if axis is not None:
            raise ValueError(f"axis needs reduction='mean' or 'sum', got reduction={reduction!r}")

        def elements(xb: Any, yb: Any, wb: Any, pwb: Any, first_row: int) -> Any:
            if probabilities:
                return eager.binary_cross_entropy(xb, yb, wb, "none")
            return eager.binary_cross_entropy_with_logits(xb, yb, wb, "none", pwb)

        return _blocks(elements, x, y, w, pw, dtype=dtype)
    axes = tuple(range(x.ndim)) if axis is None else normalize_axis(axis, x.ndim)
    total = _sums(probabilities, x, y, w, pw, axes)
    if reduction == "mean":
        count = math.prod(x.shape[d] for d in axes)
        total = total / count if count else total * math.nan
    return total.astype(dtype)


def _sums(
    probabilities: bool, x: Any, y: Any, w: Any, pw: Any, axes: Tuple[int, ...], check: Optional[Any] = None
) -> Any:
    """The loss summed over `axes` in float64 (lazy): one partial sum per
    block and kept index, combined in the fixed tree of the Dask graph.
    `check(x, y, first_row)` runs on each block first."""
    partial_chunks = tuple((1,) * len(c) if d in axes else c for d, c in enumerate(x.chunks))

    def partial(xb: Any, yb: Any, wb: Any, pwb: Any, first_row: int) -> Any:
        if check is not None:
            check(xb, yb, first_row)
        return sum64(probabilities, xb, yb, wb, pwb, axes)

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
    check_reduction(reduction)
    x, y, w, pw = _operands(input, target, weight, None if probabilities else pos_weight)
    axes: Tuple[int, ...] = ()
    if reduction != "none":
        axes = tuple(range(x.ndim)) if axis is None else normalize_axis(axis, x.ndim)
    elif axis is not None:
        raise ValueError(f"axis needs reduction='mean' or 'sum', got reduction={reduction!r}")
    count = math.prod(x.shape[d] for d in axes) if reduction == "mean" else 1
    g = grad_output if isinstance(grad_output, da.Array) else np.asarray(grad_output, np.float64)
    scale = 1.0 / count if count else 1.0
    if g.ndim == 0:
        scale *= float(g)
        go = None
    else:
        kept = tuple(n for d, n in enumerate(x.shape) if d not in axes)
        try:
            g_kept = np.broadcast_shapes(g.shape, kept)
        except ValueError:
            g_kept = None
        if g_kept != kept:
            raise ValueError(f"grad_output of shape {g.shape} does not broadcast to the reduced shape {kept}")
        g_full = da.expand_dims(da.broadcast_to(da.asarray(g), kept), axes)
        go = _spread("grad_output", g_full, x)
    dtype = result_dtype(x.dtype)

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


# ------------------------------------------------------ fastbce score --dask


def _read_rows(path: str, start: int, stop: int) -> Any:
    from ._io import NpyRows

    reader = NpyRows(path)  # an InputError if a worker cannot read it
    try:
        return reader.read(start, stop)
    finally:
        reader.close()


def _read_row_group(path: str, name: str, group: int, first_row: int, columns: Any) -> Any:
    """Row group `group` (rows `first_row` on) of the file `name`, at `path` for the workers."""
    import pyarrow.parquet as pq

    from ._io import InputError, column_values

    try:
        table = pq.ParquetFile(path).read_row_group(group, columns=columns)
    except OSError as exc:
        raise InputError(f"a Dask worker cannot read {path}: {exc}") from None
    return np.column_stack([column_values(table.column(c), c, name, first_row) for c in columns])


def _array_from_source(source: Any, chunk_rows: int) -> Tuple[Any, Any, Any]:
    """Lazy (logits, labels, weight) Dask arrays whose blocks each worker
    reads from the files itself (which workers must be able to open, by
    the same absolute paths)."""
    import os

    from ._io import ArrayPairSource, InputError, NpyRows, TableSource

    if isinstance(source, ArrayPairSource) and isinstance(source.logits, NpyRows):
        rows = source.logits.rows
        ranges = [(a, min(a + chunk_rows, rows)) for a in range(0, rows, chunk_rows)]

        def stacked(reader: Any) -> Any:
            h = reader.header
            parts = [
                da.from_delayed(
                    delayed(_read_rows)(os.path.abspath(reader.name), a, b), shape=(b - a, *h.shape[1:]), dtype=h.dtype
                )
                for a, b in ranges
            ]
            return da.concatenate(parts) if parts else da.zeros((0, *h.shape[1:]), h.dtype)

        return stacked(source.logits), stacked(source.labels), None
    if isinstance(source, TableSource) and source.kind == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(source.path).metadata
        groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        starts = np.cumsum([0, *groups[:-1]]).tolist()

        def table(columns: Any) -> Any:
            if not columns:
                return None
            schema = pq.ParquetFile(source.path).schema_arrow
            dtype = np.result_type(*[schema.field(c).type.to_pandas_dtype() for c in columns])
            parts = [
                da.from_delayed(
                    delayed(_read_row_group)(os.path.abspath(source.path), source.path, i, start, columns),
                    shape=(n, len(columns)),
                    dtype=dtype,
                )
                for i, (n, start) in enumerate(zip(groups, starts, strict=True))
            ]
            return da.concatenate(parts) if parts else da.zeros((0, len(columns)), dtype)

        return table(source.logit_columns), table(source.label_columns), table(source.weight_columns)
    raise InputError("--dask reads two .npy files or a Parquet file")


def _could_be_probabilities(x: Any, y: Any) -> Any:
    """Lazy `could_be_probabilities` over all blocks."""
    from ._io import could_be_probabilities

    def block(xb: Any, yb: Any) -> Any:
        return np.full((1,) * xb.ndim, could_be_probabilities(xb, yb))

    return da.map_blocks(block, x, y, dtype=bool, chunks=tuple((1,) * len(c) for c in x.chunks)).all()


def score_source(args: Any, source: Any, weights: Any, summarize: Any) -> Any:
    """`fastbce score --dask ADDRESS`: the scores of `source`, computed on a
    Dask cluster (`local` starts one of 2 worker processes here)."""
    import logging
    import time

    from distributed import Client, LocalCluster

    from ._io import InputError
    from .cli import PerSampleWriter, _per_sample, default_chunk_rows, input_paths, probabilities_warning, row_check

    fixed, reader, pos_weight = weights
    if reader is not None:
        raise InputError("--dask takes a --weight number or a Parquet weight column, not a weight file")
    chunk_rows = args.chunk_rows or default_chunk_rows(len(source.class_names))
    x, y, w = _array_from_source(source, chunk_rows)
    if not x.shape[0]:
        raise InputError(f"{source.description}: no rows to score")
    weight = w if w is not None else fixed
    x, y, weight, pw = _operands(x, y, weight, None if args.probabilities else pos_weight)
    writer = PerSampleWriter(args.per_sample, x.shape[0], input_paths(args)) if args.per_sample else None
    # The workers' own logs would repeat, with tracebacks, the one line an
    # error gets; the scheduler's web server takes any free port, silently.
    local = dict(n_workers=2, threads_per_worker=1, silence_logs=logging.CRITICAL, dashboard_address=":0")
    cluster = LocalCluster(**local) if args.dask == "local" else None
    try:
        try:
            client = Client(cluster if cluster is not None else args.dask, timeout=args.dask_timeout)
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {args.dask} within {args.dask_timeout:g} s ({exc})"
            ) from None
        with client:
            start = time.perf_counter()
            # Bad rows are refused as by the local path, with the same message.
            check = row_check(args, source)
            total = _sums(args.probabilities, x, y, weight, pw, tuple(range(x.ndim)), check)
            per_class = _sums(args.probabilities, x, y, weight, pw, (0,), check) if x.ndim == 2 else total
            maybe = _could_be_probabilities(x, y)
            total_value, per_class_value, maybe_value = client.compute([total, per_class, maybe], sync=True)
            if writer is not None:
                for i in range(x.numblocks[0]):
                    blocks = [a.blocks[i] if a is not None else None for a in (x, y, weight)]
                    xb, yb, wb = (b.compute() if b is not None else None for b in blocks)
                    pwb = None if pw is None else np.asarray(pos_weight)
                    assert xb is not None and yb is not None
                    writer.write(_per_sample(args.probabilities, xb, yb, wb, pwb))
                writer.commit()
            seconds = time.perf_counter() - start
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if cluster is not None:
            cluster.close()
    per_class_sum = np.asarray(per_class_value, np.float64).reshape(-1)
    summary = summarize(args, source, math.prod(x.shape), float(total_value), per_class_sum, seconds, x.shape[0])
    summary["warnings"] = probabilities_warning(bool(maybe_value) and not args.probabilities, x.shape[0])
    return summary
