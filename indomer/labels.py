"""Label sets, order and aliases, read from ``schemas/labels.yaml`` (the single source).

Every other module asks this one for names and ids, so a label change is one YAML edit.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

import yaml

from indomer.errors import DataError

#: The five label tasks, in the order used by score output and the Parquet columns.
TASKS: tuple[str, ...] = (
    "emotion",
    "sentiment",
    "text_sentiment",
    "audio_sentiment",
    "video_sentiment",
)
MODALITY_TASKS: tuple[str, ...] = ("text_sentiment", "audio_sentiment", "video_sentiment")


def fold(text: str) -> str:
    """Case- and accent-insensitive key: NFKD, drop combining marks, casefold, squeeze spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def _labels_bytes() -> bytes:
    return resources.files("indomer.schemas").joinpath("labels.yaml").read_bytes()


@dataclass(frozen=True)
class LabelSet:
    """One task's label set: ``names`` in ClassLabel order plus folded aliases."""

    task: str
    names: tuple[str, ...]
    release: dict[str, str]
    aliases: dict[str, str]

    def id(self, name: str) -> int:
        """ClassLabel id of a canonical name."""
        return self.names.index(name)

    def canonical(self, value: str) -> str | None:
        """Canonical name for a name, release string or alias; None when it names nothing."""
        return self.aliases.get(fold(value))

    def require(self, value: str, where: str) -> str:
        """Like :meth:`canonical` but raise a one-line :class:`DataError` naming ``where``."""
        name = self.canonical(value) if isinstance(value, str) else None
        if name is None:
            raise DataError(
                f"{where}: unknown {self.task} label {value!r}; expected one of "
                f"{', '.join(self.names)} (or an alias in schemas/labels.yaml)"
            )
        return name


@lru_cache(maxsize=1)
def _load() -> dict:
    return yaml.safe_load(_labels_bytes())


@cache
def label_set(task: str) -> LabelSet:
    """The label set of ``task`` (the three modality tasks share the sentiment set)."""
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    base = "emotion" if task == "emotion" else "sentiment"
    doc = _load()
    names = tuple(doc["tasks"][base]["names"])
    release: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for name in names:
        entry = doc["labels"][base][name]
        release[name] = entry["release"]
        for alias in [name, entry["release"], *entry.get("aliases", [])]:
            key = fold(alias)
            if aliases.setdefault(key, name) != name:
                raise DataError(f"schemas/labels.yaml: alias {alias!r} names two {base} labels")
    return LabelSet(task=task, names=names, release=release, aliases=aliases)


def emotion_to_sentiment() -> dict[str, str]:
    """The release rule: which sentiment each emotion implies."""
    return dict(_load()["emotion_to_sentiment"])


@lru_cache(maxsize=1)
def labels_sha256() -> str:
    """sha256 of labels.yaml, recorded in score JSON and build.json."""
    return hashlib.sha256(_labels_bytes()).hexdigest()
