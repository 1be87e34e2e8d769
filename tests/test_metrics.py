"""The evaluation metrics against scikit-learn: log-loss, Brier score,
calibration (reliability bins and ECE) and ROC AUC, weighted as
scikit-learn weights, per class and per group, on generated data and on
scikit-learn's bundled datasets."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastbce as fb
from fastbce._metrics import Tally, parse_metrics, roc_auc

sklearn = pytest.importorskip("sklearn", reason="the metrics are checked against scikit-learn (the test extra)")
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score  # noqa: E402

ALL = "logloss,brier,ece,auc"


def generated(rows=20_000, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=rows) < 0.3).astype(np.uint8)
    x = rng.normal(0, 2, rows) + 1.2 * y
    if ties:
        x = np.round(x, 1)  # many equal scores across both classes
    w = rng.uniform(0.2, 3.0, rows)
    return x, y, w


def probabilities(x):
    """The probabilities the metrics bin: fastbce.sigmoid of float64 logits."""
    return fb.sigmoid(np.asarray(x, np.float64))


def sklearn_ece(y, p, bins, strategy):
    """ECE from scikit-learn's reliability curve, weighting each bin by its
    share of the rows (counted with NumPy's own binning)."""
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins, strategy=strategy)
    edges = (
        np.percentile(p, np.linspace(0, 1, bins + 1) * 100) if strategy == "quantile" else np.linspace(0, 1, bins + 1)
    )
    counts = np.bincount(np.digitize(p, edges[1:-1], right=True), minlength=bins)
    counts = counts[counts > 0]
    return float(np.sum(counts / len(p) * np.abs(prob_pred - prob_true))), prob_true, prob_pred, counts


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_metric_equals_scikit_learn(ties, weighted):
    x, y, w = generated(ties=ties)
    sw = w if weighted else None
    data = {"x": x, "y": y, "w": w}
    result = fb.score(data, logits="x", labels="y", weight="w" if weighted else None, metrics=ALL)
    p = probabilities(x)
    assert math.isclose(result.metrics["logloss"], log_loss(y, p, sample_weight=sw), rel_tol=1e-12)
    assert math.isclose(result.metrics["brier"], brier_score_loss(y, p, sample_weight=sw), rel_tol=1e-12)
    assert abs(result.metrics["auc"] - roc_auc_score(y, x, sample_weight=sw)) <= 1e-9
    assert result.weight_sum == pytest.approx(w.sum() if weighted else len(x), rel=1e-12)
    assert result.rows == len(x) and result.count == len(x)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("bins", [1, 7, 10, 25])
def test_reliability_table_equals_calibration_curve(strategy, bins):
    x, y, _ = generated(seed=bins)
    result = fb.score({"x": x, "y": y}, logits="x", labels="y", metrics="ece", bins=bins, strategy=strategy)
    ece, prob_true, prob_pred, counts = sklearn_ece(y, probabilities(x), bins, strategy)
    table = result.reliability
    np.testing.assert_allclose([b["observed_rate"] for b in table], prob_true, rtol=1e-12, atol=0)
    np.testing.assert_allclose([b["mean_predicted"] for b in table], prob_pred, rtol=1e-12)
    assert [b["count"] for b in table] == counts.tolist()
    assert result.metrics["ece"] == pytest.approx(ece, rel=1e-12)


def test_weighted_reliability_is_the_weighted_mean_per_bin():
    x, y, w = generated(seed=3)
    result = fb.score({"x": x, "y": y, "w": w}, logits="x", labels="y", weight="w", metrics="ece", bins=5)
    p = probabilities(x)
    index = np.digitize(p, np.linspace(0, 1, 6)[1:-1], right=True)
    ece = 0.0
    for row in result.reliability:
        inside = index == row["bin"]
        assert row["count"] == inside.sum()
        assert row["weight"] == pytest.approx(w[inside].sum(), rel=1e-12)
        assert row["mean_predicted"] == pytest.approx(np.average(p[inside], weights=w[inside]), rel=1e-12)
        assert row["observed_rate"] == pytest.approx(np.average(y[inside], weights=w[inside]), rel=1e-12)
        ece += w[inside].sum() / w.sum() * abs(row["mean_predicted"] - row["observed_rate"])
    assert result.metrics["ece"] == pytest.approx(ece, rel=1e-12)


def test_per_class_and_per_group_equal_scikit_learn_on_each_part():
    rng = np.random.default_rng(7)
    rows, classes = 6_000, 3
    x = rng.normal(0, 2, (rows, classes)).astype(np.float32)
    y = (rng.uniform(size=(rows, classes)) < [0.1, 0.3, 0.5]).astype(np.uint8)
    w = rng.uniform(0.5, 2, rows)
    region = rng.choice(np.array(["north", "south", "east"]), rows)
    data = {f"logit_{c}": x[:, c] for c in range(classes)} | {f"label_{c}": y[:, c] for c in range(classes)}
    data |= {"w": w, "region": region}
    result = fb.score(data, logits="logit_*", labels="label_*", weight="w", group_by="region", metrics=ALL,
                      chunk_rows=1000)  # fmt: skip
    x64 = x.astype(np.float64)
    records = {(g["region"], g["class"]): g for g in result.groups}
    assert [g["region"] for g in result.groups if g["class"] == "all"] == ["east", "north", "south"]
    records |= {("all", r["class"]): r for r in result.per_class}
    records[("all", "all")] = {"logloss": result.metrics["logloss"], "auc": result.metrics["auc"]}
    for name in ("east", "north", "south", "all"):
        rows_in = region == name if name != "all" else np.ones(rows, bool)
        for c in range(classes):
            got = records[(name, f"label_{c}")]
            xs, ys, ws = x64[rows_in, c], y[rows_in, c], w[rows_in]
            assert got["rows"] == rows_in.sum() and got["positives"] == ys.sum()
            assert got["logloss"] == pytest.approx(log_loss(ys, probabilities(xs), sample_weight=ws), rel=1e-6)
            assert got["brier"] == pytest.approx(brier_score_loss(ys, probabilities(xs), sample_weight=ws), rel=1e-12)
            assert abs(got["auc"] - roc_auc_score(ys, xs, sample_weight=ws)) <= 1e-9
        pooled = records[(name, "all")]
        flat_w = np.repeat(w[rows_in], classes)
        flat_x, flat_y = x64[rows_in].ravel(), y[rows_in].ravel()
        assert pooled["logloss"] == pytest.approx(
            log_loss(flat_y, probabilities(flat_x), sample_weight=flat_w), rel=1e-6
        )
        # The pooled AUC is scikit-learn's micro average.
        assert abs(pooled["auc"] - roc_auc_score(y[rows_in], x64[rows_in], average="micro",
                                                 sample_weight=w[rows_in])) <= 1e-9  # fmt: skip
    assert [r["class"] for r in result.per_class] == ["label_0", "label_1", "label_2"]
    assert all(r["region"] is None for r in result.per_class)  # every region pooled


@pytest.mark.parametrize("loader", ["load_breast_cancer", "load_digits"])
def test_bundled_datasets(loader):
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features, target = getattr(datasets, loader)(return_X_y=True)
    target = (target == target.max()).astype(np.uint8)  # binary: the last class
    features = StandardScaler().fit_transform(features)
    model = LogisticRegression(max_iter=2000).fit(features, target)
    logits = model.decision_function(features)
    weight = np.where(target == 1, 3.0, 1.0)  # positives counted three times
    result = fb.score({"x": logits, "y": target, "w": weight}, logits="x", labels="y", weight="w", metrics=ALL)
    p = model.predict_proba(features)[:, 1]
    assert math.isclose(result.metrics["logloss"], log_loss(target, p, sample_weight=weight), rel_tol=1e-9)
    assert math.isclose(result.metrics["brier"], brier_score_loss(target, p, sample_weight=weight), rel_tol=1e-9)
    assert abs(result.metrics["auc"] - roc_auc_score(target, logits, sample_weight=weight)) <= 1e-9
    # The tensor API keeps PyTorch's division by N: the two differ by sum(w) / N.
    tensor_mean = fb.binary_cross_entropy_with_logits(logits, target, weight)
    assert math.isclose(tensor_mean * len(logits) / weight.sum(), result.metrics["logloss"], rel_tol=1e-12)


def test_auc_exact_counts_and_weights():
    # Ties count one half; weights count pairs by their product.
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.4])
    labels = np.array([0, 0, 1, 1, 1])
    assert roc_auc(scores, labels, None) == pytest.approx(roc_auc_score(labels, scores), abs=0)
    weights = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    assert roc_auc(scores, labels, weights) == pytest.approx(
        roc_auc_score(labels, scores, sample_weight=weights), abs=1e-15
    )
    assert math.isnan(roc_auc(scores, np.zeros(5), None))  # one class: undefined
    assert math.isnan(roc_auc(np.array([0.1, np.nan]), np.array([0, 1]), None))


def test_soft_labels_have_no_auc_but_the_other_metrics():
    x = np.array([0.5, -1.0, 2.0])
    y = np.array([0.2, 0.0, 1.0])
    with pytest.raises(
        ValueError, match=r"auc needs labels that are 0 or 1 \(class 0\); soft labels have no ROC curve"
    ):
        fb.score({"x": x, "y": y}, logits="x", labels="y", metrics="auc")
    result = fb.score({"x": x, "y": y}, logits="x", labels="y", metrics="logloss,brier")
    assert result.metrics["brier"] == pytest.approx(np.mean((probabilities(x) - y) ** 2), rel=1e-15)


def test_settings_are_checked():
    with pytest.raises(ValueError, match="metrics must be among logloss, brier, ece, auc; got f1"):
        parse_metrics("logloss,f1")
    with pytest.raises(ValueError, match="bins must be a whole number of at least 1, got 0"):
        Tally(1, bins=0)
    with pytest.raises(ValueError, match="strategy must be 'uniform' or 'quantile', got 'equal'"):
        Tally(1, strategy="equal")
    assert parse_metrics("auc, LOGLOSS") == ("logloss", "auc")  # reported in a fixed order


def test_tallies_of_parts_merge_into_the_tally_of_the_whole():
    x, y, w = generated(rows=9_000, seed=11)
    groups = np.arange(9_000) % 4
    whole = Tally(1, metrics=ALL.split(","), strategy="quantile")
    whole.update(x, y, w, groups, [(g,) for g in range(4)])
    merged = Tally(1, metrics=ALL.split(","), strategy="quantile")
    for part in np.array_split(np.arange(9_000), 5):
        piece = Tally(1, metrics=ALL.split(","), strategy="quantile")
        piece.update(x[part], y[part], w[part], groups[part], [(g,) for g in range(4)])
        merged.merge(piece)
    for a, b in zip(whole.finish(pooled=True)[0], merged.finish(pooled=True)[0], strict=True):
        assert (a.group, a.cls, a.rows, a.count) == (b.group, b.cls, b.rows, b.count)
        for name in a.metrics:
            assert a.metrics[name] == pytest.approx(b.metrics[name], rel=1e-12)


def test_auc_past_the_memory_allowed_is_binned_within_its_stated_bound():
    rng = np.random.default_rng(21)
    n = 300_000
    y = (rng.uniform(size=n) < 0.3).astype(np.uint8)
    x = (rng.normal(0, 2, n) + 1.2 * y).astype(np.float32)
    w = rng.uniform(0.5, 2, n)
    groups = rng.choice(np.array(["a", "b"]), n)
    data = {"x": x, "y": y, "w": w, "g": groups}
    exact = fb.score(data, logits="x", labels="y", weight="w", group_by="g", metrics="auc")
    binned = fb.score(data, logits="x", labels="y", weight="w", group_by="g", metrics="auc", auc_memory=100_000,
                      chunk_rows=50_000)  # fmt: skip
    assert exact.to_dict()["auc_error"] is None
    bound = binned.to_dict()["auc_error"]
    assert 0 < bound <= 1e-6  # continuous scores: bins of 2**-17 relative width
    want = roc_auc_score(y, x, sample_weight=w)
    assert abs(binned.metrics["auc"] - want) <= bound
    for group in binned.groups:
        rows = groups == group["g"]
        assert abs(group["auc"] - roc_auc_score(y[rows], x[rows], sample_weight=w[rows])) <= group["auc_error"]
    assert "auc: from fine bins of the scores (more than the memory allowed); within" in binned.summary()


def test_binned_auc_of_tied_scores_states_the_ties_as_its_bound():
    # Every score one of two values: AUC is right (ties count one half either
    # way), but a bin cannot tell ties from near-ties: half the pairs share one.
    x = np.repeat([0.25, 0.75], 1000)
    y = np.tile([0, 1], 1000)
    binned = fb.score({"x": x, "y": y}, logits="x", labels="y", metrics="auc", auc_memory=1)
    assert binned.metrics["auc"] == roc_auc_score(y, x) == 0.5
    assert binned.to_dict()["auc_error"] == 0.25


def test_equal_mass_bins_refuse_more_than_the_memory_allowed():
    x, y, _ = generated(rows=5_000)
    with pytest.raises(ValueError, match=r"equal-mass bins keep every prediction, and [\d,]+ bytes exceed the memory"):
        fb.score({"x": x, "y": y}, logits="x", labels="y", metrics="ece", strategy="quantile", auc_memory=1_000)


def test_binned_tallies_merge():
    x, y, w = generated(rows=20_000, seed=5)
    whole = Tally(1, metrics=["auc"], memory=1)
    whole.update(x, y, w)
    merged = Tally(1, metrics=["auc"], memory=1)
    for part in np.array_split(np.arange(20_000), 3):
        piece = Tally(1, metrics=["auc"], memory=None if part[0] else 1)  # exact and binned parts alike
        piece.update(x[part], y[part], w[part])
        merged.merge(piece)
    a, b = whole.finish()[0][0], merged.finish()[0][0]
    assert a.metrics["auc"] == pytest.approx(b.metrics["auc"], rel=1e-12) and a.auc_error == pytest.approx(b.auc_error)


def test_the_streaming_accumulator_gives_the_metrics_of_score():
    rng = np.random.default_rng(8)
    x = rng.normal(0, 2, (9_000, 3)).astype(np.float32)
    y = (rng.uniform(size=(9_000, 3)) < 0.3).astype(np.uint8)
    w = rng.uniform(0.5, 2, 9_000)
    pw = np.array([1.0, 2.0, 3.0])
    acc = fb.LossAccumulator(pos_weight=pw, metrics=ALL, bins=8)
    for part in np.array_split(np.arange(9_000), 4):
        acc.update(x[part], y[part], w[part, None])
    streamed = acc.result(class_names=["a", "b", "c"])
    whole = fb.score({"x": x, "y": y, "w": w}, logits="x", labels="y", weight="w", pos_weight=pw, metrics=ALL, bins=8,
                     class_names=["a", "b", "c"])  # fmt: skip
    for a, b in zip(streamed.per_class + [streamed.metrics], whole.per_class + [whole.metrics], strict=True):
        for name in ("logloss", "brier", "ece", "auc"):
            assert a[name] == pytest.approx(b[name], rel=1e-12), name
    # The accumulator's own mean is still the tensor API's (divided by the element count).
    assert acc.mean == pytest.approx(float(fb.binary_cross_entropy_with_logits(x, y, w[:, None], pos_weight=pw)))
    with pytest.raises(ValueError, match=r"no metrics were asked for: LossAccumulator\(metrics="):
        fb.LossAccumulator().result()


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.int64, np.float32])
def test_positives_per_class_of_a_label_matrix(dtype):
    rng = np.random.default_rng(4)
    y = (rng.uniform(size=(70_001, 5)) < [0.01, 0.2, 0.5, 0.9, 0.0]).astype(dtype)
    x = rng.normal(size=y.shape)
    result = fb.score({"x": x, "y": y}, logits="x", labels="y", chunk_rows=30_000)
    assert [r["positives"] for r in result.per_class] == y.sum(axis=0, dtype=np.int64).tolist()
    # A strided view of the same labels counts the same.
    wide = np.zeros((70_001, 10), dtype)
    wide[:, ::2] = y
    strided = fb.score({"x": x, "y": wide[:, ::2]}, logits="x", labels="y")
    assert [r["positives"] for r in strided.per_class] == y.sum(axis=0, dtype=np.int64).tolist()


def test_many_groups_arriving_in_any_order():
    rng = np.random.default_rng(12)
    n = 20_000
    group = rng.integers(0, 500, n) * 3  # 500 groups, new ones in every chunk
    x, y, w = rng.normal(0, 2, n), (rng.uniform(size=n) < 0.4).astype(np.uint8), rng.uniform(0.5, 2, n)
    result = fb.score({"x": x, "y": y, "w": w, "g": group}, logits="x", labels="y", weight="w", group_by="g",
                      metrics="logloss,brier", chunk_rows=777)  # fmt: skip
    assert [g["g"] for g in result.groups] == sorted(set(group.tolist()))
    loss = fb.binary_cross_entropy_with_logits(x, y, w, reduction="none")
    for record in result.groups[::37]:
        rows = group == record["g"]
        assert record["rows"] == rows.sum() and record["weight"] == pytest.approx(w[rows].sum(), rel=1e-12)
        assert record["logloss"] == pytest.approx(loss[rows].sum() / w[rows].sum(), rel=1e-12)
        assert record["brier"] == pytest.approx(
            brier_score_loss(y[rows], probabilities(x[rows]), sample_weight=w[rows])
        )
