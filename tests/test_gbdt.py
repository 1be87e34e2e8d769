"""fastbce.gbdt against the libraries themselves: with fastbce's logistic
objective, XGBoost, LightGBM and CatBoost grow the same trees as with their
built-in binary objectives (same initial margin); the focal objective trains
and lowers the focal loss; the metrics equal scikit-learn's log loss."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fastbce as fb
from fastbce import gbdt

sklearn_datasets = pytest.importorskip("sklearn.datasets")

ROUNDS = 15


@pytest.fixture(scope="module")
def data():
    X, y = sklearn_datasets.make_classification(n_samples=3000, n_features=12, flip_y=0.05, random_state=0)
    w = np.random.default_rng(0).random(len(y)) + 0.5
    return X, y.astype(np.float64), w


def test_initial_margin_is_the_log_odds_of_the_weighted_mean_label():
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    w = np.array([1.0, 2.0, 3.0, 1.0, 1.0])
    m = 3 / 8
    assert gbdt.initial_margin(y, w) == pytest.approx(np.log(m / (1 - m)), rel=1e-15)
    assert gbdt.initial_margin(y, scale_pos_weight=2.0) == pytest.approx(np.log(6 / 2), rel=1e-15)
    t = y * 0.8 + 0.1
    assert gbdt.initial_margin(y, label_smoothing=0.2) == pytest.approx(np.log(t.mean() / (1 - t.mean())), rel=1e-14)


def test_parameters_are_checked_when_built():
    with pytest.raises(ValueError, match="^loss must be one of"):
        gbdt.XGBoostObjective("hinge")
    with pytest.raises(ValueError, match="^gamma must be a finite number >= 0"):
        gbdt.LightGBMObjective("focal", gamma=-1.0)
    with pytest.raises(ValueError, match="^label_smoothing must be between 0 and 1"):
        gbdt.CatBoostObjective(label_smoothing=2.0)
    with pytest.raises(ValueError, match="^pos_weight weights the logloss"):
        gbdt.XGBoostObjective("focal", pos_weight=2.0)


def test_xgboost_logistic_objective_equals_binary_logistic(data):
    xgb = pytest.importorskip("xgboost", reason="XGBoost has no wheel for this platform")
    X, y, w = data
    margin = gbdt.initial_margin(y, w, scale_pos_weight=3.0)
    params = dict(tree_method="hist", max_depth=4, eta=0.3, nthread=1, scale_pos_weight=3.0)
    dtrain = xgb.DMatrix(X, label=y, weight=w)
    builtin = xgb.train(
        {**params, "objective": "binary:logistic", "base_score": 1 / (1 + np.exp(-margin))}, dtrain, ROUNDS
    )
    custom = xgb.train(
        {**params, "base_score": margin}, dtrain, ROUNDS, obj=gbdt.XGBoostObjective(scale_pos_weight=3.0)
    )
    want = builtin.predict(dtrain, output_margin=True)
    np.testing.assert_allclose(custom.predict(dtrain, output_margin=True), want, atol=1e-5, rtol=0)
    # The scikit-learn interface: sample_weight reaches the objective.
    base = 1 / (1 + np.exp(-gbdt.initial_margin(y, w)))
    options = dict(n_estimators=ROUNDS, max_depth=4, learning_rate=0.3, n_jobs=1, base_score=base)
    plain = xgb.XGBClassifier(**options).fit(X, y, sample_weight=w)
    ours = xgb.XGBClassifier(**options, objective=gbdt.XGBoostObjective()).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict(X, output_margin=True), plain.predict(X, output_margin=True), atol=1e-5)


def test_xgboost_multi_target_shapes_and_metric(data):
    xgb = pytest.importorskip("xgboost", reason="XGBoost has no wheel for this platform")
    X, y, w = data
    Y = np.column_stack([y, (X[:, 0] > 0).astype(np.float64)])
    dtrain = xgb.DMatrix(X, label=Y, weight=w)
    objective = gbdt.XGBoostObjective(pos_weight=np.array([1.0, 2.0]))
    margins = np.zeros((len(y), 2), np.float32)
    grad, hess = objective(margins, dtrain)
    assert grad.shape == hess.shape == (len(y), 2)
    np.testing.assert_allclose(grad[:, 1], w * np.where(Y[:, 1] == 1, -1.0, 0.5), rtol=1e-6)
    metric = gbdt.XGBoostMetric(pos_weight=np.array([1.0, 2.0]))
    history = {}
    params = dict(tree_method="hist", multi_strategy="one_output_per_tree", base_score=0.0, nthread=1)
    xgb.train(
        params,
        dtrain,
        5,
        obj=objective,
        custom_metric=metric,
        evals=[(dtrain, "train")],
        evals_result=history,
        verbose_eval=False,
    )
    losses = history["train"]["logloss"]
    assert losses[-1] < losses[0]
    pw = np.array([1.0, 2.0])
    total = fb.binary_cross_entropy_with_logits(margins, Y, np.broadcast_to(w[:, None], Y.shape), "sum", pw)
    # (XGBoost holds the weights in float32.)
    assert metric(margins, dtrain) == ("logloss", pytest.approx(total / (2 * w.sum()), rel=1e-7))


def test_metrics_equal_scikit_learns_log_loss(data):
    from sklearn.metrics import log_loss

    _, y, w = data
    margin = np.random.default_rng(3).standard_normal(len(y)) * 2
    p = 1 / (1 + np.exp(-margin))
    want = log_loss(y, p, sample_weight=w)
    assert gbdt.XGBoostMetric()(y, margin, sample_weight=w) == pytest.approx(want, rel=1e-12)
    assert gbdt.XGBoostMetric(from_logits=False)(y, p, sample_weight=w) == pytest.approx(want, rel=1e-9)
    assert gbdt.LightGBMMetric()(y, margin, w) == ("logloss", pytest.approx(want, rel=1e-12), False)
    error, weight = gbdt.CatBoostMetric().evaluate([margin], y, w)
    assert gbdt.CatBoostMetric().get_final_error(error, weight) == pytest.approx(want, rel=1e-12)


def _lightgbm_params():
    return dict(
        num_leaves=15, learning_rate=0.1, verbose=-1, seed=0, deterministic=True, force_row_wise=True, num_threads=1
    )


def test_lightgbm_logistic_objective_equals_binary(data):
    lgb = pytest.importorskip("lightgbm", reason="LightGBM has no wheel for this platform")
    X, y, w = data
    margin = gbdt.initial_margin(y, w)
    params = _lightgbm_params()
    builtin = lgb.train({**params, "objective": "binary"}, lgb.Dataset(X, y, weight=w), ROUNDS)
    init = np.full(len(y), margin)
    custom = lgb.train(
        {**params, "objective": gbdt.LightGBMObjective()}, lgb.Dataset(X, y, weight=w, init_score=init), ROUNDS
    )
    want = builtin.predict(X, raw_score=True)
    np.testing.assert_allclose(custom.predict(X, raw_score=True) + margin, want, atol=1e-5, rtol=0)
    # The scikit-learn interface, in its 2-, 3- and 4-argument forms.
    objective = gbdt.LightGBMObjective()
    forms = {
        2: lambda y_true, y_pred: objective(y_true, y_pred),
        3: lambda y_true, y_pred, weight: objective(y_true, y_pred, weight),
        4: lambda y_true, y_pred, weight, group: objective(y_true, y_pred, weight, group),
    }
    for arguments, form in forms.items():
        weight = None if arguments == 2 else w
        plain = lgb.LGBMClassifier(**params, n_estimators=ROUNDS).fit(X, y, sample_weight=weight)
        start = np.full(len(y), gbdt.initial_margin(y, weight))
        ours = lgb.LGBMClassifier(**params, n_estimators=ROUNDS, objective=form)
        ours.fit(X, y, sample_weight=weight, init_score=start)
        got = ours.predict(X, raw_score=True) + start
        np.testing.assert_allclose(got, plain.predict(X, raw_score=True), atol=1e-5, err_msg=f"{arguments} arguments")
    grad, hess = objective(y, np.zeros(len(y)), w)
    assert grad.dtype == hess.dtype == np.float32


def test_catboost_logistic_objective_equals_logloss(data):
    cb = pytest.importorskip("catboost", reason="CatBoost has no wheel for this platform")
    X, y, w = data
    start = np.full(len(y), gbdt.initial_margin(y, w))
    params = dict(
        iterations=ROUNDS,
        depth=4,
        learning_rate=0.2,
        random_seed=0,
        bootstrap_type="No",
        leaf_estimation_method="Newton",
        leaf_estimation_iterations=1,
        boost_from_average=False,
        random_strength=0,
        thread_count=1,
        verbose=False,
    )
    builtin = cb.CatBoostClassifier(loss_function="Logloss", **params).fit(cb.Pool(X, y, weight=w, baseline=start))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no attempt to compile the objective
        custom = cb.CatBoostClassifier(
            loss_function=gbdt.CatBoostObjective(), eval_metric=gbdt.CatBoostMetric(), **params
        )
        custom.fit(cb.Pool(X, y, weight=w, baseline=start))
    want = builtin.predict(X, prediction_type="RawFormulaVal")
    np.testing.assert_allclose(custom.predict(X, prediction_type="RawFormulaVal"), want, atol=1e-5, rtol=0)
    # CatBoost's sign convention: derivatives of the log-likelihood.
    ders = gbdt.CatBoostObjective().calc_ders_range([0.0, 2.0], [1.0, 0.0], None)
    p = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(ders, [[0.5, -0.25], [-p, -p * (1 - p)]], rtol=1e-15)


@pytest.mark.parametrize("library", ["xgboost", "lightgbm", "catboost"])
def test_focal_objective_trains_and_lowers_the_focal_loss(data, library):
    lib = pytest.importorskip(library, reason=f"{library} has no wheel for this platform")
    X, y, w = data
    start = gbdt.initial_margin(y)
    focal = dict(alpha=0.25, gamma=2.0)
    before = fb.sigmoid_focal_loss(np.full(len(y), start), y, reduction="mean", **focal)
    if library == "xgboost":
        d = lib.DMatrix(X, label=y)
        model = lib.train(
            dict(base_score=start, max_depth=4, nthread=1),
            d,
            ROUNDS,
            obj=gbdt.XGBoostObjective("focal", min_hess=1e-6, **focal),
        )
        margin = model.predict(d, output_margin=True)
    elif library == "lightgbm":
        params = {**_lightgbm_params(), "objective": gbdt.LightGBMObjective("focal", min_hess=1e-6, **focal)}
        model = lib.train(params, lib.Dataset(X, y, init_score=np.full(len(y), start)), ROUNDS)
        margin = model.predict(X, raw_score=True) + start
    else:
        model = lib.CatBoostClassifier(
            loss_function=gbdt.CatBoostObjective("focal", min_hess=1e-6, **focal),
            eval_metric=gbdt.CatBoostMetric("focal", **focal),
            iterations=ROUNDS,
            depth=4,
            thread_count=1,
            random_seed=0,
            verbose=False,
        )
        model.fit(lib.Pool(X, y, baseline=np.full(len(y), start)))
        margin = model.predict(X, prediction_type="RawFormulaVal") + start
    after = fb.sigmoid_focal_loss(margin, y, reduction="mean", **focal)
    assert after < 0.8 * before, (library, before, after)
