"""The custom objectives of fastbce.gbdt inside real boosting rounds.

For each library installed (XGBoost, LightGBM, CatBoost): the time the
objective takes per boosting round (all its calls), next to the round's
total, with fastbce's objective and with a NumPy objective of the same math
(the logistic loss's p - y and p (1 - p), weighted); means over the rounds.

    python benches/gbdt.py                       # 1e6 rows, 10 features, 10 rounds
    python benches/gbdt.py --rows 200000 --rounds 20
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

import fastbce as fb
from fastbce import gbdt


def numpy_derivatives(margin: np.ndarray, y: np.ndarray, w: Any) -> Tuple[np.ndarray, np.ndarray]:
    p = 1.0 / (1.0 + np.exp(-margin))
    grad = p - y
    hess = np.maximum(p * (1.0 - p), 1e-16)
    if w is not None:
        grad, hess = grad * w, hess * w
    return grad, hess


class Timed:
    """Wraps an objective; records the seconds of each call."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.seconds: List[float] = []

    def __deepcopy__(self, memo: Any) -> Timed:
        return self  # LightGBM deep-copies its parameters: keep one record

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = self.fn(*args, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        return result


def numpy_xgboost(predt: np.ndarray, dtrain: Any) -> Any:
    w = dtrain.get_weight()
    return numpy_derivatives(predt, dtrain.get_label(), w if w.size else None)


def numpy_lightgbm(preds: np.ndarray, train: Any) -> Any:
    g, h = numpy_derivatives(preds, train.get_label(), train.get_weight())
    return g.astype(np.float32), h.astype(np.float32)


class NumpyCatBoost:
    def calc_ders_range(self, approxes: Any, targets: Any, weights: Any) -> Any:
        g, h = numpy_derivatives(
            np.asarray(approxes), np.asarray(targets), None if weights is None else np.asarray(weights)
        )
        return np.column_stack((-g, -h))


def run_xgboost(X: np.ndarray, y: np.ndarray, w: np.ndarray, rounds: int, objective: Timed) -> float:
    import xgboost as xgb

    d = xgb.DMatrix(X, label=y, weight=w)
    params = {"tree_method": "hist", "max_depth": 6, "base_score": gbdt.initial_margin(y, w)}
    start = time.perf_counter()
    xgb.train(params, d, rounds, obj=objective)
    return time.perf_counter() - start


def run_lightgbm(X: np.ndarray, y: np.ndarray, w: np.ndarray, rounds: int, objective: Timed) -> float:
    import lightgbm as lgb

    init = np.full(len(y), gbdt.initial_margin(y, w))
    data = lgb.Dataset(X, y, weight=w, init_score=init, params={"verbose": -1})
    data.construct()
    start = time.perf_counter()
    lgb.train({"objective": objective, "num_leaves": 63, "verbose": -1}, data, rounds)
    return time.perf_counter() - start


def run_catboost(X: np.ndarray, y: np.ndarray, w: np.ndarray, rounds: int, objective: Timed) -> float:
    import catboost as cb

    class Wrapped:
        no_jit = True

        def calc_ders_range(self, approxes: Any, targets: Any, weights: Any) -> Any:
            return objective(approxes, targets, weights)

    pool = cb.Pool(X, y, weight=w, baseline=np.full(len(y), gbdt.initial_margin(y, w)))
    model = cb.CatBoostClassifier(
        loss_function=Wrapped(), eval_metric="Logloss", iterations=rounds, depth=6, verbose=False
    )
    start = time.perf_counter()
    model.fit(pool)
    return time.perf_counter() - start


LIBRARIES: Dict[str, Tuple[Callable[..., float], Callable[[], Any], Callable[[], Any]]] = {
    "xgboost": (run_xgboost, gbdt.XGBoostObjective, lambda: numpy_xgboost),
    "lightgbm": (run_lightgbm, gbdt.LightGBMObjective, lambda: numpy_lightgbm),
    "catboost": (
        run_catboost,
        lambda: gbdt.CatBoostObjective().calc_ders_range,
        lambda: NumpyCatBoost().calc_ders_range,
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, args.features)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.standard_normal(args.rows) > 0.8).astype(np.float64)
    w = rng.uniform(0.5, 2.0, args.rows)
    print(f"{args.rows:,} rows, {args.features} features, {args.rounds} rounds, {fb.get_num_threads()} threads\n")
    rows = []
    for name, (run, ours, numpy_objective) in LIBRARIES.items():
        try:
            __import__(name)
        except ImportError:
            continue
        per = {}
        for label, make in (("fastbce", ours), ("NumPy", numpy_objective)):
            objective = Timed(make())
            total = run(X, y, w, args.rounds, objective)
            # (CatBoost calls its objective several times a round, on ranges.)
            per[label] = (sum(objective.seconds) / args.rounds, total / args.rounds)
        f_obj, f_round = per["fastbce"]
        n_obj, n_round = per["NumPy"]
        rows.append(
            f"| {name} | {f_obj * 1e3:.2f} ms | {f_round * 1e3:.0f} ms ({f_obj / f_round:.1%}) "
            f"| {n_obj * 1e3:.2f} ms ({n_obj / f_obj:.1f}×) | {n_round * 1e3:.0f} ms ({n_obj / n_round:.1%}) |"
        )
        print(rows[-1], flush=True)
    print(
        "\n| library | fastbce objective per round | round (objective's share) "
        "| NumPy objective (× fastbce) | round with NumPy (objective's share) |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
