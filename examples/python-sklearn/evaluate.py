"""Score the model on the test set: write the headline metrics as the
step's metrics file (JSON of name to number, which the pipeline runner logs
to the step's run and, prefixed with the step's name, to the pipeline's),
and log per-class metrics and the confusion matrix through the REST API."""

import argparse
import json
import os
import pickle

import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, precision_recall_fscore_support

import mlflow_rest as mlf


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="the pickled model")
    ap.add_argument("--test", required=True, help="the test CSV")
    ap.add_argument("--target", default="cultivar")
    ap.add_argument("--metrics-out", required=True)
    args = ap.parse_args()

    with open(args.model, "rb") as f:
        model = pickle.load(f)
    df = pd.read_csv(args.test)
    X, y = df.drop(columns=[args.target]), df[args.target]
    pred = model.predict(X)
    metrics = {
        "accuracy": accuracy_score(y, pred),
        "f1_macro": f1_score(y, pred, average="macro"),
        "log_loss": log_loss(y, model.predict_proba(X), labels=model.classes_),
    }
    os.makedirs(os.path.dirname(args.metrics_out) or ".", exist_ok=True)
    with open(args.metrics_out, "w") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")

    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=model.classes_, zero_division=0)
    per_class = {}
    for i, c in enumerate(model.classes_):
        per_class[f"precision.class_{c}"] = precision[i]
        per_class[f"recall.class_{c}"] = recall[i]
        per_class[f"f1.class_{c}"] = f1[i]
    per_class["test_rows"] = len(df)
    cm = confusion_matrix(y, pred, labels=model.classes_)
    mlf.log_batch(metrics=per_class, tags={"confusion_matrix": json.dumps(cm.tolist())})
    print(" ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    print("confusion matrix (rows: true class, columns: predicted):")
    for c, row in zip(model.classes_, cm):
        print(f"  class {c}: {' '.join(f'{n:3d}' for n in row)}")


if __name__ == "__main__":
    main()
