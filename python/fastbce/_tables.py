"""Rows from Arrow: files (Parquet, Arrow IPC/Feather, CSV), several files,
directories, globs and hive-partitioned datasets through `pyarrow.dataset`;
and in-memory objects that export the Arrow C stream interface (pyarrow
tables and readers, Polars, pandas, DuckDB results) or dicts of arrays.

Each class's column is scored where Arrow holds it (numeric columns
without missing values are NumPy views; bool columns are unpacked from
bits), never stacked into a matrix. pyarrow decodes on its own threads, a
batch ahead of the scoring.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import queue
import re
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union, cast

import numpy as np
from numpy.typing import NDArray

from ._io import Chunk, InputError, Source, require_pyarrow

#: The file types read through pyarrow, by suffix.
TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".feather": "ipc", ".arrow": "ipc", ".ipc": "ipc",
                  ".csv": "csv", ".tsv": "csv"}  # fmt: skip

#: Names of columns: comma-separated names or globs, or a sequence of names.
ColumnSpec = Union[str, Sequence[str]]

T = TypeVar("T")


def select_columns(spec: ColumnSpec, available: Sequence[str], what: str, source: str) -> List[str]:
    """Columns named by `spec`: names or globs (comma-separated in text)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    chosen: List[str] = []
    for item in (s.strip() for s in items):
        if not item:
            continue
        matches = [c for c in available if fnmatch.fnmatchcase(c, item)] if any(ch in item for ch in "*?[") else (
            [item] if item in available else [])  # fmt: skip
        if not matches:
            shown = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
            raise InputError(f"{source} has no column matching {item!r} (for {what}); its columns are: {shown}")
        chosen.extend(c for c in matches if c not in chosen)
    if not chosen:
        raise InputError(f"no columns given for {what}")
    return chosen


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, each produced on a thread while the one before is used.

    The producer makes item k + 1 while the consumer holds item k, and no
    further: a reader that rotates two buffers stays correct."""
    ready: queue.Queue[Tuple[bool, Any]] = queue.Queue(maxsize=1)
    taken = threading.Semaphore(0)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                ready.put((True, item))
                taken.acquire()
                if stop.is_set():
                    return
            ready.put((False, None))
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put((False, exc))

    thread = threading.Thread(target=produce, name="fastbce-reader", daemon=True)
    thread.start()
    try:
        while True:
            more, item = ready.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
            taken.release()
    finally:
        stop.set()
        taken.release()
        thread.join()


# -------------------------------------------------------------- the filter

_FILTER = re.compile(r"^\s*([^=!<>]+?)\s*(==|=|!=|>=|<=|>|<)\s*(.*?)\s*$")


def parse_filter(text: str, schema: Any) -> Any:
    """A `pyarrow.dataset` expression for `COL OP VALUE` (OP one of = == !=
    < <= > >=; `COL=a,b` keeps either value), the value read as the
    column's type."""
    pa = require_pyarrow()
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    match = _FILTER.match(text)
    if not match:
        raise InputError(f"--filter {text!r}: expected COLUMN OP VALUE, OP one of = != < <= > >=")
    name, op, value = match.groups()
    if name not in schema.names:
        raise InputError(f"--filter {text!r}: no column {name!r}; the columns are: {', '.join(schema.names[:20])}")
    kind = schema.field(name).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type

    def typed(v: str) -> Any:
        try:
            return pc.cast(pa.scalar(v), kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"--filter {text!r}: {v!r} is not a value of {name} ({kind})") from None

    field = ds.field(name)
    if op in ("=", "==") and "," in value:
        return field.isin([typed(v).as_py() for v in value.split(",")])
    right = typed(value)
    return {"=": field == right, "==": field == right, "!=": field != right, "<": field < right,
            "<=": field <= right, ">": field > right, ">=": field >= right}[op]  # fmt: skip


# ------------------------------------------------------------- the source


class ArrowSource(Source):
    """Rows of Arrow record batches: the logit, label, weight, group-by and
    id columns, named by `logits`, `labels`, ... among `names`.

    `batches(columns)` yields record batches holding those columns."""

    def __init__(
        self,
        names: Sequence[str],
        batches: Callable[[List[str], int], Iterator[Any]],
        *,
        logits: ColumnSpec,
        labels: ColumnSpec,
        weight: Optional[ColumnSpec] = None,
        group_by: Optional[ColumnSpec] = None,
        id_column: Optional[str] = None,
        drop_null: bool = False,
        description: str,
        rows: Union[int, Callable[[], Optional[int]], None] = None,
        api: bool = False,
    ) -> None:
        self.pa = require_pyarrow()
        self.names, self._batches = list(names), batches
        self.description, self._rows = description, rows

        def named(option: str) -> str:
            """How the caller named the columns: `logits=` in Python, `--logits` on the command line."""
            return f"{option.replace('-', '_')}=" if api else f"--{option}"

        self.logit_columns = select_columns(logits, self.names, named("logits"), description)
        self.label_columns = select_columns(labels, self.names, named("labels"), description)
        if len(self.logit_columns) != len(self.label_columns):
            raise InputError(
                f"{len(self.logit_columns)} logit columns but {len(self.label_columns)} label columns; "
                "give one label column per logit column"
            )
        self.weight_columns = [] if weight is None else select_columns(weight, self.names, named("weight"), description)
        if self.weight_columns and len(self.weight_columns) not in (1, len(self.logit_columns)):
            raise InputError("--weight needs one column (a weight per row) or one per logit column")
        self.group_columns = (
            [] if group_by is None else select_columns(group_by, self.names, named("group-by"), description)
        )
        self.id_columns = [] if id_column is None else select_columns([id_column], self.names, named("id"), description)
        self.drop_null = drop_null
        self.class_names = self.logit_columns
        self.label_names = self.label_columns
        # Set for files (`open_files`): what a cluster's workers read.
        self.files: List[str] = []
        self.kind: Optional[str] = None
        self.filtered = False
        self.partitions: List[str] = []

    @property
    def rows(self) -> Optional[int]:  # type: ignore[override]
        """The row count, counted on first use (a dataset may need a scan)."""
        if callable(self._rows):
            self._rows = self._rows()
        return self._rows

    @property
    def scored_columns(self) -> List[str]:
        return list(dict.fromkeys(self.logit_columns + self.label_columns + self.weight_columns))

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        columns = list(dict.fromkeys(self.scored_columns + self.group_columns + self.id_columns))
        pa = self.pa
        row = 0
        try:
            for batch in coalesced(self._batches(columns, chunk_rows), chunk_rows):
                for start in range(0, batch.num_rows, chunk_rows):
                    piece = batch.slice(start, chunk_rows)
                    yield self._chunk(piece, row)
                    row += piece.num_rows
        except (pa.ArrowInvalid, pa.ArrowIOError, pa.ArrowTypeError) as exc:
            raise InputError(f"cannot read {self.description}: {exc}") from None

    def _chunk(self, batch: Any, first_row: int) -> Chunk:
        rows = batch.num_rows
        row_numbers = None
        dropped = 0
        nulls = [name for name in self.scored_columns if batch.column(name).null_count]
        if nulls and self.drop_null:
            import pyarrow.compute as pc

            valid = pc.is_valid(batch.column(nulls[0]))
            for name in nulls[1:]:
                valid = pc.and_(valid, pc.is_valid(batch.column(name)))
            mask = valid.to_numpy(zero_copy_only=False)
            dropped = rows - int(mask.sum())
            row_numbers = first_row + np.flatnonzero(mask)
            batch = batch.filter(valid)
        elif nulls:
            import pyarrow.compute as pc

            at = first_row + int(pc.index(pc.is_null(batch.column(nulls[0])), True).as_py())
            raise InputError(
                f"{self.description}: column {nulls[0]!r} has a missing value at row {at:,} "
                "(--drop-null skips rows with missing values)"
            )

        def values(names: List[str]) -> List[NDArray[Any]]:
            return [column_values(batch.column(n), n, self.description, first_row) for n in names]

        return Chunk(
            logits=values(self.logit_columns),
            labels=values(self.label_columns),
            weight=values(self.weight_columns) or None,
            first_row=first_row,
            rows=batch.num_rows,
            groups=[batch.column(n) for n in self.group_columns] or None,
            ids=batch.column(self.id_columns[0]) if self.id_columns else None,
            row_numbers=row_numbers,
            dropped=dropped,
        )


def coalesced(batches: Iterator[Any], chunk_rows: int) -> Iterator[Any]:
    """`batches` in order, runs of small ones (under an eighth of a chunk,
    as pyarrow's CSV reader and many writers make them) joined into one of
    about half a chunk: scoring a batch has a fixed cost per column that
    copying small batches together does not."""
    small = max(1, chunk_rows // 8)
    held: List[Any] = []
    rows = 0
    for batch in batches:
        if batch.num_rows >= small:
            yield from _joined(held)
            held, rows = [], 0
            yield batch
            continue
        held.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows // 2:
            yield from _joined(held)
            held, rows = [], 0
    yield from _joined(held)


def _joined(batches: List[Any]) -> Iterator[Any]:
    """One record batch of `batches` (as they are, where their dictionaries
    cannot be joined)."""
    if len(batches) <= 1:
        yield from batches
        return
    pa = require_pyarrow()
    try:
        yield from pa.Table.from_batches(batches).combine_chunks().to_batches()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        yield from batches


def column_values(column: Any, name: str, source: str, first_row: int) -> NDArray[Any]:
    """A numeric Arrow column as NumPy values (a view where Arrow's layout
    allows); InputError for missing values or other types."""
    pa = require_pyarrow()
    if column.null_count:
        import pyarrow.compute as pc

        row = first_row + int(pc.index(pc.is_null(column), True).as_py())
        raise InputError(
            f"{source}: column {name!r} has a missing value at row {row:,} (--drop-null skips rows with missing values)"
        )
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    try:
        values = column.to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{source}: column {name!r} is not numeric ({column.type}): {exc}") from None
    if values.dtype.kind not in "biuf":
        raise InputError(f"{source}: column {name!r} is not numeric ({column.type})")
    return cast(NDArray[Any], values)


# ------------------------------------------------------------- from files


def _format_of(path: str) -> Optional[str]:
    return TABLE_SUFFIXES.get(Path(path).suffix.lower())


def expand_inputs(inputs: Sequence[str]) -> Tuple[List[str], Optional[str]]:
    """The files named by `inputs` (files, directories, globs of either),
    and the directory their hive partitions start from (for a directory or
    a glob)."""
    files: List[str] = []
    base: Optional[str] = None
    for item in inputs:
        if any(ch in item for ch in "*?["):
            matched = sorted(glob.glob(item, recursive=True))
            found = [f for path in matched for f in (_files_in(path) if os.path.isdir(path) else [path])]
            if not found:
                raise InputError(f"{item}: no files match")
            files.extend(found)
            base = base or _glob_base(item)
        elif os.path.isdir(item):
            found = _files_in(item)
            if not found:
                known = ", ".join(sorted(TABLE_SUFFIXES))
                raise InputError(f"{item}: a directory with no table files ({known})")
            files.extend(found)
            base = base or item
        elif not os.path.exists(item):
            raise InputError(f"cannot read {item}: No such file or directory")
        else:
            files.append(item)
    return files, base


def _files_in(directory: str) -> List[str]:
    """The table files below `directory` (hidden and `_` files left out, as
    Spark and pyarrow leave them)."""
    return sorted(
        os.path.join(root, f)
        for root, _, names in os.walk(directory)
        for f in names
        if _format_of(f) and not f.startswith((".", "_"))
    )


def _glob_base(pattern: str) -> str:
    parts = Path(pattern).parts
    fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if any(ch in p for ch in "*?["))]]
    return str(Path(*fixed)) if fixed else "."


def open_files(
    inputs: Sequence[str],
    filters: Sequence[str] = (),
    **columns: Any,
) -> ArrowSource:
    """Tables in files, directories or globs, as one dataset (hive
    partitions `key=value` in the paths become columns)."""
    pa = require_pyarrow()

    files, base = expand_inputs(inputs)
    kinds = {_format_of(f) for f in files}
    if None in kinds:
        odd = next(f for f in files if _format_of(f) is None)
        known = ", ".join(sorted({".npy", ".npz", *TABLE_SUFFIXES}))
        raise InputError(f"{odd}: unknown file type {Path(odd).suffix or '(none)'}; fastbce reads {known}")
    if len(kinds) > 1:
        raise InputError(f"the inputs mix file types ({', '.join(sorted(str(k) for k in kinds))}); give one type")
    kind = str(kinds.pop())
    description = files[0] if len(files) == 1 else f"{len(files)} files in {base or os.path.commonpath(files)}"
    try:
        if kind == "csv" and base is None and not filters:
            source = _csv_files(files, description, columns)
        elif kind == "ipc" and base is None and not filters:
            source = _ipc_files(files, description, columns)
        else:
            source = _dataset(files, kind, base, filters, description, columns)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise InputError(f"cannot read {description}: {exc}") from None
    source.files, source.kind, source.filtered = files, kind, bool(filters)
    return source


def _csv_options(files: Sequence[str]) -> Any:
    import pyarrow.csv as pcsv

    tab = all(f.lower().endswith(".tsv") for f in files)
    return pcsv.ParseOptions(delimiter="\t" if tab else ",")


def _csv_files(files: List[str], description: str, columns: Dict[str, Any]) -> ArrowSource:
    """Plain CSV files, parsed a block at a time by pyarrow's parallel
    reader (its dataset scanner parses CSV on fewer threads)."""
    import pyarrow.csv as pcsv

    pa = require_pyarrow()
    options = _csv_options(files)
    with open(files[0], "rb") as f:
        names = pcsv.read_csv(pa.BufferReader(f.readline()), parse_options=options).column_names

    def batches(wanted: List[str], chunk_rows: int) -> Iterator[Any]:
        # Scored columns are read as float64 from the start: a logit column
        # whose first block looks integral would refuse later decimals.
        floats = {name: pa.float64() for name in source.scored_columns}
        for path in files:
            for table in csv_blocks(path, wanted, options, floats):
                # One batch per block (pyarrow parses a block in 1 MB pieces).
                yield from table.combine_chunks().to_batches()

    source = ArrowSource(names, batches, description=description, **columns)
    return source


def _ipc_files(files: List[str], description: str, columns: Dict[str, Any]) -> ArrowSource:
    """Plain Arrow IPC files, a record batch at a time (the dataset scanner
    copies them more slowly, and holds more of them)."""
    pa = require_pyarrow()
    readers = [pa.ipc.open_file(pa.OSFile(path)) for path in files]
    names = readers[0].schema.names
    for path, reader in zip(files, readers, strict=True):
        if reader.schema.names != names:
            raise InputError(f"{path} has other columns than {files[0]}")

    def batches(wanted: List[str], chunk_rows: int) -> Iterator[Any]:
        for reader in readers:
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i).select(wanted)

    def rows() -> int:
        return sum(reader.get_batch(i).num_rows for reader in readers for i in range(reader.num_record_batches))

    return ArrowSource(names, batches, description=description, rows=rows, **columns)


def _dataset(
    files: List[str], kind: str, base: Optional[str], filters: Sequence[str], description: str, columns: Dict[str, Any]
) -> ArrowSource:
    """Files as one `pyarrow.dataset` (hive partitions `key=value` in the
    paths below `base` become columns), filtered."""
    import pyarrow.dataset as ds

    file_format: Any = kind
    if kind == "csv":
        file_format = ds.CsvFileFormat(parse_options=_csv_options(files))
    elif kind == "parquet":
        # Pre-buffering whole row groups holds several of them at once: in
        # memory (2-3x) and time it costs more than it saves when the columns
        # are read in order.
        options = ds.ParquetFragmentScanOptions(pre_buffer=False)
        file_format = ds.ParquetFileFormat(default_fragment_scan_options=options)
    partitioning = ds.partitioning(flavor="hive") if base else None
    dataset = ds.dataset(files, format=file_format, partitioning=partitioning, partition_base_dir=base)
    expression = None
    for text in filters:
        one = parse_filter(text, dataset.schema)
        expression = one if expression is None else expression & one
    source = ArrowSource(
        dataset.schema.names,
        lambda names, chunk_rows: scan(dataset, names, chunk_rows, expression),
        description=description,
        rows=None if kind == "csv" else lambda: int(dataset.count_rows(filter=expression)),
        **columns,
    )
    source.partitions = list(dataset.partitioning.schema.names) if base and dataset.partitioning else []
    return source


#: Bytes of CSV text parsed at a time.
CSV_BLOCK = 1 << 23


def csv_blocks(
    path: str, names: List[str], parse_options: Any, types: Optional[Dict[str, Any]] = None
) -> Iterator[Any]:
    """The columns `names` of a CSV file, as one table per block of about
    `CSV_BLOCK` bytes cut at line ends (as pyarrow cuts its own blocks: no
    line breaks inside values). The first block's types, beside the
    `types` given, hold for all; the
    next two blocks are parsed at once, each on pyarrow's threads, so the
    cores stay busy between blocks."""
    import pyarrow.csv as pcsv

    pa = require_pyarrow()
    with open(path, "rb") as f:
        columns = pcsv.read_csv(pa.BufferReader(f.readline()), parse_options=parse_options).column_names

        def parse(block: bytes, types: Optional[Dict[str, Any]]) -> Any:
            return pcsv.read_csv(
                pa.BufferReader(block),
                read_options=pcsv.ReadOptions(column_names=columns),
                parse_options=parse_options,
                convert_options=pcsv.ConvertOptions(include_columns=names, column_types=types),
            )

        texts = _lines_in_blocks(f)
        first = next(texts, None)
        if first is None:
            return
        table = parse(first, types)
        types = {n: table.schema.field(n).type for n in names}
        yield table
        with ThreadPoolExecutor(2) as pool:
            pending: Deque[Future[Any]] = deque()
            for text in texts:
                pending.append(pool.submit(parse, text, types))
                if len(pending) == 2:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()


def _lines_in_blocks(f: Any) -> Iterator[bytes]:
    """The rest of a file in blocks of about `CSV_BLOCK` bytes, each cut
    after its last line end."""
    rest = b""
    while True:
        data = rest + f.read(CSV_BLOCK)
        if not data:
            return
        cut = data.rfind(b"\n") + 1 if f.peek(1) else len(data)
        block, rest = (data[:cut], data[cut:]) if cut else (data, b"")
        yield block


def scan(dataset: Any, names: List[str], chunk_rows: int, expression: Any = None) -> Iterator[Any]:
    """The dataset's record batches, in order, decoded on pyarrow's threads
    (Parquet a batch and two files ahead; Arrow IPC, a plain copy, in turn:
    read-ahead there costs time and memory), so memory stays a few batches."""
    ipc = getattr(getattr(dataset, "format", None), "default_extname", "") in ("arrow", "feather", "ipc")
    scanner = dataset.scanner(
        columns=names,
        filter=expression,
        batch_size=chunk_rows,
        batch_readahead=0 if ipc else 1,
        fragment_readahead=1 if ipc else 2,
        use_threads=True,
    )
    yield from scanner.to_batches()


# ----------------------------------------------------------- from objects


def open_object(data: Any, **columns: Any) -> Source:
    """Rows of an in-memory object: a dict of arrays, a pyarrow Table,
    RecordBatchReader or Dataset, or anything that exports the Arrow C
    stream interface (`__arrow_c_stream__`: Polars, pandas, DuckDB)."""
    if isinstance(data, Mapping):
        return _from_mapping(data, **columns)
    pa = require_pyarrow()
    import pyarrow.dataset as ds

    description = type(data).__module__.split(".")[0] + "." + type(data).__name__
    if isinstance(data, ds.Dataset):
        expression = columns.pop("filter", None)
        return ArrowSource(
            data.schema.names, lambda names, n: scan(data, names, n, expression), description=description,
            rows=lambda: int(data.count_rows(filter=expression)), **columns,
        )  # fmt: skip
    columns.pop("filter", None)
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        table = data
        return ArrowSource(
            table.schema.names,
            lambda names, n: iter(table.select(names).to_batches(max_chunksize=n)),
            description=description,
            rows=table.num_rows,
            **columns,
        )
    if not hasattr(data, "__arrow_c_stream__"):
        raise TypeError(
            f"data must be a dict of arrays or export the Arrow C stream interface (__arrow_c_stream__: "
            f"pyarrow, Polars, pandas, DuckDB), got {type(data).__name__}"
        )
    reader = pa.RecordBatchReader.from_stream(data)

    def batches(names: List[str], n: int) -> Iterator[Any]:
        return read_ahead(batch.select(names) for batch in reader)

    return ArrowSource(reader.schema.names, batches, description=description, **columns)


def _from_mapping(data: Mapping[str, Any], **columns: Any) -> Source:
    """A dict of 1-D arrays (columns), or of (N, C) arrays named whole."""
    from ._io import MatrixSource

    arrays: Dict[str, NDArray[Any]] = {str(k): np.asarray(v) for k, v in data.items()}
    logits, labels = columns.get("logits"), columns.get("labels")
    if isinstance(logits, str) and logits in arrays and arrays[logits].ndim == 2:
        columns.pop("api", None)  # its errors name the keyword arguments already
        return MatrixSource(arrays, **columns)
    pa = require_pyarrow()
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise ValueError(f"the arrays of data have different lengths: {sorted(lengths)}")
    for name, a in arrays.items():
        if a.ndim != 1:
            raise ValueError(f"data[{name!r}] has shape {a.shape}; give 1-D columns (or name one (N, C) array)")
    table = pa.table(dict(arrays))
    del labels
    columns.pop("filter", None)
    return ArrowSource(
        table.schema.names,
        lambda names, n: iter(table.select(names).to_batches(max_chunksize=n)),
        description="dict of arrays",
        rows=table.num_rows,
        **columns,
    )


def factorize(columns: Sequence[Any]) -> Tuple[NDArray[np.intp], List[Tuple[Any, ...]]]:
    """The group of each row, as codes into the list of keys (one value per
    column; a missing value is None) that occur."""
    pa = require_pyarrow()
    combined: Optional[NDArray[np.int64]] = None
    dictionaries: List[List[Any]] = []
    for values in columns:
        array = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(values))
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        encoded = array if pa.types.is_dictionary(array.type) else array.dictionary_encode()
        dictionary = [*encoded.dictionary.to_pylist(), None]
        index = encoded.indices.fill_null(len(dictionary) - 1).to_numpy(zero_copy_only=False).astype(np.int64)
        combined = index if combined is None else combined * len(dictionary) + index
        dictionaries.append(dictionary)
    assert combined is not None
    present, codes = np.unique(combined, return_inverse=True)
    places = np.unravel_index(present, [len(d) for d in dictionaries])
    keys = [tuple(d[int(i)] for d, i in zip(dictionaries, at, strict=True)) for at in zip(*places, strict=True)]
    return codes.reshape(-1), keys


def sort_key(key: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """Orders group keys by value, a missing value last."""
    return tuple((v is None, v if v is not None else 0) for v in key)
