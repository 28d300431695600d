"""Benchmark: bootstrap intervals on the release's 356 validation segments.

Scores a noisy system against ``7_class_val.json`` with N resamples (default 1000) by source
video (the release has no speaker ids) and by segment, plus a paired ``--compare``; prints
seconds per call (best of --repeat).

    .venv/bin/python tools/bench_bootstrap.py [--release ../shared/indomer-release]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from indomer.labels import label_set
from indomer.scoring import load_references, resampling_units, score_labels

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--release", type=Path, default=ROOT.parent / "shared" / "indomer-release")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    refs = load_references([args.release / "7_Class" / "7_class_val.json"])
    frame = refs.frame
    names = label_set("emotion").names
    y_true = np.array([names.index(v) for v in frame["emotion"]])
    rng = np.random.default_rng(args.seed)
    y_pred = np.where(rng.random(len(y_true)) < 0.7, y_true, rng.integers(-1, 7, len(y_true)))
    y_other = np.full(len(y_true), names.index("neutral"))
    units, unit_name = resampling_units(frame, "speaker")

    def run(u, name, other=None) -> dict:
        return score_labels(
            "emotion",
            y_true,
            y_pred,
            u,
            y_other=other,
            n_resamples=args.resamples,
            seed=args.seed,
            split=refs.split,
            unit_name=name,
        )

    cases = {
        f"{unit_name} unit ({len(set(units))} videos)": lambda: run(units, unit_name),
        f"segment unit ({len(y_true)} clips)": lambda: run(None, "segment"),
        f"{unit_name} unit + paired --compare": lambda: run(units, unit_name, y_other),
    }
    print(f"{len(y_true)} segments, {args.resamples} resamples, cpus={os.cpu_count()}")
    for label, fn in cases.items():
        seconds = best_of(args.repeat, fn)
        print(f"{label:<40} {seconds:.4f} s")
    print(json.dumps(run(units, unit_name, y_other)["ci95"], sort_keys=True))


if __name__ == "__main__":
    main()
