"""The raw-mode pipeline: one ordered tuple of stages and the runner that makes it resumable.

Each stage reads the manifest of the stage before it (``work/NN_stage/manifest.jsonl``, one
JSON row per line, sorted by id) and writes its own, with ``fingerprint.json`` holding a
sha256 of its input manifests, its settings, the indomer and tool versions. A stage whose
fingerprint is unchanged is skipped, so a no-op rebuild costs a few hashes.

Per-item stages (one item = one source video with its segments) run as a streaming chain:
an item finished by one stage goes straight on to the next, so one video can be aligned
while another is still being cut. Each stage appends every finished item to its
``done.jsonl`` (one fsync'd line each, keyed by the item's own input hash), so a build
killed with ``kill -9`` redoes only the items in flight, and a change to one source redoes
only that source. An executor (:mod:`indomer.executors`: this process, a local process pool
with ``--jobs N``, or Ray with ``--engine ray``) runs the items; the runner knows no engine
and no stage by name. Whole-dataset stages (speakers, merge, split, shards) run here, once
every item is through. A :class:`RowRejected` from an item goes to ``rejected.jsonl`` with
the stage, id, reason and fix, and the others go on (``--strict`` stops at the first).

Adding a stage: write its module under ``indomer/stages/`` exporting ``STAGE`` (an
:class:`~indomer.stage.ItemStage` or a :class:`~indomer.stage.DatasetStage`), and add
the module to :data:`STAGES`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indomer import __version__
from indomer.config import (
    STAGE_SECTIONS,
    BuildConfig,
    fingerprint_settings,
    load_config,
    read_segments,
    read_sources,
)
from indomer.errors import DataError, UsageError
from indomer.executors import Finished, InlineExecutor, Job, PoolExecutor
from indomer.faults import fault
from indomer.fsutil import (
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from indomer.logs import log_path, stage_output
from indomer.manifest import (
    canon,
    dumps_row,
    manifest_bytes,
    read_manifest,
    rejected_bytes,
    relocate,
    row_id,
    sha,
    sort_rows,
)
from indomer.rows import from_json, to_json
from indomer.stage import Context, DatasetStage, Inputs, Item, ItemStage, Produced, Stage
from indomer.threads import one_thread, pin_threads

#: The pipeline, in order: each name is a module under ``indomer/stages/`` that exports its
#: ``STAGE`` of that name (stage names are what ``--from/--until``, ``work/NN_name``,
#: manifests and fingerprints know).
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
#: The engines that run the per-item stages (``indomer build --engine``).
ENGINES: tuple[str, ...] = ("local", "ray")
WORK = "work"
INPUTS_DIR = "00_sources"
#: The base of word times in the item journals (``done.jsonl`` headers): seconds from the
#: clip's start (DESIGN §3). A journal without it is from before layout 2 (source seconds).
WORDS_BASE = {"words": "clip"}


def finished_output(out: Path, stage: str, name: str) -> Path | None:
    """File ``name`` (its manifest or a document it declares in ``outputs``) of ``stage``'s
    finished output in the raw build at ``out``, else None.

    The one way other modules reach the runner's ``work/`` (its folder names are the
    runner's own): ``annotate export`` lists the clips waiting for labels, which exist only
    in the merge stage's output, never in the dataset."""
    stages = default_stages()
    names = [s.name for s in stages]
    if stage not in names:
        raise ValueError(f"no stage {stage!r}")
    declared = ("manifest.jsonl", *getattr(stages[names.index(stage)], "outputs", ()))
    if name not in declared:
        raise ValueError(f"stage {stage!r} declares no output {name!r} ({', '.join(declared)})")
    folder = Path(out) / WORK / f"{names.index(stage) + 1:02d}_{stage}"
    if not (folder / "fingerprint.json").is_file() or not (folder / name).is_file():
        return None
    return folder / name


def default_stages() -> tuple[Stage, ...]:
    """The real stages, in :data:`STAGES` order: the ``STAGE`` of each stage module."""
    import importlib

    return tuple(importlib.import_module(f"indomer.stages.{name}").STAGE for name in STAGES)


def config_sections(stages: Sequence[Stage] | None = None) -> dict[str, type | None]:
    """Each stage section of the build config and the Settings dataclass its keys are
    checked against, from the stages' declared ``settings``; None for a stage that reads
    another stage's section (its own takes only ``resources:``)."""
    sections: dict[str, type | None] = {}
    for stage in stages if stages is not None else default_stages():
        if stage.name in STAGE_SECTIONS:  # the others (split: the config's own) have none
            own = stage.section in (None, stage.name)
            sections[stage.name] = stage.settings() if own else None
    return sections


def config_schema_text() -> str:
    """``schemas/build_config.schema.json``: the config's models with every stage section
    typed (:func:`indomer.config.schema_text`)."""
    from indomer.config import schema_text

    return schema_text(config_sections())


# --------------------------------------------------------------------------- the runner


@dataclass
class StageReport:
    """What one stage did in this run (printed in the summary, stored in fingerprint.json).

    ``seconds``: for a per-item stage, the compute time of the items it ran, summed (they
    overlap across workers and stages); for a whole stage, its wall time.
    """

    name: str
    status: str = "not run"  # ran | skipped | kept | not run
    items: int = 0
    redone: int = 0
    kept: int = 0
    rejected: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class _LineProgress:
    """Progress for a stderr that is not a terminal (a log file, CI): plain lines, at most one
    per ``interval`` seconds and one at the end, and no carriage returns or cursor moves,
    which nested tqdm bars leave behind in a file."""

    def __init__(self, total: int, initial: int, desc: str, unit: str,
                 interval: float = 30.0) -> None:
        self.total, self.n, self.desc, self.unit = total, initial, desc, unit
        self.interval = interval
        self._last = time.monotonic()
        self._shown: tuple[int, int] | None = None

    def _line(self) -> None:
        total = self.total or self.n
        if self._shown == (self.n, total):
            return  # nothing new since the last line
        unit = self.unit if total == 1 else f"{self.unit}s"
        print(f"{self.desc}: {self.n}/{total} {unit}", file=sys.stderr, flush=True)
        self._last = time.monotonic()
        self._shown = (self.n, total)

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._line()

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if self.n or self.total:
            self._line()


def _progress(total: int, initial: int, desc: str, unit: str, quiet: bool, position: int = 0):
    """A tqdm bar on a terminal's stderr (counts, rate, ETA), plain lines on any other
    stderr, a no-op stand-in when quiet or no tqdm."""
    if not quiet and not sys.stderr.isatty():
        return _LineProgress(total, initial, desc, unit)
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
                position=position,
            )

    class _Null:
        total = 0

        def update(self, n: int = 1) -> None:
            pass

        def refresh(self) -> None:
            pass

        def close(self) -> None:
            pass

    return _Null()


def _count_kept(rows: list[dict]) -> int:
    """Rows a stage kept, in its own unit: segments once there are any, else videos."""
    segments = sum(r.get("kind") != "video" for r in rows)
    return segments if segments else len(rows)


def _item_group(key: str, rows: list[dict]) -> list[dict]:
    """One item's rows as the next stage reads them: the video row first, then its segments
    by id (what grouping the sorted manifest gives)."""
    group = sorted(sort_rows(rows), key=lambda o: (o.get("kind") != "video", row_id(o)))
    if group[0].get("kind") != "video":
        raise DataError(
            f"{key}: segments without their video row in the input manifest; "
            "rerun the build with --force"
        )
    return group


def _group_items(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """Manifest rows -> per-source items, each the video row first, then its segments."""
    groups: dict[str, list[dict]] = {}
    for obj in rows:
        groups.setdefault(str(obj["source_id"]), []).append(obj)
    return [(key, _item_group(key, groups[key])) for key in sorted(groups)]


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


@dataclass
class _Slot:
    """One stage of a streaming chain while it runs."""

    index: int
    stage: Stage
    ctx: Context
    config_hash: str
    done: dict[str, dict]
    header: str
    fh: Any = None
    bar: Any = None
    results: dict[str, dict] = dataclasses.field(default_factory=dict)
    salts: dict[str, str] = dataclasses.field(default_factory=dict)
    hashes: dict[str, str] = dataclasses.field(default_factory=dict)
    redone: int = 0
    seconds: float = 0.0
    previous_fp: str | None = None


def make_executor(engine: str, jobs: int, *, address: str | None = None,
                  resources: dict | None = None, log: Any = None) -> Any:
    """The executor for ``--engine`` (``local`` or ``ray``) and ``--jobs``: chosen here, by
    the runner, so that ``executors`` never imports the Ray engine built on top of it."""
    if engine == "ray":
        from indomer.ray_engine import RayExecutor

        return RayExecutor(address=address, resources=resources or {}, jobs=jobs, log=log)
    if jobs <= 1:
        return InlineExecutor()
    return PoolExecutor(jobs)


class Runner:
    """Runs a pipeline (a sequence of :class:`Stage`) for one config into one build folder."""

    def __init__(
        self,
        cfg: BuildConfig,
        out: Path,
        stages: Sequence[Stage],
        *,
        jobs: int = 1,
        engine: str = "local",
        address: str | None = None,
        force: bool = False,
        strict: bool = False,
        quiet: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = Path(out).absolute()
        self.stages = tuple(stages)
        self.jobs = max(1, int(jobs))
        if engine not in ENGINES:
            raise UsageError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
        if address is not None and engine != "ray":
            raise UsageError("--address: only with --engine ray (the Ray cluster to join)")
        self.engine = engine
        self.address = address
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
        unused = sorted(
            k
            for k, v in cfg.sections.items()
            if v and (k not in self.settings or self._configured_elsewhere(k))
        )
        if unused:
            key = unused[0]
            if key in self.settings:
                first = min(cfg.sections[key])
                raise UsageError(
                    f"{cfg.where(f'{key}.{first}')}: {key}.{first}: the {key} stage takes its "
                    "settings from another section (voices: from speakers:); only resources: "
                    "goes here"
                )
            raise UsageError(
                f"{cfg.where(key)}: {key}: this pipeline has no {key} stage "
                f"yet (stages: {', '.join(names)}); remove the section"
            )
        self.resources = self._check_resources()
        self.executor: Any = None

    def _configured_elsewhere(self, section: str) -> bool:
        """A stage whose settings come from another section (``section``), so that its own
        section is not read: its keys would be ignored, so they are refused."""
        stage = next((s for s in self.stages if s.name == section), None)
        return stage is not None and stage.section not in (None, stage.name)

    def _check_resources(self) -> dict:
        """``resources:`` only under per-item stages of this pipeline (whole stages run on
        the driver); the keys themselves were checked when the config was read."""
        by_name = {s.name: s for s in self.stages}
        for name in sorted(self.cfg.resources):
            stage = by_name.get(name)
            key = f"{name}.resources"
            if stage is None:
                raise UsageError(
                    f"{self.cfg.where(key)}: {key}: this pipeline has no {name} stage; "
                    "remove the section"
                )
            if not isinstance(stage, ItemStage):
                # an item stage configured from this stage's section does its per-item work
                worker = next((s for s in self.stages if isinstance(s, ItemStage)
                               and s.section == name), None)
                hint = (f" (the per-clip work is the {worker.name} stage: "
                        f"put it under {worker.name}:)" if worker is not None else "")
                raise UsageError(
                    f"{self.cfg.where(key)}: {key}: the {name} stage sees the whole dataset "
                    f"and runs on the driver, so it takes no resources{hint}; remove the key"
                )
        return dict(self.cfg.resources)

    # ------------------------------------------------------------------ helpers

    def context(self, stage: Stage) -> Context:
        return Context(stage.name, self.out, self.dirs[stage.name], self.cfg, dict(self.dirs),
                       self.strict)

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

    def _need_reads(self, index: int) -> tuple[str, ...]:
        stage = self.stages[index]
        reads = self._reads(index)
        for name in reads:
            if not (self.dirs[name] / "manifest.jsonl").is_file():
                raise UsageError(
                    f"{stage.name}: needs the {name} manifest ({self.dirs[name]}), which a "
                    f"finished {name} stage writes; run from an earlier stage"
                )
        return reads

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
        _write_if_changed(d / "rejected.jsonl", rejected_bytes(rejected))
        self._reject_strict("sources", rejected)

    # ------------------------------------------------------------------ fingerprints

    def _config_part(self, index: int) -> tuple[dict, str]:
        """The part of a stage's fingerprint known before it runs: settings, versions, inputs
        (never the engine or its resources)."""
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
        return config_part, sha(canon(config_part))

    def fingerprint(self, index: int, items_salt: str | None = None) -> tuple[dict, str, str]:
        """(record, config hash, fingerprint) of stage ``index`` for the current inputs."""
        config_part, config_hash = self._config_part(index)
        reads = {}
        for name in self._reads(index):
            path = self.dirs[name] / "manifest.jsonl"
            reads[name] = sha256_file(path) if path.is_file() else None
        record = {"config": config_part, "config_hash": config_hash, "reads": reads}
        if items_salt is not None:
            record["items_salt"] = items_salt
        return record, config_hash, sha(canon(record))

    def _item_salts(self, index: int, items: list[tuple[str, list[dict]]]) -> dict[str, str]:
        stage = self.stages[index]
        if stage.salt is None:
            return {}
        return {key: self._salt(stage, key, group) for key, group in items}

    def _salt(self, stage: ItemStage, key: str, group: list[dict]) -> str:
        obj = relocate(group[0], self.out, absolute=True)
        return stage.salt(Item(key, from_json(obj)))

    def _skippable(self, index: int) -> StageReport | None:
        """The stage's report when its fingerprint and outputs are unchanged, else None."""
        stage = self.stages[index]
        reads = self._need_reads(index)
        previous = self._complete(stage.name)
        if self.force or previous is None:
            return None
        t0 = time.perf_counter()
        salt = None
        if isinstance(stage, DatasetStage):
            if stage.salt is not None:
                salt = stage.salt(self._inputs(stage, reads), self.out)
        elif stage.salt is not None:
            items = _group_items(read_manifest(self.dirs[reads[0]] / "manifest.jsonl"))
            salt = sha(canon(self._item_salts(index, items)))
        _, _, fp = self.fingerprint(index, salt)
        d = self.dirs[stage.name]
        if previous.get("fingerprint") != fp or not stage.outputs_ok(
            self.context(stage), read_manifest(d / "manifest.jsonl")
        ):
            return None
        report = StageReport(stage.name, status="skipped")
        for k in ("items", "kept", "rejected"):
            setattr(report, k, previous.get("stats", {}).get(k, 0))
        report.seconds = time.perf_counter() - t0
        return report

    def _commit_stage(
        self, index: int, rows: list[dict], rejected: list[dict], report: StageReport,
        salt: str | None,
    ) -> None:
        """Write manifest, rejected and fingerprint, in that order: fingerprint.json present
        means the manifest beside it is whole."""
        d = self.dirs[self.stages[index].name]
        rows = sort_rows(rows)
        rejected = sorted(rejected, key=lambda e: (str(e.get("id")), e.get("where", "")))
        write_bytes_atomic(d / "manifest.jsonl", manifest_bytes(rows))
        write_bytes_atomic(d / "rejected.jsonl", rejected_bytes(rejected))
        record, _, fp = self.fingerprint(index, salt)
        report.kept = _count_kept(rows)
        report.rejected = len(rejected)
        stats = {k: v for k, v in report.as_dict().items() if k != "status"}
        write_json_atomic(d / "fingerprint.json", {**record, "fingerprint": fp, "stats": stats})

    # ------------------------------------------------------------------ whole stages

    def _document(self, ref: str) -> Any:
        """A declared side document (``"stage/file"``) of an earlier stage, parsed; None when
        that stage is not in this pipeline or wrote none."""
        name, _, file = ref.partition("/")
        d = self.dirs.get(name)
        if d is None or not (d / file).is_file():
            return None
        return json.loads((d / file).read_text(encoding="utf-8"))

    def _inputs(self, stage: DatasetStage, reads: Sequence[str]) -> Inputs:
        return Inputs(
            {name: read_manifest(self.dirs[name] / "manifest.jsonl") for name in reads},
            {ref: self._document(ref) for ref in stage.needs},
        )

    def run_whole(self, index: int) -> StageReport:
        """Run a whole-dataset stage here, on every row of its input manifests."""
        stage = self.stages[index]
        report = StageReport(stage.name)
        t0 = time.perf_counter()
        d = self.dirs[stage.name]
        d.mkdir(parents=True, exist_ok=True)
        inputs = self._inputs(stage, self._need_reads(index))
        salt = stage.salt(inputs, self.out) if stage.salt is not None else None
        (d / "fingerprint.json").unlink(missing_ok=True)
        ctx = self.context(stage)
        with stage_output(log_path(self.out)):
            state = stage.setup(self.settings[stage.name], ctx)
        if not self.quiet:
            self.log(f"{stage.name}: running")
        with stage_output(log_path(self.out)):
            produced: Produced = stage.process(inputs, state)
        if set(produced.documents) != set(stage.outputs):
            raise TypeError(
                f"stage {stage.name} returned the documents {sorted(produced.documents)}, "
                f"but declares {sorted(stage.outputs)}"
            )
        for file in stage.outputs:
            write_json_atomic(d / file, produced.documents[file])
        rows, rejected = list(produced.rows), list(produced.rejected)
        self._reject_strict(stage.name, rejected)
        report.items = sum(len(v) for v in inputs.manifests.values())
        report.redone = report.items
        report.status = "ran"
        report.seconds = time.perf_counter() - t0
        self._commit_stage(index, rows, rejected, report, salt)
        return report

    # ------------------------------------------------------------------ streaming chains

    def _chain_end(self, i: int, last: int) -> int:
        """The last stage of the streaming chain starting at per-item stage ``i``: the
        following per-item stages that read only the stage before them."""
        j = i
        while (
            j + 1 <= last
            and isinstance(self.stages[j + 1], ItemStage)
            and self._reads(j + 1) == (self.stages[j].name,)
        ):
            j += 1
        return j

    def _open_slot(self, index: int) -> _Slot:
        stage = self.stages[index]
        d = self.dirs[stage.name]
        d.mkdir(parents=True, exist_ok=True)
        _, config_hash = self._config_part(index)
        done_path = d / "done.jsonl"
        done = {} if self.force else _read_done(done_path, config_hash)
        header = dumps_row({"config": config_hash, "stage": stage.name, **WORDS_BASE}) + "\n"
        previous = (self._complete(stage.name) or {}).get("fingerprint")
        (d / "fingerprint.json").unlink(missing_ok=True)
        return _Slot(index, stage, self.context(stage), config_hash, done, header,
                     previous_fp=previous)

    def run_chain(self, i: int, j: int) -> list[StageReport]:
        """Run per-item stages ``i..j`` as one stream: each finished item is journaled in
        its stage's done.jsonl (fsync'd) and handed to the next stage at once."""
        slots = [self._open_slot(k) for k in range(i, j + 1)]
        first_reads = self._need_reads(i)
        items = _group_items(read_manifest(self.dirs[first_reads[0]] / "manifest.jsonl"))
        # Items still valid for the first stage keep their journal lines; the rest of each
        # journal is compacted as items arrive (a stage's items are not known in advance).
        for slot in slots:
            keep = slot.done
            path = slot.ctx.workdir / "done.jsonl"
            write_text_atomic(
                path, slot.header + "".join(dumps_row(keep[k]) + "\n" for k in sorted(keep))
            )
            slot.fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        executor = self.executor
        try:
            executor.open(
                [
                    Job(n, s.stage, self.settings[s.stage.name], s.ctx,
                        self.resources.get(s.stage.name))
                    for n, s in enumerate(slots)
                ]
            )
            for n, s in enumerate(slots):
                total = len(items) if n == 0 else 0
                s.bar = _progress(total, 0, s.stage.name, s.stage.unit, self.quiet, position=n)
            for key, group in items:
                self._feed(slots, 0, key, group)
            while executor.pending():
                fin: Finished = executor.next_finished()
                slot = slots[fin.slot]
                rec = {"key": fin.key, "input": slot.hashes[fin.key], "rows": fin.rows,
                       "rejected": fin.rejected}
                slot.fh.write(dumps_row(rec) + "\n")
                slot.fh.flush()
                os.fsync(slot.fh.fileno())
                slot.redone += 1
                fault(f"journaled:{slot.stage.name}:{slot.redone}")
                slot.seconds += fin.seconds
                self._accept(slots, fin.slot, fin.key, rec)
        finally:
            executor.close()
            for s in slots:
                if s.fh is not None:
                    s.fh.close()
                if s.bar is not None:
                    s.bar.close()
        reports = []
        for n, s in enumerate(slots):
            results = s.results
            # Keep done.jsonl as the item cache of the finished stage (current items only).
            write_text_atomic(
                s.ctx.workdir / "done.jsonl",
                s.header + "".join(dumps_row(results[k]) + "\n" for k in sorted(results)),
            )
            rows = [r for k in sorted(results) for r in results[k]["rows"]]
            rejected = [e for k in sorted(results) for e in results[k]["rejected"]]
            report = StageReport(s.stage.name, status="ran", items=len(results),
                                 redone=s.redone, seconds=s.seconds)
            salt = sha(canon(s.salts)) if s.stage.salt is not None else None
            self._commit_stage(s.index, rows, rejected, report, salt)
            if s.redone == 0 and s.previous_fp is not None and s.previous_fp == self._fp_of(s.index):
                report.status = "skipped"  # nothing to do: as the stage-by-stage check says
            reports.append(report)
        return reports

    def _fp_of(self, index: int) -> str | None:
        rec = self._complete(self.stages[index].name)
        return rec.get("fingerprint") if rec else None

    def _feed(self, slots: list[_Slot], n: int, key: str, group: list[dict]) -> None:
        """Hand one item to slot ``n``: from its journal when its input is unchanged, else
        to the executor."""
        slot = slots[n]
        stage = slot.stage
        if stage.salt is not None:
            slot.salts[key] = self._salt(stage, key, group)
        h = sha(canon({"rows": group, "salt": slot.salts.get(key)}))
        slot.hashes[key] = h
        rec = slot.done.get(key)
        if rec is not None and rec.get("input") == h:
            self._accept(slots, n, key, rec)
            return
        self.executor.submit(n, key, group)

    def _accept(self, slots: list[_Slot], n: int, key: str, rec: dict) -> None:
        slot = slots[n]
        slot.results[key] = rec
        slot.bar.update(1)
        self._reject_strict(slot.stage.name, rec["rejected"])
        if n + 1 < len(slots) and rec["rows"]:
            nxt = slots[n + 1]
            nxt.bar.total = (nxt.bar.total or 0) + 1
            nxt.bar.refresh()
            self._feed(slots, n + 1, key, _item_group(key, rec["rows"]))

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

        names = [s.name for s in self.stages]
        for opt, value in (("--from", start), ("--until", stop)):
            if value is not None and value not in names:
                raise UsageError(f"{opt} {value!r}: expected one of {', '.join(names)}")
        check_target(self.out)
        # The aligner's bytes depend on the BLAS and OpenMP thread counts, and Ray runs its
        # workers with OMP_NUM_THREADS=1: every engine and --jobs runs with 1, set before a
        # worker starts, and held inside the driver too (--jobs 1; indomer.threads).
        pin_threads()
        self.executor = make_executor(
            self.engine, self.jobs, address=self.address, resources=self.resources,
            log=None if self.quiet else self.log,
        )
        try:
            # connect, and refuse resources no node can ever give, before anything is written
            self.executor.start([(s, self.settings[s.name]) for s in self.stages
                                 if isinstance(s, ItemStage)])
            with DatasetLock(self.out):
                check_links(self.out)
                (self.out / WORK).mkdir(parents=True, exist_ok=True)
                with one_thread():
                    return self._run(start, stop)
        finally:
            self.executor.shutdown()

    def _run(self, start: str | None, stop: str | None) -> dict:
        names = [s.name for s in self.stages]
        i0 = names.index(start) if start else 0
        i1 = names.index(stop) if stop else len(names) - 1
        if i0 > i1:
            raise UsageError(f"--from {start} comes after --until {stop}; swap them")
        _write_if_changed(
            self.out / WORK / "pipeline.json",
            canon({"indomer": __version__, "stages": names}) + b"\n",
        )
        for name in names[:i0]:
            if self._complete(name) is None:
                raise UsageError(
                    f"--from {start}: the earlier stage {name} has not finished in {self.out} "
                    f"({self.dirs[name].name}); run without --from, or --from {name}"
                )
        t0 = time.perf_counter()
        if migrate_work(self.out / WORK) and not self.quiet:
            self.log("migrated work/ to word times from the clip's start (dataset layout 2)")
        self.read_inputs()
        reports = [StageReport(n) for n in names]
        waiting = None
        i = i0
        while i <= i1:
            skipped = self._skippable(i)
            if skipped is not None:
                ran, last = [skipped], i
            elif isinstance(self.stages[i], ItemStage):
                last = self._chain_end(i, i1)
                ran = self.run_chain(i, last)
            else:
                ran, last = [self.run_whole(i)], i
            reports[i : last + 1] = ran
            # The dataset's rejected.jsonl changes only with a new generation (shards stage).
            write_bytes_atomic(
                self.out / WORK / "rejected.jsonl", rejected_bytes(self.rejected_all(last))
            )
            halted = False
            for k in range(i, last + 1):
                stage = self.stages[k]
                if stage.waiting is not None:
                    waiting = stage.waiting(read_manifest(self.dirs[stage.name] / "manifest.jsonl"))
                    if waiting is not None:
                        waiting = {**waiting, "stage": stage.name}
                        if waiting.get("halt"):
                            i1, halted = k, True  # nothing for later stages until the wait ends
                            break
            if halted:
                break
            i = last + 1
        for k in range(i0):
            prev = self._complete(names[k]) or {}
            reports[k].status = "kept"
            for key in ("items", "kept", "rejected"):
                setattr(reports[k], key, prev.get("stats", {}).get(key, 0))
        from indomer.generation import current_generation, mark_layout

        if current_generation(self.out) is None:
            mark_layout(self.out)  # the work is in the current layout, and no old shards remain
        rejected = self.rejected_all(i1)
        rows = {}
        if names[i1] == names[-1] and (self.out / "build.json").is_file():
            from indomer.dataset import SPLITS

            built = json.loads((self.out / "build.json").read_text(encoding="utf-8"))
            rows = {s: built["rows"][s] for s in SPLITS if s in built.get("rows", {})}
        by_reason = Counter((e["stage"], reason_key(e["reason"])) for e in rejected)
        # the declared documents of the whole-dataset stages this run reached, for the
        # closing lines (nobody else reads work/)
        documents = {}
        for stage in self.stages[: i1 + 1]:
            if isinstance(stage, DatasetStage) and self._complete(stage.name) is not None:
                for file in stage.outputs:
                    documents[f"{stage.name}/{file}"] = self._document(f"{stage.name}/{file}")
        return {
            "out": str(self.out),
            "engine": self.engine,
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
            "documents": documents,
            "seconds": time.perf_counter() - t0,
        }


def rebase_words(row: dict) -> dict:
    """A segment row whose word times counted from the source video, counted from its clip."""
    start = row.get("start")
    if row.get("kind") != "segment" or not row.get("words") or start is None:
        return row
    words = []
    for w in row["words"]:
        w = dict(w)
        for key in ("start", "end"):
            if w.get(key) is not None:
                w[key] = round(w[key] - start, 6)
        words.append(w)
    return {**row, "words": words}


def migrate_work(work: Path) -> bool:
    """Move a build folder's item journals to word times from the clip's start (layout 2).

    A journal (``work/NN_stage/done.jsonl``) whose header lacks :data:`WORDS_BASE` was
    written with word times in source seconds: its segment rows are re-based, so the items
    whose input is unchanged are still served from it (no re-alignment); later stages see
    new rows and redo theirs. Every stage's ``fingerprint.json`` goes first, so that a kill
    half-way leaves stages that rerun, never an old manifest taken as current. Idempotent.
    Returns whether anything was migrated.
    """
    journals = []
    for path in sorted(Path(work).glob("[0-9][0-9]_*/done.jsonl")):
        try:
            with path.open("rb") as fh:
                head = json.loads(fh.readline() or b"{}")
        except (OSError, json.JSONDecodeError):
            continue  # unreadable: _read_done discards it anyway
        if isinstance(head, dict) and head.get("words") != WORDS_BASE["words"]:
            journals.append((path, head))
    if not journals:
        return False
    for fp in sorted(Path(work).glob("[0-9][0-9]_*/fingerprint.json")):
        fp.unlink()
    for path, head in journals:
        lines = [dumps_row({**head, **WORDS_BASE}) + "\n"]
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines()[1:]:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line: dropped, as _read_done would
            if isinstance(rec, dict) and isinstance(rec.get("rows"), list):
                rec["rows"] = [rebase_words(r) for r in rec["rows"]]
            lines.append(dumps_row(rec) + "\n")
        write_text_atomic(path, "".join(lines))
    return True


def _write_if_changed(path: Path, data: bytes) -> None:
    """Rewrite only when the bytes differ (keeps mtimes, saves a fsync on no-op builds)."""
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_bytes_atomic(path, data)


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
    engine: str = "local",
    address: str | None = None,
    start: str | None = None,
    stop: str | None = None,
    force: bool = False,
    strict: bool = False,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Build ``out`` from a raw-mode config; return the run report (see :func:`summary`).

    ``stages`` replaces the real stages (tests register small fakes this way); ``start`` /
    ``stop`` are ``--from`` / ``--to``; ``engine`` / ``address`` choose what runs the
    per-item stages (``local``: this machine; ``ray``: a Ray cluster, local when no address).
    """
    cfg = config if isinstance(config, BuildConfig) else load_config(config)
    runner = Runner(
        cfg,
        Path(out),
        stages if stages is not None else default_stages(),
        jobs=jobs,
        engine=engine,
        address=address,
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
    "ENGINES",
    "STAGES",
    "Context",
    "DatasetStage",
    "Inputs",
    "Item",
    "ItemStage",
    "Produced",
    "Runner",
    "Stage",
    "config_schema_text",
    "config_sections",
    "default_stages",
    "read_manifest",
    "run_pipeline",
    "summary",
]
