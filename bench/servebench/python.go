package main

// python is Debian's interpreter, which has python3-xgboost,
// python3-fastapi and python3-uvicorn; another python3 on PATH may not.
const python = "/usr/bin/python3"

// trainScript trains the model inferbench uses (100 trees, depth 6, 30
// features, binary:logistic) and writes it with the benchmark row and
// XGBoost's own prediction for that row. It prints one JSON object.
const trainScript = `
import json, sys
import numpy as np, xgboost as xgb
import fastapi, uvicorn
out = sys.argv[1]
rng = np.random.default_rng(1)
f = 30
xtr = rng.normal(size=(100000, f)).astype(np.float32)
w = rng.normal(size=f)
ytr = ((xtr @ w + rng.normal(size=len(xtr))) > 0).astype(int)
bst = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.1,
                 "nthread": 2, "seed": 1}, xgb.DMatrix(xtr, label=ytr), 100)
bst.save_model(out + "/model.json")
row = rng.normal(size=(1, f)).astype(np.float32)
pred = bst.inplace_predict(row)
print(json.dumps({"xgboost": xgb.__version__, "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__,
                  "numpy": np.__version__, "python": sys.version.split()[0],
                  "row": [float(v) for v in row[0]], "prediction": float(pred[0])}))
`

// peerApp is the Python serving stack MLflow's scoring server and MLServer
// are built on (FastAPI on uvicorn), serving the Open Inference Protocol's
// infer request as MLServer does: the body is validated into pydantic
// models of the protocol's types, the tensor becomes a numpy array of its
// datatype and shape, the booster scores it, and the answer is an
// InferenceResponse model. The handlers are coroutines, as MLflow's and
// MLServer's are, so that a request does not pay for a hop to a thread
// pool. The booster is loaded once per worker process with one thread,
// since the workers already use every core.
const peerApp = `
import os
from typing import Any, Dict, List, Optional

import numpy as np
import xgboost as xgb
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

bst = xgb.Booster()
bst.load_model(os.environ["SERVEBENCH_MODEL"])
bst.set_param({"nthread": 1})
MODEL = os.environ.get("SERVEBENCH_NAME", "bench")

DTYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
          "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
          "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}


class RequestInput(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    parameters: Optional[Dict[str, Any]] = None
    data: List[Any]


class RequestOutput(BaseModel):
    name: str
    parameters: Optional[Dict[str, Any]] = None


class InferenceRequest(BaseModel):
    id: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    inputs: List[RequestInput]
    outputs: Optional[List[RequestOutput]] = None


class ResponseOutput(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    parameters: Optional[Dict[str, Any]] = None
    data: List[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: Optional[str] = None
    id: Optional[str] = None
    parameters: Optional[Dict[str, Any]] = None
    outputs: List[ResponseOutput]


app = FastAPI()


@app.get("/v2/health/ready")
async def ready():
    return {"ready": True}


@app.post("/v2/models/{name}/infer", response_model=InferenceResponse)
async def infer(name: str, req: InferenceRequest):
    if name != MODEL:
        raise HTTPException(status_code=404, detail="no model " + name)
    if len(req.inputs) != 1 or req.inputs[0].datatype not in DTYPES:
        raise HTTPException(status_code=400, detail="one numeric [N, F] input")
    t = req.inputs[0]
    x = np.asarray(t.data, dtype=DTYPES[t.datatype]).reshape(t.shape)
    y = bst.inplace_predict(x)
    return InferenceResponse(model_name=MODEL, id=req.id, outputs=[
        ResponseOutput(name="prediction", shape=[len(y)], datatype="FP32", data=y.tolist())])


if __name__ == "__main__":
    import socket, sys
    import uvicorn
    # Each worker is a process of its own on a SO_REUSEPORT socket. With
    # uvicorn --workers the socket reaches the workers without its protocol
    # number, so asyncio does not set TCP_NODELAY on the connections, and
    # an answer written in two parts waits out the client's delayed ACK:
    # 44 ms a request at any concurrency. The socket is made with
    # IPPROTO_TCP here so that the peer is measured at its best.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", int(sys.argv[1])))
    sock.listen(2048)
    uvicorn.Server(uvicorn.Config(app, access_log=False, log_level="warning")).run(sockets=[sock])
`
