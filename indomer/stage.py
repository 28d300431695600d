"""The stage contract: what a stage module under :mod:`indomer.stages` exports, and what the
runner and its executors (local process pool, Ray) hand it.

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
class Stage:
    """How one stage plugs into the runner.

    - ``run``: per item, ``run(item, state) -> list`` of Video/Segment rows (and, for a
      partial rejection, :class:`~indomer.errors.RowRejected` instances); raise RowRejected to
      reject the whole item. Per-item stages read one manifest. For whole stages
      (``per_item=False``) ``run(inputs, state, ctx) -> (rows, rejected)`` where ``inputs``
      maps each read stage to its manifest rows (dicts) and ``rejected`` holds
      ``rejected.jsonl`` entries. Whole stages run on the driver, after every item is done.
    - ``settings``: a zero-argument callable returning the Settings class (imported lazily)
      or None; the class is built once from the config section of the same name, unless
      ``configure(cfg)`` builds the settings itself (the split stage reads ``split:``).
    - ``setup(settings, ctx) -> state``: once per worker (load models here).
    - ``model``: the stage loads a model in ``setup``; on Ray it runs as a pool of long-lived
      workers (actors) that load it once, the other stages as plain tasks.
    - ``reads``: the manifests it reads (default: the previous stage's).
    - ``tools()``: tool versions that change the output (ffmpeg, a model revision);
      ``tools_for(settings)`` instead when they depend on the settings (which model).
    - ``inputs(cfg, dirs)``: extra files hashed into the fingerprint (sheets, tables).
    - ``salt``: extra state hashed into the fingerprint: per item, ``salt(item)`` (a local
      file's size and mtime); for whole stages, ``salt(inputs, out)`` (the clip files' stats).
    - ``outputs_ok(ctx, manifest rows)``: whether outputs outside the work dir still exist.
    - ``waiting(manifest rows)``: rows that wait for something outside the build (labels),
      as ``{"count", "what", "next", "halt"}`` or None; ``halt`` ends the run after this
      stage, successfully (the report's ``waiting`` carries it to the end-of-build line).
    """

    name: str
    run: Callable
    settings: Callable[[], type | None] = no_settings
    configure: Callable[[BuildConfig], Any] | None = None
    setup: Callable[[Any, Context], Any] = settings_state
    per_item: bool = True
    model: bool = False
    reads: tuple[str, ...] | None = None
    tools: Callable[[], dict[str, str]] = no_tools
    tools_for: Callable[[Any], dict[str, str]] | None = None
    inputs: Callable[[BuildConfig, dict[str, Path]], dict[str, Path]] = no_inputs
    salt: Callable[..., str] | None = None
    outputs_ok: Callable[[Context, list[dict]], bool] = always_ok
    version: str = "1"
    unit: str = "video"
    waiting: Callable[[list[dict]], dict | None] | None = None


def import_settings(module: str) -> type:
    """The ``Settings`` class of ``indomer.stages.<module>`` (imported when first needed)."""
    import importlib

    return importlib.import_module(f"indomer.stages.{module}").Settings


def settings_of(module: str) -> Callable[[], type]:
    """``Stage.settings`` for a stage module: its Settings class, imported lazily."""
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
