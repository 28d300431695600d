"""Speaker-disjoint, stratified re-splitting of a built dataset, and its leakage report.

Clips of one speaker are not independent: a speaker in both train and test inflates every
score. So whole groups (speakers, or source videos when no speaker ids exist) go to one split,
and the assignment is searched so that every split keeps the class proportions of the whole,
long tail included (the release has 9 fear and 8 surprise clips). The search is a seeded
greedy start (rarest-class groups first) followed by steepest-descent moves and swaps and a
few seeded kicks, minimising, in this order: empty splits, rows by which split sizes miss a
tolerance around ratio x rows, (split, class) pairs left empty although the class has enough
groups (a test split without fear cannot score fear), the largest proportion deviation
|count(split, class)/n(split) - count(class)/N|, and the sum of squared deviations.
One ``numpy.random.Generator(seed)`` drives every random choice, so a seed names a split.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from indomer import __version__
from indomer.dataset import (
    SPLITS,
    available_splits,
    read_meta,
    read_split,
    remove_split,
    write_split,
)
from indomer.errors import DataError, UsageError, first_few
from indomer.groups import GROUP_KEY, group_column, present, with_groups
from indomer.labels import label_set

DEFAULT_RATIOS: tuple[float, ...] = (0.8, 0.1, 0.1)
STRATIFY_CHOICES: tuple[str, ...] = ("emotion", "sentiment", "none")
#: Label tasks whose per-split class counts and deviations every report carries.
REPORT_TASKS: tuple[str, ...] = ("emotion", "sentiment")
#: A split may differ from ratio x rows by this fraction of its target before it costs.
SIZE_TOLERANCE = 0.02
METHOD = "speaker-disjoint"
#: The group key when the speakers stage linked sources into split-safe groups.
NO_SPEAKER_WARNING = (
    "no speaker ids: grouping by source video; a speaker appearing in two videos may leak"
)
#: Prefix of the group id of a row without speaker id when other rows have one, so that a
#: source id can never collide with a speaker id.
#: Split names that a re-split may not take: ``official`` records the release's own split.
RESERVED_NAMES: frozenset[str] = frozenset({"official"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_RATIO_HINT = (
    "expected 2 or 3 comma-separated numbers (train,validation[,test]), each > 0, "
    "summing to 1, e.g. 0.8,0.1,0.1"
)
#: Resolution of the expected people on two sides in the search's objective: differences
#: below it never outweigh the class balance.
RISK_STEP = 0.01
#: Up to this many groups, a split with identity pairs searches from 16 starts with 16 kicks.
EFFORT_GROUPS = 1000
#: Swap candidates evaluated at once; bounds memory for datasets with thousands of speakers.
_CHUNK = 50_000
#: Up to this many groups every pair is a swap candidate; above, only pairs among the groups
#: of the :data:`SWAP_GROUPS` best single moves.
SWAP_ALL_GROUPS = 1000
SWAP_GROUPS = 300


# --------------------------------------------------------------------------- options


def parse_ratios(text: str) -> tuple[float, ...]:
    """Parse ``--ratios`` text such as ``0.8,0.1,0.1`` (a one-line UsageError otherwise)."""
    try:
        values = [float(p) for p in str(text).split(",")]
    except ValueError:
        raise UsageError(f"--ratios {text!r}: not numbers; {_RATIO_HINT}") from None
    return check_ratios(values, shown=str(text))


def check_ratios(ratios: Sequence[float], shown: str | None = None) -> tuple[float, ...]:
    """Validate split ratios: 2 or 3 finite numbers > 0 that sum to 1 within 1e-6."""
    shown = shown if shown is not None else ",".join(str(r) for r in ratios)
    values = tuple(float(r) for r in ratios)
    if len(values) not in (2, 3):
        raise UsageError(f"--ratios {shown!r}: got {len(values)} numbers; {_RATIO_HINT}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise UsageError(f"--ratios {shown!r}: every ratio must be > 0; {_RATIO_HINT}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise UsageError(f"--ratios {shown!r}: they sum to {sum(values):g}, not 1; {_RATIO_HINT}")
    return values


def check_name(name: str) -> str:
    """A split name becomes ``splits/NAME.json``: keep it a plain, portable file name."""
    if not _NAME_RE.match(name or ""):
        raise UsageError(
            f"--name {name!r}: use letters, digits, '.', '_' or '-' (not starting with '.' "
            "or '-'), at most 100 characters"
        )
    if name.lower() in RESERVED_NAMES:
        raise UsageError(
            f"--name {name!r}: reserved for the release's own split record; choose another name"
        )
    return name


#: The name ``indomer split`` (and a raw build) gives its split unless told another.
DEFAULT_NAME = METHOD


def default_name(seed: int | None = None) -> str:
    """The default split name: one stable name, so that a re-split does not pile up files;
    the seed and settings are in the document, and a second split of that name with another
    assignment is refused unless forced (:func:`resplit`)."""
    return DEFAULT_NAME


def split_names(n: int) -> tuple[str, ...]:
    """Split names for 2 or 3 ratios: train, validation[, test]."""
    return SPLITS[:n]


# --------------------------------------------------------------------------- groups


def natural_key(value: str) -> tuple:
    """Sort ids as people read them (``2`` before ``10``), exactly and deterministically."""
    parts = re.split(r"(\d+)", str(value))
    key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")
    return key + ((2, 0, str(value)),)


def fallback_warning(key: str, missing: int, total: int) -> str | None:
    """The stderr warning for rows grouped by source video, or None when all have speakers."""
    if missing == 0:
        return None
    if key == "source_id":
        return NO_SPEAKER_WARNING
    return (
        f"{missing} of {total} rows have no speaker id: grouping them by source video; "
        "a speaker appearing in two videos may leak"
    )


# --------------------------------------------------------------------------- search


def _class_codes(df: pd.DataFrame, task: str) -> np.ndarray:
    """Class ids of ``task`` per row (-1 for unlabelled); unknown names are a DataError."""
    if task not in df.columns:
        raise UsageError(f"no '{task}' column to stratify on; use --stratify none")
    names = label_set(task).names
    index = {n: i for i, n in enumerate(names)}
    codes = np.full(len(df), -1, dtype=np.int64)
    bad = []
    for row, value in enumerate(df[task].tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        code = index.get(value)
        if code is None:
            bad.append(f"{df['id'].iloc[row] if 'id' in df.columns else row}={value!r}")
        else:
            codes[row] = code
    if bad:
        raise DataError(
            f"{first_few(bad)}: unknown {task} label; expected one of {', '.join(names)}"
        )
    return codes


class _Search:
    """The assignment search over groups; all state is integer counts, so it is exact."""

    def __init__(
        self,
        counts: np.ndarray,
        sizes: np.ndarray,
        ratios: tuple[float, ...],
        size_tolerance: float,
        weights: np.ndarray | None = None,
    ) -> None:
        # (G, G) probability that two groups hold one person (zero diagonal), or None
        self.W = None if weights is None or not np.any(weights) else weights.astype(float)
        self.counts = counts.astype(np.int64)  # (G, C) labelled rows per group and class
        self.sizes = sizes.astype(np.int64)  # (G,) all rows per group
        self.n_groups, self.n_classes = counts.shape
        self.k = len(ratios)
        self.ratios = np.asarray(ratios, dtype=float)
        self.total = int(self.sizes.sum())
        self.targets = self.ratios * self.total
        self.tol = size_tolerance * self.targets
        class_totals = self.counts.sum(0)
        labelled = max(int(class_totals.sum()), 1)
        self.p = class_totals / labelled
        self.class_targets = self.ratios[:, None] * class_totals[None, :]
        # A class can appear in every split only if at least k groups carry it.
        self.need = (self.counts > 0).sum(0) >= self.k
        self.rarity = np.where(self.counts > 0, class_totals[None, :], np.iinfo(np.int64).max).min(
            1, initial=np.iinfo(np.int64).max
        )
        self._pairs = np.triu_indices(self.n_groups, 1)

    # -- objective ---------------------------------------------------------------------

    def evaluate(
        self, S: np.ndarray, n: np.ndarray, r: np.ndarray | float = 0.0
    ) -> tuple[np.ndarray, ...]:
        """Objective keys of states S (..., K, C) with split sizes n (..., K) and expected
        people on two sides r (...), most important first; rounded so that equal states
        compare equal whatever path computed them (the risk to :data:`RISK_STEP`, so that
        a negligible risk never outweighs the class balance)."""
        viol = np.maximum(0.0, np.abs(n - self.targets) - self.tol).sum(-1)
        labelled = S.sum(-1)
        dev = np.abs(S / np.maximum(labelled, 1)[..., None] - self.p)
        if self.n_classes:
            worst = dev.max(axis=(-1, -2))
        else:
            worst = np.zeros(n.shape[:-1])
        missing = ((S == 0) & self.need).sum(axis=(-1, -2))
        sec = (dev**2).sum(axis=(-1, -2)) + (((n - self.targets) / self.total) ** 2).sum(-1)
        empty = (n == 0).sum(-1)
        risk = np.broadcast_to(np.round(np.asarray(r, dtype=float) / RISK_STEP), empty.shape)
        return (empty, np.round(viol, 9), missing, risk, np.round(worst, 12),
                np.round(sec, 15))

    def state(self, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        S = np.zeros((self.k, self.n_classes), dtype=np.int64)
        np.add.at(S, assign, self.counts)
        n = np.bincount(assign, weights=self.sizes, minlength=self.k).astype(np.int64)
        return S, n

    def risk(self, assign: np.ndarray) -> float:
        """Expected same-person group pairs on two sides (sum of W over pairs apart)."""
        if self.W is None:
            return 0.0
        return float((self.W * (assign[:, None] != assign[None, :])).sum() / 2)

    def pull(self, assign: np.ndarray) -> np.ndarray | None:
        """M[g, k]: total W between group g and the groups in split k."""
        if self.W is None:
            return None
        onehot = np.zeros((self.n_groups, self.k))
        onehot[np.arange(self.n_groups), assign] = 1.0
        return self.W @ onehot

    def key(self, assign: np.ndarray) -> tuple:
        S, n = self.state(assign)
        return tuple(float(v) for v in self.evaluate(S, n, self.risk(assign)))

    # -- construction ------------------------------------------------------------------

    def greedy(self, rng: np.random.Generator) -> np.ndarray:
        """Rarest-class groups first (bigger first, random ties), each to the split whose
        count and size targets it helps most."""
        perm = rng.permutation(self.n_groups)
        order = perm[np.lexsort((-self.sizes[perm], self.rarity[perm]))]
        S = np.zeros((self.k, self.n_classes))
        n = np.zeros(self.k)
        assign = np.zeros(self.n_groups, dtype=np.int64)
        scale = np.maximum(self.targets, 1.0) ** 2
        pull = np.zeros((self.n_groups, self.k))  # W towards the groups placed so far
        for g in order:
            c, s = self.counts[g], self.sizes[g]
            gain = (
                ((S + c - self.class_targets) ** 2 - (S - self.class_targets) ** 2).sum(1)
                + (n + s - self.targets) ** 2
                - (n - self.targets) ** 2
            ) / scale
            if self.W is not None:
                gain = gain + (pull[g].sum() - pull[g])  # risk of placing g in each split
            k = int(np.argmin(gain))
            if self.W is not None:
                pull[:, k] += self.W[:, g]
            assign[g] = k
            S[k] += c
            n[k] += s
        return assign

    # -- improvement -------------------------------------------------------------------

    def _best(
        self, cand_S: np.ndarray, cand_n: np.ndarray, cand_r: np.ndarray | float = 0.0
    ) -> tuple[tuple, int]:
        """The lexicographically smallest candidate (first index among equals)."""
        keys = self.evaluate(cand_S, cand_n, cand_r)
        mask = np.ones(len(cand_n), dtype=bool)
        for k in keys:
            mask &= k == k[mask].min()
        i = int(np.flatnonzero(mask)[0])
        return tuple(float(k[i]) for k in keys), i

    def _best_move(self, assign, S, n, r=0.0, M=None, top: int = 0) -> tuple | None:
        """Best single-group move: group g from its split to split b. With ``top``, also the
        groups of the ``top`` best moves (the swap candidates at scale)."""
        G, K = self.n_groups, self.k
        cur = r
        g_idx = np.repeat(np.arange(G), K)
        b_idx = np.tile(np.arange(K), G)
        keep = b_idx != assign[g_idx]
        g_idx, b_idx = g_idx[keep], b_idx[keep]
        if not len(g_idx):
            return None
        r = np.arange(len(g_idx))
        a_idx = assign[g_idx]
        cS = np.repeat(S[None], len(g_idx), 0)
        cn = np.repeat(n[None], len(g_idx), 0)
        cS[r, a_idx] -= self.counts[g_idx]
        cS[r, b_idx] += self.counts[g_idx]
        cn[r, a_idx] -= self.sizes[g_idx]
        cn[r, b_idx] += self.sizes[g_idx]
        risk = 0.0 if M is None else cur + M[g_idx, a_idx] - M[g_idx, b_idx]
        if not top:
            k, i = self._best(cS, cn, risk)
            return k, "move", int(g_idx[i]), int(b_idx[i])
        keys = self.evaluate(cS, cn, risk)
        order = np.lexsort(tuple(np.asarray(k, dtype=float) for k in reversed(keys)))
        i = int(order[0])
        ranked = g_idx[order]
        _, first = np.unique(ranked, return_index=True)
        groups = ranked[np.sort(first)][:top]
        return (tuple(float(k[i]) for k in keys), "move", int(g_idx[i]), int(b_idx[i])), groups

    def _best_swap(self, assign, S, n, r=0.0, M=None, among=None) -> tuple | None:
        """Best exchange of two groups in different splits (in chunks, to bound memory);
        ``among``: only pairs of these groups (a bound on the candidates at scale)."""
        cur = r
        if among is None:
            pi, pj = self._pairs
        else:
            among = np.sort(np.asarray(among, dtype=np.int64))
            u, v = np.triu_indices(among.size, 1)
            pi, pj = among[u], among[v]
        cross = assign[pi] != assign[pj]
        pi, pj = pi[cross], pj[cross]
        best = None
        for lo in range(0, len(pi), _CHUNK):
            ci, cj = pi[lo : lo + _CHUNK], pj[lo : lo + _CHUNK]
            r = np.arange(len(ci))
            ai, aj = assign[ci], assign[cj]
            delta = self.counts[cj] - self.counts[ci]
            dn = self.sizes[cj] - self.sizes[ci]
            cS = np.repeat(S[None], len(ci), 0)
            cn = np.repeat(n[None], len(ci), 0)
            cS[r, ai] += delta
            cS[r, aj] -= delta
            cn[r, ai] += dn
            cn[r, aj] -= dn
            risk = 0.0
            if M is not None:
                risk = (cur + M[ci, ai] - M[ci, aj] + M[cj, aj] - M[cj, ai]
                        + 2 * self.W[ci, cj])
            k, i = self._best(cS, cn, risk)
            if best is None or k < best[0]:
                best = (k, "swap", int(ci[i]), int(cj[i]))
        return best

    def _shift(self, assign, S, n, M, g: int, b: int) -> float:
        """Move group g to split b in place (assign, S, n, M); return the change of risk.
        O(G K) instead of recomputing the risk and the pull from scratch (O(G^2))."""
        a = int(assign[g])
        S[a] -= self.counts[g]
        S[b] += self.counts[g]
        n[a] -= self.sizes[g]
        n[b] += self.sizes[g]
        assign[g] = b
        if M is None:
            return 0.0
        change = float(M[g, a] - M[g, b])
        M[:, a] -= self.W[:, g]
        M[:, b] += self.W[:, g]
        return change

    def descend(self, assign: np.ndarray, max_steps: int = 10_000) -> np.ndarray:
        """Descent: the best improving move, else the best improving swap, until neither.

        The state (class counts, sizes, risk, pull) is updated per step, not recomputed.
        Above :data:`SWAP_ALL_GROUPS` groups a swap is sought only among the groups of the
        :data:`SWAP_GROUPS` best single moves (a swap is two moves; pairs of poor moves
        rarely make a good swap, and all pairs cost O(G^2) per step)."""
        assign = assign.copy()
        S, n = self.state(assign)
        r, M = self.risk(assign), self.pull(assign)
        current = tuple(float(v) for v in self.evaluate(S, n, r))
        top = SWAP_GROUPS if self.n_groups > SWAP_ALL_GROUPS else 0
        for _ in range(max_steps):
            best = self._best_move(assign, S, n, r, M)
            if best is None or not best[0] < current:
                among = None
                if top and best is not None:  # rank the moves only when a swap is sought
                    among = self._best_move(assign, S, n, r, M, top=top)[1]
                best = self._best_swap(assign, S, n, r, M, among=among)
            if best is None or not best[0] < current:
                break
            key, kind, x, y = best
            if kind == "move":
                r += self._shift(assign, S, n, M, x, y)
            else:
                ax, ay = int(assign[x]), int(assign[y])
                r += self._shift(assign, S, n, M, x, ay)
                r += self._shift(assign, S, n, M, y, ax)
            current = key
        return assign

    def kick(self, assign: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Move a few random groups to random other splits, to leave a local optimum."""
        out = assign.copy()
        m = min(self.n_groups, max(2, self.n_groups // 25))
        for g in rng.choice(self.n_groups, size=m, replace=False):
            out[g] = (out[g] + rng.integers(1, self.k)) % self.k
        return out

    def solve(self, rng: np.random.Generator, restarts: int, kicks: int) -> np.ndarray:
        best, best_key = None, None
        for _ in range(restarts):
            assign = self.descend(self.greedy(rng))
            key = self.key(assign)
            for _ in range(kicks):
                trial = self.descend(self.kick(assign, rng))
                trial_key = self.key(trial)
                if trial_key < key:
                    assign, key = trial, trial_key
            if best_key is None or key < best_key:
                best, best_key = assign, key
        return best


def speaker_disjoint_split(
    df: pd.DataFrame,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
    stratify: str | None = "emotion",
    *,
    size_tolerance: float = SIZE_TOLERANCE,
    restarts: int = 4,
    kicks: int = 8,
    pairs: Sequence[dict] | None = None,
    few_groups_ok: bool = False,
) -> pd.Series:
    """The split name of every row of ``df``, with each group (see :func:`group_column`)
    wholly in one split and class proportions kept close to the whole.

    ``pairs`` (``a``, ``b``: groups; ``p``: probability that they hold one person) make the
    search minimise the expected number of same-person group pairs on two sides, after the
    split sizes and before the class proportions. With fewer groups than splits the ratios
    cannot be met: an error, unless ``few_groups_ok`` (a build, which must end with a
    dataset), where some splits stay empty.

    Rows are identified by their group and labels only, so the result does not depend on the
    row order or on the splits the rows came from: the same data and seed give the same split.
    The seed picks among near-optimal local optima (every seed differs on the release); on a
    small dataset one assignment can be best from every start, and then seeds agree.
    """
    ratios = check_ratios(ratios)
    if stratify not in (*STRATIFY_CHOICES, None):
        raise UsageError(f"--stratify {stratify!r}: expected one of {', '.join(STRATIFY_CHOICES)}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise UsageError(f"--seed {seed!r}: expected a whole number >= 0")
    names = split_names(len(ratios))
    _, groups, _ = group_column(df)
    group_ids = sorted(set(groups.tolist()), key=natural_key)
    if len(group_ids) < len(names) and not few_groups_ok:
        raise DataError(
            f"only {len(group_ids)} group(s) ({first_few(group_ids)}) for {len(names)} splits; "
            "a speaker-disjoint split needs at least one group per split"
        )
    index = {g: i for i, g in enumerate(group_ids)}
    row_group = np.array([index[g] for g in groups.tolist()], dtype=np.int64)
    sizes = np.bincount(row_group, minlength=len(group_ids))
    if stratify in (None, "none"):
        counts = np.zeros((len(group_ids), 0), dtype=np.int64)
    else:
        codes = _class_codes(df, stratify)
        counts = np.zeros((len(group_ids), len(label_set(stratify).names)), dtype=np.int64)
        labelled = codes >= 0
        np.add.at(counts, (row_group[labelled], codes[labelled]), 1)
    weights = None
    if pairs:
        weights = np.zeros((len(group_ids), len(group_ids)))
        a = np.fromiter((index.get(e["a"], -1) for e in pairs), np.int64, len(pairs))
        b = np.fromiter((index.get(e["b"], -1) for e in pairs), np.int64, len(pairs))
        p = np.fromiter((float(e["p"]) for e in pairs), np.float64, len(pairs))
        ok = (a >= 0) & (b >= 0) & (a != b)
        weights[a[ok], b[ok]] = p[ok]
        weights[b[ok], a[ok]] = p[ok]
    if weights is not None and np.any(weights) and len(group_ids) <= EFFORT_GROUPS:
        # the risk makes the landscape rougher: search harder where it is cheap
        restarts, kicks = max(restarts, 16), max(kicks, 16)
    search = _Search(counts, sizes, ratios, size_tolerance, weights)
    assign = search.solve(np.random.default_rng(int(seed)), restarts=restarts, kicks=kicks)
    return pd.Series(
        [names[k] for k in assign[row_group]], index=df.index, name="split", dtype=object
    )


# --------------------------------------------------------------------------- report


def max_deviation(
    labels: Sequence, splits: Sequence, names: Sequence[str] | None = None
) -> tuple[float, str | None, str | None]:
    """Largest |count(split, class)/n(split) - count(class)/N| and where it is.

    Only labelled rows count (n and N exclude unlabelled rows); a split without labelled rows
    deviates by each class's whole share. Ties go to the first split (SPLITS order, then
    first seen) and the first class (``names`` order).
    """
    labels = pd.Series(list(labels), dtype=object)
    splits = pd.Series(list(splits), dtype=object)
    labelled = labels.notna()
    order = [s for s in SPLITS if s in set(splits)] + sorted(
        {s for s in splits if s not in SPLITS}, key=str
    )
    names = list(names) if names is not None else sorted(set(labels[labelled]), key=str)
    total = int(labelled.sum())
    if total == 0 or not names:
        return 0.0, None, None
    whole = labels[labelled].value_counts()
    best = (-1.0, None, None)
    for s in order:
        in_split = labels[labelled & (splits == s)]
        counts = in_split.value_counts()
        n = len(in_split)
        for c in names:
            share = int(whole.get(c, 0)) / total
            prop = int(counts.get(c, 0)) / n if n else 0.0
            dev = abs(prop - share)
            if dev > best[0]:
                best = (dev, s, c)
    return best


def _groups_for_report(df: pd.DataFrame, group_key: str | None) -> tuple[str, pd.Series, int]:
    if group_key is None:
        return group_column(df)
    if group_key not in df.columns:
        raise DataError(f"no '{group_key}' column to check leakage by")
    has = present(df[group_key])
    if not has.all():
        ids = df["id"][~has].tolist() if "id" in df.columns else list(df.index[~has])
        raise DataError(f"{first_few(ids)}: no {group_key}; cannot check these rows for leakage")
    missing = int((~present(df["speaker_id"])).sum()) if "speaker_id" in df.columns else len(df)
    return group_key, df[group_key].astype(str).astype(object), missing


def leakage_report(
    df: pd.DataFrame, split_col: str = "split", group_key: str | None = None
) -> dict:
    """The leakage and balance report of any split assignment of ``df``.

    Groups are speakers (source videos as fallback, see :func:`group_column`) unless
    ``group_key`` names a column. ``overlap`` maps each pair of splits (``a/b``) to the groups
    found in both: every list must be empty. Class counts and the largest proportion deviation
    are given for emotion and sentiment (whichever columns exist), over labelled rows.
    """
    if split_col not in df.columns:
        raise DataError(f"no '{split_col}' column holding each row's split")
    if df[split_col].isna().any():
        raise DataError(f"rows without a split in column '{split_col}'")
    found = set(df[split_col].tolist())
    unknown = sorted(found - set(SPLITS), key=str)
    if unknown:
        raise DataError(f"unknown split(s) {first_few(unknown)}; expected {', '.join(SPLITS)}")
    splits = [s for s in SPLITS if s in found]
    key, groups, missing = _groups_for_report(df, group_key)
    per_split = {s: set(groups[df[split_col] == s].tolist()) for s in splits}
    total = len(df)
    sizes = {s: int((df[split_col] == s).sum()) for s in splits}
    report: dict = {
        "group_key": key,
        "rows_without_speaker": missing,
        "splits": splits,
        "rows": total,
        "sizes": sizes,
        "fractions": {s: round(sizes[s] / total, 6) for s in splits},
        "groups": {s: len(per_split[s]) for s in splits},
        "total_groups": len(set(groups.tolist())),
        "overlap": {},
        "class_counts": {},
        "totals": {},
        "max_deviation": {},
    }
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            shared = sorted(per_split[a] & per_split[b], key=natural_key)
            report["overlap"][f"{a}/{b}"] = shared
    report["leak_free"] = not any(report["overlap"].values())
    for task in REPORT_TASKS:
        if task not in df.columns:
            continue
        names = label_set(task).names
        labels = df[task].where(df[task].notna(), None)
        counts = {}
        for s in splits:
            vc = labels[df[split_col] == s].value_counts()
            counts[s] = {c: int(vc.get(c, 0)) for c in names}
        vc = labels.value_counts()
        report["class_counts"][task] = counts
        report["totals"][task] = {c: int(vc.get(c, 0)) for c in names}
        value, where_split, where_class = max_deviation(labels, df[split_col], names)
        report["max_deviation"][task] = {
            "value": value,
            "split": where_split,
            "class": where_class,
        }
    return report


def require_disjoint(report: dict) -> None:
    """Raise a one-line DataError when any group sits in two splits (the leak guard)."""
    for pair, shared in report["overlap"].items():
        if shared:
            a, b = pair.split("/")
            raise DataError(
                f"refusing to write a leaking split: {report['group_key']} "
                f"{first_few(shared)} in both {a} and {b}; nothing was written"
            )


# --------------------------------------------------------------------------- on disk


def _same(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(x == y)


def read_all(out: Path) -> pd.DataFrame:
    """Every row of every existing split, sorted by id.

    A row found in two splits with identical content (left by an interrupted re-split) is
    kept once; the same id with different content is an error.
    """
    have = available_splits(out)
    if not have:
        raise UsageError(f"{out}: no shards under data/; build the dataset first")
    df = pd.concat([read_split(out, s) for s in have], ignore_index=True)
    dup = df["id"].duplicated(keep=False)
    if dup.any():
        conflicting = []
        for rid, rows in df[dup].groupby("id", sort=True):
            first = rows.iloc[0].tolist()
            for i in range(1, len(rows)):
                if not all(_same(x, y) for x, y in zip(first, rows.iloc[i].tolist())):
                    conflicting.append(rid)
                    break
        if conflicting:
            raise DataError(
                f"{first_few(conflicting)}: id in two splits with different content; "
                "rebuild the dataset"
            )
        df = df[~df["id"].duplicated(keep="first")]
    return df.sort_values("id", kind="stable").reset_index(drop=True)


def _schema() -> dict:
    text = resources.files("indomer.schemas").joinpath("split.schema.json").read_text("utf-8")
    return json.loads(text)


def validate_document(doc: dict) -> None:
    """Check a splits/NAME.json document against schemas/split.schema.json."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        raise DataError(f"split document does not match split.schema.json at {where}: {e.message}")


def dumps(doc: dict) -> str:
    """The canonical JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def plan_split(
    df: pd.DataFrame,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
    stratify: str = "emotion",
    name: str | None = None,
    *,
    size_tolerance: float = SIZE_TOLERANCE,
    warn: Callable[[str], None] | None = None,
    split_fn: Callable[..., pd.Series] | None = None,
    linking: dict | None = None,
    few_groups_ok: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Assign every row of ``df`` to a split; return (rows with a ``split`` column, document).

    With an identity record (``linking``), its probable group pairs make the search minimise
    the expected number of people on two sides, which the document states. The assignment is
    checked again, independently of the search, and a leak raises before anything could be
    written. ``few_groups_ok`` (a build) leaves splits empty, with a warning, when there are
    fewer groups than splits. Nothing here touches the disk.
    """
    ratios = check_ratios(ratios)
    name = check_name(name if name is not None else default_name(seed))
    df = with_groups(df, linking)
    key, _, missing = group_column(df)
    message = fallback_warning(key, missing, len(df))
    if message and warn is not None:
        warn(message)
    split_fn = split_fn or speaker_disjoint_split  # looked up now, so tests can patch it
    pairs = list((linking or {}).get("pairs") or []) if key == GROUP_KEY else []
    assignment = split_fn(df, ratios, seed, stratify, size_tolerance=size_tolerance,
                          pairs=pairs, few_groups_ok=few_groups_ok)
    names = split_names(len(ratios))
    checked = df.assign(split=assignment.reindex(df.index))
    report = leakage_report(checked, "split")
    require_disjoint(report)
    empty = [s for s in names if report["sizes"].get(s, 0) == 0]
    if empty and not few_groups_ok:
        raise DataError(f"split(s) {', '.join(empty)} would be empty; nothing was written")
    if empty and warn is not None:
        warn(f"only {report['total_groups']} split group(s) for {len(names)} splits, so "
             f"{', '.join(empty)} stay empty: speakers.csv pins or near-certain voice matches "
             "join the sources into too few groups; check them with 'indomer speakers review "
             "OUT' and fix the pins, then rebuild")
    groups_of = group_column(checked)[1]
    where = {str(g): s for g, s in zip(groups_of, checked["split"])}
    identity = {}
    if key == GROUP_KEY and linking is not None:
        identity = {"linking": linking_summary(linking, checked),
                    **risk_summary(linking, where, report)}
    doc = split_document(
        name,
        METHOD,
        key,
        {
            s: sorted(set(groups_of[checked["split"] == s].tolist()), key=natural_key)
            for s in names
        },
        report,
        description=f"drawn by 'indomer split --speaker-disjoint' (seed {int(seed)}): whole "
        f"groups by {key}, stratified by {stratify}",
        seed=int(seed),
        ratios=dict(zip(names, ratios)),
        stratify=stratify,
        size_tolerance=size_tolerance,
        identity=identity,
    )
    return checked, doc


#: The method of a split given with the rows (the release's own), not drawn by a search.
OFFICIAL = "official"


def split_document(
    name: str,
    method: str,
    group_key: str,
    assignment: dict[str, list[str]],
    report: dict,
    *,
    description: str,
    seed: int | None = None,
    ratios: dict[str, float] | None = None,
    stratify: str | None = None,
    size_tolerance: float | None = None,
    identity: dict | None = None,
) -> dict:
    """The one ``splits/NAME.json`` document of both build modes and ``indomer split``,
    checked against schemas/split.schema.json: the same keys whether the assignment was
    drawn (:data:`METHOD`, with its seed, ratios, stratification and size tolerance) or
    given with the rows (:data:`OFFICIAL`: those are null); ``identity`` adds the linking
    summary and expected people on two sides when the speakers stage linked the groups."""
    doc = {
        "name": name,
        "method": method,
        "description": description,
        "seed": seed,
        "ratios": ratios,
        "stratify": stratify,
        "size_tolerance": size_tolerance,
        "group_key": group_key,
        "assignment": assignment,
        "report": report,
        "indomer_version": __version__,
        **(identity or {}),
    }
    validate_document(doc)
    return doc


#: Pairs that contribute most to the expected people on two sides, listed in a split document.
RISK_PAIRS = 10


def risk_summary(linking: dict, where: dict[str, str], report: dict) -> dict:
    """``expected_people_on_two_sides`` of an assignment (group -> split) and its largest
    contributions (:func:`indomer.identity.expected_on_two_sides`); null without a calibrated
    identity record."""
    from indomer.identity import expected_on_two_sides

    op = linking.get("operating_point") or {}
    if (op.get("calibration") or {}).get("slope") is None:
        return {"expected_people_on_two_sides": None, "risk_pairs": []}
    fractions = [report["fractions"].get(s, 0.0) for s in report["splits"]]
    total, contrib = expected_on_two_sides(
        linking.get("pairs") or [], where, float(linking.get("pairs_dropped_mass") or 0.0),
        fractions)
    keep = ("a", "b", "p", "source_a", "source_b", "voice_cosine", "face_cosine", "splits")
    return {
        "expected_people_on_two_sides": round(total, 4),
        "risk_pairs": [{k: e.get(k) for k in keep} for e in contrib[:RISK_PAIRS]],
    }


def linking_summary(linking: dict, checked: pd.DataFrame) -> dict:
    """What the split report says about its groups: the operating point they were linked at,
    its measured miss and false-merge rates, and which speakers each group holds."""
    members: dict[str, set[str]] = {}
    for g, spk in zip(checked["speaker_group"], checked.get("speaker_id", [])):
        if isinstance(spk, str) and spk:
            members.setdefault(str(g), set()).add(spk)
    return {
        "operating_point": linking.get("operating_point"),
        "n_speakers": len({s for v in members.values() for s in v}),
        "n_groups": len(members),
        "members": {g: sorted(v) for g, v in sorted(members.items())},
        "disagreements": len(linking.get("disagreements", [])),
    }


def resplit(
    out: Path,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
    stratify: str = "emotion",
    name: str | None = None,
    *,
    warn: Callable[[str], None] | None = None,
    force: bool = False,
    replaced: Callable[[str, str], None] | None = None,
    **plan_options: Any,
) -> dict:
    """Re-split the built dataset at ``out`` as one new generation; return the split document.

    Options are checked before the lock is taken; the shards, ``splits/NAME.json`` and the
    refreshed card and provenance appear together or not at all (:mod:`indomer.generation`).
    A ``splits/NAME.json`` with another assignment is never replaced silently: without
    ``force`` it is a UsageError naming both assignments' sha256 (predictions made against
    the old one would be refused by ``score``); with it, ``replaced(old, new)`` is told.
    ``plan_options`` (``size_tolerance``, ``split_fn``) reach :func:`plan_split` as given.
    """
    from indomer.dataset import assignment_sha256
    from indomer.generation import active, read_build, writing

    out = Path(out)
    ratios = check_ratios(ratios)
    name = check_name(name if name is not None else default_name(seed))
    with writing(out, base=True, must_exist=True) as gen:
        df = read_all(gen.path)
        build = read_build(gen.path)
        old = _existing_assignment(gen.path / "splits" / f"{name}.json")
        checked, doc = plan_split(
            df,
            ratios,
            seed,
            stratify,
            name,
            warn=warn,
            linking=build.get("speakers") if isinstance(build.get("speakers"), dict) else None,
            **plan_options,
        )
        new = assignment_sha256(doc["assignment"])
        if old is not None and old != new:
            if not force:
                raise UsageError(
                    f"{out}/splits/{name}.json exists with another assignment (sha256 "
                    f"{old[:12]}; this one {new[:12]}); predictions made against it would no "
                    f"longer score: choose another --name, or pass --replace to replace it; "
                    "nothing was written"
                )
            if replaced is not None:
                replaced(old, new)
        elif old is not None and warn is not None:
            path = gen.path / "splits" / f"{name}.json"
            if path.read_text(encoding="utf-8") != dumps(doc):
                warn(f"rewrote splits/{name}.json with other settings but the same assignment "
                     f"(sha256 {new[:12]}): predictions made against it still score")
        meta = read_meta(gen.path)
        for s in available_splits(gen.path):
            remove_split(gen.path, s)
        for s in split_names(len(ratios)):
            write_split(gen.path, s, checked[checked["split"] == s].drop(columns="split"), meta)
        gen.write_text(f"splits/{name}.json", dumps(doc))
        gen.commit(active(build, name))
    return doc


def _existing_assignment(path: Path) -> str | None:
    """The sha256 of the assignment in an existing split file (None when there is none); a
    file that is not a split document counts as another assignment, never as none."""
    from indomer.dataset import assignment_sha256

    if not path.is_file():
        return None
    try:
        return assignment_sha256(json.loads(path.read_text(encoding="utf-8"))["assignment"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        return "unreadable"


def assignment_of(doc: dict, df: pd.DataFrame, where: str) -> pd.Series:
    """The split of every row of ``df`` under the split document ``doc`` (its ``group_key``
    and ``assignment``); a row whose group the document does not place is a DataError."""
    try:
        key = doc["group_key"]
        place = {str(g): s for s, groups in doc["assignment"].items() for g in groups}
    except (KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{where}: not a split document ({exc}); run 'indomer validate'") from None
    if key == GROUP_KEY:
        members = (doc.get("linking") or {}).get("members") or {}
        groups = group_column(with_groups(df, {"groups": members}))[1]
    elif key == "speaker_id":
        groups = group_column(df)[1]
    elif key in df.columns:
        groups = df[key]
    else:
        raise DataError(f"{where}: groups by {key!r}, a column this dataset lacks")
    splits = groups.astype("string").map(lambda g: place.get(str(g)) if g is not pd.NA else None)
    lost = df.loc[splits.isna(), "id"].tolist()
    if lost:
        raise DataError(
            f"{where}: places no group of {len(lost)} row(s) ({first_few(lost)}); it was made "
            "for other clips: make a new one with 'indomer split OUT --speaker-disjoint'"
        )
    return splits.astype(object)


def activate(out: Path, name: str) -> dict:
    """Make ``splits/NAME.json`` the active split: the shards follow its assignment (one new
    generation; every split file, and ``official``, stays). Returns the document."""
    from indomer.generation import active, read_build, writing

    out = Path(out)
    if not _NAME_RE.match(name or ""):
        raise UsageError(f"--activate {name!r}: not a split name (letters, digits, '.', '_', '-')")
    with writing(out, base=True, must_exist=True) as gen:
        path = gen.path / "splits" / f"{name}.json"
        if not path.is_file():
            have = sorted(p.stem for p in (gen.path / "splits").glob("*.json"))
            raise UsageError(
                f"--activate {name}: no splits/{name}.json in {out} (found: "
                f"{', '.join(have) or 'none'}); make it with 'indomer split OUT --name {name}'"
            )
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{out}/splits/{name}.json: not valid JSON ({exc})") from None
        df = read_all(gen.path)
        checked = df.assign(split=assignment_of(doc, df, f"{out}/splits/{name}.json"))
        require_disjoint(leakage_report(checked, "split"))
        meta = read_meta(gen.path)
        for s in available_splits(gen.path):
            remove_split(gen.path, s)
        for s in [s for s in SPLITS if (checked["split"] == s).any()]:
            write_split(gen.path, s, checked[checked["split"] == s].drop(columns="split"), meta)
        gen.commit(active(read_build(gen.path), name))
    return doc


def summary_table(doc: dict) -> str:
    """A short plain-text table of a split document: rows, groups, class shares, deviation."""
    report = doc["report"]
    task = doc["stratify"] if doc.get("stratify") in REPORT_TASKS else None
    task = task or next(iter(report["class_counts"]), None)
    names = list(label_set(task).names) if task else []
    head = f"{'split':<11}{'rows':>7}{'groups':>8}" + "".join(f"{c[:9]:>10}" for c in names)
    lines = [head]

    def row(label: str, rows: int, groups: int, counts: dict | None) -> str:
        text = f"{label:<11}{rows:>7}{groups:>8}"
        if counts is not None:
            n = sum(counts.values())
            text += "".join(f"{(100 * counts[c] / n if n else 0):>9.2f}%" for c in names)
        return text

    for s in report["splits"]:
        counts = report["class_counts"][task][s] if task else None
        lines.append(row(s, report["sizes"][s], report["groups"][s], counts))
    lines.append(row("all", report["rows"], report["total_groups"], report["totals"].get(task)))
    for t, dev in report["max_deviation"].items():
        where = f" ({dev['split']}, {dev['class']})" if dev["split"] else ""
        lines.append(f"max |proportion deviation| {t}: {dev['value']:.4f}{where}")
    lines.append(f"groups by {report['group_key']}; leak-free: {report['leak_free']}")
    link = doc.get("linking")
    if link:
        lines.append(linking_line(doc))
    return "\n".join(lines)


def linking_line(doc: dict) -> str:
    """One line on identity: the groups, and the expected people on two sides with the
    calibration it rests on (the summary and the card say the same)."""
    link = doc.get("linking") or {}
    cal = (link.get("operating_point") or {}).get("calibration") or {}
    head = f"{link.get('n_speakers')} speakers in {link.get('n_groups')} groups"
    expected = doc.get("expected_people_on_two_sides")
    if expected is None:
        return f"{head}; expected people on two sides: unknown (no probability calibration)"
    return (f"{head}; expected people on two sides: {expected:.2f} (probabilities calibrated "
            f"on {cal.get('source')})")


__all__ = [
    "DEFAULT_RATIOS",
    "check_ratios",
    "group_column",
    "leakage_report",
    "max_deviation",
    "parse_ratios",
    "require_disjoint",
    "resplit",
    "speaker_disjoint_split",
    "summary_table",
]
