"""Writes ONNX models and their own libraries' predictions for crosscheck_test.go.

Usage: crosscheck.py OUTDIR

Neural networks are exported by torch.onnx.export and scored by torch; tree
ensembles and linear models are fitted with scikit-learn, written as
ai.onnx.ml graphs with onnx.helper (walking the fitted trees and
coefficients) and scored by scikit-learn's own predict/predict_proba. Each
case writes NAME.onnx, NAME.x.f32 (rows, float32 little-endian) and
NAME.y.f32 (the library's outputs); cases.json lists them.
"""

import json
import os
import sys

import numpy as np
import onnx
import sklearn
import torch
from onnx import TensorProto, helper
from sklearn.ensemble import (GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import Normalizer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

OUT = sys.argv[1]
ROWS = 300
cases = []


def save(name, model_path, x, y):
    x = np.ascontiguousarray(x, dtype="<f4")
    y = np.ascontiguousarray(np.asarray(y).reshape(len(x), -1), dtype="<f4")
    x.tofile(os.path.join(OUT, name + ".x.f32"))
    y.tofile(os.path.join(OUT, name + ".y.f32"))
    cases.append({"name": name, "model": os.path.basename(model_path), "rows": int(x.shape[0]),
                  "features": int(x.shape[1]), "outputs": int(y.shape[1])})


# ---- torch ----

torch.manual_seed(7)


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(30, 16), torch.nn.ReLU(),
            torch.nn.Linear(16, 8), torch.nn.Tanh(),
            torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1))

    def forward(self, x):
        return self.net(x)


class Arith(torch.nn.Module):
    """Elementwise arithmetic with broadcast constants, concatenation and a sigmoid."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(5, 4)
        self.b = torch.nn.Linear(5, 2)
        self.register_buffer("scale", torch.tensor([0.5, 2.0, 1.5, 3.0, 0.25]))
        self.register_buffer("shift", torch.tensor([[1.0, -1.0, 0.5, 0.0, 2.0]]))

    def forward(self, x):
        z = (x - self.shift) * self.scale / 1.7
        h = torch.cat([torch.relu(self.a(z)), torch.sigmoid(self.b(z))], dim=1)
        flat = torch.flatten(h.reshape(-1, 3, 2), 1)
        return torch.sigmoid(flat @ torch.ones(6, 2) + 0.1)


def export_torch(name, model, features, dynamic=True):
    model.eval()
    path = os.path.join(OUT, name + ".onnx")
    example = torch.randn(4 if dynamic else 1, features)
    kw = {}
    if dynamic:
        kw["dynamic_axes"] = {"input": {0: "N"}, "output": {0: "N"}}
    torch.onnx.export(model, example, path, input_names=["input"], output_names=["output"], **kw)
    onnx.checker.check_model(onnx.load(path))
    x = torch.randn(ROWS, features)
    with torch.no_grad():
        y = model(x).numpy()
    save(name, path, x.numpy(), y)


export_torch("torch_mlp", MLP(), 30)
export_torch("torch_arith", Arith(), 5)
export_torch("torch_mlp_batch1", MLP(), 30, dynamic=False)

# ---- scikit-learn as ai.onnx.ml graphs ----

rng = np.random.RandomState(0)


def data(n_features, n_classes=None, rows=600):
    x = rng.normal(size=(rows, n_features)).astype(np.float32)
    w = rng.normal(size=(n_features,))
    score = x @ w + 0.3 * rng.normal(size=rows)
    if n_classes is None:
        return x, score + np.sin(x[:, 0])
    cuts = np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1])
    return x, np.digitize(score, cuts)


def test_rows(n_features):
    return rng.normal(size=(ROWS, n_features)).astype(np.float32)


def write_model(name, nodes, n_features, outputs, ml_opset=3, input_type=TensorProto.FLOAT, initializers=()):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("X", input_type, [None, n_features])],
        outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", ml_opset)],
                              producer_name="slipway-crosscheck")
    onnx.checker.check_model(model)
    path = os.path.join(OUT, name + ".onnx")
    onnx.save(model, path)
    return path


class Trees:
    """Flattened ai.onnx.ml tree-ensemble attributes."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
                                  "nodes_truenodeids", "nodes_falsenodeids"]}
        self.w = {k: [] for k in ["treeids", "nodeids", "ids", "weights"]}

    def add(self, tid, tree, leaf):
        t = tree.tree_
        for i in range(t.node_count):
            self.a["nodes_treeids"].append(tid)
            self.a["nodes_nodeids"].append(i)
            if t.children_left[i] == -1:
                self.a["nodes_featureids"].append(0)
                self.a["nodes_modes"].append("LEAF")
                self.a["nodes_values"].append(0.0)
                self.a["nodes_truenodeids"].append(0)
                self.a["nodes_falsenodeids"].append(0)
                for target, weight in leaf(t.value[i]):
                    self.w["treeids"].append(tid)
                    self.w["nodeids"].append(i)
                    self.w["ids"].append(int(target))
                    self.w["weights"].append(float(weight))
            else:
                self.a["nodes_featureids"].append(int(t.feature[i]))
                self.a["nodes_modes"].append("BRANCH_LEQ")
                self.a["nodes_values"].append(float(t.threshold[i]))
                self.a["nodes_truenodeids"].append(int(t.children_left[i]))
                self.a["nodes_falsenodeids"].append(int(t.children_right[i]))

    def attrs(self, as_tensor=False):
        out = dict(self.a)
        for k, v in self.w.items():
            out[self.prefix + k] = v
        if as_tensor:
            out["nodes_values_as_tensor"] = helper.make_tensor("v", TensorProto.DOUBLE, [len(out["nodes_values"])], out.pop("nodes_values"))
            w = out.pop(self.prefix + "weights")
            out[self.prefix + "weights_as_tensor"] = helper.make_tensor("w", TensorProto.DOUBLE, [len(w)], w)
        return out


def proba_leaf(value):
    p = value[0] / value[0].sum()
    return list(enumerate(p))


def classifier_outputs(n_classes, zipmap=False):
    label = helper.make_tensor_value_info("label", TensorProto.INT64, [None])
    if zipmap:
        mt = onnx.TypeProto()
        mt.map_type.key_type = TensorProto.INT64
        mt.map_type.value_type.CopyFrom(helper.make_tensor_type_proto(TensorProto.FLOAT, []))
        seq = helper.make_sequence_type_proto(mt)
        return [label, helper.make_value_info("probabilities", seq)]
    return [label, helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n_classes])]


# A decision tree, three classes.
x, y = data(6, 3)
m = DecisionTreeClassifier(max_depth=6, random_state=0).fit(x, y)
t = Trees("class_")
t.add(0, m, proba_leaf)
node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
                        classlabels_int64s=[0, 1, 2], post_transform="NONE", **t.attrs())
xt = test_rows(6)
save("sk_decision_tree_classifier", write_model("sk_decision_tree_classifier", [node], 6, classifier_outputs(3)), xt, m.predict_proba(xt))

# A random forest, two classes: the mean of the trees' probabilities.
x, y = data(8, 2)
m = RandomForestClassifier(n_estimators=25, max_depth=5, random_state=0).fit(x, y)
t = Trees("class_")
for i, est in enumerate(m.estimators_):
    t.add(i, est, lambda v: [(c, p / len(m.estimators_)) for c, p in proba_leaf(v)])
node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
                        classlabels_int64s=[0, 1], **t.attrs())
xt = test_rows(8)
save("sk_random_forest_classifier", write_model("sk_random_forest_classifier", [node], 8, classifier_outputs(2)), xt, m.predict_proba(xt))


def gb_base(m, x0, k=None):
    """The initial raw score: the decision function less the trees' sum."""
    lr = m.learning_rate
    if k is None:
        return float(m.decision_function(x0)[0] - lr * sum(est[0].predict(x0)[0] for est in m.estimators_))
    return float(m.decision_function(x0)[0][k] - lr * sum(est[k].predict(x0)[0] for est in m.estimators_))


# Gradient boosting, two classes: one score s, probabilities (1-σ(s), σ(s)).
x, y = data(7, 2)
m = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(x, y)
t = Trees("class_")
for i, est in enumerate(m.estimators_[:, 0]):
    t.add(i, est, lambda v: [(1, m.learning_rate * v[0][0])])
node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml",
                        classlabels_int64s=[0, 1], post_transform="LOGISTIC", base_values=[gb_base(m, x[:1])], **t.attrs())
xt = test_rows(7)
save("sk_gradient_boosting_binary", write_model("sk_gradient_boosting_binary", [node], 7, classifier_outputs(2)), xt, m.predict_proba(xt))

# Gradient boosting, four classes: softmax over per-class scores; ZipMap.
x, y = data(5, 4)
m = GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0).fit(x, y)
t = Trees("class_")
tid = 0
for stage in m.estimators_:
    for k, est in enumerate(stage):
        t.add(tid, est, lambda v, k=k: [(k, m.learning_rate * v[0][0])])
        tid += 1
node = helper.make_node("TreeEnsembleClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
                        classlabels_int64s=[0, 1, 2, 3], post_transform="SOFTMAX",
                        base_values=[gb_base(m, x[:1], k) for k in range(4)], **t.attrs())
zip_node = helper.make_node("ZipMap", ["scores"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2, 3])
xt = test_rows(5)
save("sk_gradient_boosting_multiclass",
     write_model("sk_gradient_boosting_multiclass", [node, zip_node], 5, classifier_outputs(4, zipmap=True)), xt, m.predict_proba(xt))

# Gradient boosting regression: thresholds and weights as double tensors (ai.onnx.ml opset 3).
x, y = data(6)
m = GradientBoostingRegressor(n_estimators=50, max_depth=3, random_state=0).fit(x, y)
t = Trees("target_")
for i, est in enumerate(m.estimators_[:, 0]):
    t.add(i, est, lambda v: [(0, m.learning_rate * v[0][0])])
base = float(m.predict(x[:1])[0] - m.learning_rate * sum(est[0].predict(x[:1])[0] for est in m.estimators_))
node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1,
                        base_values=[base], **t.attrs(as_tensor=True))
xt = test_rows(6)
save("sk_gradient_boosting_regressor",
     write_model("sk_gradient_boosting_regressor", [node], 6, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])]),
     xt, m.predict(xt))

# A random forest regression: AVERAGE over the trees.
x, y = data(9)
m = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0).fit(x, y)
t = Trees("target_")
for i, est in enumerate(m.estimators_):
    t.add(i, est, lambda v: [(0, v[0][0])])
node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1,
                        aggregate_function="AVERAGE", **t.attrs())
xt = test_rows(9)
save("sk_random_forest_regressor",
     write_model("sk_random_forest_regressor", [node], 9, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])]),
     xt, m.predict(xt))

# A decision tree regression.
x, y = data(4)
m = DecisionTreeRegressor(max_depth=8, random_state=0).fit(x, y)
t = Trees("target_")
t.add(0, m, lambda v: [(0, v[0][0])])
node = helper.make_node("TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1, **t.attrs())
xt = test_rows(4)
save("sk_decision_tree_regressor",
     write_model("sk_decision_tree_regressor", [node], 4, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])]),
     xt, m.predict(xt))

# StandardScaler, then multinomial logistic regression, then ZipMap.
x, y = data(10, 3)
sc = StandardScaler().fit(x)
lr = LogisticRegression(max_iter=1000).fit(sc.transform(x), y)
nodes = [
    helper.make_node("Scaler", ["X"], ["scaled"], domain="ai.onnx.ml", offset=sc.mean_.tolist(), scale=(1 / sc.scale_).tolist()),
    helper.make_node("LinearClassifier", ["scaled"], ["label", "scores"], domain="ai.onnx.ml", classlabels_ints=[0, 1, 2],
                     coefficients=lr.coef_.ravel().tolist(), intercepts=lr.intercept_.tolist(), multi_class=1, post_transform="SOFTMAX"),
    helper.make_node("ZipMap", ["scores"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2]),
]
xt = test_rows(10)
save("sk_scaler_logistic_multinomial", write_model("sk_scaler_logistic_multinomial", nodes, 10, classifier_outputs(3, zipmap=True)),
     xt, lr.predict_proba(sc.transform(xt)))

# Binary logistic regression: one set of coefficients, LOGISTIC.
x, y = data(6, 2)
lr = LogisticRegression(max_iter=1000).fit(x, y)
node = helper.make_node("LinearClassifier", ["X"], ["label", "probabilities"], domain="ai.onnx.ml", classlabels_ints=[0, 1],
                        coefficients=lr.coef_.ravel().tolist(), intercepts=lr.intercept_.tolist(), post_transform="LOGISTIC")
xt = test_rows(6)
save("sk_logistic_binary", write_model("sk_logistic_binary", [node], 6, classifier_outputs(2)), xt, lr.predict_proba(xt))

# L2 normalisation, then linear regression.
x, y = data(5)
norm = Normalizer(norm="l2").fit(x)
reg = LinearRegression().fit(norm.transform(x), y)
nodes = [
    helper.make_node("Normalizer", ["X"], ["n"], domain="ai.onnx.ml", norm="L2"),
    helper.make_node("LinearRegressor", ["n"], ["Y"], domain="ai.onnx.ml", coefficients=reg.coef_.tolist(), intercepts=[float(reg.intercept_)]),
]
xt = test_rows(5)
save("sk_normalizer_linear_regression",
     write_model("sk_normalizer_linear_regression", nodes, 5, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])]),
     xt, reg.predict(norm.transform(xt)))

# L1 normalisation alone (two outputs per feature row).
xt = test_rows(3)
node = helper.make_node("Normalizer", ["X"], ["Y"], domain="ai.onnx.ml", norm="L1")
save("sk_normalizer_l1", write_model("sk_normalizer_l1", [node], 3, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])]),
     xt, Normalizer(norm="l1").fit(xt).transform(xt))

# One-hot encoding of an int64 column, flattened.
cats = [1, 3, 5, 7]
xi = rng.randint(0, 9, size=(ROWS, 2))
enc = OneHotEncoder(categories=[cats, cats], handle_unknown="ignore").fit(xi)
nodes = [
    helper.make_node("OneHotEncoder", ["X"], ["oh"], domain="ai.onnx.ml", cats_int64s=cats, zeros=1),
    helper.make_node("Flatten", ["oh"], ["Y"], axis=1),
]
save("sk_one_hot", write_model("sk_one_hot", nodes, 2, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 8])],
                               input_type=TensorProto.INT64),
     xi.astype(np.float32), enc.transform(xi).toarray())

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump({"torch": torch.__version__, "onnx": onnx.__version__, "sklearn": sklearn.__version__, "cases": cases}, f)
