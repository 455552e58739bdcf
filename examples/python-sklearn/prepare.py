"""Split the wine data into a training set and a test set, stratified by
class, and log the split to the step's run."""

import argparse
import os

import pandas as pd
from sklearn.model_selection import train_test_split

import mlflow_rest as mlf


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True, help="the labelled CSV")
    ap.add_argument("--target", default="cultivar", help="the label column")
    ap.add_argument("--test-size", type=float, required=True, help="share of rows held out for the test set")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--train-out", required=True)
    ap.add_argument("--test-out", required=True)
    args = ap.parse_args()

    df = pd.read_csv(args.data)
    if args.target not in df.columns:
        raise SystemExit(f"{args.data}: no column {args.target!r}; it has {', '.join(df.columns)}")
    train, test = train_test_split(df, test_size=args.test_size, random_state=args.seed, stratify=df[args.target])
    for frame, path in ((train, args.train_out), (test, args.test_out)):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        frame.to_csv(path, index=False, lineterminator="\n")

    mlf.log_batch(
        params={"test_size": args.test_size, "seed": args.seed, "target": args.target},
        metrics={"rows": len(df), "train_rows": len(train), "test_rows": len(test), "features": df.shape[1] - 1},
    )
    print(f"split {len(df)} rows of {args.data}: {len(train)} to {args.train_out}, {len(test)} to {args.test_out}")


if __name__ == "__main__":
    main()
