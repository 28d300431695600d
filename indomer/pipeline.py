"""The raw-mode pipeline: one ordered tuple of stages and the runner that makes it resumable.

Each stage reads the manifest of the stage before it (``work/NN_stage/manifest.jsonl``, one
JSON row per line, sorted by id) and writes its own, with ``fingerprint.json`` holding a
sha256 of its input manifests, its settings, the indomer and tool versions. A stage whose
fingerprint is unchanged is skipped, so a no-op rebuild costs a few hashes.

Per-item stages (one item = one source video with its segments) append every finished item
to ``done.jsonl`` (one fsync'd line each, keyed by the item's own input hash), so a build
killed with ``kill -9`` redoes only the items in flight, and a change to one source redoes
only that source. Items run in a process pool with ``--jobs N``; each worker builds the
stage's state (settings, models) once in its initializer. A :class:`RowRejected` from an
item goes to ``rejected.jsonl`` with the stage, id, reason and fix, and the others go on
(``--strict`` stops at the first).

Adding a stage (align, speakers): write the module with ``Settings`` and ``process``, add a
:class:`Stage` to :func:`default_stages` and its name to :data:`STAGES` at the marked place.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indomer import __version__
from indomer.config import (
    BuildConfig,
    fingerprint_settings,
    load_config,
    read_segments,
    read_sources,
)
from indomer.errors import DataError, RowRejected, UsageError
from indomer.fsutil import (
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from indomer.rows import Segment, Video, from_json, to_json

#: The pipeline, in order. align and speakers go between "cut" and "merge" when they land:
#: ("fetch", "probe", "segment", "cut", "align", "speakers", "merge", "split", "shards").
STAGES: tuple[str, ...] = (
    "fetch",
    "probe",
    "segment",
    "cut",
    "align",
    "voices",
    "faces",
    "speakers",
    "merge",
    "split",
    "shards",
)
WORK = "work"
INPUTS_DIR = "00_sources"
#: Fields that hold file paths; inside the build folder they are stored relative to it, so
#: manifests do not depend on where the build folder lies.
PATH_FIELDS: dict[str, tuple[str, ...]] = {
    "video": ("path",),
    "segment": ("source_path", "audio_path", "video_path"),
}


# --------------------------------------------------------------------------- stage contract


@dataclass(frozen=True)
class Item:
    """One unit of per-item work: a source video and its segments (none before segment)."""

    key: str
    video: Video
    segments: tuple[Segment, ...] = ()


@dataclass(frozen=True)
class Context:
    """Where a stage runs: picklable, so it travels to pool workers (or Ray tasks)."""

    name: str
    out: Path
    workdir: Path
    config: BuildConfig
    dirs: dict[str, Path] = field(default_factory=dict)

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


def _no_settings() -> None:
    return None


def _import_settings(module: str) -> type:
    """The ``Settings`` class of ``indomer.stages.<module>`` (imported when first needed)."""
    import importlib

    return importlib.import_module(f"indomer.stages.{module}").Settings


def _no_tools() -> dict[str, str]:
    return {}


def _no_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    return {}


def _settings_state(settings: Any, ctx: Context) -> Any:
    return settings


def _always_ok(ctx: Context, rows: list[dict]) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """How one stage plugs into the runner.

    - ``run``: per item, ``run(item, state) -> list`` of Video/Segment rows (and, for a
      partial rejection, :class:`RowRejected` instances); raise RowRejected to reject the
      whole item. Per-item stages read one manifest. For whole stages (``per_item=False``)
      ``run(inputs, state, ctx) -> (rows, rejected)`` where ``inputs`` maps each read stage
      to its manifest rows (dicts) and ``rejected`` holds ``rejected.jsonl`` entries.
    - ``settings``: a zero-argument callable returning the Settings class (imported lazily)
      or None; the class is built once from the config section of the same name, unless
      ``configure(cfg)`` builds the settings itself (the split stage reads ``split:``).
    - ``setup(settings, ctx) -> state``: once per worker (load models here).
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
    settings: Callable[[], type | None] = _no_settings
    configure: Callable[[BuildConfig], Any] | None = None
    setup: Callable[[Any, Context], Any] = _settings_state
    per_item: bool = True
    reads: tuple[str, ...] | None = None
    tools: Callable[[], dict[str, str]] = _no_tools
    tools_for: Callable[[Any], dict[str, str]] | None = None
    inputs: Callable[[BuildConfig, dict[str, Path]], dict[str, Path]] = _no_inputs
    salt: Callable[..., str] | None = None
    outputs_ok: Callable[[Context, list[dict]], bool] = _always_ok
    version: str = "1"
    unit: str = "video"
    waiting: Callable[[list[dict]], dict | None] | None = None


# --------------------------------------------------------------------------- real stages


@dataclass(frozen=True)
class _MediaState:
    settings: Any
    media_dir: Path


def _fetch_settings() -> type:
    from indomer.stages import fetch

    return fetch.Settings


def _fetch_setup(settings: Any, ctx: Context) -> _MediaState:
    return _MediaState(settings, ctx.workdir / "media")


def _fetch_run(item: Item, state: _MediaState) -> list:
    from indomer.stages import fetch

    return fetch.process(item.video, state.settings, state.media_dir)


def _fetch_salt(item: Item) -> str:
    """Local sources: size and mtime, so an edited file is fetched again; URLs: yt-dlp."""
    v = item.video
    if v.url is not None:
        from indomer.stages.fetch import tool_versions

        return json.dumps(tool_versions(), sort_keys=True)
    try:
        st = os.stat(v.path) if v.path else None
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}" if st else "missing"


@functools.lru_cache(maxsize=1)
def _ffmpeg_version() -> dict[str, str]:
    """The ffmpeg that decodes and encodes the media (first line of ``ffmpeg -version``)."""
    import shutil
    import subprocess

    exe = shutil.which("ffmpeg")
    if exe is None:
        return {"ffmpeg": "missing"}
    res = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False)
    return {"ffmpeg": (res.stdout.splitlines() or ["unknown"])[0]}


def _probe_run(item: Item, settings: Any) -> list:
    from indomer.stages import probe

    return probe.process(item.video, settings)


@dataclass(frozen=True)
class _SegmentState:
    settings: Any
    given: dict[str, tuple[Segment, ...]] | None
    vad: Any = None


def _given_segments_file(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    path = dirs["sources"] / "segments.jsonl"
    return {"segments": path} if cfg.segments is not None else {}


def _segment_tools() -> dict[str, str]:
    """The VAD model (natural-pause segmentation) and the ffmpeg that decodes the audio."""
    from indomer.backends.vad import model_version

    return {"vad": model_version(), **_ffmpeg_version()}


def _segment_setup(settings: Any, ctx: Context) -> _SegmentState:
    """Given timestamps when the config has a segments table, else the VAD, loaded once."""
    if ctx.config.segments is None:
        from indomer.backends.vad import load_vad

        return _SegmentState(settings, None, load_vad())
    given: dict[str, list[Segment]] = {}
    for obj in read_manifest(ctx.dirs["sources"] / "segments.jsonl"):
        seg = from_json(obj)
        given.setdefault(seg.source_id, []).append(seg)
    return _SegmentState(settings, {k: tuple(v) for k, v in given.items()})


#: Given segments may end this far past the probed duration (container rounding).
DURATION_SLACK = 0.05


def _segment_run(item: Item, state: _SegmentState) -> list:
    """Timestamps from segments.csv when given, else natural pauses (the segment module)."""
    video = item.video
    if state.given is None:
        from indomer.stages import segment

        return [video, *segment.process(video, state.settings, vad=state.vad)]
    segs = state.given.get(video.source_id)
    if not segs:
        raise RowRejected(
            video.source_id,
            "no rows for this source in the segments table",
            "add its segments to the segments CSV, or remove the source",
        )
    out: list = [video]
    overlaps = _overlaps(segs)
    for s in segs:
        if video.duration is not None and s.end > video.duration + DURATION_SLACK:
            out.append(
                RowRejected(
                    s.id,
                    f"ends at {s.end:g} s, after the video's {video.duration:g} s",
                    "fix the end time in the segments CSV",
                )
            )
        elif s.id in overlaps:
            other = overlaps[s.id]
            out.append(
                RowRejected(
                    s.id,
                    f"{s.start:g}-{s.end:g} s overlaps {other.id} ({other.start:g}-{other.end:g} s)",
                    "fix the timestamps in the segments CSV so that clips of one video do not "
                    "overlap (touching is fine)",
                )
            )
        else:
            out.append(dataclasses.replace(s, source_path=video.path))
    return out


def _overlaps(segs: Sequence[Segment]) -> dict[str, Segment]:
    """Every given segment that overlaps another of its video, mapped to one it overlaps.

    Both sides are rejected: which of the two is wrong is for the user to say, and cutting
    either would put the same speech in two clips.
    """
    found: dict[str, Segment] = {}
    ordered = sorted(segs, key=lambda s: (s.start, s.end, s.id))
    reach: Segment | None = None
    for s in ordered:
        if reach is not None and s.start < reach.end:
            found.setdefault(s.id, reach)
            found.setdefault(reach.id, s)
        if reach is None or s.end > reach.end:
            reach = s
    return found


@dataclass(frozen=True)
class _CutState:
    settings: Any
    clips_dir: Path


def _cut_setup(settings: Any, ctx: Context) -> _CutState:
    return _CutState(settings, ctx.workdir / "clips")


def _cut_run(item: Item, state: _CutState) -> list:
    """All clips of one source in one go (the source is decoded once per group of clips);
    a segment that cannot be cut comes back as a RowRejected in its place."""
    from indomer.stages import cut

    return [item.video, *cut.process(item.video, item.segments, state.settings, state.clips_dir)]


@dataclass(frozen=True)
class _AlignState:
    inner: Any
    transcripts: dict[str, str]


def _transcripts_file(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    return {"transcripts": cfg.transcripts} if cfg.transcripts is not None else {}


def _align_setup(settings: Any, ctx: Context) -> _AlignState:
    """The aligner, loaded once per worker, and the manual transcripts it aligns.

    Bad transcript rows are reported by the merge stage (which reads the same file); here
    they are only left out, so a clip without a usable transcript gets the ASR draft.
    """
    from indomer.config import read_transcripts
    from indomer.stages import align

    texts: dict[str, str] = {}
    if ctx.config.transcripts is not None:
        texts, _ = read_transcripts(ctx.config.transcripts)
    return _AlignState(align.setup(settings), texts)


def _align_run(item: Item, state: _AlignState) -> list:
    """Word times for one source's clips (manual text, else an ASR draft)."""
    from indomer.stages import align

    texts = {s.id: state.transcripts[s.id] for s in item.segments if s.id in state.transcripts}
    return [item.video, *align.process(item.segments, state.inner, texts)]


def _align_tools(settings: Any) -> dict[str, str]:
    from indomer.stages import align

    return align.tool_versions(settings)


def _speaker_settings(cfg: BuildConfig) -> Any:
    """Both speaker stages read the config's ``speakers:`` section."""
    from indomer.stages import speakers

    return cfg.settings("speakers", speakers.Settings)


def _voices_settings(cfg: BuildConfig) -> Any:
    """The per-source part: the clustering settings (threshold, speakers.csv) are left out,
    so changing them re-clusters without re-embedding every clip."""
    return _speaker_settings(cfg).for_items()


def _voices_setup(settings: Any, ctx: Context) -> Any:
    from indomer.stages import speakers

    return speakers.setup(settings, ctx)


def _voices_run(item: Item, state: Any) -> list:
    """Diarization summary and voice embedding of each clip of one source."""
    from indomer.stages import speakers

    return [item.video, *speakers.process(item.video, item.segments, state)]


def _speaker_tools(settings: Any) -> dict[str, str]:
    from indomer.stages import speakers

    return speakers.tool_versions(settings)


def _overrides_file(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    from indomer.stages import speakers

    path = speakers.overrides_path(_speaker_settings(cfg), cfg.root)
    return {"speakers": path} if path is not None else {}


def _speakers_run(inputs: dict[str, list[dict]], settings: Any, ctx: Context) -> tuple[list, list]:
    """Global speaker ids: every source's voices clustered together (whole-dataset step)."""
    from indomer.stages import speakers

    rows = [from_json(o) for rs in inputs.values() for o in rs]
    out, record = speakers.identify(
        rows, settings=settings, root=ctx.config.root, log=lambda m: print(m, file=sys.stderr)
    )
    # the split groups, operating point and review queue: read by the split and shards stages
    write_json_atomic(ctx.workdir / "identity.json", record)
    return [to_json(r) for r in out], []


def _faces_setup(settings: Any, ctx: Context) -> Any:
    from indomer.stages import faces

    return faces.setup(settings, ctx)


def _faces_run(item: Item, state: Any) -> list:
    """Each clip's face-track summary (the detector is loaded once per worker)."""
    from indomer.stages import faces

    return [item.video, *faces.process(item.segments, state)]


def _faces_tools(settings: Any) -> dict[str, str]:
    """The face models the settings use (no dlib identity when ``faces.identity: false``)."""
    from indomer.stages import faces

    return faces.tools(settings)


def default_stages() -> tuple[Stage, ...]:
    """The real stages, in :data:`STAGES` order (modules imported only when a stage runs)."""
    from indomer.stages import merge_labels

    table = {
        "fetch": Stage(
            "fetch",
            _fetch_run,
            settings=_fetch_settings,
            setup=_fetch_setup,
            salt=_fetch_salt,
            reads=("sources",),
        ),
        "probe": Stage(
            "probe",
            _probe_run,
            settings=functools.partial(_import_settings, "probe"),
            tools=_ffmpeg_version,
        ),
        "segment": Stage(
            "segment",
            _segment_run,
            settings=functools.partial(_import_settings, "segment"),
            setup=_segment_setup,
            inputs=_given_segments_file,
            tools=_segment_tools,
        ),
        "cut": Stage(
            "cut",
            _cut_run,
            settings=functools.partial(_import_settings, "cut"),
            setup=_cut_setup,
            tools=_ffmpeg_version,
        ),
        "align": Stage(
            "align",
            _align_run,
            settings=functools.partial(_import_settings, "align"),
            setup=_align_setup,
            inputs=_transcripts_file,
            tools_for=_align_tools,
        ),
        "voices": Stage(
            "voices",
            _voices_run,
            configure=_voices_settings,
            setup=_voices_setup,
            tools_for=_speaker_tools,
        ),
        "faces": Stage(
            "faces",
            _faces_run,
            settings=functools.partial(_import_settings, "faces"),
            setup=_faces_setup,
            tools_for=_faces_tools,
        ),
        "speakers": Stage(
            "speakers",
            _speakers_run,
            configure=_speaker_settings,
            per_item=False,
            inputs=_overrides_file,
            unit="segment",
        ),
        **merge_labels.tail_stages(),
    }
    return tuple(table[name] for name in STAGES)


# --------------------------------------------------------------------------- manifests


def dumps_row(obj: dict) -> str:
    """One manifest line: compact JSON, sorted keys, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def row_id(obj: dict) -> str:
    """The id a manifest is sorted by: ``id`` for segments, ``source_id`` for videos."""
    return str(obj.get("id") if obj.get("id") is not None else obj.get("source_id", ""))


def sort_rows(rows: Iterable[dict]) -> list[dict]:
    return sorted(rows, key=lambda o: (row_id(o), o.get("kind", ""), dumps_row(o)))


def manifest_bytes(rows: Iterable[dict]) -> bytes:
    return "".join(dumps_row(r) + "\n" for r in rows).encode("utf-8")


def read_manifest(path: Path) -> list[dict]:
    """Rows of a JSONL file ([] when absent)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{n}: not a JSON line ({exc.msg}); rerun the build with --force"
                ) from None
    return out


def _write_if_changed(path: Path, data: bytes) -> None:
    """Rewrite only when the bytes differ (keeps mtimes, saves a fsync on no-op builds)."""
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_bytes_atomic(path, data)


def _relocate(obj: dict, out: Path, absolute: bool) -> dict:
    """Paths inside the build folder: stored relative, given to stages absolute."""
    fields = PATH_FIELDS.get(obj.get("kind", ""), ())
    if not fields:
        return obj
    obj = dict(obj)
    for f in fields:
        value = obj.get(f)
        if not value:
            continue
        p = Path(value)
        if absolute and not p.is_absolute():
            obj[f] = str(out / p)
        elif not absolute and p.is_absolute() and p.is_relative_to(out):
            obj[f] = p.relative_to(out).as_posix()
    return obj


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")


# --------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _init_worker(stage: Stage, settings: Any, ctx: Context) -> None:
    """Pool initializer: build the stage state (settings, models) once per process."""
    _WORKER["stage"] = stage
    _WORKER["ctx"] = ctx
    _WORKER["state"] = stage.setup(settings, ctx)


def _rejection(stage: str, exc: RowRejected) -> dict:
    entry = {"stage": stage, "id": exc.row_id, "reason": exc.reason, "fix": exc.fix}
    where = getattr(exc, "where", None)
    if where:
        entry["where"] = where
    return entry


def _do_item(item_json: list[dict], key: str) -> tuple[str, list[dict], list[dict]]:
    """Run the worker's stage on one item (rows as JSON): (key, rows, rejected)."""
    stage: Stage = _WORKER["stage"]
    ctx: Context = _WORKER["ctx"]
    rows = [from_json(_relocate(o, ctx.out, absolute=True)) for o in item_json]
    video = next(r for r in rows if isinstance(r, Video))
    item = Item(key, video, tuple(r for r in rows if isinstance(r, Segment)))
    try:
        result = stage.run(item, _WORKER["state"])
    except RowRejected as exc:
        return key, [], [_rejection(stage.name, exc)]
    out_rows, rejected = [], []
    for r in result:
        if isinstance(r, RowRejected):
            rejected.append(_rejection(stage.name, r))
        elif isinstance(r, (Video, Segment)):
            out_rows.append(_relocate(to_json(r), ctx.out, absolute=False))
        else:
            raise TypeError(f"stage {stage.name} returned {type(r).__name__}, not a row")
    return key, out_rows, rejected


# --------------------------------------------------------------------------- the runner


@dataclass
class StageReport:
    """What one stage did in this run (printed in the summary, stored in fingerprint.json)."""

    name: str
    status: str = "not run"  # ran | skipped | not run
    items: int = 0
    redone: int = 0
    kept: int = 0
    rejected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _progress(total: int, initial: int, desc: str, unit: str, quiet: bool):
    """A tqdm bar on stderr (counts, rate, ETA); a no-op stand-in when quiet or no tqdm."""
    if not quiet:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    class _Null:
        def update(self, n: int = 1) -> None:
            pass

        def close(self) -> None:
            pass

    return _Null()


def _count_kept(rows: list[dict]) -> int:
    """Rows a stage kept, in its own unit: segments once there are any, else videos."""
    segments = sum(r.get("kind") != "video" for r in rows)
    return segments if segments else len(rows)


def _group_items(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """Manifest rows -> per-source items, each the video row first, then its segments."""
    groups: dict[str, list[dict]] = {}
    for obj in rows:
        groups.setdefault(str(obj["source_id"]), []).append(obj)
    items = []
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda o: (o.get("kind") != "video", row_id(o)))
        if group[0].get("kind") != "video":
            raise DataError(
                f"{key}: segments without their video row in the input manifest; "
                "rerun the build with --force"
            )
        items.append((key, group))
    return items


def _read_done(path: Path, config_hash: str) -> dict[str, dict]:
    """Finished items of an earlier, interrupted or complete run with the same stage config.

    A torn last line (killed mid-write) is ignored; lines of another config are discarded.
    """
    try:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}
    done: dict[str, dict] = {}
    for n, line in enumerate(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if n == 0:
            if rec.get("config") != config_hash:
                return {}
            continue
        if isinstance(rec, dict) and "key" in rec:
            done[rec["key"]] = rec
    return done


class Runner:
    """Runs a pipeline (a sequence of :class:`Stage`) for one config into one build folder."""

    def __init__(
        self,
        cfg: BuildConfig,
        out: Path,
        stages: Sequence[Stage],
        *,
        jobs: int = 1,
        force: bool = False,
        strict: bool = False,
        quiet: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out).absolute()
        self.stages = tuple(stages)
        self.jobs = max(1, int(jobs))
        self.force = force
        self.strict = strict
        self.quiet = quiet
        self.log = log or (lambda m: print(m, file=sys.stderr))
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise UsageError(f"pipeline has duplicate stage names: {', '.join(names)}")
        work = self.out / WORK
        self.dirs: dict[str, Path] = {"sources": work / INPUTS_DIR}
        for i, s in enumerate(self.stages, start=1):
            self.dirs[s.name] = work / f"{i:02d}_{s.name}"
        # Validate every stage's settings once, before anything runs.
        self.settings = {
            s.name: s.configure(cfg) if s.configure else cfg.settings(s.name, s.settings())
            for s in self.stages
        }
        unused = sorted(k for k, v in cfg.sections.items() if v and k not in self.settings)
        if unused:
            raise UsageError(
                f"{cfg.where(unused[0])}: {unused[0]}: this pipeline has no {unused[0]} stage "
                f"yet (stages: {', '.join(names)}); remove the section"
            )

    # ------------------------------------------------------------------ helpers

    def context(self, stage: Stage) -> Context:
        return Context(stage.name, self.out, self.dirs[stage.name], self.cfg, dict(self.dirs))

    def _reads(self, index: int) -> tuple[str, ...]:
        stage = self.stages[index]
        if stage.reads is not None:
            return stage.reads
        return (self.stages[index - 1].name,) if index else ("sources",)

    def _complete(self, name: str) -> dict | None:
        """The stage's fingerprint.json when its last run finished, else None."""
        fp = self.dirs[name] / "fingerprint.json"
        if not fp.is_file() or not (self.dirs[name] / "manifest.jsonl").is_file():
            return None
        try:
            return json.loads(fp.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None

    def _reject_strict(self, stage: str, entries: list[dict]) -> None:
        if self.strict and entries:
            e = entries[0]
            where = f"{e['where']}: " if e.get("where") else ""
            raise DataError(
                f"{e.get('stage', stage)}: {where}{e['id']}: {e['reason']}; {e['fix']} "
                "(stopped by --strict)"
            )

    # ------------------------------------------------------------------ sources step

    def read_inputs(self) -> None:
        """sources (and given segments) tables -> the first manifest; row problems rejected."""
        d = self.dirs["sources"]
        videos, rejected = read_sources(self.cfg.sources)
        _write_if_changed(d / "manifest.jsonl", manifest_bytes(to_json(v) for v in videos))
        if self.cfg.segments is not None:
            topics = {v.source_id: v.topic for v in videos}
            given, bad = read_segments(self.cfg.segments, topics)
            rejected += bad
            segs = [to_json(s) for src in sorted(given) for s in given[src]]
            _write_if_changed(d / "segments.jsonl", manifest_bytes(sort_rows(segs)))
        _write_if_changed(d / "rejected.jsonl", manifest_bytes(rejected))
        self._reject_strict("sources", rejected)

    # ------------------------------------------------------------------ one stage

    def fingerprint(self, index: int, items_salt: str | None = None) -> tuple[dict, str, str]:
        """(record, config hash, fingerprint) of stage ``index`` for the current inputs."""
        stage = self.stages[index]
        extra = stage.inputs(self.cfg, self.dirs)
        config_part = {
            "stage": stage.name,
            "stage_version": stage.version,
            "settings": fingerprint_settings(self.settings[stage.name]),
            "indomer": __version__,
            "tools": (
                stage.tools_for(self.settings[stage.name])
                if stage.tools_for is not None
                else stage.tools()
            ),
            "inputs": {k: sha256_file(p) if p.is_file() else None for k, p in sorted(extra.items())},
        }
        config_hash = _sha(_canon(config_part))
        reads = {}
        for name in self._reads(index):
            path = self.dirs[name] / "manifest.jsonl"
            reads[name] = sha256_file(path) if path.is_file() else None
        record = {"config": config_part, "config_hash": config_hash, "reads": reads}
        if items_salt is not None:
            record["items_salt"] = items_salt
        return record, config_hash, _sha(_canon(record))

    def run_stage(self, index: int) -> StageReport:
        """Skip the stage when its fingerprint and outputs are unchanged, else (re)run it and
        write manifest, rejected and fingerprint, in that order: fingerprint.json present
        means the manifest beside it is whole."""
        stage = self.stages[index]
        report = StageReport(stage.name)
        t0 = time.perf_counter()
        d = self.dirs[stage.name]
        d.mkdir(parents=True, exist_ok=True)
        reads = self._reads(index)
        for name in reads:
            if not (self.dirs[name] / "manifest.jsonl").is_file():
                raise UsageError(
                    f"{stage.name}: needs the {name} manifest ({self.dirs[name]}), which a "
                    f"finished {name} stage writes; run from an earlier stage"
                )
        items: list[tuple[str, list[dict]]] = []
        inputs: dict[str, list[dict]] = {}
        salts: dict[str, str] = {}
        salt = None
        if not stage.per_item:
            inputs = {name: read_manifest(self.dirs[name] / "manifest.jsonl") for name in reads}
            if stage.salt is not None:
                salt = stage.salt(inputs, self.out)
        else:
            items = _group_items(read_manifest(self.dirs[reads[0]] / "manifest.jsonl"))
            if stage.salt is not None:
                for key, group in items:
                    obj = _relocate(group[0], self.out, absolute=True)
                    salts[key] = stage.salt(Item(key, from_json(obj)))
                salt = _sha(_canon(salts))
        record, config_hash, fp = self.fingerprint(index, salt)
        previous = self._complete(stage.name)
        ctx = self.context(stage)
        if (
            not self.force
            and previous is not None
            and previous.get("fingerprint") == fp
            and stage.outputs_ok(ctx, read_manifest(d / "manifest.jsonl"))
        ):
            report.status = "skipped"
            for k in ("items", "kept", "rejected"):
                setattr(report, k, previous.get("stats", {}).get(k, 0))
            report.seconds = time.perf_counter() - t0
            return report
        (d / "fingerprint.json").unlink(missing_ok=True)
        if stage.per_item:
            rows, rejected = self._run_items(stage, ctx, items, salts, config_hash, report)
        else:
            state = stage.setup(self.settings[stage.name], ctx)
            if not self.quiet:
                self.log(f"{stage.name}: running")
            rows, rejected = stage.run(inputs, state, ctx)
            self._reject_strict(stage.name, rejected)
            report.items = sum(len(v) for v in inputs.values())
            report.redone = report.items
        rows = sort_rows(rows)
        rejected = sorted(rejected, key=lambda e: (str(e.get("id")), e.get("where", "")))
        write_bytes_atomic(d / "manifest.jsonl", manifest_bytes(rows))
        write_bytes_atomic(d / "rejected.jsonl", manifest_bytes(rejected))
        report.status = "ran"
        report.kept = _count_kept(rows)
        report.rejected = len(rejected)
        report.seconds = time.perf_counter() - t0
        stats = {k: v for k, v in report.as_dict().items() if k != "status"}
        write_json_atomic(d / "fingerprint.json", {**record, "fingerprint": fp, "stats": stats})
        return report

    def _run_items(
        self,
        stage: Stage,
        ctx: Context,
        items: list[tuple[str, list[dict]]],
        salts: dict[str, str],
        config_hash: str,
        report: StageReport,
    ) -> tuple[list[dict], list[dict]]:
        """Run the items not already in done.jsonl (same stage config, same item input),
        appending each finished one with an fsync, so kill -9 loses only those in flight."""
        d = ctx.workdir
        done_path = d / "done.jsonl"
        hashes = {
            key: _sha(_canon({"rows": group, "salt": salts.get(key)})) for key, group in items
        }
        done = {} if self.force else _read_done(done_path, config_hash)
        reuse = {k: r for k, r in done.items() if k in hashes and r.get("input") == hashes[k]}
        todo = [(k, g) for k, g in items if k not in reuse]
        report.items, report.redone = len(items), len(todo)
        header = dumps_row({"config": config_hash, "stage": stage.name}) + "\n"
        compact = header + "".join(dumps_row(reuse[k]) + "\n" for k in sorted(reuse))
        write_text_atomic(done_path, compact)
        bar = _progress(len(items), len(reuse), f"{stage.name}", stage.unit, self.quiet)
        results = dict(reuse)
        try:
            with open(done_path, "a", encoding="utf-8") as fh:
                for key, rows, rejected in self._execute(stage, ctx, todo):
                    rec = {"key": key, "input": hashes[key], "rows": rows, "rejected": rejected}
                    fh.write(dumps_row(rec) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                    results[key] = rec
                    bar.update(1)
                    self._reject_strict(stage.name, rejected)
        finally:
            bar.close()
        rows = [r for k in sorted(results) for r in results[k]["rows"]]
        rejected = [e for k in sorted(results) for e in results[k]["rejected"]]
        # Keep done.jsonl as the item cache of the finished stage (current items only).
        write_text_atomic(
            done_path, header + "".join(dumps_row(results[k]) + "\n" for k in sorted(results))
        )
        return rows, rejected

    def _execute(
        self, stage: Stage, ctx: Context, todo: list[tuple[str, list[dict]]]
    ) -> Iterator[tuple[str, list[dict], list[dict]]]:
        """Yield finished items, in-process for one job, else from a process pool."""
        if not todo:
            return
        if self.jobs == 1 or len(todo) == 1:
            _init_worker(stage, self.settings[stage.name], ctx)
            for key, group in todo:
                yield _do_item(group, key)
            return
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        mp = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(self.jobs, len(todo)),
            mp_context=mp,
            initializer=_init_worker,
            initargs=(stage, self.settings[stage.name], ctx),
        ) as pool:
            pending = {pool.submit(_do_item, group, key) for key, group in todo}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in sorted(finished, key=lambda f: f.result()[0]):
                        yield fut.result()
            finally:
                for fut in pending:
                    fut.cancel()

    # ------------------------------------------------------------------ whole run

    def rejected_all(self, upto: int) -> list[dict]:
        """Every rejection of the sources step and the stages up to ``upto``, in stage order."""
        out = read_manifest(self.dirs["sources"] / "rejected.jsonl")
        for stage in self.stages[: upto + 1]:
            out.extend(read_manifest(self.dirs[stage.name] / "rejected.jsonl"))
        return out

    def run(self, start: str | None = None, stop: str | None = None) -> dict:
        """Run the stages from ``start`` to ``stop`` (names; default all) under a build lock."""
        from indomer.generation import DatasetLock, check_links, check_target

        check_target(self.out)
        with DatasetLock(self.out):
            check_links(self.out)
            (self.out / WORK).mkdir(parents=True, exist_ok=True)
            return self._run(start, stop)

    def _run(self, start: str | None, stop: str | None) -> dict:
        names = [s.name for s in self.stages]
        for opt, value in (("--from", start), ("--to", stop)):
            if value is not None and value not in names:
                raise UsageError(f"{opt} {value!r}: expected one of {', '.join(names)}")
        i0 = names.index(start) if start else 0
        i1 = names.index(stop) if stop else len(names) - 1
        if i0 > i1:
            raise UsageError(f"--from {start} comes after --to {stop}; swap them")
        _write_if_changed(
            self.out / WORK / "pipeline.json",
            _canon({"indomer": __version__, "stages": names}) + b"\n",
        )
        for name in names[:i0]:
            if self._complete(name) is None:
                raise UsageError(
                    f"--from {start}: the earlier stage {name} has not finished in {self.out} "
                    f"({self.dirs[name].name}); run without --from, or --from {name}"
                )
        t0 = time.perf_counter()
        self.read_inputs()
        reports = [StageReport(n) for n in names]
        waiting = None
        for i in range(i0, i1 + 1):
            reports[i] = self.run_stage(i)
            # The dataset's rejected.jsonl changes only with a new generation (shards stage).
            write_bytes_atomic(
                self.out / WORK / "rejected.jsonl", manifest_bytes(self.rejected_all(i))
            )
            stage = self.stages[i]
            if stage.waiting is not None:
                waiting = stage.waiting(read_manifest(self.dirs[stage.name] / "manifest.jsonl"))
                if waiting is not None:
                    waiting = {**waiting, "stage": stage.name}
                    if waiting.get("halt"):
                        i1 = i  # nothing for the later stages until the wait is over
                        break
        for i in range(i0):
            prev = self._complete(names[i]) or {}
            reports[i].status = "kept"
            for k in ("items", "kept", "rejected"):
                setattr(reports[i], k, prev.get("stats", {}).get(k, 0))
        rejected = self.rejected_all(i1)
        rows = {}
        if names[i1] == names[-1] and (self.out / "build.json").is_file():
            from indomer.dataset import SPLITS

            built = json.loads((self.out / "build.json").read_text(encoding="utf-8"))
            rows = {s: built["rows"][s] for s in SPLITS if s in built.get("rows", {})}
        by_reason = Counter((e["stage"], reason_key(e["reason"])) for e in rejected)
        return {
            "out": str(self.out),
            "stages": [r.as_dict() for r in reports],
            "rejected": len(rejected),
            "rejected_by_reason": [
                {"stage": s, "reason": r, "count": n}
                for (s, r), n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "kept": reports[i1].kept,
            "rows": rows,
            "last_stage": names[i1],
            "waiting": waiting,
            "seconds": time.perf_counter() - t0,
        }


_REASON_NOISE = re.compile(r"'[^']*'|\"[^\"]*\"|\b[0-9a-f]{12,}\b|\d+(?:\.\d+)?")


def reason_key(reason: str) -> str:
    """A reason with its particulars (quoted values, hashes, numbers) masked, for counting."""
    head = reason.split(":", 1)[0] if ":" in reason else reason
    return re.sub(r"\s+", " ", _REASON_NOISE.sub("…", head)).strip()


def run_pipeline(
    config: str | Path | BuildConfig,
    out: str | Path,
    *,
    stages: Sequence[Stage] | None = None,
    jobs: int = 1,
    start: str | None = None,
    stop: str | None = None,
    force: bool = False,
    strict: bool = False,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Build ``out`` from a raw-mode config; return the run report (see :func:`summary`).

    ``stages`` replaces the real stages (tests register small fakes this way); ``start`` /
    ``stop`` are ``--from`` / ``--to``.
    """
    cfg = config if isinstance(config, BuildConfig) else load_config(config)
    runner = Runner(
        cfg,
        Path(out),
        stages if stages is not None else default_stages(),
        jobs=jobs,
        force=force,
        strict=strict,
        quiet=quiet,
        log=log,
    )
    return runner.run(start, stop)


def summary(report: dict) -> list[str]:
    """The end-of-build lines: per stage status, items, kept, rejected, time; rejected by reason."""
    lines = [
        f"{'stage':<10}{'status':<9}{'items':>7}{'redone':>8}{'kept':>7}{'rejected':>10}{'seconds':>10}"
    ]
    for s in report["stages"]:
        lines.append(
            f"{s['name']:<10}{s['status']:<9}{s['items']:>7}{s['redone']:>8}{s['kept']:>7}"
            f"{s['rejected']:>10}{s['seconds']:>10.2f}"
        )
    for r in report["rejected_by_reason"]:
        lines.append(f"rejected {r['count']:>5}  {r['stage']}: {r['reason']}")
    return lines


__all__ = [
    "STAGES",
    "Context",
    "Item",
    "Runner",
    "Stage",
    "default_stages",
    "run_pipeline",
    "summary",
]
