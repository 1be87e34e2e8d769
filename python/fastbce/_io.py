"""Reading predictions and labels in row chunks, for `fastbce score`.

Every source yields `Chunk`s of at most `chunk_rows` rows, reading only
those rows: `.npy` files by plain reads at an offset, `.npz` members as a
stream, in-memory arrays as views (tables of every kind: `_tables.py`).
Memory stays bounded by a few chunks, whatever the size of the files.
"""

from __future__ import annotations

import io
import math
import mmap
import os
import zipfile
from dataclasses import dataclass
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union, cast

import numpy as np
from numpy.typing import NDArray

#: A chunk's values: an (rows, classes) array, or one column per class.
Columns = Union[NDArray[Any], Sequence[NDArray[Any]]]


@dataclass
class Chunk:
    """Rows `first_row` on of a source: logits (or probabilities), labels,
    weights (per row or per element) and, from tables, the group-by and id
    columns (Arrow arrays)."""

    logits: Columns
    labels: Columns
    weight: Optional[Columns]
    first_row: int
    rows: int
    groups: Optional[List[Any]] = None
    ids: Optional[Any] = None
    #: The row numbers of the rows kept, when rows with missing values were dropped.
    row_numbers: Optional[NDArray[np.int64]] = None
    #: Rows dropped for missing values.
    dropped: int = 0


class InputError(ValueError):
    """Bad input: reported by the command as a message, without a
    traceback (and a ValueError to the Python API)."""


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
    """The rows of one `.npy` array, a chunk at a time: a read-only memory
    map of just those rows (the kernel then reads the page cache in place,
    one pass instead of a copy and a pass), or, where a map is refused, a
    read into two buffers in turn. A chunk stays valid until the second call
    after it (so one can be read while the one before is scored)."""

    def __init__(self, path: str) -> None:
        self.name = path
        try:
            self.file: io.BufferedReader = open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        self.header = h = read_npy_header(self.file, path)
        self.rows = h.shape[0]
        self.row_bytes = math.prod(h.shape[1:]) * h.dtype.itemsize
        self.buffers: List[Optional[NDArray[Any]]] = [None, None]
        # A map past the end of the file would fault when read: a short file
        # is refused now.
        if os.fstat(self.file.fileno()).st_size < h.offset + self.rows * self.row_bytes:
            raise InputError(f"{path} is shorter than its header says")

    def read(self, start: int, stop: int) -> NDArray[Any]:
        """Rows `start:stop`, valid until the second call after this one."""
        h = self.header
        if h.fortran_order:
            # Rows are not contiguous on disk: map the file, read the slice.
            mapped = np.load(self.name, mmap_mode="r")
            return np.array(mapped[start:stop])
        first, end = h.offset + start * self.row_bytes, h.offset + stop * self.row_bytes
        if end > first and not h.dtype.hasobject:
            base = first // mmap.ALLOCATIONGRANULARITY * mmap.ALLOCATIONGRANULARITY
            try:
                window = mmap.mmap(self.file.fileno(), end - base, offset=base, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                pass  # not a mappable file: read it
            else:
                values = np.frombuffer(window, h.dtype, (stop - start) * (self.row_bytes // h.dtype.itemsize),
                                       first - base)  # fmt: skip
                return values.reshape(stop - start, *h.shape[1:])
        out = _into(self.buffers[0], stop - start, h)
        self.buffers = [self.buffers[1], out.base if out.base is not None else out]
        self.file.seek(first)
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
        self.buffers: List[Optional[NDArray[Any]]] = [None, None]

    def read(self, start: int, stop: int) -> NDArray[Any]:
        """Rows `start:stop` (in order), valid until the second call after this one."""
        assert start == self.position, "npz members are read in order"
        out = _into(self.buffers[0], stop - start, self.header)
        self.buffers = [self.buffers[1], out.base if out.base is not None else out]
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
            yield Chunk(self.logits.read(start, stop), self.labels.read(start, stop), weight, start, stop - start)

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


def _parts(values: Columns) -> List[NDArray[Any]]:
    """The arrays of a chunk's values: the matrix, or its columns."""
    return [values] if isinstance(values, np.ndarray) else list(values)


def _outside_unit_interval(values: Columns) -> bool:
    """Whether any value is outside [0, 1] or NaN (without a temporary array)."""
    for part in _parts(values):
        if not part.size or part.dtype == np.bool_:
            continue
        if part.dtype.kind == "u":  # never below 0
            if part.max() > 1:
                return True
        elif not (part.min() >= 0 and part.max() <= 1):
            return True
    return False


def _first_outside(values: Columns) -> Tuple[int, int, Any]:
    """(row, column, value) of the first value outside [0, 1] or NaN."""
    found: List[Tuple[int, int, Any]] = []
    offset = 0
    for part in _parts(values):
        matrix = part.reshape(len(part), -1)
        bad = ~((matrix >= 0) & (matrix <= 1))
        if bad.any():
            row, column = divmod(int(np.argmax(bad)), matrix.shape[1])
            found.append((row, offset + column, matrix[row, column]))
        offset += matrix.shape[1]
    return min(found, key=lambda f: (f[0], f[1]))


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

    def __call__(self, logits: Columns, labels: Columns, first_row: int,
                 row_numbers: Optional[NDArray[np.int64]] = None) -> None:  # fmt: skip
        def row_of(row: int) -> int:
            return int(row_numbers[row]) if row_numbers is not None else first_row + row

        if not self.any_labels and _outside_unit_interval(labels):
            row, column, value = _first_outside(labels)
            raise InputError(
                f"row {row_of(row):,}, label column {self.label_names[column]}: {value} is outside [0, 1] "
                "(-1/+1 labels? map -1 to 0); --allow-out-of-range-labels scores such labels by the formula"
            )
        if self.probabilities and _outside_unit_interval(logits):
            row, column, value = _first_outside(logits)
            raise InputError(
                f"row {row_of(row):,}, column {self.class_names[column]}: {value} is not a probability (outside [0, 1])"
            )


def could_be_probabilities(logits: Columns, labels: Columns) -> bool:
    """Whether these logits all lie in [0, 1] and the labels are all 0 or 1:
    probabilities given without --probabilities, most likely."""
    if _outside_unit_interval(logits):
        return False
    for part in _parts(labels):
        if part.dtype.kind in "biu":  # integers in [0, 1] are 0 or 1
            if _outside_unit_interval(part):
                return False
        elif not np.all((part == 0) | (part == 1)):
            return False
    return True


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
        held = first = 0
        for index in range(-(-self.rows // self.BLOCK)):
            x, y = self._block(index)
            xs.append(x)
            ys.append(y)
            held += len(x)
            while held >= chunk_rows:
                x_all, y_all = np.concatenate(xs), np.concatenate(ys)
                yield Chunk(x_all[:chunk_rows], y_all[:chunk_rows], None, first, chunk_rows)
                xs, ys = [x_all[chunk_rows:]], [y_all[chunk_rows:]]
                held -= chunk_rows
                first += chunk_rows
        if held:
            yield Chunk(np.concatenate(xs), np.concatenate(ys), None, first, held)


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


class MatrixSource(Source):
    """In-memory (N, C) or (N,) arrays, by name: logits, labels, and
    optionally a weight and 1-D group-by and id columns."""

    def __init__(
        self,
        arrays: Dict[str, NDArray[Any]],
        *,
        logits: str,
        labels: str,
        weight: Optional[str] = None,
        group_by: Optional[Union[str, Sequence[str]]] = None,
        id_column: Optional[str] = None,
        drop_null: bool = False,
    ) -> None:
        def get(name: str, what: str) -> NDArray[Any]:
            if name not in arrays:
                raise ValueError(f"{what}={name!r} is not a key of data; its keys are: {', '.join(arrays)}")
            return arrays[name]

        self.x, self.y = get(logits, "logits"), get(labels, "labels")
        _check_pair(self.x.shape, self.y.shape, f"data[{logits!r}]", f"data[{labels!r}]")
        self.w = None if weight is None else get(weight, "weight")
        names = [group_by] if isinstance(group_by, str) else list(group_by or [])
        self.groups = [get(n, "group_by") for n in names]
        self.ids = None if id_column is None else get(id_column, "id_column")
        self.rows = len(self.x)
        classes = self.x.shape[1] if self.x.ndim == 2 else 1
        self.class_names = [str(c) for c in range(classes)] if self.x.ndim == 2 else [logits]
        self.label_names = self.class_names
        self.description = "dict of arrays"

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        for start in range(0, len(self.x), chunk_rows):
            part = slice(start, start + chunk_rows)
            yield Chunk(
                self.x[part], self.y[part], None if self.w is None else self.w[part], start, len(self.x[part]),
                groups=[g[part] for g in self.groups] or None, ids=None if self.ids is None else self.ids[part],
            )  # fmt: skip
