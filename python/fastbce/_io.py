"""Reading predictions and labels in row chunks, for `fastbce score`.

Every source yields `(logits, labels, weight)` row chunks of at most
`chunk_rows` rows, reading only those rows: `.npy` files by plain reads at
an offset, `.npz` members as a stream, Parquet, Arrow IPC (Feather) and CSV
files batch by batch through pyarrow (the `io` extra). Memory stays bounded
by a few chunks, whatever the size of the files.
"""

from __future__ import annotations

import fnmatch
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, List, Optional, Sequence, Tuple, cast

import numpy as np
from numpy.typing import NDArray

TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".feather": "ipc", ".arrow": "ipc", ".ipc": "ipc",
                  ".csv": "csv", ".tsv": "csv"}  # fmt: skip

Chunk = Tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]]]


class InputError(Exception):
    """Bad input: reported as a message, without a traceback."""


def require_pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError:
        raise InputError("reading Parquet, Arrow and CSV files needs pyarrow: pip install 'fastbce[io]'") from None
    return pyarrow


# ------------------------------------------------------------------- .npy


def _bytes_of(array: NDArray[Any]) -> memoryview:
    """The bytes of a C-contiguous array, to read a file into."""
    return memoryview(cast(Any, array)).cast("B")


@dataclass
class NpyHeader:
    shape: Tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool
    offset: int


def read_npy_header(f: IO[bytes], name: str) -> NpyHeader:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    except Exception as exc:  # a damaged header fails in NumPy's parser in many ways
        raise InputError(f"{name} is not a .npy array: {exc or type(exc).__name__}") from None
    if dtype.hasobject:
        raise InputError(f"{name} holds Python objects; expected numbers")
    if len(shape) not in (1, 2) or any(n < 0 for n in shape):
        raise InputError(f"{name} has shape {shape}; expected (N,) or (N, C)")
    return NpyHeader(tuple(shape), dtype, fortran_order, f.tell() if f.seekable() else -1)


def _into(buffer: Optional[NDArray[Any]], rows: int, header: NpyHeader) -> NDArray[Any]:
    """`rows` rows of a reused buffer: fresh memory would cost the system
    zeroing its pages on every chunk."""
    if buffer is None or buffer.shape[0] < rows:
        buffer = np.empty((rows, *header.shape[1:]), header.dtype)
    return buffer[:rows]


class NpyRows:
    """The rows of one `.npy` array, read a chunk at a time into a buffer
    that the next chunk reuses."""

    def __init__(self, path: str) -> None:
        self.name = path
        try:
            self.file: io.BufferedReader = open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        self.header = read_npy_header(self.file, path)
        self.rows = self.header.shape[0]
        self.buffer: Optional[NDArray[Any]] = None

    def read(self, start: int, stop: int) -> NDArray[Any]:
        """Rows `start:stop`, valid until the next call."""
        h = self.header
        if h.fortran_order:
            # Rows are not contiguous on disk: map the file, read the slice.
            mapped = np.load(self.name, mmap_mode="r")
            return np.array(mapped[start:stop])
        out = _into(self.buffer, stop - start, h)
        self.buffer = out.base if out.base is not None else out
        self.file.seek(h.offset + start * out[:1].nbytes)
        if self.file.readinto(_bytes_of(out)) != out.nbytes:
            raise InputError(f"{self.name} is shorter than its header says")
        return out

    def close(self) -> None:
        self.file.close()


class NpzMemberRows:
    """The rows of one `.npz` member, read in order from the (possibly
    compressed) stream."""

    def __init__(self, archive: zipfile.ZipFile, member: str, label: str) -> None:
        self.name = label
        self.file = cast(io.BufferedReader, archive.open(member))
        self.header = read_npy_header(self.file, label)
        if self.header.fortran_order and len(self.header.shape) > 1:
            raise InputError(f"{label} is stored in Fortran order; rewrite it in C order to stream it")
        self.rows = self.header.shape[0]
        self.position = 0
        self.buffer: Optional[NDArray[Any]] = None

    def read(self, start: int, stop: int) -> NDArray[Any]:
        """Rows `start:stop` (in order), valid until the next call."""
        assert start == self.position, "npz members are read in order"
        out = _into(self.buffer, stop - start, self.header)
        self.buffer = out.base if out.base is not None else out
        view = _bytes_of(out)
        done = 0
        while done < out.nbytes:
            got = self.file.readinto(view[done:])
            if not got:
                raise InputError(f"{self.name} is shorter than its header says")
            done += got
        self.position = stop
        return out

    def close(self) -> None:
        self.file.close()


# ------------------------------------------------------------------ sources


class Source:
    """Rows of logits (or probabilities), labels and optional weights."""

    #: Total rows, when known up front.
    rows: Optional[int]
    #: Names of the classes (logit columns), one per class.
    class_names: List[str]
    #: Names of the label columns, one per class.
    label_names: List[str]
    #: What was read, for the summary.
    description: str

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _check_pair(logits_shape: Tuple[int, ...], labels_shape: Tuple[int, ...], a: str, b: str) -> None:
    if logits_shape != labels_shape:
        raise InputError(f"{a} has shape {logits_shape} but {b} has shape {labels_shape}; they must match")


class ArrayPairSource(Source):
    """Two arrays of rows: `.npy` files, or members of an `.npz` file."""

    def __init__(self, logits: Any, labels: Any, weight: Optional[Any] = None) -> None:
        self.logits, self.labels, self.weight = logits, labels, weight
        _check_pair(logits.header.shape, labels.header.shape, logits.name, labels.name)
        if weight is not None and weight.rows != logits.rows:
            raise InputError(f"{weight.name} has {weight.rows} rows but {logits.name} has {logits.rows}")
        self.rows = logits.rows
        shape = logits.header.shape
        if shape[1:] == (0,):
            raise InputError(f"{logits.name} has shape {shape}: no classes to score")
        self.class_names = [str(c) for c in range(shape[1])] if len(shape) == 2 else ["0"]
        self.label_names = self.class_names
        self.description = f"{logits.name}, {labels.name}"

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        assert self.rows is not None
        for start in range(0, self.rows, chunk_rows):
            stop = min(start + chunk_rows, self.rows)
            weight = None if self.weight is None else self.weight.read(start, stop)
            yield self.logits.read(start, stop), self.labels.read(start, stop), weight

    def close(self) -> None:
        for reader in (self.logits, self.labels, self.weight):
            if reader is not None:
                reader.close()


def open_npz(path: str, logits: str, labels: str) -> Tuple[NpzMemberRows, NpzMemberRows]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    members = {name[:-4]: name for name in archive.namelist() if name.endswith(".npy")}
    for wanted in (logits, labels):
        if wanted not in members:
            raise InputError(f"{path} has no member {wanted!r}; it has {', '.join(sorted(members)) or 'none'}")
    # Each member stream keeps the archive's file open until it is closed.
    return (NpzMemberRows(archive, members[logits], f"{path}:{logits}"),
            NpzMemberRows(archive, members[labels], f"{path}:{labels}"))  # fmt: skip


def select_columns(spec: str, available: Sequence[str], what: str, path: str) -> List[str]:
    """Columns named by `spec`: a comma-separated list of names or globs."""
    chosen: List[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        matches = [c for c in available if fnmatch.fnmatchcase(c, item)] if any(ch in item for ch in "*?[") else (
            [item] if item in available else [])  # fmt: skip
        if not matches:
            shown = ", ".join(available[:20]) + (", ..." if len(available) > 20 else "")
            raise InputError(f"{path} has no column matching {item!r} (for {what}); its columns are: {shown}")
        chosen.extend(c for c in matches if c not in chosen)
    if not chosen:
        raise InputError(f"no columns given for {what}")
    return chosen


class TableSource(Source):
    """Columns of a Parquet, Arrow IPC (Feather) or CSV file."""

    def __init__(self, path: str, logits: str, labels: str, weight: Optional[str]) -> None:
        pa = require_pyarrow()
        self.pa = pa
        self.path = path
        self.kind = TABLE_SUFFIXES[Path(path).suffix.lower()]
        if not os.path.exists(path):
            raise InputError(f"cannot read {path}: No such file or directory")
        names, self.rows = self._schema()
        self.logit_columns = select_columns(logits, names, "--logits", path)
        self.label_columns = select_columns(labels, names, "--labels", path)
        if len(self.logit_columns) != len(self.label_columns):
            raise InputError(
                f"{len(self.logit_columns)} logit columns but {len(self.label_columns)} label columns; "
                "give one label column per logit column"
            )
        self.weight_columns = [] if weight is None else select_columns(weight, names, "--weight", path)
        if self.weight_columns and len(self.weight_columns) not in (1, len(self.logit_columns)):
            raise InputError("--weight needs one column (a weight per row) or one per logit column")
        self.class_names = self.logit_columns
        self.label_names = self.label_columns
        self.description = path

    def _schema(self) -> Tuple[List[str], Optional[int]]:
        pa = self.pa
        try:
            if self.kind == "parquet":
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(self.path)
                return meta.schema_arrow.names, meta.metadata.num_rows
            if self.kind == "ipc":
                reader = pa.ipc.open_file(pa.memory_map(self.path))
                return reader.schema.names, sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(self.path, parse_options=self._csv_parse())
            names = reader.schema.names
            reader.close()
            return names, None
        except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
            raise InputError(f"cannot read {self.path}: {exc}") from None

    def _csv_parse(self) -> Any:
        import pyarrow.csv as pcsv

        return pcsv.ParseOptions(delimiter="\t" if self.path.lower().endswith(".tsv") else ",")

    def _batches(self, columns: List[str], chunk_rows: int) -> Iterator[Any]:
        pa = self.pa
        if self.kind == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(self.path).iter_batches(batch_size=chunk_rows, columns=columns)
        elif self.kind == "ipc":
            reader = pa.ipc.open_file(pa.memory_map(self.path))
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i).select(columns)
                for start in range(0, batch.num_rows, chunk_rows):
                    yield batch.slice(start, chunk_rows)
        else:
            import pyarrow.csv as pcsv

            block = max(1 << 20, min(1 << 26, chunk_rows * 16 * len(columns)))
            reader = pcsv.open_csv(
                self.path,
                read_options=pcsv.ReadOptions(block_size=block),
                parse_options=self._csv_parse(),
                convert_options=pcsv.ConvertOptions(include_columns=columns),
            )
            for batch in reader:
                for start in range(0, batch.num_rows, chunk_rows):
                    yield batch.slice(start, chunk_rows)

    def _matrix(self, batch: Any, columns: List[str], first_row: int) -> NDArray[Any]:
        arrays = [column_values(batch.column(name), name, self.path, first_row) for name in columns]
        if len(arrays) == 1:
            return cast(NDArray[Any], arrays[0].reshape(-1, 1))
        return np.column_stack(arrays)

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        columns = list(dict.fromkeys(self.logit_columns + self.label_columns + self.weight_columns))
        row = 0
        try:
            for batch in self._batches(columns, chunk_rows):
                weight = self._matrix(batch, self.weight_columns, row) if self.weight_columns else None
                logits = self._matrix(batch, self.logit_columns, row)
                yield logits, self._matrix(batch, self.label_columns, row), weight
                row += batch.num_rows
        except (self.pa.ArrowInvalid, self.pa.ArrowIOError) as exc:
            raise InputError(f"cannot read {self.path}: {exc}") from None


def column_values(column: Any, name: str, path: str, first_row: int) -> NDArray[Any]:
    """A numeric Arrow column (rows `first_row` on of `path`) as NumPy
    values; InputError for missing values or other types."""
    pa = require_pyarrow()
    if column.null_count:
        import pyarrow.compute as pc

        row = first_row + int(pc.index(pc.is_null(column), True).as_py())
        raise InputError(f"{path}: column {name!r} has missing values (the first at row {row:,})")
    try:
        values = column.to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"{path}: column {name!r} is not numeric ({column.type}): {exc}") from None
    if values.dtype.kind not in "biuf":
        raise InputError(f"{path}: column {name!r} is not numeric ({values.dtype})")
    return cast(NDArray[Any], values)


def _outside_unit_interval(values: NDArray[Any]) -> bool:
    """Whether any value is outside [0, 1] or NaN (without a temporary array)."""
    if values.size == 0 or values.dtype == np.bool_:
        return False
    low, high = values.min(), values.max()
    return not (low >= 0 and high <= 1)


def _first_outside(values: NDArray[Any]) -> Tuple[int, int, Any]:
    """(row, column, value) of the first value outside [0, 1] or NaN."""
    matrix = values.reshape(len(values), -1)
    bad = ~((matrix >= 0) & (matrix <= 1))
    row, column = divmod(int(np.argmax(bad)), matrix.shape[1])
    return row, column, matrix[row, column]


@dataclass(frozen=True)
class RowCheck:
    """Refuses, with the row, the column and the value, a label outside
    [0, 1] (unless `any_labels`) and a probability outside [0, 1].

    The tensor API computes such labels by the formula, as PyTorch does; an
    evaluation refuses them, as -1/+1 labels are a common mistake that
    gives negative losses. (A plain object, so that Dask can ship it.)"""

    class_names: List[str]
    label_names: List[str]
    probabilities: bool
    any_labels: bool

    def __call__(self, logits: NDArray[Any], labels: NDArray[Any], first_row: int) -> None:
        if not self.any_labels and _outside_unit_interval(labels):
            row, column, value = _first_outside(labels)
            raise InputError(
                f"row {first_row + row:,}, label column {self.label_names[column]}: {value} is outside [0, 1] "
                "(-1/+1 labels? map -1 to 0); --allow-out-of-range-labels scores such labels by the formula"
            )
        if self.probabilities and _outside_unit_interval(logits):
            row, column, value = _first_outside(logits)
            raise InputError(
                f"row {first_row + row:,}, column {self.class_names[column]}: {value} is not a probability "
                "(outside [0, 1])"
            )


def could_be_probabilities(logits: NDArray[Any], labels: NDArray[Any]) -> bool:
    """Whether these logits all lie in [0, 1] and the labels are all 0 or 1:
    probabilities given without --probabilities, most likely."""
    if _outside_unit_interval(logits):
        return False
    if labels.dtype.kind in "biu":  # integers in [0, 1] are 0 or 1
        return not _outside_unit_interval(labels)
    return bool(np.all((labels == 0) | (labels == 1)))


class SyntheticSource(Source):
    """A deterministic multi-label dataset: `rows` x `classes` logits from a
    model that is right more often than not, labels with per-class base rates
    from 2% to 40% (hence the demo's pos_weight)."""

    BLOCK = 1 << 15

    def __init__(self, rows: int = 1_000_000, classes: int = 20, seed: int = 2026) -> None:
        self.rows: Optional[int] = rows
        self.classes, self.seed = classes, seed
        self.class_names = [f"class_{c:02d}" for c in range(classes)]
        self.label_names = self.class_names
        self.description = f"built-in demo data ({rows:,} rows x {classes} classes, seed {seed})"
        self.rates = np.linspace(0.02, 0.40, classes)

    def pos_weight(self) -> NDArray[np.float32]:
        """(negatives / positives) per class, as one would set it."""
        return ((1 - self.rates) / self.rates).astype(np.float32)

    def _base(self) -> Tuple[NDArray[np.float32], NDArray[np.uint8]]:
        if not hasattr(self, "_base_block"):
            rng = np.random.default_rng(self.seed)
            labels = rng.random((self.BLOCK, self.classes)) < self.rates
            signal = np.where(labels, 1.5, -1.5) + rng.normal(0.0, 2.0, labels.shape)
            logits = (signal + np.log(self.rates / (1 - self.rates))).astype(np.float32)
            self._base_block = (logits, labels.astype(np.uint8))
        return self._base_block

    def _block(self, index: int) -> Tuple[NDArray[np.float32], NDArray[np.uint8]]:
        # Random rows once, then each block is those rows rotated by its own
        # offset: deterministic, and as fast to make as to copy.
        assert self.rows is not None
        rows = min(self.BLOCK, self.rows - index * self.BLOCK)
        shift = (index * 7919) % self.BLOCK
        logits, labels = self._base()
        return np.roll(logits, shift, axis=0)[:rows], np.roll(labels, shift, axis=0)[:rows]

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        # Generated in fixed blocks, so the data do not depend on chunk_rows.
        assert self.rows is not None
        xs: List[NDArray[np.float32]] = []
        ys: List[NDArray[np.uint8]] = []
        held = 0
        for index in range(-(-self.rows // self.BLOCK)):
            x, y = self._block(index)
            xs.append(x)
            ys.append(y)
            held += len(x)
            while held >= chunk_rows:
                x_all, y_all = np.concatenate(xs), np.concatenate(ys)
                yield x_all[:chunk_rows], y_all[:chunk_rows], None
                xs, ys = [x_all[chunk_rows:]], [y_all[chunk_rows:]]
                held -= chunk_rows
        if held:
            yield np.concatenate(xs), np.concatenate(ys), None


def npy_weight(path: str, rows: int, classes: int) -> Tuple[Optional[NpyRows], Optional[NDArray[Any]]]:
    """A `--weight` file: per class (C,) values, or rows read along."""
    reader = NpyRows(path)
    shape = reader.header.shape
    if shape == (classes,) and shape != (rows,):
        values = reader.read(0, classes)
        reader.close()
        return None, values
    if shape[0] != rows or (len(shape) == 2 and shape[1] not in (1, classes)):
        reader.close()
        raise InputError(f"{path} has shape {shape}; a weight is ({classes},), ({rows},) or ({rows}, {classes})")
    return reader, None
