"""Computes scikit-learn's metrics for the cases Slipway's evaluation tests
generate, so that the Go implementation can be held to them.

Usage: crosscheck.py CASES.json OUT.json [XGBOOST_DIR]
CASES.json holds {"binary": [...], "multiclass": [...], "regression": [...]};
OUT.json receives sklearn's numbers per case name. With XGBOOST_DIR, it also
trains a small XGBoost model, saves it as XGBOOST_DIR/gain.json and writes
Booster.get_score for "weight", "gain" and "total_gain".
"""
import json
import sys
import warnings

import numpy as np
import sklearn
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

# Undefined precision/recall warnings are expected in some cases: sklearn
# then counts the class as 0, which is what the Go side must match.
warnings.simplefilter("ignore")

cases = json.load(open(sys.argv[1]))
out = {"sklearn": sklearn.__version__, "binary": {}, "multiclass": {}, "regression": {}}


def weights(c):
    return None if c.get("weights") is None else np.asarray(c["weights"], dtype=np.float64)


def bins_by_hand(y, p, w, n_bins):
    """Weighted reliability bins the way calibration_curve makes them
    (calibration_curve itself takes no weights)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    w = np.ones_like(p, dtype=np.float64) if w is None else w
    tot = np.bincount(ids, weights=w, minlength=n_bins)
    sp = np.bincount(ids, weights=w * p, minlength=n_bins)
    sy = np.bincount(ids, weights=w * y, minlength=n_bins)
    nz = tot > 0
    frac, mean = sy[nz] / tot[nz], sp[nz] / tot[nz]
    ece = float(np.sum(tot[nz] / tot.sum() * np.abs(frac - mean)))
    return frac.tolist(), mean.tolist(), ece


for c in cases.get("binary") or []:
    y = np.asarray(c["labels"], dtype=np.float64)
    p = np.asarray(c["probs"], dtype=np.float32 if c["float32"] else np.float64)
    w = weights(c)
    pred = (p >= c["threshold"]).astype(np.float64)
    r = {
        "auc": roc_auc_score(y, p, sample_weight=w),
        "average_precision": average_precision_score(y, p, sample_weight=w),
        "log_loss": log_loss(y, p, sample_weight=w, labels=[0, 1]),
        "brier": brier_score_loss(y, p, sample_weight=w),
        "accuracy": accuracy_score(y, pred, sample_weight=w),
        "precision": precision_score(y, pred, sample_weight=w),
        "recall": recall_score(y, pred, sample_weight=w),
        "f1": f1_score(y, pred, sample_weight=w),
        "confusion": confusion_matrix(y, pred, labels=[0, 1], sample_weight=w).ravel().tolist(),
    }
    if w is None:
        frac, mean = calibration_curve(y, p, n_bins=c["bins"], strategy="uniform")
        r["calibration_source"] = "calibration_curve"
        _, _, ece = bins_by_hand(y, p.astype(np.float64), None, c["bins"])
    else:
        frac, mean, ece = bins_by_hand(y, p.astype(np.float64), w, c["bins"])
        r["calibration_source"] = "numpy"
    r["fraction_positive"] = list(map(float, frac))
    r["mean_predicted"] = list(map(float, mean))
    r["ece"] = ece
    out["binary"][c["name"]] = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()}

for c in cases.get("multiclass") or []:
    k = c["classes"]
    y = np.asarray(c["labels"], dtype=np.int64)
    p = np.asarray(c["probs"], dtype=np.float64).reshape(-1, k)
    w = weights(c)
    pred = p.argmax(axis=1)
    labels = list(range(k))
    r = {
        "accuracy": accuracy_score(y, pred, sample_weight=w),
        "log_loss": log_loss(y, p, sample_weight=w, labels=labels),
        "precision_macro": precision_score(y, pred, average="macro", sample_weight=w),
        "recall_macro": recall_score(y, pred, average="macro", sample_weight=w),
        "f1_macro": f1_score(y, pred, average="macro", sample_weight=w),
        "precision_weighted": precision_score(y, pred, average="weighted", sample_weight=w),
        "recall_weighted": recall_score(y, pred, average="weighted", sample_weight=w),
        "f1_weighted": f1_score(y, pred, average="weighted", sample_weight=w),
        "confusion": confusion_matrix(y, pred, labels=labels, sample_weight=w).tolist(),
    }
    try:
        r["auc_ovr_macro"] = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels, sample_weight=w)
    except ValueError as e:
        r["auc_error"] = str(e)
    out["multiclass"][c["name"]] = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in r.items()}

for c in cases.get("regression") or []:
    y = np.asarray(c["y"], dtype=np.float64)
    p = np.asarray(c["pred"], dtype=np.float64)
    w = weights(c)
    mse = mean_squared_error(y, p, sample_weight=w)
    out["regression"][c["name"]] = {
        "mse": float(mse),
        "rmse": float(np.sqrt(mse)),
        "mae": float(mean_absolute_error(y, p, sample_weight=w)),
        "r2": float(r2_score(y, p, sample_weight=w)),
        "mape": float(mean_absolute_percentage_error(y, p, sample_weight=w)),
    }

if len(sys.argv) > 3:
    import xgboost as xgb

    rng = np.random.default_rng(11)
    x = rng.normal(size=(400, 5))
    # Feature 4 is never informative and feature 3 barely, so some
    # features are split on rarely or not at all.
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + 0.05 * x[:, 3] + rng.normal(scale=0.3, size=400) > 0).astype(int)
    d = xgb.DMatrix(x, label=y, feature_names=["a", "b", "c", "d", "e"])
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.3}, d, num_boost_round=8)
    booster.save_model(sys.argv[3] + "/gain.json")
    out["xgboost"] = {
        "version": xgb.__version__,
        "weight": booster.get_score(importance_type="weight"),
        "gain": booster.get_score(importance_type="gain"),
        "total_gain": booster.get_score(importance_type="total_gain"),
    }

json.dump(out, open(sys.argv[2], "w"))
