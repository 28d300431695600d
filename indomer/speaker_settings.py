"""The ``speakers:`` config section.

Two stages read it, :mod:`indomer.stages.voices` (per source: diarization and voice
embeddings) and :mod:`indomer.stages.speakers` (the whole dataset: one speaker id per
person), and stages never import each other, so it lives here, below both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from indomer.speakers import (
    FACE_DIFFERENT,
    FACE_SAME,
    RESEMBLYZER_LINK_THRESHOLD,
    RESEMBLYZER_THRESHOLD,
    Linking,
)

#: Settings that change what the voices stage writes; the others only change the speakers
#: stage's clustering.
ITEM_FIELDS = ("embedding", "diarization", "min_primary_share", "max_overlap",
               "min_speaker_time", "on_mixed", "device", "threads")
CLUSTER_FIELDS = ("embedding", "threshold", "link_threshold", "faces", "overrides",
                  "calibration", "prior", "hard_p", "min_voice_seconds")


@dataclass(frozen=True)
class Settings:
    """The ``speakers:`` config section.

    ``embedding``: ``resemblyzer`` (bundled, offline) or a pyannote embedding model (hub id or
    local path). ``diarization``: a pyannote pipeline (hub id such as
    ``pyannote/speaker-diarization-community-1``, or a local folder); null skips diarization.
    ``threshold``: cosine similarity at which two source voices are one speaker, the best
    guess behind ``speaker_id`` (null: the resemblyzer default; required for other models,
    whose scale differs: measure it with ``indomer speakers calibrate``).
    ``link_threshold``: voice cosine from which matching faces make two sources one speaker id
    (null: the resemblyzer default; required with ``threshold`` for other models).
    ``calibration``: a ``speakers calibrate --json`` file whose probability fit maps the
    cohort-normalised voice score to the probability of one person (null: the shipped fit on
    the AMI excerpt; a file for another embedding model is reported and the default used).
    ``prior``: the share of source pairs that are one person in this dataset, when known (null:
    estimated from the dataset's voice scores as a mixture of the calibrated same-person and
    different-people score densities, with the calibration set's prior as 100 pseudo-pairs).
    ``hard_p``: probability from which a pair counts as certain, so a split never separates
    it (lower pairs only weigh on the split's expected people on two sides).
    ``min_voice_seconds``: a source voice with less speech than this is reported: its
    identity is uncertain, review it.
    ``faces``: use the face identity embeddings of the faces stage, when present, as a second
    signal (a face cosine adds its evidence to the pair's probability; voice/face
    disagreements are listed for review). ``min_primary_share``,
    ``max_overlap``: when a clip's main speaker dominates. ``min_speaker_time``: seconds a
    diarization label needs in a clip to count in ``n_speakers``. ``on_mixed``: ``flag``
    keeps a clip that fails the test (``speaker.flagged``), ``reject`` drops it.
    ``overrides``: a ``speakers.csv`` pinning known people (``source_id`` or ``id``,
    ``speaker_id``). ``device``: where pyannote runs. ``threads``: torch threads per worker
    (1 is fastest when workers share the cores; the vectors differ in their last bits
    between counts, so it is fingerprinted). ``allow_download``: let the hub fetch missing
    models (off: cache only; not in the fingerprint).
    """

    # one field's bounds are checked by the config's pydantic model
    # (indomer.config.section_model), and are in the published schema; __post_init__ checks
    # what two fields say together
    embedding: Annotated[str, Field(min_length=1)] = "resemblyzer"
    diarization: str | None = None
    threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    link_threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    calibration: str | None = None
    prior: Annotated[float, Field(gt=0, lt=1)] | None = None
    hard_p: Annotated[float, Field(gt=0.5, le=1)] = 0.99
    min_voice_seconds: Annotated[float, Field(ge=0)] = 2.0
    faces: bool = True
    min_primary_share: Annotated[float, Field(ge=0, le=1)] = 0.8
    max_overlap: Annotated[float, Field(ge=0, le=1)] = 0.2
    min_speaker_time: Annotated[float, Field(ge=0)] = 0.25
    on_mixed: Literal["flag", "reject"] = "flag"
    overrides: str | None = None
    device: str = "cpu"
    threads: Annotated[int, Field(ge=1)] = 1
    allow_download: bool = field(default=False, metadata={"fingerprint": False})

    def __post_init__(self) -> None:
        if self.embedding != "resemblyzer" and (self.threshold is None
                                                or self.link_threshold is None):
            raise ValueError(f"threshold and link_threshold: required with embedding "
                             f"{self.embedding!r} (the defaults are measured for resemblyzer "
                             "only); measure both with 'indomer speakers calibrate'")
        if self.cluster_link_threshold > self.cluster_threshold:
            raise ValueError(f"link_threshold ({self.cluster_link_threshold:g}) must not "
                             f"exceed threshold ({self.cluster_threshold:g}): the split groups "
                             "must be at least as coarse as the speaker ids")

    @property
    def cluster_threshold(self) -> float:
        return self.threshold if self.threshold is not None else RESEMBLYZER_THRESHOLD

    @property
    def cluster_link_threshold(self) -> float:
        if self.link_threshold is not None:
            return self.link_threshold
        return min(RESEMBLYZER_LINK_THRESHOLD, self.cluster_threshold)

    def linking(self, model: object | None = None) -> Linking:
        """What :func:`indomer.speakers.cluster_voices` identifies sources with."""
        return Linking(
            self.cluster_threshold,
            self.cluster_link_threshold,
            FACE_SAME if self.faces else None,
            FACE_DIFFERENT if self.faces else None,
            model,
            self.hard_p,
        )

    def operating_point(self, calibration: dict | None = None) -> dict:
        """What identity rests on (the split report and the card state it): the speaker-id
        threshold, the probability calibration and where it comes from, the hard bound."""
        lk = self.linking()
        return {
            "embedding": self.embedding,
            "threshold": lk.threshold,
            "hard_p": self.hard_p,
            "face_same": lk.face_same,
            "face_different": lk.face_different,
            "calibration": calibration or {"source": "none", "file": None},
        }

    def for_items(self) -> Settings:
        """These settings with the clustering-only fields neutral (``threshold`` 1.0, no
        ``overrides``): what the per-source step is fingerprinted with, so tuning the
        clustering does not re-embed every clip."""
        return dataclasses.replace(self, threshold=1.0, link_threshold=1.0, faces=True,
                                   overrides=None, calibration=None, prior=None, hard_p=0.99,
                                   min_voice_seconds=2.0)


def tool_versions(settings: Settings) -> dict[str, str]:
    """Model identities for the fingerprint (embedding weights, diarization pipeline)."""
    from indomer.backends.voice import model_version

    out = {"voice": model_version(settings.embedding)}
    if settings.diarization:
        from indomer.backends.diarize import model_version as pipeline_version

        out["diarization"] = pipeline_version(settings.diarization)
    return out


def overrides_path(settings: Settings, root: Path | None = None) -> Path | None:
    """``speakers.csv`` resolved against ``root`` (the config's folder) when relative."""
    return _resolve(settings.overrides, root)


def calibration_path(settings: Settings, root: Path | None = None) -> Path | None:
    """``speakers.calibration`` resolved against ``root`` when relative (None: shipped)."""
    return _resolve(settings.calibration, root)


def _resolve(value: str | None, root: Path | None) -> Path | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() or root is None else Path(root) / p


def from_config(cfg: Any) -> Settings:
    """Both speaker stages read the config's ``speakers:`` section."""
    return cfg.settings("speakers", Settings)
