"""Fits scikit-learn's counterpart of a medallion-train model on the exact split medallion-train
exported (--export-split DIR: train.csv, holdout.csv; last column the target) and prints one JSON
line: holdout metrics, fit seconds and predictions.
Usage: sklearn_compare.py DIR hgbr|ridge[:alpha]|kmeans:k[:n_init]
"""
import json
import sys
import time

import numpy as np


def load(path):
    with open(path) as f:
        header = f.readline()
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data[:, :-1], data[:, -1]


def main():
    folder, kind = sys.argv[1], sys.argv[2]
    x_train, y_train = load(f"{folder}/train.csv")
    x_hold, y_hold = load(f"{folder}/holdout.csv")
    name, *args = kind.split(":")
    out = {}
    if name == "kmeans":
        from sklearn.cluster import KMeans

        k = int(args[0])
        n_init = int(args[1]) if len(args) > 1 else 10
        start = time.perf_counter()
        model = KMeans(n_clusters=k, n_init=n_init, random_state=0).fit(x_train)
        out["fit_seconds"] = time.perf_counter() - start
        out["train_inertia"] = float(model.inertia_)
        print(json.dumps(out))
        return
    if name == "hgbr":
        from sklearn.ensemble import HistGradientBoostingRegressor

        model = HistGradientBoostingRegressor(random_state=0)
    elif name == "ridge":
        from sklearn.linear_model import Ridge

        model = Ridge(alpha=float(args[0]) if args else 1.0)
    else:
        sys.exit(f"unknown model {name}")
    start = time.perf_counter()
    model.fit(x_train, y_train)
    out["fit_seconds"] = time.perf_counter() - start
    pred = model.predict(x_hold)
    from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, r2_score, root_mean_squared_error

    out.update(
        rmse=float(root_mean_squared_error(y_hold, pred)),
        mae=float(mean_absolute_error(y_hold, pred)),
        r2=float(r2_score(y_hold, pred)),
        mape=float(mean_absolute_percentage_error(y_hold, pred)),
        predictions=[float(p) for p in pred],
    )
    print(json.dumps(out))


main()
