"""Evaluation metrics over a stream of rows: log-loss, Brier score, expected
calibration error (with its reliability table) and ROC AUC, per class and
per group.

Weighted as scikit-learn weights `sample_weight`: a weighted mean is divided
by the sum of the weights. (The tensor API divides by the element count,
as PyTorch does; docs/metrics.md sets the two side by side.)

A `Tally` holds the sums of the rows it was given. Two tallies of disjoint
rows merge into the tally of both (Dask combines them so), and `finish`
turns one into `MetricRow`s and `BinRow`s.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._functional import binary_cross_entropy, binary_cross_entropy_with_logits, sigmoid, sum64
from ._threads import get_num_threads

__all__ = ["METRICS", "STRATEGIES", "BinRow", "MetricRow", "Tally", "parse_metrics", "roc_auc"]

#: The metrics, in the order they are reported.
METRICS = ("logloss", "brier", "ece", "auc")
#: Reliability bins: equal width in probability, or equal mass (quantiles).
STRATEGIES = ("uniform", "quantile")
#: The sums a `Tally` keeps per group (its first axis).
SUMS = ("rows", "count", "weight", "positives", "loss", "brier", "bin_sums", "bin_count")
#: The edges of a single bin (the Brier sum alone).
ONE_BIN = np.array([0.0, 1.0])

F64 = NDArray[np.float64]
#: One class's values of a chunk: a column (1-D, any stride) of the rows.
Column = NDArray[Any]
#: A chunk's values: an (rows, classes) array, or one column per class.
Columns = Union[NDArray[Any], Sequence[Column]]
#: A group's key: one value per group-by column.
Key = Tuple[Hashable, ...]
#: Values, labels and weights kept for AUC and equal-mass bins.
Kept = Tuple[NDArray[Any], NDArray[Any], Optional[NDArray[Any]]]


def parse_metrics(metrics: Union[str, Iterable[str]]) -> Tuple[str, ...]:
    """The metrics named by `metrics` (comma-separated text or names), in
    the order of `METRICS`; ValueError for an unknown name."""
    names = [m.strip().lower() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise ValueError(f"metrics must be among {', '.join(METRICS)}; got {', '.join(unknown) or 'none'}")
    return tuple(m for m in METRICS if m in names)


def column(values: Columns, c: int) -> Column:
    """Column `c` of a chunk's values."""
    if isinstance(values, np.ndarray):
        return values if values.ndim == 1 else values[:, c]
    return values[c]


def roc_auc(scores: NDArray[Any], labels: NDArray[Any], weights: Optional[NDArray[Any]]) -> float:
    """The area under the ROC curve: the (weighted) share of (positive,
    negative) pairs ranked in order, ties counting one half, as
    `sklearn.metrics.roc_auc_score`. NaN without both classes or with a NaN
    score.

    Both sides are sorted (NumPy's vectorized sort), then each positive
    finds its place among the negatives in order, which keeps the binary
    searches in cache; unweighted, the pair counts are exact integers."""
    positive = labels == 1
    if np.isnan(scores).any():
        return math.nan
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return math.nan
    if weights is None:
        pos, neg = np.sort(pos), np.sort(neg)
        below = np.searchsorted(neg, pos, "left")
        upto = np.searchsorted(neg, pos, "right")
        pairs = 2 * int(below.sum(dtype=np.int64)) + int((upto - below).sum(dtype=np.int64))
        return pairs / (2 * len(pos) * len(neg))
    w_pos, w_neg = weights[positive].astype(np.float64), weights[~positive].astype(np.float64)
    order = np.argsort(neg, kind="stable")
    neg = neg[order]
    cumulative = np.concatenate([[0.0], np.cumsum(w_neg[order])])
    order = np.argsort(pos, kind="stable")
    pos, w_pos = pos[order], w_pos[order]
    below = cumulative[np.searchsorted(neg, pos, "left")]
    upto = cumulative[np.searchsorted(neg, pos, "right")]
    return float(np.dot(w_pos, below + upto) / (2 * w_pos.sum() * cumulative[-1]))


def probabilities_of(values: Column, probabilities: bool, buffer: F64) -> F64:
    """The predicted probabilities of a column, in float64: the values
    themselves, or the sigmoid of the logits (`fastbce.sigmoid` of the
    float64 logits)."""
    p = buffer[: len(values)]
    np.copyto(p, values, casting="unsafe")
    return p if probabilities else sigmoid(p, out=p)


#: Bytes of predictions, labels and weights kept for exact AUC and
#: equal-mass bins before AUC turns to binned counts.
DEFAULT_MEMORY = 1 << 30

#: Low bits of a float32 score's order key dropped by a `Histogram` bin:
#: at most 2**26 bins (a few million in practice, 20 bytes each), each 2**-17
#: of its value wide.
HISTOGRAM_SHIFT = 6


class Histogram:
    """(positive, negative) weight per fine bin of the scores, for AUC over
    more scores than memory holds. A bin is a float32 score with its last
    `HISTOGRAM_SHIFT` bits dropped (in an order-keeping encoding), so bins
    are ordered as the scores; pairs in one bin count one half, which is
    off by at most one half of their share of all pairs: the stated bound."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, np.uint32)
        self.positive: F64 = np.zeros(0)
        self.negative: F64 = np.zeros(0)
        self.nan = False

    def add(self, scores: NDArray[Any], labels: NDArray[Any], weights: Optional[NDArray[Any]]) -> None:
        finite = ~np.isnan(scores)
        self.nan = self.nan or not finite.all()
        bits = np.asarray(scores[finite], np.float32).view(np.uint32)
        keys = np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000)) >> HISTOGRAM_SHIFT
        w = np.ones(len(keys)) if weights is None else np.asarray(weights, np.float64)[finite]
        positive = np.asarray(labels)[finite] == 1
        self._combine(keys.astype(np.uint32), np.where(positive, w, 0.0), np.where(positive, 0.0, w))

    def merge(self, other: Histogram) -> None:
        self.nan = self.nan or other.nan
        self._combine(other.keys, other.positive, other.negative)

    def _combine(self, keys: NDArray[np.uint32], positive: F64, negative: F64) -> None:
        every, where = np.unique(np.concatenate([self.keys, keys]), return_inverse=True)
        self.positive = np.asarray(
            np.bincount(where, np.concatenate([self.positive, positive]), len(every)), np.float64
        )
        self.negative = np.asarray(
            np.bincount(where, np.concatenate([self.negative, negative]), len(every)), np.float64
        )
        self.keys = every.astype(np.uint32)

    def auc(self) -> Tuple[float, float]:
        """(AUC, the most it can differ from the exact value)."""
        total_pos, total_neg = self.positive.sum(), self.negative.sum()
        if self.nan or not total_pos or not total_neg:
            return math.nan, 0.0
        below = np.cumsum(self.negative) - self.negative
        pairs = total_pos * total_neg
        auc = float(np.dot(self.positive, below + 0.5 * self.negative) / pairs)
        return auc, float(0.5 * np.dot(self.positive, self.negative) / pairs)


@dataclass
class MetricRow:
    """The metrics of one group and class (class None: every class pooled)."""

    group: Key
    cls: Optional[int]
    rows: int
    count: int
    weight: float
    positives: float
    loss_sum: float
    metrics: Dict[str, float]
    #: Where AUC came from fine bins of the scores: how far it may be from the exact value.
    auc_error: Optional[float] = None


@dataclass
class BinRow:
    """One bin of a reliability table: weighted means of its elements."""

    group: Key
    cls: Optional[int]
    bin: int
    lower: float
    upper: float
    count: int
    weight: float
    mean_predicted: float
    observed_rate: float


class Tally:
    """The sums behind the metrics, per group and class, of the rows given.

    Keeps per group and class: rows, elements, the sum of the weights, the
    positives, the weighted loss and Brier sums and (uniform bins) the
    reliability bins' sums; for AUC and equal-mass bins, also the values,
    labels and weights themselves (which AUC needs exactly: memory grows
    with the rows, about 5 bytes per float32 element)."""

    def __init__(
        self,
        classes: int,
        *,
        metrics: Sequence[str] = ("logloss",),
        bins: int = 10,
        strategy: str = "uniform",
        probabilities: bool = False,
        pos_weight: Optional[NDArray[Any]] = None,
        memory: Optional[int] = DEFAULT_MEMORY,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"bins must be a whole number of at least 1, got {bins!r}")
        self.classes = classes
        self.metrics = parse_metrics(metrics)
        self.bins, self.strategy = int(bins), strategy
        self.probabilities = probabilities
        self.pos_weight = None if pos_weight is None else np.broadcast_to(np.asarray(pos_weight), (classes,))
        self.edges = np.linspace(0.0, 1.0, self.bins + 1)
        self.keys: List[Key] = []
        self._index: Dict[Key, int] = {}
        self.rows = np.zeros(0, np.int64)
        shape = (0, classes)
        self.count = np.zeros(shape, np.int64)
        self.weight, self.positives = np.zeros(shape), np.zeros(shape)
        self.loss, self.brier = np.zeros(shape), np.zeros(shape)
        self.bin_sums = np.zeros((*shape, self.bins, 3))  # weight, weight * p, weight * y
        self.bin_count = np.zeros((*shape, self.bins), np.int64)
        self.kept: List[List[List[Kept]]] = []
        # Past `memory` bytes of kept values, AUC counts (positive, negative)
        # weight per fine bin of the scores instead: `Histogram`s.
        self.memory, self.kept_bytes = memory, 0
        self.histograms: Optional[List[List[Histogram]]] = None
        # The loss of ungrouped rows, summed by the kernel (exactly for the
        # total of an (N, C) stream: its bits are those of one call).
        self._running: Optional[_core.RunningSums] = None
        self._buffers: Tuple[F64, F64] = (np.zeros(0), np.zeros(0))

    # ----------------------------------------------------------- groups

    @property
    def keeps_values(self) -> bool:
        return "auc" in self.metrics or ("ece" in self.metrics and self.strategy == "quantile")

    def groups_of(self, keys: Sequence[Key]) -> NDArray[np.intp]:
        """The indices of the groups `keys`, the new ones added (all at once:
        the sums grow by one copy per call, not per group)."""
        new = [key for key in dict.fromkeys(tuple(k) for k in keys) if key not in self._index]
        if new:
            for key in new:
                self._index[key] = len(self.keys)
                self.keys.append(key)
            for name in SUMS:
                array = getattr(self, name)
                setattr(self, name, np.concatenate([array, np.zeros((len(new), *array.shape[1:]), array.dtype)]))
            self.kept.extend([[] for _ in range(self.classes)] for _ in new)
            if self.histograms is not None:
                self.histograms.extend([Histogram() for _ in range(self.classes)] for _ in new)
        return np.array([self._index[tuple(k)] for k in keys], np.intp)

    # ----------------------------------------------------------- update

    def update(
        self,
        logits: Columns,
        labels: Columns,
        weight: Optional[Columns] = None,
        codes: Optional[NDArray[np.integer[Any]]] = None,
        keys: Sequence[Key] = ((),),
    ) -> None:
        """Adds a chunk: `logits` (or probabilities) and `labels` as (rows,
        classes) arrays or one column per class; `weight` per row (rows,),
        per element, or None; `codes[i]` the index in `keys` of row i's
        group (None: every row in `keys[0]`)."""
        rows = len(column(logits, 0))
        ids = self.groups_of(keys)
        if codes is None:
            group_ids: Optional[NDArray[np.intp]] = None
            self.rows[ids[0]] += rows
        else:
            group_ids = ids[codes]
            self.rows += np.bincount(group_ids, minlength=len(self.keys))
        if group_ids is None:
            self._add_loss_sums(int(ids[0]), logits, labels, weight)
            self._add_positives(int(ids[0]), labels)
        for c in range(self.classes):
            x, y = column(logits, c), column(labels, c)
            w = None if weight is None else column(weight, c if _per_element(weight) else 0)
            self._add_class(c, x, y, w, ids[0] if group_ids is None else group_ids)

    def _add_loss_sums(self, gid: int, logits: Columns, labels: Columns, weight: Optional[Columns]) -> None:
        """The loss sums of one group's chunk, by the kernel, per class: in
        one call for an (N, C) array (group 0 only: its running sums)."""
        w = weight
        if isinstance(w, np.ndarray) and w.ndim == 1 and isinstance(logits, np.ndarray) and logits.ndim == 2:
            w = w.reshape(-1, 1)
        if isinstance(logits, np.ndarray) and isinstance(labels, np.ndarray) and gid == 0 and (
                w is None or isinstance(w, np.ndarray)):  # fmt: skip
            if self._running is None:
                self._running = _core.RunningSums(self.classes if logits.ndim == 2 else None)
            sum64(self.probabilities, logits, labels, w, self.pos_weight, into=self._running,
                  axis=0 if logits.ndim == 2 else None)  # fmt: skip
            return
        for c in range(self.classes):
            sums = _core.RunningSums()
            wc = None if weight is None else column(weight, c if _per_element(weight) else 0)
            pw = None if self.pos_weight is None else self.pos_weight[c]
            sum64(self.probabilities, column(logits, c), column(labels, c), wc, pw, into=sums)
            self.loss[gid, c] += sums.total

    def _add_positives(self, gid: int, labels: Columns) -> None:
        """The positives of one group's chunk per class: 0/1 labels in
        integers counted, not summed (a sum converts each to float); a
        row-major byte matrix counted in one pass (a column walk each costs
        more than the loss)."""
        if isinstance(labels, np.ndarray) and labels.ndim == 2 and labels.dtype.kind in "bu" and (
                labels.dtype.itemsize == 1 and labels.flags.c_contiguous and _counted(labels)):  # fmt: skip
            self.positives[gid] += _core.nonzero_per_column(labels.view(np.uint8))
            return
        for c in range(self.classes):
            y = column(labels, c)
            self.positives[gid, c] += np.count_nonzero(y) if _counted(y) else y.sum(dtype=np.float64)

    def _buffer(self, rows: int) -> Tuple[F64, F64]:
        if len(self._buffers[0]) < rows:
            self._buffers = (np.empty(rows), np.empty(rows))
        return self._buffers

    def _add_class(self, c: int, x: Column, y: Column, w: Optional[Column], gid: Union[int, NDArray[np.intp]]) -> None:
        """Adds class `c`'s column of a chunk to the sums of group `gid`
        (one group, or the group of each row)."""
        grouped = not isinstance(gid, (int, np.integer))
        groups = len(self.keys)

        def add(target: NDArray[Any], values: Optional[NDArray[Any]]) -> None:
            if grouped:
                target[:, c] += np.bincount(gid, weights=values, minlength=groups)
            else:
                target[gid, c] += len(x) if values is None else values.sum(dtype=np.float64)

        add(self.count, None)
        add(self.weight, w)
        if grouped:
            add(self.positives, y)
            pw = None if self.pos_weight is None else self.pos_weight[c]
            x64, _ = self._buffer(len(x))
            np.copyto(x64[: len(x)], x, casting="unsafe")
            if self.probabilities:
                loss = binary_cross_entropy(x64[: len(x)], y, w, "none")
            else:
                loss = binary_cross_entropy_with_logits(x64[: len(x)], y, w, "none", pw)
            add(self.loss, loss)
        binned = "ece" in self.metrics and self.strategy == "uniform"
        if binned or "brier" in self.metrics:
            # One pass for both: the Brier sum is the bins' fourth sum.
            first, second = self._buffer(len(x))
            p = probabilities_of(x, self.probabilities, first)
            group = None if isinstance(gid, (int, np.integer)) else gid
            edges = self.edges if binned else ONE_BIN
            sums, counts = _bin_sums(p, y, w, group, len(self.keys), edges, second)
            rows = slice(None) if group is not None else gid
            if binned:
                self.bin_sums[rows, c] += sums[..., :3] if group is not None else sums[0, :, :3]
                self.bin_count[rows, c] += counts if group is not None else counts[0]
            self.brier[rows, c] += sums[..., 3].sum(axis=-1) if group is not None else sums[0, :, 3].sum()
        if self.keeps_values:
            self._keep(c, x, y, w, gid)

    def _keep(self, c: int, x: Column, y: Column, w: Optional[Column], gid: Union[int, NDArray[np.intp]]) -> None:
        if isinstance(gid, (int, np.integer)):
            pieces = [(int(gid), (np.array(x), np.array(y), None if w is None else np.array(w)))]
        else:
            order = np.argsort(gid, kind="stable")
            bounds = np.searchsorted(gid[order], np.arange(len(self.keys) + 1))
            rows = [order[bounds[g] : bounds[g + 1]] for g in range(len(self.keys))]
            pieces = [(g, (x[r], y[r], None if w is None else w[r])) for g, r in enumerate(rows) if len(r)]
        for g, piece in pieces:
            if self.histograms is not None:
                _check_binary(piece[1], c)
                self.histograms[g][c].add(*piece)
            else:
                self.kept[g][c].append(piece)
                self.kept_bytes += sum(a.nbytes for a in piece if a is not None)
        if self.memory is not None and self.histograms is None and self.kept_bytes > self.memory:
            self._to_histograms()

    def _to_histograms(self) -> None:
        """AUC from here on by fine bins of the scores (`Histogram`), with a
        stated error bound: the kept values no longer fit in `memory`."""
        if "ece" in self.metrics and self.strategy == "quantile":
            raise ValueError(
                f"equal-mass bins keep every prediction, and {self.kept_bytes:,} bytes exceed the memory allowed "
                f"({self.memory:,}); use uniform bins or allow more memory"
            )
        self.histograms = [[Histogram() for _ in range(self.classes)] for _ in self.keys]
        for g, per_class in enumerate(self.kept):
            for c, pieces in enumerate(per_class):
                for piece in pieces:
                    _check_binary(piece[1], c)
                    self.histograms[g][c].add(*piece)
                pieces.clear()
        self.kept_bytes = 0

    # ------------------------------------------------------------ merge

    def settle(self) -> None:
        """Moves the kernel's running loss sums into the plain sums (to
        merge or pickle)."""
        if self._running is not None:
            sums = self._running.sums
            self.loss[0] += sums if sums is not None else self._running.total
            self._running = None
        self._buffers = (np.zeros(0), np.zeros(0))

    def __getstate__(self) -> Dict[str, Any]:
        self.settle()
        return self.__dict__

    def merge(self, other: Tally) -> None:
        """Adds the sums of `other` (a tally of other rows, made with the
        same settings)."""
        other.settle()
        mapped = self.groups_of(other.keys)
        for name in SUMS:
            np.add.at(getattr(self, name), mapped, getattr(other, name))
        for g, mine in enumerate(mapped.tolist()):
            for c in range(self.classes):
                for piece in other.kept[g][c]:
                    self._keep(c, *piece, mine)
                if other.histograms is not None:
                    if self.histograms is None:
                        self._to_histograms()
                    assert self.histograms is not None
                    self.histograms[mine][c].merge(other.histograms[g][c])

    # ----------------------------------------------------------- finish

    def loss_sums(self) -> F64:
        """The loss summed per group and class."""
        loss = self.loss.copy()
        if self._running is not None:
            sums = self._running.sums
            loss[0] += sums if sums is not None else self._running.total
        return loss

    def total_loss(self) -> float:
        """The loss summed over everything (exactly rounded for an
        ungrouped (N, C) stream)."""
        if self._running is not None and not self.loss.any() and len(self.keys) == 1:
            return float(self._running.total)
        return math.fsum(self.loss_sums().ravel())

    def finish(
        self, group_order: Optional[Sequence[int]] = None, pooled: bool = False
    ) -> Tuple[List[MetricRow], List[BinRow]]:
        """The metrics of every group (in `group_order`) and class, then of
        every class pooled (where there are several), then of every group
        pooled (where there are several, or with `pooled`; key ()); and the
        reliability bins."""
        if group_order is None:
            group_order = range(len(self.keys))
        cells: List[Tuple[Key, Sequence[int], Optional[int]]] = []
        every_class: List[Optional[int]] = [*range(self.classes), *([None] if self.classes > 1 else [])]
        for g in group_order:
            cells.extend((self.keys[g], [g], c) for c in every_class)
        if len(self.keys) > 1 or (pooled and self.keys != [()]):
            cells.extend(((), list(group_order), c) for c in every_class)
        loss = self.loss_sums()
        threads = min(get_num_threads(), len(cells)) if self.keeps_values else 1
        if threads > 1:  # sorting for AUC and quantiles: NumPy releases the GIL
            with ThreadPoolExecutor(threads) as pool:
                results = list(pool.map(lambda cell: self._cell(loss, *cell), cells))
        else:
            results = [self._cell(loss, *cell) for cell in cells]
        return [r for r, _ in results], [b for _, bins in results for b in bins]

    def _cell(self, loss: F64, key: Key, groups: Sequence[int], cls: Optional[int]) -> Tuple[MetricRow, List[BinRow]]:
        classes = list(range(self.classes)) if cls is None else [cls]
        g: Any
        c: Any
        if len(groups) == 1 and len(classes) == 1:
            g, c = slice(groups[0], groups[0] + 1), slice(classes[0], classes[0] + 1)  # views, not copies
        else:
            g, c = np.ix_(list(groups), classes)
        weight = float(self.weight[g, c].sum())
        row = MetricRow(
            group=key,
            cls=cls,
            rows=int(self.rows[list(groups)].sum()),
            count=int(self.count[g, c].sum()),
            weight=weight,
            positives=float(self.positives[g, c].sum()),
            loss_sum=math.fsum(loss[g, c].ravel().tolist()),
            metrics={},
        )
        kept = [piece for gi in groups for ci in classes for piece in self.kept[gi][ci]]
        values = _concatenate(kept) if kept else None
        bins: List[BinRow] = []
        for name in self.metrics:
            if name == "logloss":
                row.metrics[name] = _ratio(row.loss_sum, weight)
            elif name == "brier":
                row.metrics[name] = _ratio(float(self.brier[g, c].sum()), weight)
            elif name == "ece":
                bins = self._reliability(key, cls, g, c, values)
                row.metrics[name] = _ece(bins)
            elif self.histograms is not None:
                histogram = Histogram()
                for gi in groups:
                    for ci in classes:
                        histogram.merge(self.histograms[gi][ci])
                row.metrics[name], row.auc_error = histogram.auc()
            elif values is not None:
                _check_binary(values[1], cls)
                row.metrics[name] = roc_auc(*values)
        return row, bins

    def _reliability(self, key: Key, cls: Optional[int], g: Any, c: Any, values: Optional[Kept]) -> List[BinRow]:
        edges = self.edges
        if self.strategy == "uniform":
            sums, counts = self.bin_sums[g, c].sum(axis=(0, 1)), self.bin_count[g, c].sum(axis=(0, 1))
        else:
            assert values is not None
            x, y, w = values
            p = probabilities_of(x, self.probabilities, np.empty(len(x)))
            edges = np.percentile(p, np.linspace(0, 1, self.bins + 1) * 100) if len(p) else edges
            sums, counts = (a[0] for a in _bin_sums(p, y, w, None, 1, edges, np.empty(len(p))))
            sums = sums[:, :3]
        return [
            BinRow(
                key,
                cls,
                b,
                float(edges[b]),
                float(edges[b + 1]),
                int(counts[b]),
                float(sums[b, 0]),
                _ratio(sums[b, 1], sums[b, 0]),
                _ratio(sums[b, 2], sums[b, 0]),
            )  # fmt: skip
            for b in range(self.bins)
            if counts[b]
        ]


def _bin_sums(
    p: F64, y: Column, w: Optional[Column], group: Optional[NDArray[np.intp]], groups: int, edges: F64, buffer: F64
) -> Tuple[NDArray[np.float64], NDArray[np.int64]]:
    """(groups, bins, 4) sums (weight, weight * p, weight * y, weight *
    (p - y)^2) and (groups, bins) counts of the reliability bins of `edges` (scikit-learn's
    binning); `buffer` holds the labels as float64."""
    labels = buffer[: len(p)]
    np.copyto(labels, y, casting="unsafe")
    weight = None if w is None else np.ascontiguousarray(w, np.float64)
    codes = None if group is None else np.ascontiguousarray(group, np.int64)
    bins = len(edges) - 1
    sums, counts = _core.bin_sums(np.ascontiguousarray(p), labels, weight, codes, max(groups, 1), edges)
    shape = (-1, bins)
    return sums.reshape(*shape, 4), counts.view(np.int64).reshape(shape)


def _counted(labels: NDArray[Any]) -> bool:
    """Whether labels are bool or integers 0/1 (so their sum is a count)."""
    if labels.dtype == np.bool_ or not labels.size:
        return labels.dtype.kind in "biu"
    if labels.dtype.kind == "u":
        return bool(labels.max() <= 1)
    return labels.dtype.kind == "i" and bool(labels.min() >= 0) and bool(labels.max() <= 1)


def _per_element(weight: Columns) -> bool:
    """Whether a weight holds a column per class (rather than one per row)."""
    if isinstance(weight, np.ndarray):
        return weight.ndim == 2 and weight.shape[1] > 1
    return len(weight) > 1


def _concatenate(pieces: List[Kept]) -> Kept:
    x = np.concatenate([p[0] for p in pieces])
    y = np.concatenate([p[1] for p in pieces])
    weighted = any(p[2] is not None for p in pieces)
    w = np.concatenate([np.ones(len(p[0])) if p[2] is None else p[2] for p in pieces]) if weighted else None
    return x, y, w


def _check_binary(labels: NDArray[Any], cls: Optional[int]) -> None:
    if labels.dtype != np.bool_ and not np.isin(labels, (0, 1)).all():
        where = "" if cls is None else f" (class {cls})"
        raise ValueError(f"auc needs labels that are 0 or 1{where}; soft labels have no ROC curve")


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _ece(bins: List[BinRow]) -> float:
    """Expected calibration error: the weight-averaged gap between the
    mean predicted probability and the observed rate, over the bins."""
    total = sum(b.weight for b in bins)
    if not total:
        return math.nan
    return math.fsum(b.weight * abs(b.mean_predicted - b.observed_rate) for b in bins) / total
