"""Speakers stage: one global speaker id per person across videos (the whole dataset).

The voices stage (:mod:`indomer.stages.voices`) leaves each clip's voice embedding in its
row; here they are clustered across sources into global ``speaker_id`` values
(:mod:`indomer.speakers`), with ``speakers.csv`` pins, and the split groups, operating
point and review queue go to the declared document ``identity.json``, which the split and
shards stages declare they need. The settings are the ``speakers:`` section
(:mod:`indomer.speaker_settings`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indomer.rows import Segment, Video
from indomer.speaker_settings import (
    CLUSTER_FIELDS,
    ITEM_FIELDS,
    Settings,
    calibration_path,
    from_config,
    overrides_path,
    tool_versions,
)
from indomer.speakers import (
    FACE_DIFFERENT,
    FACE_SAME,
    ClipVoice,
    Clustering,
    cluster_voices,
    decode_embedding,
    read_overrides,
    report_unused,
    score_model,
)
from indomer.stage import Context, DatasetStage, Inputs, Produced, settings_of

#: The document this stage writes into its work folder (see :data:`STAGE`).
IDENTITY = "identity.json"
#: The ``speakers:`` section's defaults.
DEFAULTS = Settings()


# --------------------------------------------------------------------------- whole dataset


def identify(
    rows: Iterable[Video | Segment],
    embeddings: Mapping[str, np.ndarray] | None = None,
    settings: Settings = DEFAULTS,
    *,
    root: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list, dict]:
    """(rows with ``speaker_id`` and ``speaker["group"]`` set, the identity record).

    ``embeddings`` maps clip id -> vector; by default each segment's own
    ``speaker["embedding"]`` is used, and dropped from the returned rows (so is
    ``face["embedding"]``). ``root`` resolves a relative ``settings.overrides`` and
    ``settings.calibration``; ``log`` hears one line per problem that does not stop the build
    (an unused or contradictory pin, a calibration for another model, a short voice). The
    record holds the operating point, the hard split groups (group -> speaker ids, group ->
    sources), the probable group pairs with their evidence, the voice/face disagreements and
    the warnings.
    """
    rows = list(rows)
    segs = [r for r in rows if isinstance(r, Segment)]
    clips = []
    for seg in segs:
        sp = seg.speaker or {}
        if embeddings is not None:
            vec = embeddings.get(seg.id)
        else:
            vec = decode_embedding(sp["embedding"], seg.id) if sp.get("embedding") else None
        whole = decode_embedding(sp["voice"], seg.id) if sp.get("voice") else None
        fc = (seg.face or {}).get("embedding")
        face = decode_embedding(fc, seg.id) if fc and settings.faces else None
        clips.append(ClipVoice(seg.id, seg.source_id, vec, sp.get("primary"),
                               bool(sp.get("flagged")), face, float(seg.end - seg.start), whole))
    path = overrides_path(settings, root)
    pins = read_overrides(path) if path is not None else None
    warnings: list[str] = []

    def warn(line: str) -> None:
        warnings.append(line)
        if log is not None:
            log(line)

    model, calibration = score_model(
        settings.embedding, calibration_path(settings, root),
        face_same=FACE_SAME if settings.faces else None,
        face_different=FACE_DIFFERENT if settings.faces else None, prior=settings.prior,
        log=warn)
    if model is None:
        warn(f"speakers: no probability calibration for embedding {settings.embedding!r}; "
             "the split keeps speaker ids apart but cannot state its risk; set "
             "speakers.calibration to a 'indomer speakers calibrate --json' file")
    if model is None:  # hard groups only: every pair of groups taken as (nearly) apart
        from indomer.identity import LOGIT_MAX, ScoreModel

        model = ScoreModel(slope=0.0, intercept=-LOGIT_MAX)
    result: Clustering = cluster_voices(clips, settings.linking(model), pins)
    if result.prior is not None:  # the dataset's own prior replaced the calibration set's
        calibration = {**calibration, "prior": round(result.prior, 8),
                       "prior_from": "estimated from this dataset's voice pairs (mixture of "
                                     "the calibrated score densities)"}
    report_unused(result, warn if log is not None else None)
    seconds: dict[str, float] = {}
    for c in clips:
        if c.embedding is not None:
            seconds[c.source_id] = seconds.get(c.source_id, 0.0) + c.seconds
    for src, sec in sorted(seconds.items()):
        if sec < settings.min_voice_seconds:
            warn(f"source {src}: its voice has {sec:.1f} s of speech, under "
                 f"speakers.min_voice_seconds ({settings.min_voice_seconds:g} s); its identity "
                 "is uncertain: check it with 'indomer speakers review' and pin it in "
                 "speakers.csv")
    out = []
    for r in rows:
        if isinstance(r, Segment):
            sp = None
            if r.speaker is not None or result.groups.get(r.id) is not None:
                sp = {k: v for k, v in (r.speaker or {}).items()
                      if k not in ("embedding", "voice")}
                sp["group"] = result.groups.get(r.id)
            face = r.face
            if face is not None and "embedding" in face:
                face = {k: v for k, v in face.items() if k != "embedding"}
            r = dataclasses.replace(r, speaker_id=result.speaker_ids.get(r.id), speaker=sp,
                                    face=face)
        out.append(r)
    members: dict[str, set[str]] = {}
    sources: dict[str, set[str]] = {}
    source_of = {c.id: c.source_id for c in clips}
    for cid, g in result.groups.items():
        spk = result.speaker_ids.get(cid)
        if g is not None and spk is not None:
            members.setdefault(g, set()).add(spk)
            sources.setdefault(g, set()).add(source_of[cid])
    record = {
        "operating_point": settings.operating_point(calibration),
        "n_speakers": result.n_speakers,
        "n_groups": len(members),
        "groups": {g: sorted(v) for g, v in sorted(members.items())},
        "group_sources": {g: sorted(v) for g, v in sorted(sources.items())},
        "pairs": list(result.pairs),
        "pairs_total": result.n_group_pairs,
        "pairs_dropped_mass": round(result.dropped_mass, 6),
        "disagreements": list(result.disagreements[:REVIEW_MAX]),
        "disagreements_total": len(result.disagreements),
        "warnings": warnings,
    }
    return out, record


#: Voice/face disagreements kept in the record.
REVIEW_MAX = 200


# --------------------------------------------------------------------------- the stage


def _overrides_file(cfg: Any, dirs: dict[str, Path]) -> dict[str, Path]:
    settings = from_config(cfg)
    files = {}
    path = overrides_path(settings, cfg.root)
    if path is not None:
        files["speakers"] = path
    cal = calibration_path(settings, cfg.root)
    if cal is not None:
        files["calibration"] = cal
    return files


@dataclass(frozen=True)
class ClusterState:
    """The settings, and the config's folder (a relative speakers.csv or calibration)."""

    settings: Settings
    root: Path | None


def _setup(settings: Settings, ctx: Context) -> ClusterState:
    return ClusterState(settings, ctx.config.root)


def _speakers_run(inputs: Inputs, state: ClusterState) -> Produced:
    """Global speaker ids: every source's voices clustered together (whole-dataset step)."""
    import sys

    from indomer.rows import from_json, to_json

    rows = [from_json(o) for o in inputs.rows()]
    out, record = identify(
        rows, settings=state.settings, root=state.root, log=lambda m: print(m, file=sys.stderr)
    )
    # the split groups, operating point and review queue: the split and shards stages need it
    return Produced([to_json(r) for r in out], documents={IDENTITY: record})


#: The whole-dataset step: one speaker id per person across videos.
STAGE = DatasetStage(
    "speakers",
    _speakers_run,
    settings=settings_of("speakers"),  # the speakers: section's class (the published schema)
    configure=from_config,
    setup=_setup,
    inputs=_overrides_file,
    outputs=(IDENTITY,),
)

__all__ = [
    "CLUSTER_FIELDS",
    "ITEM_FIELDS",
    "STAGE",
    "Settings",
    "identify",
    "tool_versions",
]
