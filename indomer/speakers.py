"""Global speaker ids: clip voice embeddings clustered across source videos (pure numpy).

How, and why:

* **Two levels.** A monologue source has one main voice, so the clips of one source (of one
  diarization label, when diarization ran) are averaged into one *voice*: the mean of their
  L2-normalised embeddings, normalised again. Averaging cancels most of what a single 3-5 s
  clip adds (sentence, intonation): on the demo corpus, single clips of one resemblyzer voice
  go as low as 0.888 cosine while the closest two different voices reach 0.897, but source
  voices of one speaker reach 0.995 and of different speakers at most 0.899 (0.908 on the
  clips the demo build cuts). Clips flagged as mixed (another speaker dominates) do not
  shape their voice unless nothing else does.
* **Average linkage at a cosine threshold across voices.** Two groups merge while the mean
  similarity between their members is at least ``threshold``. Average linkage neither chains
  (single linkage joins A and C through B) nor needs the number of speakers. It is exact and
  deterministic: groups are first cut into connected components of the ``sim >= threshold``
  graph, computed blockwise (a cluster can never span two components), then each component
  is clustered by the nearest-neighbour chain algorithm, which gives the same clusters as
  merging the best pair first, in ``O(m^2)`` time.
* **Ids from members.** A cluster's id is ``spk_`` + the first 12 hex digits of the sha256 of
  its smallest clip id, so adding an unrelated source leaves every existing id as it was (a
  voice unlike all others never joins a merge, and the merges among the others do not depend
  on it); an id changes only when its cluster's membership does.
* **Pins.** ``speakers.csv`` (``source_id`` or ``id``, ``speaker_id``) names known people. A
  pinned source's voices start as one cluster (all pins of one name together); clusters with
  different pins never merge; the other voices join them by similarity, and the cluster takes
  the pinned name. A pinned clip gets its pin and stays out of the clustering.

Memory: the component search holds :data:`BLOCK` similarities at a time; a component of
``m`` voices holds an ``m x m`` float64 matrix up to :data:`DENSE_MAX` voices, beyond which
similarities are computed from the group means on demand (``m x d``).
``tools/bench_speakers.py`` measures both on 10,000 embeddings.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indomer.errors import DataError, UsageError
from indomer.rows import SAFE_ID

SPEAKER_PREFIX = "spk_"
ID_HEX = 12
#: resemblyzer's "same speaker" cosine between source voices: halfway between one voice in
#: two demo sources (0.995) and the closest two demo voices (0.899 on the exact sentences,
#: 0.908 on the clips the pipeline cuts); FIXTURES.md section 5 finds 0.95 too on 10 s clips
#: (one voice >= 0.976, different voices <= 0.910). Calibrate on real data.
RESEMBLYZER_THRESHOLD = 0.95
#: Similarities held at once when searching the similarity graph (2M float32 = 8 MB).
BLOCK = 1 << 21
#: Largest component clustered with a dense similarity matrix (4096^2 float64 = 134 MB).
DENSE_MAX = 4096
#: float32 screening may miss an edge by rounding; a margin keeps the components a superset.
SCREEN_MARGIN = 1e-4


# --------------------------------------------------------------------------- embeddings


def encode_embedding(vector: np.ndarray) -> str:
    """A vector as base64 of little-endian float32 (what a manifest row carries)."""
    v = np.asarray(vector, dtype="<f4").ravel()
    return base64.b64encode(v.tobytes()).decode("ascii")


def decode_embedding(text: str, row_id: str = "?") -> np.ndarray:
    """Inverse of :func:`encode_embedding`; a damaged value is a :class:`DataError`."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raw = b"?"
    if not raw or len(raw) % 4:
        raise DataError(f"{row_id}: speaker embedding is not base64 float32; rerun the "
                        "speakers stage with --force")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64); zero rows stay zero."""
    x = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# --------------------------------------------------------------------------- pins


@dataclass(frozen=True)
class Pins:
    """Known identities from ``speakers.csv``: source id or clip id -> (speaker id, where)."""

    sources: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    clips: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def read_overrides(path: str | Path) -> Pins:
    """Read ``speakers.csv``: a ``speaker_id`` column and ``source_id`` and/or ``id``.

    Each row fills exactly one of ``source_id`` (every clip of that source video) and ``id``
    (one clip; it wins over its source's row). Ids must be safe ids (letters, digits, ``_``,
    ``-``); one source or clip pinned to two different speakers is an error naming both lines.
    """
    from indomer.config import read_table

    path = Path(path)
    rows = read_table(path, ("speaker_id",), ("source_id", "id"))
    header = _header(path)
    if "source_id" not in header and "id" not in header:
        raise DataError(f"{path}:1: needs a source_id or an id column next to speaker_id; "
                        "expected header source_id,speaker_id (or id,speaker_id)")
    sources: dict[str, tuple[str, str]] = {}
    clips: dict[str, tuple[str, str]] = {}
    for line, row in rows:
        where = f"{path}:{line}"
        if row is None:
            raise DataError(f"{where}: wrong number of cells; expected {','.join(header)}")
        speaker = row.get("speaker_id")
        source, clip = row.get("source_id"), row.get("id")
        if (source is None) == (clip is None):
            raise DataError(f"{where}: fill exactly one of source_id and id (found "
                            f"{'both' if source else 'neither'})")
        if speaker is None:
            raise DataError(f"{where}: speaker_id is empty; give the person's id")
        for name, value in (("speaker_id", speaker), ("source_id", source), ("id", clip)):
            if value is not None and not SAFE_ID.match(value):
                raise DataError(f"{where}: {name} {value!r} is not a safe id (letters, digits, "
                                "_ and -, not starting with _ or -); rename it")
        table, key = (sources, source) if source is not None else (clips, clip)
        if key in table and table[key][0] != speaker:
            raise DataError(f"{where}: {key} is pinned to {speaker!r} here and to "
                            f"{table[key][0]!r} at {table[key][1]}; keep one")
        table.setdefault(key, (speaker, where))
    return Pins(sources, clips)


def _header(path: Path) -> list[str]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [h.strip().lower() for h in next(csv.reader(fh), [])]


# --------------------------------------------------------------------------- clustering


@dataclass(frozen=True, eq=False)
class ClipVoice:
    """One clip's input to the clustering.

    ``label`` is the source-local diarization label of the clip's main speaker (None without
    diarization); ``flagged`` marks a clip whose main speaker does not dominate;
    ``embedding`` is None when the clip had too little voice to embed.
    """

    id: str
    source_id: str
    embedding: np.ndarray | None = None
    label: str | None = None
    flagged: bool = False


@dataclass(frozen=True)
class Clustering:
    """Result of :func:`cluster_voices`: clip id -> speaker id (None: no voice in the source),
    and the pins that matched nothing (``where: what``), for the caller to report."""

    speaker_ids: dict[str, str | None]
    unused_pins: tuple[str, ...] = ()
    n_speakers: int = 0


def derived_id(key: str) -> str:
    """``spk_`` + 12 hex digits of sha256(key): stable and unrelated to cluster order."""
    return SPEAKER_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:ID_HEX]


def cluster_voices(
    clips: Sequence[ClipVoice],
    threshold: float,
    pins: Pins | None = None,
) -> Clustering:
    """Global speaker ids for ``clips`` (see the module docstring for the method)."""
    if not 0.0 < threshold <= 1.0:
        raise UsageError(f"speakers.threshold must be in (0, 1], got {threshold}")
    pins = pins or Pins()
    seen: set[str] = set()
    for c in clips:
        if c.id in seen:
            raise DataError(f"{c.id}: clip id appears twice in the speakers input; rerun the "
                            "speakers stage with --force")
        seen.add(c.id)
    out: dict[str, str | None] = {}
    # pinned clips: their pin, and out of the clustering
    rest = []
    for c in clips:
        if c.id in pins.clips:
            out[c.id] = pins.clips[c.id][0]
        else:
            rest.append(c)
    voices = _voices(rest, pins)
    with_vec = [v for v in voices if v.vector is not None]
    labels = agglomerate(
        np.stack([v.vector for v in with_vec]) if with_vec else np.zeros((0, 1)),
        threshold,
        [v.pin for v in with_vec],
    )
    members: dict[int, list[_Voice]] = {}
    for v, lab in zip(with_vec, labels.tolist()):
        members.setdefault(lab, []).append(v)
    names: dict[str, str] = {}  # voice key -> speaker id
    owners: dict[str, str] = {}  # speaker id -> the smallest clip id behind it
    pinned_names = {p for p, _ in (*pins.sources.values(), *pins.clips.values())}
    for group in members.values():
        pin = next((v.pin for v in group if v.pin is not None), None)
        first = min(v.key for v in group)
        name = pin if pin is not None else derived_id(first)
        if pin is None and (name in pinned_names or name in owners):
            raise DataError(f"{first}: its derived speaker id {name} is already taken (by a pin "
                            "in speakers.csv or a hash collision); pin this source explicitly")
        owners.setdefault(name, first)
        for v in group:
            names[v.key] = name
    # voices without any embedding: their source's pin, else its largest embedded voice
    by_source: dict[str, list[_Voice]] = {}
    for v in voices:
        by_source.setdefault(v.source_id, []).append(v)
    for v in voices:
        if v.key in names:
            continue
        if v.pin is not None:
            names[v.key] = v.pin
            continue
        donors = [d for d in by_source[v.source_id] if d.key in names]
        if donors:
            best = min(donors, key=lambda d: (-len(d.clip_ids), d.key))
            names[v.key] = names[best.key]
    for v in voices:
        for cid in v.clip_ids:
            out[cid] = names.get(v.key)
    known_sources = {c.source_id for c in clips}
    unused = [f"{where}: source {s} is not in this build" for s, (_, where)
              in sorted(pins.sources.items()) if s not in known_sources]
    unused += [f"{where}: clip {c} is not in this build" for c, (_, where)
               in sorted(pins.clips.items()) if c not in seen]
    n = len({s for s in out.values() if s is not None})
    return Clustering(dict(sorted(out.items())), tuple(unused), n)


@dataclass
class _Voice:
    """The clips of one source (and diarization label) averaged into one voice."""

    key: str  # the smallest clip id: names the voice, orders everything
    source_id: str
    clip_ids: list[str]
    vector: np.ndarray | None
    pin: str | None


def _voices(clips: Iterable[ClipVoice], pins: Pins) -> list[_Voice]:
    groups: dict[tuple[str, str], list[ClipVoice]] = {}
    for c in clips:
        groups.setdefault((c.source_id, c.label or ""), []).append(c)
    voices = []
    dim = None
    for (source, _), group in groups.items():
        group.sort(key=lambda c: c.id)  # the same sums whatever order the rows came in
        usable = [c for c in group if c.embedding is not None]
        clean = [c for c in usable if not c.flagged] or usable
        vector = None
        if clean:
            vecs = []
            for c in clean:
                e = np.asarray(c.embedding, dtype=np.float64).ravel()
                if dim is None:
                    dim = e.size
                if e.size != dim or not np.all(np.isfinite(e)) or not np.any(e):
                    raise DataError(f"{c.id}: speaker embedding has {e.size} values, expected "
                                    f"{dim} finite values not all zero; rerun the speakers "
                                    "stage with --force")
                vecs.append(e)
            vector = normalize(normalize(np.stack(vecs)).mean(axis=0))
        pin = pins.sources.get(source, (None, ""))[0]
        ids = [c.id for c in group]
        voices.append(_Voice(ids[0], source, ids, vector, pin))
    voices.sort(key=lambda v: v.key)
    return voices


def agglomerate(
    vectors: np.ndarray,
    threshold: float,
    pins: Sequence[str | None] | None = None,
    *,
    block: int = BLOCK,
    dense_max: int = DENSE_MAX,
) -> np.ndarray:
    """Average-linkage clusters of unit ``vectors`` at cosine ``threshold``.

    Returns one label per row, the index of the first row of its cluster. Rows with the same
    pin start in one cluster; clusters with different pins never merge. Deterministic for a
    given row order.
    """
    x = np.asarray(vectors, dtype=np.float64)
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pins = list(pins) if pins is not None else [None] * n
    pin_ids = _pin_codes(pins)
    comp = _components(x, threshold, pin_ids, block)
    labels = np.empty(n, dtype=np.int64)
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    for idx in np.split(order, bounds):
        if idx.size == 1:
            labels[idx] = idx
            continue
        local = _link_component(x[idx], threshold, pin_ids[idx], dense_max)
        labels[idx] = idx[local]
    return labels


def _pin_codes(pins: Sequence[str | None]) -> np.ndarray:
    """Pins as integers (-1: none), numbered in first-seen order."""
    codes: dict[str, int] = {}
    return np.array([-1 if p is None else codes.setdefault(p, len(codes)) for p in pins],
                    dtype=np.int64)


def _roots(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    r = parent[x]
    while True:
        rr = parent[r]
        if np.array_equal(rr, r):
            return r
        r = rr


def _union(parent: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Union every pair (u[k], v[k]): hook the larger root under the smaller, repeatedly."""
    while u.size:
        ru, rv = _roots(parent, u), _roots(parent, v)
        keep = ru != rv
        if not keep.any():
            return
        lo = np.minimum(ru[keep], rv[keep])
        hi = np.maximum(ru[keep], rv[keep])
        np.minimum.at(parent, hi, lo)
        u, v = lo, hi


def _components(x: np.ndarray, threshold: float, pin_ids: np.ndarray, block: int) -> np.ndarray:
    """Connected components of ``sim >= threshold`` plus equal pins: the root of each row.

    Rows are compared ``block // n`` at a time against the rows after them; each row is
    joined to the distinct current roots of its neighbours (not to every neighbour), so a
    block costs its similarities plus the few roots left once groups have formed.
    """
    n = x.shape[0]
    parent = np.arange(n)
    x32 = x.astype(np.float32)
    cut = np.float32(threshold - SCREEN_MARGIN)
    step = max(1, block // n)
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        rows, cols = np.nonzero(x32[i0:i1] @ x32[i0:].T >= cut)
        keep = cols > rows  # the upper triangle: pairs (i0 + row, i0 + col)
        if not keep.any():
            continue
        roots = _roots(parent, np.arange(i0, n))
        key = np.unique((rows[keep] + i0).astype(np.int64) * n + roots[cols[keep]])
        _union(parent, key // n, key % n)
    pinned = np.flatnonzero(pin_ids >= 0)
    if pinned.size:
        first: dict[int, int] = {}
        u, v = [], []
        for i in pinned.tolist():
            j = first.setdefault(int(pin_ids[i]), i)
            if j != i:
                u.append(j)
                v.append(i)
        if u:
            _union(parent, np.array(u), np.array(v))
    return _roots(parent, np.arange(n))


def _link_component(
    x: np.ndarray, threshold: float, pin_ids: np.ndarray, dense_max: int
) -> np.ndarray:
    """Average linkage inside one component; returns, per row, the first row of its cluster."""
    m = x.shape[0]
    # initial clusters: one per unpinned row, one per pin
    start = np.arange(m)
    first_of_pin: dict[int, int] = {}
    for i, p in enumerate(pin_ids.tolist()):
        if p >= 0:
            start[i] = first_of_pin.setdefault(p, i)
    heads = np.flatnonzero(start == np.arange(m))  # cluster k is headed by row heads[k]
    k = heads.size
    index_of = np.full(m, -1)
    index_of[heads] = np.arange(k)
    member = index_of[start]  # row -> initial cluster
    sizes = np.bincount(member, minlength=k).astype(np.float64)
    means = np.zeros((k, x.shape[1]))
    np.add.at(means, member, x)
    means /= sizes[:, None]
    cpin = pin_ids[heads].copy()
    merged = _nn_chain(means, sizes, cpin, threshold, dense=k <= dense_max)
    # merged: initial cluster -> final representative cluster; label by first row
    final = merged[member]
    out = np.empty(m, dtype=np.int64)
    firsts: dict[int, int] = {}
    for i, f in enumerate(final.tolist()):
        out[i] = firsts.setdefault(f, i)
    return out


def _nn_chain(
    means: np.ndarray, sizes: np.ndarray, pins: np.ndarray, threshold: float, *, dense: bool
) -> np.ndarray:
    """Nearest-neighbour-chain average linkage, stopping at ``threshold``.

    Average similarity between groups A and B of unit vectors is ``mean_A . mean_B``; a merge
    updates it by Lance-Williams (size-weighted mean), which keeps the linkage reducible, so
    the chain algorithm finds the same merges as best-pair-first. Clusters with different
    pins have similarity -inf. Returns, per initial cluster, the index of the cluster it
    ended in (its smallest initial index).
    """
    k = means.shape[0]
    alive = np.ones(k, dtype=bool)  # not yet merged away and not finished
    owner = np.arange(k)
    means = means.copy()
    sizes = sizes.copy()
    pins = pins.copy()
    if dense:
        sim = means @ means.T
        conflict = (pins[:, None] >= 0) & (pins[None, :] >= 0) & (pins[:, None] != pins[None, :])
        sim[conflict] = -np.inf
        np.fill_diagonal(sim, -np.inf)

    def row(a: int) -> np.ndarray:
        if dense:
            return sim[a]
        r = means @ means[a]
        r[~alive] = -np.inf
        r[a] = -np.inf
        if pins[a] >= 0:
            r[(pins >= 0) & (pins != pins[a])] = -np.inf
        return r

    def retire(a: int) -> None:
        alive[a] = False
        if dense:
            sim[a, :] = -np.inf
            sim[:, a] = -np.inf

    chain: list[int] = []
    while True:
        if not chain:
            rest = np.flatnonzero(alive)
            if rest.size < 2:
                break
            chain.append(int(rest[0]))
        a = chain[-1]
        r = row(a)
        b = int(np.argmax(r))
        best = r[b]
        if len(chain) >= 2 and r[chain[-2]] == best:
            b = chain[-2]  # ties: prefer the previous link, so the chain cannot cycle
        if not best >= threshold:
            retire(a)  # nothing will ever reach it (reducibility): finished
            chain.pop()
            continue
        if len(chain) >= 2 and b == chain[-2]:
            chain.pop()
            chain.pop()
            lo, hi = min(a, b), max(a, b)
            wa, wb = sizes[lo], sizes[hi]
            if dense:
                new = (wa * sim[lo] + wb * sim[hi]) / (wa + wb)
                new[lo] = new[hi] = -np.inf
                sim[lo, :] = new
                sim[:, lo] = new
            means[lo] = (wa * means[lo] + wb * means[hi]) / (wa + wb)
            sizes[lo] = wa + wb
            if pins[lo] < 0:
                pins[lo] = pins[hi]
            retire(hi)
            owner[owner == hi] = lo
        else:
            chain.append(b)
    return owner


# --------------------------------------------------------------------------- rows


def report_unused(result: Clustering, log: Callable[[str], None] | None) -> None:
    """Tell the user about pins that matched nothing (a typo, or a source left out)."""
    if log is not None:
        for line in result.unused_pins:
            log(f"speakers.csv pin unused: {line}")
