"""Trains XGBoost models on scikit-learn's bundled datasets, saves each as
JSON and UBJSON, and writes test rows (with missing values) and XGBoost's own
predictions for them, for Slipway's runtime to match.

Usage: crosscheck.py OUTDIR
Writes OUTDIR/cases.json and, per case, NAME.json, NAME.ubj, NAME.x.f32 and
NAME.y.f32 (little-endian float32, row-major).
"""
import json
import os
import sys

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

out = sys.argv[1]
rng = np.random.default_rng(7)


def with_missing(x, rate=0.1):
    x = x.astype(np.float32).copy()
    x[rng.random(x.shape) < rate] = np.nan
    return x


def split(x, y):
    idx = rng.permutation(len(y))
    cut = int(len(y) * 0.7)
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]], y[idx[cut:]]


cases = []


def case(name, x, y, params, rounds=40, dmatrix=None):
    xtr, ytr, xte, yte = split(x, y)
    xtr = with_missing(xtr)
    xte = with_missing(xte)
    dtrain = xgb.DMatrix(xtr, label=ytr)
    bst = xgb.train(dict(params, seed=1), dtrain, num_boost_round=rounds)
    pred = bst.predict(xgb.DMatrix(xte)).astype(np.float32)
    save(name, bst, xte, pred)


def save(name, bst, xte, pred):
    bst.save_model(os.path.join(out, name + ".json"))
    bst.save_model(os.path.join(out, name + ".ubj"))
    np.ascontiguousarray(xte, dtype="<f4").tofile(os.path.join(out, name + ".x.f32"))
    np.ascontiguousarray(pred, dtype="<f4").tofile(os.path.join(out, name + ".y.f32"))
    cases.append({"name": name, "rows": int(xte.shape[0]), "features": int(xte.shape[1]),
                  "outputs": int(pred.size // xte.shape[0])})


cancer = load_breast_cancer()
diabetes = load_diabetes()
wine = load_wine()
xc, yc = cancer.data, cancer.target
xd, yd = diabetes.data, diabetes.target
xw, yw = wine.data, wine.target
tree = {"tree_method": "hist", "max_depth": 5, "eta": 0.3}

case("binary_logistic", xc, yc, dict(tree, objective="binary:logistic"))
case("binary_logitraw", xc, yc, dict(tree, objective="binary:logitraw"))
case("binary_hinge", xc, yc, dict(tree, objective="binary:hinge"))
case("binary_exact", xc, yc, dict(tree, tree_method="exact", objective="binary:logistic"))
case("binary_dart", xc, yc, dict(tree, booster="dart", rate_drop=0.2, skip_drop=0.0, objective="binary:logistic"))
case("binary_forest", xc, yc, dict(tree, num_parallel_tree=4, subsample=0.8, colsample_bynode=0.8, objective="binary:logistic"), rounds=5)
case("binary_gblinear", xc, yc, {"booster": "gblinear", "objective": "binary:logistic", "lambda": 1.0})
case("multi_softprob", xw, yw, dict(tree, objective="multi:softprob", num_class=3))
case("multi_softmax", xw, yw, dict(tree, objective="multi:softmax", num_class=3))
case("multi_gblinear", xw, yw, {"booster": "gblinear", "objective": "multi:softprob", "num_class": 3})
case("reg_squarederror", xd, yd, dict(tree, objective="reg:squarederror"), rounds=100)
case("reg_logistic", xd, (yd - yd.min()) / (yd.max() - yd.min()), dict(tree, objective="reg:logistic"))
case("count_poisson", xd, np.round(yd / 10), dict(tree, objective="count:poisson"))
case("reg_tweedie", xd, yd, dict(tree, objective="reg:tweedie", tweedie_variance_power=1.5))
case("reg_gamma", xd, yd, dict(tree, objective="reg:gamma"))
case("reg_gblinear", xd, yd, {"booster": "gblinear", "objective": "reg:squarederror", "updater": "coord_descent"}, rounds=100)
case("reg_dart", xd, yd, dict(tree, booster="dart", rate_drop=0.1, objective="reg:squarederror"), rounds=30)

# Categorical splits: a pandas category column trained with enable_categorical.
n = 2000
color = rng.integers(0, 12, n)
size = rng.normal(size=n).astype(np.float32)
effect = np.array([2.0, -1.0, 0.5, 3.0, -2.0, 0.0, 1.0, -0.5, 2.5, -3.0, 1.5, 0.2])
yk = (effect[color] + size + rng.normal(scale=0.3, size=n) > 0.5).astype(int)
frame = pd.DataFrame({"color": pd.Categorical(color, categories=list(range(12))), "size": size})
frame.loc[rng.random(n) < 0.1, "size"] = np.nan
cut = 1400
dtrain = xgb.DMatrix(frame.iloc[:cut], label=yk[:cut], enable_categorical=True)
params = dict(tree, objective="binary:logistic", max_cat_to_onehot=1, seed=1)
bst = xgb.train(params, dtrain, num_boost_round=30)
test = frame.iloc[cut:]
pred = bst.predict(xgb.DMatrix(test, enable_categorical=True)).astype(np.float32)
xte = np.column_stack([test["color"].cat.codes.astype(np.float32), test["size"].astype(np.float32)])
xte[test["color"].cat.codes.values < 0, 0] = np.nan
save("binary_categorical", bst, xte, pred)

with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump({"xgboost": xgb.__version__, "cases": cases}, f, indent=1)
