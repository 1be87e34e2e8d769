"""`fastbce score --plot FILE.png`: the reliability diagram and, for a
grouped evaluation, the log-loss per group (needs matplotlib: the `plot`
extra)."""

from __future__ import annotations

from ._io import InputError
from ._result import ScoreResult


def plot(result: ScoreResult, path: str) -> None:
    """Draws `result` to `path` (any format matplotlib writes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 + bool(result.group_by)
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 5), squeeze=False)
    diagram = axes[0][0]
    diagram.plot([0, 1], [0, 1], linestyle=":", color="gray", label="perfectly calibrated")
    bins = result.reliability
    if bins:
        ece = result.metrics.get("ece")
        label = "every class pooled" if result.classes > 1 else result.class_names[0]
        diagram.plot([b["mean_predicted"] for b in bins], [b["observed_rate"] for b in bins], marker="o",
                     label=f"{label} (ECE {ece:.4f})" if ece is not None else label)  # fmt: skip
    else:
        diagram.text(0.5, 0.5, "add --metrics ece for the reliability diagram", ha="center")
    diagram.set(xlabel="mean predicted probability", ylabel="observed rate", xlim=(0, 1), ylim=(0, 1),
                title=f"reliability ({result.strategy} bins)")  # fmt: skip
    diagram.legend(loc="upper left")
    if result.group_by:
        groups = [g for g in result.groups if g["class"] == ("all" if result.classes > 1 else result.class_names[0])]
        names = [" / ".join(str(g[c]) for c in result.group_by) for g in groups]
        bars = axes[0][1]
        bars.barh(names, [g["logloss"] if g.get("logloss") is not None else 0 for g in groups])
        bars.invert_yaxis()
        bars.set(xlabel="log-loss", title=f"log-loss per {', '.join(result.group_by)}")
    figure.tight_layout()
    try:
        figure.savefig(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot write {path}: {exc}") from None
    finally:
        plt.close(figure)
