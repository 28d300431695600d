"""Simulate identity at scale: how big the groups get, how many people a split puts on two
sides (stated and observed), how many review answers bring the stated number under 0.5, and
how long it takes.

Two corpora, each with faces on 0%, 50% and 90% of sources:

* **IndoMER-like**: 207 sources of 203 people (four people have two sources);
* **channel-like**: 2,000 sources; 50 people with 20 videos each, 1,000 people with one.

Scores are drawn per pair, not from audio: the cohort-normalised voice score from normal
distributions with the mean and standard deviation of the shipped AMI calibration's
same-person and different-people scores; a face cosine (where both sources have a face)
uniform on [0.93, 0.99] for one person and normal (mean 0.70, sd 0.08, at most 0.893) for
two, the ranges measured on dlib's example photos (:mod:`indomer.speakers`). Probabilities
(the dataset's prior estimated from the scores, as with ``speakers.prior: null``; ``--prior``
sets AMI's or the truth instead), hard groups, group pairs, the split (ratios 0.8/0.1/0.1, no
stratification, seed 0, the default effort unless ``--quick``), the stated risk and the
review queue are the library's own (:mod:`indomer.identity`, :mod:`indomer.split`). A review
answer comes from the truth: "same" unites the two groups, "different" zeroes the pair.
*Answers to < 0.5* counts the fewest of the queue's top entries whose settling (their pairs
removed) leaves a stated number under 0.5 in the first split (at most --max-answers; ">N" when the listed pairs on two sides run out first: the
pairs too unlikely to list, under 0.001 each, still add up); they are then applied and the
split redone once, which gives *expected after them* (a re-split can move other pairs apart).

    .venv/bin/python tools/bench_identity.py [--seed 0] [--max-answers 5000] [--only indomer]
        [--prior estimated|ami|true] [--quick]

Prints one Markdown table (the README's).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from indomer.identity import (
    HARD_P,
    ScoreModel,
    expected_on_two_sides,
    face_llr,
    group_pairs,
    hard_groups,
    review_queue,
    sigmoid,
    voice_logit,
)
from indomer.speakers import CALIBRATION_FILE, FACE_DIFFERENT, FACE_SAME, score_model
from indomer.split import speaker_disjoint_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model

RATIOS = (0.8, 0.1, 0.1)
ROWS_PER_SOURCE = 9  # IndoMER: 1,944 clips of 207 sources
PAIR_MIN = 1e-3


def calibration() -> dict:
    text = resources.files("indomer").joinpath("data", *CALIBRATION_FILE.split("/"))
    return json.loads(text.read_text(encoding="utf-8"))["models"]["resemblyzer"]["probability"]


def corpus(kind: str) -> np.ndarray:
    """The true person of every source."""
    if kind == "indomer":
        return np.array([*range(199), *np.repeat(np.arange(199, 203), 2)])
    return np.array([*np.repeat(np.arange(50), 20), *range(50, 1050)])


def true_prior(person: np.ndarray) -> float:
    n = person.size
    return float(((person[:, None] == person[None, :]).sum() - n) / (n * (n - 1)))


def probabilities(person: np.ndarray, face_share: float, model: ScoreModel,
                  rng: np.random.Generator, report: dict | None = None) -> np.ndarray:
    """Pair probabilities from simulated scores, through the library's own mapping (the
    dataset's prior estimated from the scores unless the model fixes it)."""
    n = person.size
    cal = calibration()
    same = person[:, None] == person[None, :]
    s_same, s_diff = cal["same_person"], cal["different_people"]
    score = np.where(same, rng.normal(s_same["mean"], s_same["sd"], (n, n)),
                     rng.normal(s_diff["mean"], s_diff["sd"], (n, n)))
    score = np.triu(score, 1)
    score = score + score.T
    logit = voice_logit(score, model, report)
    has_face = rng.random(n) < face_share
    both = has_face[:, None] & has_face[None, :]
    fcos = np.where(same, rng.uniform(0.93, 0.99, (n, n)),
                    np.minimum(rng.normal(0.70, 0.08, (n, n)), 0.893))
    fcos = np.triu(fcos, 1)
    fcos = fcos + fcos.T
    logit = logit + np.where(both, face_llr(fcos, FACE_SAME, FACE_DIFFERENT), 0.0)
    p = sigmoid(logit)
    np.fill_diagonal(p, 1.0)
    return p


def state(p: np.ndarray, cannot: list[tuple[int, int]]) -> tuple[np.ndarray, list[dict], float]:
    """(group label per source, listed group pairs, unlisted mass), as the speakers stage."""
    label = hard_groups(p, cannot, HARD_P)
    groups, q = group_pairs(p, label, cannot)
    gi, gj = np.nonzero(np.triu(q >= PAIR_MIN, 1))
    pairs = [{"a": f"g{groups[a]}", "b": f"g{groups[b]}", "p": float(q[a, b]),
              "ia": int(groups[a]), "ib": int(groups[b])} for a, b in zip(gi, gj)]
    dropped = float(np.triu(q, 1).sum() - sum(e["p"] for e in pairs))
    return label, pairs, max(dropped, 0.0)


def split(label: np.ndarray, pairs: list[dict], seed: int, quick: bool) -> dict[str, str]:
    n = label.size
    df = pd.DataFrame({"id": [f"r{i}" for i in range(n * ROWS_PER_SOURCE)],
                       "source_id": np.repeat([f"g{g}" for g in label], ROWS_PER_SOURCE)})
    effort = {"restarts": 1, "kicks": 0} if quick else {}
    out = speaker_disjoint_split(df, RATIOS, seed, "none", pairs=pairs, **effort)
    return {g: s for g, s in zip(df["source_id"], out)}


def run(kind: str, face_share: float, seed: int, max_answers: int,
        prior_mode: str = "estimated", quick: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    person = corpus(kind)
    # speakers.prior: the corpus's own share of same-person pairs, AMI's, or (null) estimated
    prior = {"true": true_prior(person), "ami": calibration()["prior"]}.get(prior_mode)
    model, _ = score_model("resemblyzer", face_same=FACE_SAME, face_different=FACE_DIFFERENT,
                           prior=prior)
    t0 = time.process_time()
    info: dict = {}
    p = probabilities(person, face_share, model, rng, info)
    cannot: list[tuple[int, int]] = []
    label, pairs, dropped = state(p, cannot)
    where = split(label, pairs, seed, quick)
    seconds = time.process_time() - t0
    largest = int(np.bincount(label).max())
    fractions = [sum(1 for s in where.values() if s == k) / len(where)
                 for k in ("train", "validation", "test")]
    expected, _ = expected_on_two_sides(pairs, where, dropped, fractions)
    sides: dict[int, set] = {}
    for i, g in enumerate(label):
        sides.setdefault(int(person[i]), set()).add(where[f"g{g}"])
    observed = sum(len(v) > 1 for v in sides.values())
    # answers: the review queue's top entries until the pairs they settle leave under 0.5 on
    # two sides in this split; then all of them are applied and the split redone once
    queue = review_queue(pairs, where)
    useful = [e for e in queue[:max_answers] if e["expected_reduction"] > 0]

    def settled(k: int) -> float:  # the stated number once the top k pairs are answered
        done = {(e["a"], e["b"]) for e in useful[:k]}
        rest = [e for e in pairs if (e["a"], e["b"]) not in done]
        return expected_on_two_sides(rest, where, dropped, fractions)[0]

    # the stated number falls with every answer: bisect for the fewest that leave < 0.5
    lo, hi = 0, len(useful)
    now = settled(hi)
    if now < 0.5:
        while lo < hi:
            mid = (lo + hi) // 2
            if settled(mid) < 0.5:
                hi = mid
            else:
                lo = mid + 1
        now = settled(lo)
    answers = lo if now < 0.5 else len(useful)
    for e in queue[:answers]:
        members_a = np.flatnonzero(label == e["ia"])
        members_b = np.flatnonzero(label == e["ib"])
        if person[members_a[0]] == person[members_b[0]]:
            p[np.ix_(members_a, members_b)] = 1.0
            p[np.ix_(members_b, members_a)] = 1.0
        else:
            cannot.append((int(members_a[0]), int(members_b[0])))
            p[np.ix_(members_a, members_b)] = 0.0
            p[np.ix_(members_b, members_a)] = 0.0
    after = None
    if answers:
        label2, pairs2, dropped2 = state(p, cannot)
        where2 = split(label2, pairs2, seed, quick)
        after, _ = expected_on_two_sides(pairs2, where2, dropped2, fractions)
    return {
        "corpus": kind, "sources": int(person.size), "people": int(np.unique(person).size),
        "faces": face_share, "largest_group": largest, "expected": expected,
        "observed": observed, "answers": answers if now < 0.5 else f">{answers}",
        "after": after, "cpu_s": seconds, "prior": info.get("prior", prior),
        "true_prior": true_prior(person),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-answers", type=int, default=5000)
    ap.add_argument("--only", choices=("indomer", "channel"), default=None)
    ap.add_argument("--prior", choices=("estimated", "ami", "true"), default="estimated",
                    help="the dataset prior: estimated from the scores (the default, as "
                    "speakers.prior null), AMI's, or each corpus's own share of same-person "
                    "pairs (speakers.prior set to the truth)")
    ap.add_argument("--quick", action="store_true",
                    help="split from one start without kicks (the lowest effort)")
    args = ap.parse_args()
    print(f"CPU: {cpu_model()}; seed {args.seed}; prior {args.prior}; split effort "
          f"{'one start, no kicks' if args.quick else 'default'}; CPU seconds of identity + "
          "split (the first split, before any review)\n")
    print("| corpus | sources | people | faces | prior (true) | largest group | expected on "
          "two sides | observed | answers to < 0.5 | expected after them | CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in ("indomer", "channel"):
        if args.only and kind != args.only:
            continue
        for share in (0.0, 0.5, 0.9):
            r = run(kind, share, args.seed, args.max_answers, args.prior, args.quick)
            print(f"| {r['corpus']} | {r['sources']} | {r['people']} | {share:.0%} | "
                  f"{r['prior']:.5f} ({r['true_prior']:.5f}) | "
                  f"{r['largest_group']} | {r['expected']:.2f} | {r['observed']} | "
                  f"{r['answers']} | "
                  + ("-" if r["after"] is None else f"{r['after']:.2f}")
                  + f" | {r['cpu_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
