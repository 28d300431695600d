"""The stage contract: what a stage module under :mod:`indomer.stages` exports, and what the
runner and its executors (local process pool, Ray) hand it.

A stage module exports one ``STAGE`` of one of two kinds: an :class:`ItemStage`
(``process(item, state) -> rows``: one video's rows, on any worker, resumable per item) or a
:class:`DatasetStage` (``process(inputs, state) -> Produced``: every row, on the driver).
A whole-dataset stage declares the documents it writes (``outputs``) and the ones of earlier
stages it reads (``needs``); nothing finds another stage's files by name.

This module sits below both: stages import it, never the runner (:mod:`indomer.pipeline`)
or ``build.py``; the runner imports the stages' ``STAGE`` objects. It imports nothing heavy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indomer.manifest import read_manifest

if TYPE_CHECKING:
    from indomer.config import BuildConfig
    from indomer.rows import Segment, Video


@dataclass(frozen=True)
class Item:
    """One unit of per-item work: a source video and its segments (none before segment)."""

    key: str
    video: Video
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Context:
    """Where a stage runs: picklable, so it travels to pool workers and Ray workers."""

    name: str
    out: Path
    workdir: Path
    config: BuildConfig
    dirs: dict[str, Path] = field(default_factory=dict)
    strict: bool = False  # --strict: a warning that would leave the build weaker stops it

    def manifest(self, stage: str) -> list[dict]:
        """Rows of an earlier stage's manifest (or of the sources step, ``"sources"``)."""
        return read_manifest(self.dirs[stage] / "manifest.jsonl")

    def rejected_before(self) -> list[dict]:
        """Rejections of the sources step and of every stage before this one, in order."""
        out = []
        for name, d in self.dirs.items():
            if name == self.name:
                break
            out.extend(read_manifest(d / "rejected.jsonl"))
        return out


def no_settings() -> None:
    return None


def no_tools() -> dict[str, str]:
    return {}


def no_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    return {}


def settings_state(settings: Any, ctx: Context) -> Any:
    return settings


def always_ok(ctx: Context, rows: list[dict]) -> bool:
    return True


@dataclass(frozen=True)
class FolderState:
    """The state of a stage that writes its files into one folder of the build (fetch's
    ``media``, cut's ``clips``): its settings and that folder."""

    settings: Any
    folder: Path


def _folder_state(name: str, settings: Any, ctx: Context) -> FolderState:
    return FolderState(settings, ctx.workdir / name)


def folder_setup(name: str) -> Callable[[Any, Context], FolderState]:
    """A ``setup`` giving :class:`FolderState` with the build's ``work/../NAME`` folder
    (picklable, so it travels to pool and Ray workers)."""
    return functools.partial(_folder_state, name)


@dataclass(frozen=True)
class Inputs:
    """What the runner hands a :class:`DatasetStage`: the rows of every manifest it reads
    (``inputs["merge"]``) and the side documents it declares in ``needs`` (``"stage/file"``
    -> the parsed JSON, None when that stage is not in the pipeline or wrote none)."""

    manifests: dict[str, list[dict]]
    documents: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> list[dict]:
        return self.manifests[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.manifests.get(name, default)

    def rows(self) -> list[dict]:
        """Every row of every read manifest, in read order."""
        return [r for rs in self.manifests.values() for r in rs]


@dataclass(frozen=True)
class Produced:
    """What a :class:`DatasetStage` returns: its manifest rows, its ``rejected.jsonl``
    entries, and one JSON document per name it declares in ``outputs`` (the runner writes
    them into its work folder, where later stages' ``needs`` find them)."""

    rows: list[dict]
    rejected: list[dict] = field(default_factory=list)
    documents: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Common:
    """What both kinds of stage declare (see :class:`ItemStage`, :class:`DatasetStage`).

    - ``settings``: a zero-argument callable returning the Settings class (imported lazily)
      or None; the class is built once from the config section of the same name, unless
      ``configure(cfg)`` builds the settings itself (the split stage reads ``split:``); the
      config's published schema types the stage's section by it either way.
    - ``section``: the config section ``configure`` reads when it is not the stage's own
      (voices reads ``speakers:``): the stage's own section then takes no keys.
    - ``setup(settings, ctx) -> state``: once per worker (load models here).
    - ``reads``: the manifests it reads (default: the previous stage's).
    - ``tools()``: tool versions that change the output (ffmpeg, a model revision);
      ``tools_for(settings)`` instead when they depend on the settings (which model).
    - ``inputs(cfg, dirs)``: files outside the build hashed into the fingerprint (sheets,
      tables, an earlier stage's declared document).
    - ``outputs_ok(ctx, manifest rows)``: whether outputs outside the work dir still exist.
    - ``waiting(manifest rows)``: rows that wait for something outside the build (labels),
      as ``{"count", "what", "next", "halt"}`` or None; ``halt`` ends the run after this
      stage, successfully (the report's ``waiting`` carries it to the end-of-build line).
    """

    name: str
    process: Callable
    settings: Callable[[], type | None] = no_settings
    configure: Callable[[BuildConfig], Any] | None = None
    section: str | None = None
    setup: Callable[[Any, Context], Any] = settings_state
    reads: tuple[str, ...] | None = None
    tools: Callable[[], dict[str, str]] = no_tools
    tools_for: Callable[[Any], dict[str, str]] | None = None
    inputs: Callable[[BuildConfig, dict[str, Path]], dict[str, Path]] = no_inputs
    outputs_ok: Callable[[Context, list[dict]], bool] = always_ok
    version: str = "1"
    waiting: Callable[[list[dict]], dict | None] | None = None


@dataclass(frozen=True)
class ItemStage(_Common):
    """A stage that sees one item (a source video and its segments) at a time, on any
    worker of any engine, resumable item by item.

    - ``process(item, state) -> list`` of Video/Segment rows (and, for a partial rejection,
      :class:`~indomer.errors.RowRejected` instances); raise RowRejected to reject the whole
      item. It reads one manifest.
    - ``model``: the stage loads a model in ``setup``; on Ray it runs as a pool of long-lived
      workers (actors) that load it once, the other stages as plain tasks.
    - ``salt(item) -> str``: extra state of one item hashed into its journal key and the
      fingerprint (a local file's size and mtime).
    """

    model: bool = False
    salt: Callable[[Item], str] | None = None
    unit: str = "video"


@dataclass(frozen=True)
class DatasetStage(_Common):
    """A stage that sees the whole dataset at once, on the driver, after every item is done.

    - ``process(inputs, state) -> Produced``: ``inputs`` is an :class:`Inputs` (every row
      of the manifests it reads, and the documents it ``needs``).
    - ``needs``: the side documents of earlier stages it reads, as ``"stage/file"``.
    - ``outputs``: the side documents it writes (file names in its work folder), each
      returned in ``Produced.documents``; nothing else of it is read by name.
    - ``salt(inputs, out) -> str``: extra state hashed into the fingerprint (the clip
      files' stats).
    """

    needs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    salt: Callable[[Inputs, Path], str] | None = None
    unit: str = "segment"


#: A pipeline's stage: one of the two kinds.
Stage = ItemStage | DatasetStage


def import_settings(module: str) -> type:
    """The ``Settings`` class of ``indomer.stages.<module>`` (imported when first needed)."""
    import importlib

    return importlib.import_module(f"indomer.stages.{module}").Settings


def settings_of(module: str) -> Callable[[], type]:
    """A stage's ``settings`` for a stage module: its Settings class, imported lazily."""
    return functools.partial(import_settings, module)


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> dict[str, str]:
    """The ffmpeg that decodes and encodes the media (first line of ``ffmpeg -version``)."""
    import shutil
    import subprocess

    exe = shutil.which("ffmpeg")
    if exe is None:
        return {"ffmpeg": "missing"}
    res = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False)
    return {"ffmpeg": (res.stdout.splitlines() or ["unknown"])[0]}
