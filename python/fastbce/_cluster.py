"""`fastbce score --dask ADDRESS`: scoring on a Dask cluster.

The workers read the blocks of the input files themselves (by the same
absolute paths) and tally each block's metrics; the tallies are merged in a
fixed tree (`fastbce.dask.tally_of`). Needs the `dask` extra.
"""

from __future__ import annotations

import logging
import os
import time
from typing import List, Optional, Tuple

import dask.array as da
import numpy as np
from dask.delayed import delayed
from distributed import Client, LocalCluster
from numpy.typing import NDArray

from ._io import ArrayPairSource, Chunk, InputError, NpyRows, Source, could_be_probabilities
from ._result import ScoreResult
from ._scoring import (
    Array,
    PerSampleWriter,
    ScoreOptions,
    Weights,
    chunk_weight,
    default_chunk_rows,
    input_paths,
    per_sample,
    probabilities_warning,
    result_of,
    row_check,
    row_ids,
    tally_settings,
)
from ._tables import ArrowSource, column_values
from .dask import tally_of

#: Lazy (logits, labels, weight): Dask arrays, the weight possibly absent.
LazyColumns = Tuple[da.Array, da.Array, Optional[da.Array]]


def _read_rows(path: str, start: int, stop: int) -> Array:
    reader = NpyRows(path)  # an InputError if a worker cannot read it
    try:
        return reader.read(start, stop)
    finally:
        reader.close()


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


def _read_row_group(path: str, name: str, group: int, first_row: int, columns: List[str], numeric: bool) -> Array:
    """Row group `group` (rows `first_row` on) of the Parquet file `name`, at `path` for the workers."""
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read_row_group(group, columns=columns)
    except OSError as exc:
        raise InputError(f"a Dask worker cannot read {path}: {exc}") from None
    if not numeric:
        values: Array = table.column(columns[0]).to_numpy(zero_copy_only=False)
        return values
    return np.column_stack([column_values(table.column(c), c, name, first_row) for c in columns])


def _parquet_columns(files: List[str], columns: List[str], numeric: bool = True) -> Optional[da.Array]:
    """Columns of Parquet files as a lazy Dask array, a block per row group
    (numeric columns stacked (N, C); another column as (N,) values)."""
    import pyarrow.parquet as pq

    if not columns:
        return None
    parts = []
    first = 0
    for path in files:
        meta = pq.ParquetFile(path).metadata
        schema = pq.ParquetFile(path).schema_arrow
        dtype = np.result_type(*[schema.field(c).type.to_pandas_dtype() for c in columns]) if numeric else object
        for i in range(meta.num_row_groups):
            n = meta.row_group(i).num_rows
            task = delayed(_read_row_group)(os.path.abspath(path), path, i, first, columns, numeric)
            parts.append(da.from_delayed(task, shape=(n, len(columns)) if numeric else (n,), dtype=dtype))
            first += n
    stacked: da.Array = da.concatenate(parts) if parts else da.zeros((0, len(columns)), np.float64)
    return stacked


def _array_from_source(source: Source, chunk_rows: int) -> LazyColumns:
    """Lazy (logits, labels, weight) Dask arrays whose blocks each worker
    reads from the files itself (which workers must be able to open, by
    the same absolute paths)."""
    if isinstance(source, ArrayPairSource) and isinstance(source.logits, NpyRows):
        assert isinstance(source.labels, NpyRows)
        return _stacked_npy(source.logits, chunk_rows), _stacked_npy(source.labels, chunk_rows), None
    if isinstance(source, ArrowSource) and source.kind == "parquet":
        if source.filtered or source.drop_null or source.id_columns:
            raise InputError("--dask reads whole Parquet files: --filter, --drop-null and --id run locally only")
        if set(source.partitions) & set(source.scored_columns + source.group_columns):
            raise InputError("--dask reads the columns stored in the files, not hive partition columns")
        logits = _parquet_columns(source.files, source.logit_columns)
        labels = _parquet_columns(source.files, source.label_columns)
        assert logits is not None and labels is not None
        return logits, labels, _parquet_columns(source.files, source.weight_columns)
    raise InputError("--dask reads two .npy files or Parquet files")


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
    args: ScoreOptions, writer: PerSampleWriter, operands: LazyColumns, fixed: Optional[Array], pw: Optional[Array]
) -> None:
    """Per-sample losses, block by block, computed here from the cluster's blocks."""
    x, y, weight = operands
    first = 0
    for i in range(x.numblocks[0]):
        blocks = [a.blocks[i] if a is not None else None for a in (x, y, weight)]
        xb, yb, wb = (b.compute() if b is not None else None for b in blocks)
        assert xb is not None and yb is not None
        chunk = Chunk(xb, yb, wb, first, len(xb))
        w = chunk_weight(chunk, Weights(fixed=fixed), xb.shape[1] if xb.ndim == 2 else 1)
        writer.write(per_sample(args.probabilities, chunk, w, pw), row_ids(chunk))
        first += len(xb)
    writer.commit()


def score_cluster(args: ScoreOptions, source: Source, weights: Weights) -> ScoreResult:
    """The scores of `source`, computed on a Dask cluster (`local` starts
    one of 2 worker processes here)."""
    if weights.reader is not None:
        raise InputError("--dask takes a --weight number or a Parquet weight column, not a weight file")
    chunk_rows = args.chunk_rows or default_chunk_rows(len(source.class_names))
    x, y, w = _array_from_source(source, chunk_rows)
    if not x.shape[0]:
        raise InputError(f"{source.description}: no rows to score")
    groups = None
    if isinstance(source, ArrowSource) and source.group_columns:
        groups = [_parquet_columns(source.files, [c], numeric=False) for c in source.group_columns]
    pos_weight = None if args.probabilities else weights.pos_weight
    weight = w if w is not None else weights.fixed
    lazy = tally_of(x, y, weight, groups, tally_settings(args, weights), row_check(args, source))
    writer = PerSampleWriter(args.per_sample, x.shape[0], input_paths(args)) if args.per_sample else None
    # The workers' own logs would repeat, with tracebacks, the one line an
    # error gets; the scheduler's web server takes any free port, silently.
    local = dict(n_workers=2, threads_per_worker=1, silence_logs=logging.CRITICAL, dashboard_address=":0")
    cluster = LocalCluster(**local) if args.dask == "local" else None
    try:
        with _connect(args, cluster) as client:
            start = time.perf_counter()
            tally, maybe_value = client.compute([lazy, _could_be_probabilities(x, y)], sync=True)
            if writer is not None:
                _write_per_sample(args, writer, (x, y, w), weights.fixed, pos_weight)
            seconds = time.perf_counter() - start
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if cluster is not None:
            cluster.close()
    result = result_of(args, source, tally, weights, 0)
    result.seconds = seconds
    result.warnings = probabilities_warning(bool(maybe_value) and not args.probabilities, x.shape[0])
    return result
