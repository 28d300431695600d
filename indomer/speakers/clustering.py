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
* **Split groups from probabilities.** With a :class:`Linking` ``model``, every pair of voices
  gets the probability of one person (:mod:`indomer.identity`): voices sharing a speaker id
  or reaching ``hard_p`` form one hard group, and the other pairs of groups are listed with
  their probability and evidence, for the split to weigh and ``speakers review`` to rank.
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
import dataclasses
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from indomer.errors import DataError, UsageError
from indomer.speakers.pins import Pins

SPEAKER_PREFIX = "spk_"
GROUP_PREFIX = "grp_"
ID_HEX = 12
#: resemblyzer's "same speaker" cosine between source voices: halfway between one voice in
#: two demo sources (0.995) and the closest two demo voices (0.899 on the exact sentences,
#: 0.908 on the clips the pipeline cuts); FIXTURES.md section 5 finds 0.95 too on 10 s clips
#: (one voice >= 0.976, different voices <= 0.910). Calibrate on real data.
RESEMBLYZER_THRESHOLD = 0.95
#: Voice cosine (resemblyzer) from which matching faces make two sources one speaker id: the
#: lowest same-person cosine across AMI recordings (0.669) minus 0.05. It once was the
#: split-safe single-linkage point; single linkage chained all 20 AMI voices into one group,
#: so split groups now come from probabilities (:mod:`indomer.identity`).
RESEMBLYZER_LINK_THRESHOLD = 0.619
#: Face identity (dlib ResNet, mean of a source's clip descriptors): at or above FACE_SAME two
#: sources show one face; below FACE_DIFFERENT they clearly show two (between: no opinion).
#: Measured (tests/backends/test_face_id.py): one person across different real photos
#: >= 0.930 (dlib's examples, 5 people x 11 photos), one photo transformed >= 0.975; different
#: people <= 0.893 on real photos, <= 0.904 with heavy JPEG. FACE_SAME sits between;
#: FACE_DIFFERENT is 0.08 below the lowest same-person value, so a wrong veto is unlikely.
FACE_SAME = 0.92
FACE_DIFFERENT = 0.85


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
    face: np.ndarray | None = None
    seconds: float = 0.0
    voice: np.ndarray | None = None


@dataclass(frozen=True)
class Linking:
    """How sources are identified beyond the best guess.

    ``threshold``: voice cosine of the best identity guess (``speaker_id``);
    ``link_threshold``: voice cosine from which matching faces make two voices one speaker id;
    ``face_same`` / ``face_different``: face cosine at or above which two faces are one
    person, and below which they are clearly two (None: faces are not used);
    ``model``: the calibrated score -> probability mapping (:class:`indomer.identity.ScoreModel`;
    None: no split linking, no probabilities); ``hard_p``: probability from which a pair is
    treated as certain (its groups are united).
    """

    threshold: float
    link_threshold: float | None = None
    face_same: float | None = None
    face_different: float | None = None
    model: object | None = None
    hard_p: float = 0.99


@dataclass(frozen=True)
class Clustering:
    """Result of :func:`cluster_voices`: clip id -> speaker id (None: no voice in the source),
    the pins that matched nothing (``where: what``), for the caller to report, and, when
    linking ran (``Linking.model``), clip id -> hard split group, the voice/face
    disagreements, the probable pairs of groups (``a``, ``b``: group names; ``p``: probability
    of one person; the evidence of their most probable voice pair), the probability mass of
    the pairs too unlikely to list, and how many group pairs there are."""

    speaker_ids: dict[str, str | None]
    unused_pins: tuple[str, ...] = ()
    n_speakers: int = 0
    groups: dict[str, str | None] = field(default_factory=dict)
    disagreements: tuple[dict, ...] = ()
    pairs: tuple[dict, ...] = ()
    dropped_mass: float = 0.0
    n_group_pairs: int = 0
    #: The dataset's share of same-person pairs, estimated from its voices (None: not estimated).
    prior: float | None = None


def derived_id(key: str) -> str:
    """``spk_`` + 12 hex digits of sha256(key): stable and unrelated to cluster order."""
    return SPEAKER_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:ID_HEX]


def cluster_voices(
    clips: Sequence[ClipVoice],
    threshold: float | Linking,
    pins: Pins | None = None,
) -> Clustering:
    """Global speaker ids for ``clips`` (see the module docstring for the method).

    ``threshold`` is the voice cosine of the best guess, or a :class:`Linking` that also
    asks for split groups, face fusion and the review queue (see :func:`_link`).
    """
    linking = threshold if isinstance(threshold, Linking) else Linking(float(threshold))
    threshold = linking.threshold
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
    known_sources = {c.source_id for c in clips}
    source_pins, different, problems = _source_pins(pins, known_sources)
    pins = dataclasses.replace(pins, different=different)
    voices = _voices(rest, source_pins)
    with_vec = [v for v in voices if v.vector is not None]
    x = np.stack([v.vector for v in with_vec]) if with_vec else np.zeros((0, 1))
    cannot = _cannot_pairs(with_vec, pins)
    faces = [v.face for v in with_vec]
    fused = linking.face_same is not None and any(f is not None for f in faces)
    if (fused or cannot) and len(with_vec) <= DENSE_MAX:
        sim = _fused_similarity(x, faces, linking, cannot)
        labels = _agglomerate_matrix(sim, threshold, [v.pin for v in with_vec])
    else:
        labels = agglomerate(x, threshold, [v.pin for v in with_vec])
    members: dict[int, list[_Voice]] = {}
    for v, lab in zip(with_vec, labels.tolist()):
        members.setdefault(lab, []).append(v)
    names: dict[str, str] = {}  # voice key -> speaker id
    owners: dict[str, str] = {}  # speaker id -> the smallest clip id behind it
    pinned_names = {p for p, _ in (*pins.sources.values(), *pins.clips.values())}
    for group in members.values():
        pin = next((v.pin for v in group if v.pin is not None and not _is_link_pin(v.pin)),
                   None)
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
        if v.pin is not None and not _is_link_pin(v.pin):
            names[v.key] = v.pin
            continue
        donors = [d for d in by_source[v.source_id] if d.key in names]
        if donors:
            best = min(donors, key=lambda d: (-len(d.clip_ids), d.key))
            names[v.key] = names[best.key]
    for v in voices:
        for cid in v.clip_ids:
            out[cid] = names.get(v.key)
    unused = [f"{where}: source {s} is not in this build" for s, (_, where)
              in sorted(pins.sources.items()) if s not in known_sources]
    unused += [f"{where}: clip {c} is not in this build" for c, (_, where)
               in sorted(pins.clips.items()) if c not in seen]
    for a, b, where in (*pins.same, *pins.different):
        for src in (a, b):
            if src not in known_sources:
                unused.append(f"{where}: source {src} is not in this build")
    unused = [*pins.problems, *problems, *unused]
    n = len({s for s in out.values() if s is not None})
    groups: dict[str, str | None] = {}
    disagreements: tuple[dict, ...] = ()
    pairs: list[dict] = []
    dropped, n_pairs = 0.0, 0
    estimate: dict = {}
    if linking.model is not None:
        voice_group, disagreements, pairs, dropped, n_pairs = _link(with_vec, x, names, linking,
                                                                   cannot, estimate)
        group_of_speaker: dict[str, str] = {}
        for v in with_vec:
            group_of_speaker.setdefault(names[v.key], voice_group[v.key])
        for cid, spk in out.items():
            groups[cid] = None if spk is None else group_of_speaker.get(spk, spk)
        groups = _name_groups(groups)
        named = {}
        for v in with_vec:
            named.setdefault(voice_group[v.key], groups[v.clip_ids[0]])
        for e in pairs:
            e["a"], e["b"] = named[e["a"]], named[e["b"]]
            if e["a"] > e["b"]:
                for k in ("", "source_", "voice_", "seconds_"):
                    if k and k + "a" not in e:
                        continue
                    e[k + "a"], e[k + "b"] = e[k + "b"], e[k + "a"]
    return Clustering(dict(sorted(out.items())), tuple(unused), n, dict(sorted(groups.items())),
                      disagreements, tuple(pairs), dropped, n_pairs, estimate.get("prior"))


#: Prefix of the synthetic pin that joins sources linked by ``same_as`` without a name.
_LINK_PIN = "\0same:"


def _is_link_pin(pin: str) -> bool:
    return pin.startswith(_LINK_PIN)


def _source_pins(pins: Pins, known: set[str]) -> tuple[dict[str, tuple[str, str]],
                                                       tuple[tuple[str, str, str], ...],
                                                       list[str]]:
    """Named source pins plus ``same_as`` links: sources linked together share one pin (the
    name of any of them, else a synthetic one). Contradictions do not stop the build: a
    ``same_as`` that would give one person two names, and a ``not_same_as`` between sources
    pinned to one person, are left out with one line each. Returns (pins, the ``not_same_as``
    links kept, the problems)."""
    parent: dict[str, str] = {}
    problems: list[str] = []
    names = dict(pins.sources)

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    named_root: dict[str, tuple[str, str]] = {}
    for src, pin in names.items():
        named_root[find(src)] = pin
    for a, b, where in pins.same:
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        na, nb = named_root.get(ra), named_root.get(rb)
        if na is not None and nb is not None and na[0] != nb[0]:
            problems.append(f"{where}: same_as links sources pinned to {na[0]!r} ({na[1]}) and "
                            f"{nb[0]!r} ({nb[1]}); one person cannot have two ids: this line "
                            "is ignored, fix the pins")
            continue
        lo, hi = min(ra, rb), max(ra, rb)
        parent[hi] = lo
        pin = na if na is not None else nb
        named_root.pop(hi, None)
        if pin is not None:
            named_root[lo] = pin
    out = dict(pins.sources)
    comps: dict[str, list[str]] = {}
    for src in list(parent):
        comps.setdefault(find(src), []).append(src)
    for root, members in comps.items():
        pin = named_root.get(root) or (_LINK_PIN + min(members), "same_as")
        for m in members:
            out.setdefault(m, pin)
    different = []
    for a, b, where in pins.different:
        pa, pb = out.get(a), out.get(b)
        if pa is not None and pb is not None and pa[0] == pb[0]:
            problems.append(f"{where}: not_same_as {a} and {b}, but both are pinned to one "
                            f"person ({pa[1]}, {pb[1]}); this line is ignored, fix the pins")
            continue
        different.append((a, b, where))
    return out, tuple(different), problems


def _cannot_pairs(voices: Sequence[_Voice], pins: Pins) -> set[tuple[int, int]]:
    """Index pairs of voices whose sources are pinned ``not_same_as`` (either order)."""
    if not pins.different:
        return set()
    by_source: dict[str, list[int]] = {}
    for i, v in enumerate(voices):
        by_source.setdefault(v.source_id, []).append(i)
    out = set()
    for a, b, _ in pins.different:
        for i in by_source.get(a, []):
            for j in by_source.get(b, []):
                out.add((min(i, j), max(i, j)))
    return out


#: A cannot-link as a similarity: finite (an average over a cluster stays hugely negative,
#: where -inf would turn into NaN through 0 * -inf).
_CANNOT = -1e6


def _face_matrix(faces: Sequence[np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """(face cosine matrix, mask of pairs where both sources have a face vector)."""
    n = len(faces)
    dim = next((f.size for f in faces if f is not None), 1)
    f = np.zeros((n, dim))
    known = np.zeros(n, dtype=bool)
    for i, v in enumerate(faces):
        if v is not None:
            f[i] = v
            known[i] = True
    both = known[:, None] & known[None, :]
    return f @ f.T, both


def _fused_similarity(
    x: np.ndarray, faces: Sequence[np.ndarray | None], linking: Linking, cannot: set
) -> np.ndarray:
    """Voice cosine, corrected by the faces where both sources show one, and the pins.

    Faces that match raise a plausible voice pair (``>= link_threshold``) to the best-guess
    threshold: two signals agreeing. Faces that clearly differ cap the pair just under it: a
    matching voice alone does not make one person of two faces (the pair is listed as a
    disagreement for review). A cannot-link pin forbids the merge outright.
    """
    sim = x @ x.T
    t = linking.threshold
    if linking.face_same is not None:
        fsim, both = _face_matrix(faces)
        plausible = sim >= (linking.link_threshold if linking.link_threshold is not None else t)
        agree = both & (fsim >= linking.face_same) & plausible
        differ = both & (fsim < (linking.face_different if linking.face_different is not None
                                 else linking.face_same))
        sim = np.where(agree, np.maximum(sim, t), sim)
        sim = np.where(differ, np.minimum(sim, np.nextafter(t, -np.inf)), sim)
    for i, j in cannot:
        sim[i, j] = sim[j, i] = _CANNOT
    return sim


def _agglomerate_matrix(sim: np.ndarray, threshold: float, pins: Sequence[str | None]) -> np.ndarray:
    """Average linkage on a precomputed similarity matrix (dense), pins as in
    :func:`agglomerate`; returns per row the first row of its cluster."""
    m = sim.shape[0]
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    pin_ids = _pin_codes(list(pins))
    heads, member = _initial_clusters(pin_ids)
    k = heads.size
    a = np.zeros((k, m))
    a[member, np.arange(m)] = 1.0
    sizes = a.sum(axis=1)
    avg = (a @ sim @ a.T) / np.outer(sizes, sizes)
    merged = _nn_chain(np.zeros((k, 1)), sizes, pin_ids[heads].copy(), threshold, dense=True,
                       sim=avg)
    return _first_rows(merged[member])


def _link(
    voices: Sequence[_Voice],
    x: np.ndarray,
    names: Mapping[str, str],
    linking: Linking,
    cannot: set,
    report: dict | None = None,
) -> tuple[dict[str, str], tuple[dict, ...], list[dict], float, int]:
    """Hard split groups, voice/face disagreements and the probable group pairs
    (:mod:`indomer.identity`).

    Voices sharing a speaker id (pins included) or reaching ``linking.hard_p`` form one hard
    group; every other pair only weighs on the split through its probability. Returns (voice
    key -> key of its group's first voice, disagreements, group pairs of probability >=
    :data:`indomer.identity.PAIR_MIN` (most probable first, at most ``PAIRS_MAX``), the
    probability mass of the pairs left out, the number of group pairs in all);
    ``report["prior"]`` receives the dataset's estimated prior.
    """
    from indomer import identity as idn

    n = len(voices)
    keys = [v.key for v in voices]
    if n == 0:
        return {}, (), [], 0.0, 0
    # each voice from its concatenated speech where the voices stage embedded it
    x = np.stack([v.whole if v.whole is not None else v.vector for v in voices])
    model = linking.model or idn.ScoreModel(slope=0.0, intercept=-idn.LOGIT_MAX)
    code = np.unique([names[k] for k in keys], return_inverse=True)[1]
    si, sj = np.nonzero(np.triu(code[:, None] == code[None, :], 1))
    same = list(zip(si.tolist(), sj.tolist()))
    faces = [v.face for v in voices] if model.face_same is not None else []
    report = {} if report is None else report
    p, score, fcos = idn.pair_probabilities(x, model, faces, same, sorted(cannot), report)
    label = idn.hard_groups(p, sorted(cannot), linking.hard_p)
    groups, q = idn.group_pairs(p, label, sorted(cannot))
    group_of = {keys[i]: keys[int(label[i])] for i in range(n)}
    members: dict[int, list[int]] = {}
    for i, lab in enumerate(label.tolist()):
        members.setdefault(lab, []).append(i)
    sim = x @ x.T
    shift = 0.0
    if report.get("prior") is not None and model.prior:  # the dataset's prior, not AMI's
        shift = math.log(report["prior"] / (1 - report["prior"])) - math.log(
            model.prior / (1 - model.prior))
    voice_p = idn.sigmoid(model.slope * score + model.intercept + shift)

    def evidence(i: int, j: int) -> dict:
        f = None if fcos is None or np.isnan(fcos[i, j]) else round(float(fcos[i, j]), 4)
        return {
            "source_a": voices[i].source_id,
            "source_b": voices[j].source_id,
            "voice_a": keys[i],
            "voice_b": keys[j],
            "voice_cosine": round(float(sim[i, j]), 4),
            "voice_score": round(float(score[i, j]), 4),
            "voice_p": round(float(voice_p[i, j]), 6),
            "face_cosine": f,
            "pair_p": round(float(p[i, j]), 6),
            "seconds_a": round(voices[i].seconds, 2),
            "seconds_b": round(voices[j].seconds, 2),
            "same_speaker_id": names[keys[i]] == names[keys[j]],
            "pinned_apart": (min(i, j), max(i, j)) in cannot,
        }

    pairs: list[dict] = []
    gi, gj = np.nonzero(np.triu(q >= idn.PAIR_MIN, 1))
    order = np.lexsort((gj, gi, -q[gi, gj]))
    kept = order[: idn.PAIRS_MAX]
    for k in kept.tolist():
        a, b = int(groups[gi[k]]), int(groups[gj[k]])
        ia, ib = members[a], members[b]
        sub = p[np.ix_(ia, ib)]
        r, c = np.unravel_index(int(np.argmax(sub)), sub.shape)
        i, j = ia[r], ib[c]
        pairs.append({"a": keys[a], "b": keys[b], "p": round(float(q[gi[k], gj[k]]), 6),
                      **evidence(i, j)})
    upper = np.triu(q, 1)
    dropped = float(upper.sum() - sum(float(q[gi[k], gj[k]]) for k in kept.tolist()))
    disagreements: list[dict] = []
    if fcos is not None:
        both = ~np.isnan(fcos)
        fd = model.face_different if model.face_different is not None else model.face_same
        voices_same = both & (voice_p >= 0.5) & (np.nan_to_num(fcos, nan=1.0) < fd)
        faces_same = both & (voice_p < 0.5) & (np.nan_to_num(fcos, nan=-1.0) >= model.face_same)
        for flag, mask in (("voices match, faces differ", voices_same),
                           ("faces match, voices do not", faces_same)):
            for i, j in zip(*np.nonzero(np.triu(mask, 1))):
                disagreements.append({**evidence(int(i), int(j)), "flag": flag,
                                      "a": voices[int(i)].source_id,
                                      "b": voices[int(j)].source_id})
        disagreements.sort(key=lambda e: (e["a"], e["b"], e["flag"]))
    n_groups = groups.size
    return group_of, tuple(disagreements), pairs, max(dropped, 0.0), n_groups * (n_groups - 1) // 2


def _name_groups(groups: Mapping[str, str | None]) -> dict[str, str | None]:
    """Group names from their members: the smallest speaker id of the group's clips is not
    known here, so a group is named ``grp_`` + hash of its smallest clip id (stable when
    unrelated sources are added, like speaker ids)."""
    smallest: dict[str, str] = {}
    for cid, g in groups.items():
        if g is not None and (g not in smallest or cid < smallest[g]):
            smallest[g] = cid
    return {cid: None if g is None else GROUP_PREFIX + hashlib.sha256(
        smallest[g].encode("utf-8")).hexdigest()[:ID_HEX] for cid, g in groups.items()}


@dataclass
class _Voice:
    """The clips of one source (and diarization label) averaged into one voice."""

    key: str  # the smallest clip id: names the voice, orders everything
    source_id: str
    clip_ids: list[str]
    vector: np.ndarray | None
    pin: str | None
    face: np.ndarray | None = None
    seconds: float = 0.0
    whole: np.ndarray | None = None  # the embedding of the voice's concatenated speech


def _voices(clips: Iterable[ClipVoice], pins: Mapping[str, tuple[str, str]]) -> list[_Voice]:
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
        pin = pins.get(source, (None, ""))[0]
        ids = [c.id for c in group]
        faces = [np.asarray(c.face, dtype=np.float64).ravel() for c in group
                 if c.face is not None and np.any(c.face)]
        face = normalize(normalize(np.stack(faces)).mean(axis=0)) if faces else None
        seconds = float(sum(c.seconds for c in group))
        whole = next((c.voice for c in clean if c.voice is not None), None)
        if whole is not None:
            whole = np.asarray(whole, dtype=np.float64).ravel()
            if whole.size != (dim or whole.size) or not np.all(np.isfinite(whole)) \
                    or not np.any(whole):
                whole = None
            else:
                whole = normalize(whole)
        voices.append(_Voice(ids[0], source, ids, vector, pin, face, seconds, whole))
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
    heads, member = _initial_clusters(pin_ids)
    k = heads.size
    sizes = np.bincount(member, minlength=k).astype(np.float64)
    means = np.zeros((k, x.shape[1]))
    np.add.at(means, member, x)
    means /= sizes[:, None]
    cpin = pin_ids[heads].copy()
    merged = _nn_chain(means, sizes, cpin, threshold, dense=k <= dense_max)
    return _first_rows(merged[member])


def _initial_clusters(pin_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One cluster per unpinned row and one per pin: (head row of each cluster, row ->
    cluster)."""
    m = pin_ids.size
    start = np.arange(m)
    first_of_pin: dict[int, int] = {}
    for i, p in enumerate(pin_ids.tolist()):
        if p >= 0:
            start[i] = first_of_pin.setdefault(p, i)
    heads = np.flatnonzero(start == np.arange(m))  # cluster k is headed by row heads[k]
    index_of = np.full(m, -1)
    index_of[heads] = np.arange(heads.size)
    return heads, index_of[start]


def _first_rows(final: np.ndarray) -> np.ndarray:
    """Per row, the first row that ended in the same final cluster (the label)."""
    out = np.empty(final.size, dtype=np.int64)
    firsts: dict[int, int] = {}
    for i, f in enumerate(final.tolist()):
        out[i] = firsts.setdefault(f, i)
    return out


def _nn_chain(
    means: np.ndarray,
    sizes: np.ndarray,
    pins: np.ndarray,
    threshold: float,
    *,
    dense: bool,
    sim: np.ndarray | None = None,
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
        sim = means @ means.T if sim is None else np.array(sim, dtype=np.float64)
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
            log(f"speakers.csv pin {'ignored' if 'ignored' in line else 'unused'}: {line}")
