# Slipway's Python worker: loads one MLflow python_function model and
# scores rows that Slipway sends it. Slipway starts it as
# `python -u -c <this file>` and speaks a framed binary protocol on the
# worker's stdin and stdout; see protocol.go for the frames.
#
# mlflow itself is not needed: the worker loads models the way
# mlflow.pyfunc.load_model does, with the interpreter and packages it runs
# under. A model's conda/virtualenv environment is not created.

import os
import sys

# The protocol owns the original stdin and stdout. Everything the model
# prints, even from C code writing to fd 1, goes to stderr, which Slipway
# logs; and the model cannot read protocol bytes from stdin.
_proto_in = os.fdopen(os.dup(0), "rb")
_proto_out = os.fdopen(os.dup(1), "wb")
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
os.dup2(2, 1)
sys.stdout = sys.stderr

import importlib
import json
import pickle
import signal
import struct
import traceback

# Slipway stops workers itself (drain, then close stdin); a Ctrl-C sent to
# the server's process group must not kill them mid-request.
signal.signal(signal.SIGINT, signal.SIG_IGN)

_u32 = struct.Struct("<I")
_u32x2 = struct.Struct("<II")


def read_frame():
    head = _proto_in.read(4)
    if len(head) < 4:
        return None
    (n,) = _u32.unpack(head)
    body = _proto_in.read(n)
    if len(body) < n:
        return None
    return body


def write_frame(*parts):
    n = sum(len(p) for p in parts)
    _proto_out.write(_u32.pack(n))
    for p in parts:
        _proto_out.write(p)
    _proto_out.flush()


def last_line(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def fail(prefix, exc):
    traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()
    write_frame(b"E", (prefix + last_line(exc)).encode("utf-8", "replace"))


def inside(root, rel):
    p = os.path.normpath(os.path.join(root, rel))
    if p != root and not p.startswith(root + os.sep):
        raise ValueError("%r is outside the model directory" % rel)
    return p


def load_sklearn(root, pyfunc, flavors):
    sk = flavors.get("sklearn") or {}
    name = sk.get("pickled_model") or pyfunc.get("model_path") or pyfunc.get("data")
    if not name:
        raise ValueError("the sklearn flavor names no pickled_model")
    path = inside(root, name)
    if os.path.isdir(path):
        path = os.path.join(path, "model.pkl")
    fmt = sk.get("serialization_format", "cloudpickle")
    if fmt not in ("pickle", "cloudpickle"):
        raise ValueError("sklearn serialization_format %r: Slipway loads pickle and cloudpickle" % fmt)
    loader = pickle
    if fmt == "cloudpickle":
        try:
            import cloudpickle as loader
        except ImportError:
            # cloudpickle writes ordinary pickles for importable classes,
            # which is what fitted scikit-learn estimators are.
            loader = pickle
    with open(path, "rb") as f:
        model = loader.load(f)
    fn = pyfunc.get("predict_fn") or "predict"
    predict = getattr(model, fn, None)
    if predict is None:
        raise ValueError("the model has no method %s" % fn)
    return predict


def load(spec):
    root = os.path.realpath(spec["dir"])
    pyfunc = spec["pyfunc"]
    flavors = spec["flavors"]
    code = pyfunc.get("code")
    if code:
        sys.path.insert(0, inside(root, code))
    loader = pyfunc.get("loader_module")
    if loader == "mlflow.sklearn":
        return load_sklearn(root, pyfunc, flavors)
    if loader == "mlflow.pyfunc.model":
        raise ValueError("loader_module mlflow.pyfunc.model (a PythonModel) needs mlflow, which Slipway's worker does not use; "
                         "write a loader module with _load_pyfunc instead")
    data = pyfunc.get("data")
    path = inside(root, data) if data else root
    model = importlib.import_module(loader)._load_pyfunc(path)
    return model.predict


def frame_of(spec, np, pd, buf):
    (rows,) = _u32.unpack_from(buf, 1)
    cols = spec["columns"]
    x = np.frombuffer(buf, dtype="<f4", count=rows * len(cols), offset=5).reshape(rows, len(cols))
    labels = spec["labels"]
    uniform = spec["uniform"]
    if uniform:
        # One block for the whole frame: several times faster to build
        # than a column at a time.
        return pd.DataFrame(x.astype(uniform), columns=labels, copy=False)
    data = {}
    for i, c in enumerate(cols):
        v = x[:, i]
        t = c["type"]
        if t == "double":
            v = v.astype(np.float64)
        elif t == "float":
            v = v.copy()
        elif t in ("long", "integer"):
            # A missing value cannot be an integer; such a column stays
            # float64 with NaN, as pandas itself reads it.
            if not np.isnan(v).any():
                v = v.astype(np.int64 if t == "long" else np.int32)
            else:
                v = v.astype(np.float64)
        elif t == "boolean":
            if not np.isnan(v).any():
                v = v != 0
            else:
                v = v.astype(np.float64)
        label = c["name"] if c.get("label") is None else c["label"]
        data[label] = v
    return pd.DataFrame(data, columns=list(data.keys()))


def to_matrix(np, pd, pred, rows):
    if isinstance(pred, (pd.DataFrame, pd.Series)):
        pred = pred.to_numpy()
    a = np.asarray(pred)
    if a.dtype.kind not in "biuf":
        # Object columns are numeric when every value is; anything else
        # (strings, dates) names the first value that is not.
        for v in a.reshape(-1):
            if not isinstance(v, (int, float, bool, np.number, np.bool_)):
                if isinstance(v, np.generic):
                    v = v.item()
                raise TypeError("the model predicted a value of type %s; Slipway serves numeric predictions only" % type(v).__name__)
        a = a.astype(np.float64)
    if a.size % rows != 0:
        raise ValueError("the model predicted %d values (shape %s) for %d rows" % (a.size, a.shape, rows))
    a = a.reshape(rows, -1)
    return a.shape[1], a


def main():
    first = read_frame()
    if first is None or first[:1] != b"I":
        return 2
    try:
        spec = json.loads(first[1:].decode("utf-8"))
        import numpy as np
        import pandas as pd
        cols = spec["columns"]
        spec["labels"] = [c["name"] if c.get("label") is None else c["label"] for c in cols]
        types = {c["type"] for c in cols}
        spec["uniform"] = {frozenset(["double"]): np.float64, frozenset(["float"]): np.float32}.get(frozenset(types))
        predict = load(spec)
    except BaseException as e:
        fail("", e)
        return 1
    info = {"python": sys.version.split()[0], "numpy": np.__version__, "pandas": pd.__version__}
    write_frame(b"R", json.dumps(info).encode())
    while True:
        buf = read_frame()
        if buf is None:
            return 0
        op = buf[:1]
        if op == b"H":
            write_frame(b"H")
            continue
        if op != b"P":
            write_frame(b"E", b"unknown request")
            continue
        try:
            df = frame_of(spec, np, pd, buf)
            rows = len(df)
            ncol, a = to_matrix(np, pd, predict(df), rows)
            out = np.ascontiguousarray(a, dtype="<f4")
        except Exception as e:
            fail("", e)
            continue
        write_frame(b"O", _u32x2.pack(rows, ncol), out.tobytes())


sys.exit(main())
