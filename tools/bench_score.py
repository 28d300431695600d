"""Benchmark: per-class figures + confusion matrix, indomer.scoring vs scikit-learn.

Generates N predictions over the 7 emotion classes (some invalid), checks that
``score_labels`` gives exactly scikit-learn's ``classification_report(output_dict=True)`` and
``confusion_matrix`` numbers, and prints both timings and the speedup.

    .venv/bin/python tools/bench_score.py [--n 1000000] [--repeat 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.metrics import classification_report
from sklearn.metrics import confusion_matrix as sk_confusion

from indomer.labels import label_set
from indomer.scoring import INVALID, score_labels


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of predictions")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    names = label_set("emotion").names
    k = len(names)
    rng = np.random.default_rng(args.seed)
    y_true = rng.integers(0, k, args.n)
    noise = rng.integers(-1, k, args.n)  # -1 = an invalid answer
    y_pred = np.where(rng.random(args.n) < 0.6, y_true, noise)
    y_pred = np.where(y_pred < 0, INVALID, y_pred)

    def ours() -> dict:
        return score_labels("emotion", y_true, y_pred, n_resamples=0)

    def sklearn() -> tuple[dict, np.ndarray]:
        labels = list(range(k))
        report = classification_report(
            y_true, y_pred, labels=labels, output_dict=True, zero_division=0
        )
        return report, sk_confusion(y_true, y_pred, labels=labels)

    t_ours, res = best_of(args.repeat, ours)
    t_sk, (report, cm) = best_of(args.repeat, sklearn)

    if res["confusion"]["matrix"] != cm.tolist():
        raise SystemExit("confusion matrices differ")
    for i, name in enumerate(names):
        mine, ref = res["per_class"][name], report[str(i)]
        pairs = [
            (mine["precision"], ref["precision"]),
            (mine["recall"], ref["recall"]),
            (mine["f1"], ref["f1-score"]),
            (mine["support"], ref["support"]),
        ]
        if any(a != b for a, b in pairs):
            raise SystemExit(f"{name}: {mine} != {ref}")
    for key, ref_key in (("macro_f1", "macro avg"), ("weighted_f1", "weighted avg")):
        if res["metrics"][key] != report[ref_key]["f1-score"]:
            raise SystemExit(f"{key} differs")

    print(
        f"n={args.n:,} predictions, 7 classes, {res['n_invalid']:,} invalid; cpus={os.cpu_count()}"
    )
    print("per-class figures and confusion matrix identical to scikit-learn (exact float equality)")
    print(f"indomer.scoring.score_labels:                     {t_ours * 1000:9.1f} ms")
    print(f"sklearn classification_report + confusion_matrix: {t_sk * 1000:9.1f} ms")
    print(f"speedup: {t_sk / t_ours:.1f}x")


if __name__ == "__main__":
    main()
