"""Train a random forest on the training set, check it with k-fold
cross-validation, log params and metrics to the step's run, and write the
fitted model as a pickle."""

import argparse
import os
import pickle

import pandas as pd
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

import mlflow_rest as mlf


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train", required=True, help="the training CSV")
    ap.add_argument("--target", default="cultivar")
    ap.add_argument("--n-estimators", type=int, required=True)
    ap.add_argument("--max-depth", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--model-out", required=True)
    args = ap.parse_args()

    df = pd.read_csv(args.train)
    X, y = df.drop(columns=[args.target]), df[args.target]
    model = RandomForestClassifier(
        n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=args.seed, n_jobs=1
    )
    folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    cv = cross_val_score(model, X, y, cv=folds, scoring="accuracy")
    model.fit(X, y)

    os.makedirs(os.path.dirname(args.model_out) or ".", exist_ok=True)
    with open(args.model_out, "wb") as f:
        pickle.dump(model, f, protocol=4)

    # One log-batch for the params (MLflow params cannot change once
    # logged), the per-fold accuracy as one metric's history (step = fold)
    # and the summary metrics.
    mlf.log_batch(
        params={
            "n_estimators": args.n_estimators,
            "max_depth": args.max_depth,
            "seed": args.seed,
            "folds": args.folds,
        },
        metrics=[("cv_fold_accuracy", score, fold) for fold, score in enumerate(cv)]
        + [
            ("cv_accuracy", cv.mean()),
            ("cv_accuracy_std", cv.std()),
            ("train_accuracy", model.score(X, y)),
        ]
        + [(f"importance.{name}", imp) for name, imp in zip(X.columns, model.feature_importances_)],
        tags={"model_class": type(model).__name__, "sklearn_version": sklearn.__version__},
    )
    print(f"trained {type(model).__name__} on {len(df)} rows: cv accuracy {cv.mean():.4f} ± {cv.std():.4f}; model written to {args.model_out}")


if __name__ == "__main__":
    main()
