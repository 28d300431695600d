"""Benchmark the speaker-disjoint splitter against scikit-learn's StratifiedGroupKFold.

On the public IndoMER release (grouped by source video, stratified by emotion), for seeds
0..N-1 and the ratios 0.8/0.1/0.1 and 0.8/0.2, print the largest class-proportion deviation
|count(split, class)/n(split) - count(class)/N| of both methods, the split sizes, and the
wall time. StratifiedGroupKFold: 10 folds for 3-way (fold 0 test, fold 1 validation, rest
train), 5 folds for 2-way (fold 0 validation), shuffle=True, random_state=seed.

    .venv/bin/python tools/bench_split.py [--release DIR] [--seeds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from indomer.labels import label_set
from indomer.split import max_deviation, speaker_disjoint_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model

ROOT = Path(__file__).resolve().parents[1]
EMOTIONS = label_set("emotion").names
CONFIGS = ((0.8, 0.1, 0.1), (0.8, 0.2))


def release_frame(release: Path) -> pd.DataFrame:
    raw = pd.read_csv(release / "Annotations.csv")
    df = pd.DataFrame({"id": raw["video_name"].str.removesuffix(".mp4")})
    df["source_id"] = df["id"].str.split("_").str[1]
    df["emotion"] = raw["emotion"].map(label_set("emotion").canonical)
    df["sentiment"] = raw["sentiment"].map(label_set("sentiment").canonical)
    return df


def sgkf(df: pd.DataFrame, n_ways: int, seed: int) -> np.ndarray:
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=10 if n_ways == 3 else 5, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        folds = [test for _, test in cv.split(df, df["emotion"], df["source_id"])]
    out = np.array(["train"] * len(df), dtype=object)
    if n_ways == 3:
        out[folds[0]], out[folds[1]] = "test", "validation"
    else:
        out[folds[0]] = "validation"
    return out


def sizes(split) -> str:
    counts = pd.Series(split).value_counts()
    return "/".join(
        str(int(counts.get(s, 0))) for s in ("train", "validation", "test") if s in counts
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--release", type=Path, default=ROOT.parent / "shared" / "indomer-release")
    ap.add_argument("--seeds", type=int, default=10)
    args = ap.parse_args()
    df = release_frame(args.release)
    print(f"release: {len(df)} rows, {df['source_id'].nunique()} source videos")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}")
    for ratios in CONFIGS:
        label = "/".join(f"{r:g}" for r in ratios)
        print(f"\nratios {label}, stratify emotion, groups = source video")
        print(
            f"{'seed':>4}  {'ours':>8} {'where':<22} {'sizes':<14}  {'sgkf':>8} {'where':<22} sizes"
        )
        ours_dev, theirs_dev, ours_t, theirs_t = [], [], 0.0, 0.0
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            ours = speaker_disjoint_split(df, ratios, seed, "emotion")
            t1 = time.perf_counter()
            theirs = sgkf(df, len(ratios), seed)
            t2 = time.perf_counter()
            ours_t += t1 - t0
            theirs_t += t2 - t1
            o = max_deviation(df["emotion"], ours, EMOTIONS)
            t = max_deviation(df["emotion"], theirs, EMOTIONS)
            ours_dev.append(o[0])
            theirs_dev.append(t[0])
            print(
                f"{seed:>4}  {o[0]:>8.4f} {f'{o[1]}/{o[2]}':<22} {sizes(ours):<14}  "
                f"{t[0]:>8.4f} {f'{t[1]}/{t[2]}':<22} {sizes(theirs)}"
            )
        n = args.seeds
        print(
            f"mean  {np.mean(ours_dev):>8.4f} (worst {max(ours_dev):.4f})"
            f"{'':<21}  {np.mean(theirs_dev):>8.4f} (worst {max(theirs_dev):.4f})"
        )
        wins = sum(a <= b for a, b in zip(ours_dev, theirs_dev))
        print(
            f"ours <= sgkf on {wins}/{n} seeds; wall time per split: ours "
            f"{ours_t / n:.3f} s, sgkf {theirs_t / n:.3f} s"
        )


if __name__ == "__main__":
    main()
