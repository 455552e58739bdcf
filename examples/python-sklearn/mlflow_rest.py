"""Log to an MLflow tracking server through MLflow's REST API, with the
Python standard library only (no `mlflow` package needed).

A Slipway pipeline step gets the server in MLFLOW_TRACKING_URI and its own
run in MLFLOW_RUN_ID (a child of the pipeline's run), so a step logs with:

    import mlflow_rest as mlf
    mlf.log_params({"n_estimators": 100, "max_depth": 4})
    mlf.log_metric("accuracy", 0.97)
    mlf.log_batch(metrics=[("cv_accuracy", 0.95, 0), ("cv_accuracy", 0.96, 1)])
    mlf.set_tag("model_class", "RandomForestClassifier")

The requests are MLflow's (mlflow/protos/service.proto), so this works
against any MLflow-compatible server:

    POST /api/2.0/mlflow/runs/log-parameter  {run_id, key, value}
    POST /api/2.0/mlflow/runs/log-metric     {run_id, key, value, timestamp, step}
    POST /api/2.0/mlflow/runs/set-tag        {run_id, key, value}
    POST /api/2.0/mlflow/runs/log-batch      {run_id, metrics, params, tags}

MLFLOW_TRACKING_TOKEN (sent as a bearer token), or MLFLOW_TRACKING_USERNAME
and MLFLOW_TRACKING_PASSWORD (basic auth), are used when set; the Slipway
runner sets the token when the server requires one. Outside a pipeline
(no MLFLOW_TRACKING_URI or MLFLOW_RUN_ID) nothing is logged and a note
says so once, so the scripts also run on their own.
"""

import base64
import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

# MLflow's limits for one log-batch request (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000

_warned = False


class MlflowError(Exception):
    """A request the tracking server refused or could not be sent."""


def run_id():
    """The run this process logs to (MLFLOW_RUN_ID), or None."""
    return os.environ.get("MLFLOW_RUN_ID") or None


def enabled():
    """Whether a tracking server and a run are configured."""
    global _warned
    if os.environ.get("MLFLOW_TRACKING_URI") and run_id():
        return True
    if not _warned:
        print("mlflow_rest: MLFLOW_TRACKING_URI or MLFLOW_RUN_ID is not set; not logging", file=sys.stderr)
        _warned = True
    return False


def _now_ms():
    return int(time.time() * 1000)


def _post(endpoint, body):
    uri = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")
    if not uri.startswith(("http://", "https://")):
        raise MlflowError(f"MLFLOW_TRACKING_URI={uri}: only http(s) servers are supported")
    req = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/{endpoint}",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    elif user:
        pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode("utf-8")
        req.add_header("Authorization", "Basic " + base64.b64encode(pair).decode("ascii"))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        try:
            err = json.loads(detail)
            detail = f"{err.get('error_code', '')}: {err.get('message', detail)}"
        except ValueError:
            pass
        raise MlflowError(f"{endpoint}: HTTP {e.code}: {detail}") from None
    except urllib.error.URLError as e:
        raise MlflowError(f"{endpoint}: cannot reach {uri}: {e.reason}") from None
    return json.loads(raw) if raw.strip() else {}


def _metric(key, value, step=0, timestamp=None):
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"metric {key}: {value} is not a finite number")
    return {"key": key, "value": value, "timestamp": timestamp or _now_ms(), "step": int(step)}


def log_param(key, value):
    """Log one param. MLflow params cannot change once logged."""
    if enabled():
        _post("runs/log-parameter", {"run_id": run_id(), "key": key, "value": str(value)})


def log_params(params):
    """Log a dict of params in as few requests as the limits allow."""
    log_batch(params=params)


def log_metric(key, value, step=0, timestamp=None):
    """Log one value of a metric; step orders a metric's history."""
    if enabled():
        _post("runs/log-metric", dict(_metric(key, value, step, timestamp), run_id=run_id()))


def log_metrics(metrics, step=0):
    """Log a dict of metrics at one step."""
    log_batch(metrics=[(k, v, step) for k, v in metrics.items()])


def set_tag(key, value):
    if enabled():
        _post("runs/set-tag", {"run_id": run_id(), "key": key, "value": str(value)})


def log_batch(metrics=(), params=None, tags=None):
    """Log metrics, params and tags with runs/log-batch.

    metrics is a dict of name to value, or a list of (key, value) or
    (key, value, step) tuples; params and tags are dicts. Large batches are
    split to stay within MLflow's per-request limits.
    """
    if not enabled():
        return
    if isinstance(metrics, dict):
        metrics = list(metrics.items())
    now = _now_ms()
    ms = [_metric(m[0], m[1], m[2] if len(m) > 2 else 0, now) for m in metrics]
    ps = [{"key": k, "value": str(v)} for k, v in (params or {}).items()]
    ts = [{"key": k, "value": str(v)} for k, v in (tags or {}).items()]
    while ms or ps or ts:
        p, ps = ps[:MAX_PARAMS_PER_BATCH], ps[MAX_PARAMS_PER_BATCH:]
        t, ts = ts[:MAX_TAGS_PER_BATCH], ts[MAX_TAGS_PER_BATCH:]
        room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(p) - len(t))
        m, ms = ms[:room], ms[room:]
        _post("runs/log-batch", {"run_id": run_id(), "metrics": m, "params": p, "tags": t})
