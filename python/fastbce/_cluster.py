"""`fastbce score --dask ADDRESS`: scoring on a Dask cluster.

The workers read the blocks of the input files themselves (by the same
absolute paths) and return float64 partial sums, combined in the fixed tree
of the Dask graph (`fastbce.dask.partial_sums`). Needs the `dask` extra.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import List, Optional, Tuple

import dask.array as da
import numpy as np
from dask.delayed import delayed
from distributed import Client, LocalCluster
from numpy.typing import NDArray

from ._io import ArrayPairSource, InputError, NpyRows, Source, TableSource, column_values, could_be_probabilities
from ._scoring import (
    Array,
    PerSampleWriter,
    ScoreOptions,
    Summary,
    Weights,
    default_chunk_rows,
    input_paths,
    per_sample,
    probabilities_warning,
    row_check,
    summarize,
)
from .dask import _operands, partial_sums

#: Lazy (logits, labels, weight): Dask arrays, the weight possibly absent.
LazyColumns = Tuple[da.Array, da.Array, Optional[da.Array]]


def _read_rows(path: str, start: int, stop: int) -> Array:
    reader = NpyRows(path)  # an InputError if a worker cannot read it
    try:
        return reader.read(start, stop)
    finally:
        reader.close()


def _read_row_group(path: str, name: str, group: int, first_row: int, columns: List[str]) -> Array:
    """Row group `group` (rows `first_row` on) of the file `name`, at `path` for the workers."""
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read_row_group(group, columns=columns)
    except OSError as exc:
        raise InputError(f"a Dask worker cannot read {path}: {exc}") from None
    return np.column_stack([column_values(table.column(c), c, name, first_row) for c in columns])


def _stacked_npy(reader: NpyRows, chunk_rows: int) -> da.Array:
    """A .npy file's rows as a lazy Dask array of blocks of `chunk_rows`."""
    h = reader.header
    rows = reader.rows
    ranges = [(a, min(a + chunk_rows, rows)) for a in range(0, rows, chunk_rows)]
    parts = [
        da.from_delayed(
            delayed(_read_rows)(os.path.abspath(reader.name), a, b), shape=(b - a, *h.shape[1:]), dtype=h.dtype
        )
        for a, b in ranges
    ]
    stacked: da.Array = da.concatenate(parts) if parts else da.zeros((0, *h.shape[1:]), h.dtype)
    return stacked


def _parquet_columns(path: str, columns: Optional[List[str]]) -> Optional[da.Array]:
    """Columns of a Parquet file as a lazy Dask array, a block per row group."""
    import pyarrow.parquet as pq

    if not columns:
        return None
    meta = pq.ParquetFile(path).metadata
    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    starts = np.cumsum([0, *groups[:-1]]).tolist()
    schema = pq.ParquetFile(path).schema_arrow
    dtype = np.result_type(*[schema.field(c).type.to_pandas_dtype() for c in columns])
    parts = [
        da.from_delayed(
            delayed(_read_row_group)(os.path.abspath(path), path, i, start, columns),
            shape=(n, len(columns)),
            dtype=dtype,
        )
        for i, (n, start) in enumerate(zip(groups, starts, strict=True))
    ]
    stacked: da.Array = da.concatenate(parts) if parts else da.zeros((0, len(columns)), dtype)
    return stacked


def _array_from_source(source: Source, chunk_rows: int) -> LazyColumns:
    """Lazy (logits, labels, weight) Dask arrays whose blocks each worker
    reads from the files itself (which workers must be able to open, by
    the same absolute paths)."""
    if isinstance(source, ArrayPairSource) and isinstance(source.logits, NpyRows):
        assert isinstance(source.labels, NpyRows)
        return _stacked_npy(source.logits, chunk_rows), _stacked_npy(source.labels, chunk_rows), None
    if isinstance(source, TableSource) and source.kind == "parquet":
        logits = _parquet_columns(source.path, source.logit_columns)
        labels = _parquet_columns(source.path, source.label_columns)
        assert logits is not None and labels is not None
        return logits, labels, _parquet_columns(source.path, source.weight_columns)
    raise InputError("--dask reads two .npy files or a Parquet file")


def _could_be_probabilities(x: da.Array, y: da.Array) -> da.Array:
    """Lazy `could_be_probabilities` over all blocks."""

    def block(xb: Array, yb: Array) -> NDArray[np.bool_]:
        return np.full((1,) * xb.ndim, could_be_probabilities(xb, yb))

    flags: da.Array = da.map_blocks(block, x, y, dtype=bool, chunks=tuple((1,) * len(c) for c in x.chunks))
    every: da.Array = flags.all()
    return every


def _connect(args: ScoreOptions, cluster: Optional[LocalCluster]) -> Client:
    try:
        return Client(cluster if cluster is not None else args.dask, timeout=args.dask_timeout)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {args.dask} within {args.dask_timeout:g} s ({exc})"
        ) from None


def _write_per_sample(
    args: ScoreOptions,
    writer: PerSampleWriter,
    operands: LazyColumns,
    pw: Optional[da.Array],
    pos_weight: Optional[Array],
) -> None:
    """Per-sample losses, block by block, computed here from the cluster's blocks."""
    x, y, weight = operands
    for i in range(x.numblocks[0]):
        blocks = [a.blocks[i] if a is not None else None for a in (x, y, weight)]
        xb, yb, wb = (b.compute() if b is not None else None for b in blocks)
        pwb = None if pw is None else np.asarray(pos_weight)
        assert xb is not None and yb is not None
        writer.write(per_sample(args.probabilities, xb, yb, wb, pwb))
    writer.commit()


def score_cluster(args: ScoreOptions, source: Source, weights: Weights) -> Summary:
    """The scores of `source`, computed on a Dask cluster (`local` starts
    one of 2 worker processes here)."""
    if weights.reader is not None:
        raise InputError("--dask takes a --weight number or a Parquet weight column, not a weight file")
    chunk_rows = args.chunk_rows or default_chunk_rows(len(source.class_names))
    x, y, w = _array_from_source(source, chunk_rows)
    if not x.shape[0]:
        raise InputError(f"{source.description}: no rows to score")
    weight = w if w is not None else weights.fixed
    x, y, weight, pw = _operands(x, y, weight, None if args.probabilities else weights.pos_weight)
    writer = PerSampleWriter(args.per_sample, x.shape[0], input_paths(args)) if args.per_sample else None
    # The workers' own logs would repeat, with tracebacks, the one line an
    # error gets; the scheduler's web server takes any free port, silently.
    local = dict(n_workers=2, threads_per_worker=1, silence_logs=logging.CRITICAL, dashboard_address=":0")
    cluster = LocalCluster(**local) if args.dask == "local" else None
    try:
        with _connect(args, cluster) as client:
            start = time.perf_counter()
            # Bad rows are refused as by the local path, with the same message.
            check = row_check(args, source)
            total = partial_sums(args.probabilities, x, y, weight, pw, tuple(range(x.ndim)), check)
            per_class = partial_sums(args.probabilities, x, y, weight, pw, (0,), check) if x.ndim == 2 else total
            maybe = _could_be_probabilities(x, y)
            total_value, per_class_value, maybe_value = client.compute([total, per_class, maybe], sync=True)
            if writer is not None:
                _write_per_sample(args, writer, (x, y, weight), pw, weights.pos_weight)
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
    summary.warnings = probabilities_warning(bool(maybe_value) and not args.probabilities, x.shape[0])
    return summary
