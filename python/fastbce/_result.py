"""The result of an evaluation (`fastbce.score`, `fastbce score`): the
metrics per class and group, the reliability bins, and how they were
computed; as text, a dict (JSON), an Arrow table or a pandas frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Sequence, Tuple

from ._metrics import BinRow, MetricRow

#: How a metric is printed: its heading and decimals.
_SHOWN = {"logloss": ("logloss", 6), "brier": ("brier", 6), "ece": ("ece", 6), "auc": ("auc", 6)}


def _plural(n: int, word: str, many: Optional[str] = None) -> str:
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: None instead."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _key_text(value: Hashable) -> str:
    return "(null)" if value is None else str(value)


@dataclass
class ScoreResult:
    """What an evaluation found.

    Attributes
    ----------
    rows, count : int
        Rows and elements scored (after dropped rows).
    sum, weight_sum, mean : float
        The weighted loss summed over every element, the weights summed,
        and their ratio: log-loss as scikit-learn's ``log_loss(...,
        sample_weight=...)`` (without weights: the mean loss per element).
    metrics : dict
        Every metric asked for, over every class and group pooled.
    per_class : list of dict
        Per class: rows, positives, weight, and every metric.
    groups : list of dict
        Per group (and per class, where there are several), sorted by key.
    reliability : list of dict
        The reliability bins of every class pooled (every group pooled):
        count, weight, mean predicted probability and observed rate.
    """

    inputs: str
    probabilities: bool
    class_names: List[str]
    label_names: List[str]
    metric_names: Tuple[str, ...]
    bins: int
    strategy: str
    group_by: List[str]
    weight: Optional[str]
    pos_weight: Optional[List[float]]
    rows: int
    dropped_rows: int
    count: int
    sum: float
    weight_sum: float
    table: List[MetricRow]
    bin_rows: List[BinRow]
    seconds: float = 0.0
    scoring_seconds: Optional[float] = None
    threads: int = 1
    per_sample: Optional[str] = None
    warnings: List[str] = field(default_factory=list)

    # ------------------------------------------------------------ values

    @property
    def classes(self) -> int:
        return len(self.class_names)

    @property
    def mean(self) -> float:
        return self.sum / self.weight_sum if self.weight_sum else math.nan

    def _overall(self) -> MetricRow:
        """The row of every group and class pooled."""
        pooled = None if self.classes > 1 else 0
        return next(r for r in self.table if r.group == () and r.cls == pooled)

    @property
    def metrics(self) -> Dict[str, float]:
        return dict(self._overall().metrics)

    def _record(self, row: MetricRow) -> Dict[str, Any]:
        # Every group pooled (key ()): the group columns are None.
        record: Dict[str, Any] = {name: row.group[i] if row.group else None for i, name in enumerate(self.group_by)}
        record["class"] = "all" if row.cls is None else self.class_names[row.cls]
        record.update(rows=row.rows, count=row.count, positives=row.positives, weight=row.weight)
        record.update({name: _finite(v) for name, v in row.metrics.items()})
        if row.auc_error is not None:
            record["auc_error"] = row.auc_error
        return record

    @property
    def per_class(self) -> List[Dict[str, Any]]:
        return [self._record(r) for r in self.table if r.group == () and r.cls is not None]

    @property
    def per_class_mean(self) -> List[float]:
        """The log-loss of each class (weighted mean loss)."""
        return [
            r.loss_sum / r.weight if r.weight else math.nan for r in self.table if r.group == () and r.cls is not None
        ]

    @property
    def groups(self) -> List[Dict[str, Any]]:
        """Per group (by key) and class; every group pooled is in
        `per_class` and `metrics`."""
        return [self._record(r) for r in self.table if r.group != ()] if self.group_by else []

    @property
    def reliability(self) -> List[Dict[str, Any]]:
        pooled = None if self.classes > 1 else 0
        return [self._bin(b) for b in self.bin_rows if b.group == () and b.cls == pooled]

    def _bin(self, b: BinRow) -> Dict[str, Any]:
        record: Dict[str, Any] = {name: b.group[i] if b.group else None for i, name in enumerate(self.group_by)}
        record["class"] = "all" if b.cls is None else self.class_names[b.cls]
        record.update(bin=b.bin, lower=b.lower, upper=b.upper, count=b.count, weight=b.weight,
                      mean_predicted=_finite(b.mean_predicted), observed_rate=_finite(b.observed_rate))  # fmt: skip
        return record

    # ----------------------------------------------------------- exports

    def to_dict(self) -> Dict[str, Any]:
        """Everything, JSON-ready (non-finite numbers as None)."""
        items: Dict[str, Any] = {
            "inputs": self.inputs,
            "probabilities": self.probabilities,
            "rows": self.rows,
            "dropped_rows": self.dropped_rows,
            "classes": self.classes,
            "class_names": self.class_names,
            "label_names": self.label_names,
            "weight": self.weight,
            "pos_weight": self.pos_weight,
            "count": self.count,
            "sum": _finite(self.sum),
            "weight_sum": self.weight_sum,
            "mean": _finite(self.mean),
            "per_class_mean": [_finite(v) for v in self.per_class_mean],
            "metrics": {k: _finite(v) for k, v in self.metrics.items()},
            "auc_error": self._overall().auc_error,
            "bins": self.bins,
            "strategy": self.strategy,
            "per_class": self.per_class,
            "group_by": self.group_by,
            "groups": self.groups,
            "reliability": self.reliability,
            "seconds": self.seconds,
            "elements_per_second": self.count / self.seconds if self.seconds > 0 else None,
            "threads": self.threads,
            "per_sample": self.per_sample,
            "warnings": self.warnings,
        }
        if self.scoring_seconds is not None:
            items["scoring_seconds"] = self.scoring_seconds
        return items

    def to_arrow(self, what: str = "metrics") -> Any:
        """The metrics table (a row per group and class: `what="metrics"`),
        or every reliability bin of every group and class
        (`what="reliability"`), as a `pyarrow.Table`."""
        import pyarrow as pa

        if what == "metrics":
            records = [self._record(r) for r in self.table]
        elif what == "reliability":
            records = [self._bin(b) for b in self.bin_rows]
        else:
            raise ValueError(f"what must be 'metrics' or 'reliability', got {what!r}")
        return pa.Table.from_pylist(records)

    def to_pandas(self, what: str = "metrics") -> Any:
        """As :meth:`to_arrow`, a pandas DataFrame (needs pandas)."""
        return self.to_arrow(what).to_pandas()

    # -------------------------------------------------------------- text

    def summary(self) -> str:
        """A report for people: what was read, the weights, the metrics per
        class (and group), the reliability table, the time."""
        kind = "probabilities" if self.probabilities else "logits"
        lines = [f"fastbce score: {self.inputs} ({kind})"]
        rows = f"{_plural(self.rows, 'row')} x {_plural(self.classes, 'class', 'classes')}"
        lines.append(f"  scored     {rows} = {_plural(self.count, 'element')}")
        if self.dropped_rows:
            lines.append(f"  dropped    {_plural(self.dropped_rows, 'row')} with missing values")
        lines.append(f"  weight     {self.weight or 'none'}")
        if self.pos_weight is not None:
            shown = ", ".join(f"{v:.4g}" for v in self.pos_weight[:8]) + (", ..." if len(self.pos_weight) > 8 else "")
            lines.append(f"  pos_weight {shown}")
        lines.append("")
        lines.extend(self._metric_lines())
        bound = max((r.auc_error for r in self.table if r.auc_error is not None), default=None)
        if bound is not None:
            lines.append(f"  auc: from fine bins of the scores (more than the memory allowed); within {bound:.1e}")
        if self.reliability:
            lines.append("")
            lines.extend(self._reliability_lines())
        lines.append("")
        rate = self.count / self.seconds if self.seconds > 0 else math.inf
        timing = (
            f"  time       {self.seconds:.3f} s ({rate / 1e6:,.1f} M elements/s, {_plural(self.threads, 'thread')})"
        )
        if self.scoring_seconds is not None:
            timing += f"; scoring {self.scoring_seconds:.3f} s of it"
        lines.append(timing)
        if self.per_sample:
            lines.append(f"  per-sample losses written to {self.per_sample}")
        return "\n".join(lines) + "\n"

    def _metric_lines(self) -> List[str]:
        headings = [*self.group_by, *(["class"] if self.classes > 1 else []), "rows", "positives"]
        headings += [_SHOWN[m][0] for m in self.metric_names]
        table: List[List[str]] = []
        shown = [r for r in self.table if r.group != ()] + [r for r in self.table if r.group == ()]
        for row in shown:
            cells = [_key_text(v) for v in row.group] if row.group else (["all"] * len(self.group_by))
            if self.classes > 1:
                cells.append("all" if row.cls is None else self.class_names[row.cls])
            cells += [
                f"{row.rows:,}",
                f"{row.positives:,.0f}" if row.positives.is_integer() else f"{row.positives:,.2f}",
            ]
            cells += [_number(row.metrics[m], _SHOWN[m][1]) for m in self.metric_names]
            table.append(cells)
        return _aligned(headings, table, left=len(self.group_by) + (self.classes > 1))

    def _reliability_lines(self) -> List[str]:
        what = "every class pooled" if self.classes > 1 else self.class_names[0]
        head = f"  reliability ({what}; {self.strategy} bins; ece {_number(self.metrics.get('ece', math.nan), 6)})"
        headings = ["bin", "predicted in", "rows", "mean predicted", "observed rate"]
        table = [[str(b["bin"]), f"({b['lower']:.3f}, {b['upper']:.3f}]", f"{b['count']:,}",
                  _number(b["mean_predicted"], 4), _number(b["observed_rate"], 4)]
                 for b in self.reliability]  # fmt: skip
        return [head, *_aligned(headings, table, left=2)]


def _number(value: Optional[float], decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{decimals}f}"


def _aligned(headings: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> List[str]:
    """Columns padded to their widest cell: the first `left` to the left
    (names), the others to the right (numbers)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headings)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  " + "  ".join(padded).rstrip()

    return [line(headings), *(line(r) for r in rows)]
