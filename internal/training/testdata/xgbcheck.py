"""Cross-checks Slipway's trainers against XGBoost (Debian's python3-xgboost).

Usage:
  xgbcheck.py export OUTDIR
      Writes scikit-learn's bundled data sets, split 70/30 with a fixed
      seed, as little-endian float32 files (row-major features, labels) and
      OUTDIR/datasets.json describing them.
  xgbcheck.py check MANIFEST
      MANIFEST (JSON) lists "score" jobs (load a model saved by Slipway and
      predict rows) and "train" jobs (train XGBoost hist with the given
      parameters and predict test rows). Each job writes its predictions to
      its "out" file; MANIFEST.result.json records XGBoost's version and
      training times. "sklearn" jobs fit the scikit-learn linear model
      with the objective Slipway's linear trainer minimises and predict the
      test rows.
"""
import json
import os
import sys
import time

import numpy as np
import xgboost as xgb


def export(out):
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine, make_friedman1

    rng = np.random.default_rng(11)
    sets = []

    def add(name, x, y, missing=0.0):
        x = np.asarray(x, dtype=np.float32).copy()
        if missing:
            x[rng.random(x.shape) < missing] = np.nan
        idx = rng.permutation(len(y))
        cut = int(len(y) * 0.7)
        for part, rows in (("train", idx[:cut]), ("test", idx[cut:])):
            np.ascontiguousarray(x[rows], dtype="<f4").tofile(os.path.join(out, f"{name}.{part}.x.f32"))
            np.ascontiguousarray(y[rows], dtype="<f4").tofile(os.path.join(out, f"{name}.{part}.y.f32"))
        sets.append({"name": name, "features": int(x.shape[1]), "train": cut, "test": int(len(y) - cut)})

    c = load_breast_cancer()
    add("cancer", c.data, c.target)
    add("cancer_missing", c.data, c.target, missing=0.1)
    d = load_diabetes()
    add("diabetes", d.data, d.target)
    fx, fy = make_friedman1(n_samples=6000, noise=1.0, random_state=3)
    add("friedman", fx, fy)
    w = load_wine()
    add("wine", w.data, w.target)
    g = load_digits()
    add("digits", g.data, g.target)
    with open(os.path.join(out, "datasets.json"), "w") as f:
        json.dump({"xgboost": xgb.__version__, "datasets": sets}, f, indent=1)


def read(path, rows, cols):
    return np.fromfile(path, dtype="<f4").reshape(rows, cols) if cols else np.fromfile(path, dtype="<f4")


def dmatrix(x, types, names=None, y=None):
    cat = bool(types) and "c" in types
    return xgb.DMatrix(x, label=y, missing=np.nan, feature_names=names, feature_types=types or None,
                       enable_categorical=cat)


def check(manifest):
    with open(manifest) as f:
        jobs = json.load(f)
    result = {"xgboost": xgb.__version__, "train_seconds": {}}
    for job in jobs.get("score", []):
        bst = xgb.Booster(model_file=job["model"])
        x = read(job["x"], job["rows"], job["features"])
        d = dmatrix(x, bst.feature_types, bst.feature_names)
        pred = bst.predict(d).astype(np.float32)
        np.ascontiguousarray(pred, dtype="<f4").tofile(job["out"])
    for job in jobs.get("train", []):
        x = read(job["x"], job["rows"], job["features"])
        y = read(job["y"], job["rows"], 0)
        types = job.get("types")
        dtrain = dmatrix(x, types, y=y)
        start = time.perf_counter()
        bst = xgb.train(job["params"], dtrain, num_boost_round=job["rounds"])
        result["train_seconds"][job["out"]] = time.perf_counter() - start
        tx = read(job["test_x"], job["test_rows"], job["features"])
        pred = bst.predict(dmatrix(tx, types)).astype(np.float32)
        np.ascontiguousarray(pred, dtype="<f4").tofile(job["out"])
        if job.get("model_out"):
            bst.save_model(job["model_out"])
    for job in jobs.get("sklearn") or []:
        sklearn_fit(job)
    with open(manifest + ".result.json", "w") as f:
        json.dump(result, f, indent=1)


def sklearn_fit(job):
    """Fits the scikit-learn model whose objective equals TrainLinear's:
    mean loss + lambda/2 |w|^2 is, scaled by n/lambda, scikit-learn's
    C * sum(loss) + |w|^2 / 2 with C = 1 / (lambda n); Ridge's alpha is
    lambda n (its loss is the sum of squares, not half of it, over n)."""
    from sklearn.linear_model import LogisticRegression, PoissonRegressor, Ridge
    from sklearn.preprocessing import StandardScaler

    x = np.nan_to_num(read(job["x"], job["rows"], job["features"]).astype(np.float64), nan=0.0)
    y = read(job["y"], job["rows"], 0).astype(np.float64)
    tx = np.nan_to_num(read(job["test_x"], job["test_rows"], job["features"]).astype(np.float64), nan=0.0)
    if job["standardize"]:
        scaler = StandardScaler().fit(x)
        x, tx = scaler.transform(x), scaler.transform(tx)
    n, lam = len(y), job["lambda"]
    kind = job["kind"]
    if kind == "ridge":
        pred = Ridge(alpha=lam * n, tol=1e-12).fit(x, y).predict(tx)
    elif kind == "logistic":
        m = LogisticRegression(C=1 / (lam * n), tol=1e-12, max_iter=100000).fit(x, y)
        pred = m.predict_proba(tx)
        if pred.shape[1] == 2:
            pred = pred[:, 1]
    elif kind == "poisson":
        pred = PoissonRegressor(alpha=lam, tol=1e-12, max_iter=100000).fit(x, y).predict(tx)
    else:
        raise SystemExit("unknown sklearn kind " + kind)
    np.ascontiguousarray(pred, dtype="<f4").tofile(job["out"])


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(sys.argv[2])
    elif sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        sys.exit("usage: xgbcheck.py export OUTDIR | check MANIFEST")
