"""The raw-mode tail: merge labels onto the cut segments, split, write the shards.

Three whole stages (they see every row at once, so they have no per-item resume; they take
seconds):

- **merge**: transcripts and annotator sheets (:func:`indomer.merge.merge_sheets`) onto
  the segments. A segment no sheet labels yet *waits for labels*: it stays in the merge
  manifest as a plain segment (so ``indomer annotate export`` can hand it to annotators),
  is not a rejection and never reaches a shard; ``labels.json`` lists it under ``waiting``.
  A segment whose annotators reached no majority on a field and no expert settled it
  (:func:`indomer.merge.contested_ids`) *waits for the expert* the same way: kept in the
  manifest as kind ``unresolved`` with its votes (for ``annotate export --only
  unresolved``), listed under ``unresolved_clips``, never in a shard with that label
  missing. When no segment is labelled (a build before labels, no ``annotations:`` in the
  config), the build stops after this stage, successfully. Sheet or transcript ids matching no
  segment are listed in ``rejected.jsonl``. Nothing disappears silently.
- **split**: :func:`indomer.split.speaker_disjoint_split` (grouped by source video until
  the speakers stage provides speaker ids), checked by the leakage guard.
- **shards**: one new dataset generation (:mod:`indomer.generation`): the shards with the
  clip wav/mp4 bytes embedded, ``splits/NAME.json``, ``rejected.jsonl`` and ``build.json``
  (config, inputs with sha256, versions, stage counts, never run times), committed at once.
  Same inputs, same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from indomer import __version__
from indomer.config import BuildConfig, SplitConfig, read_transcripts, reject
from indomer.dataset import COLUMNS, SPLITS, MediaFile, write_split
from indomer.errors import DataError
from indomer.fsutil import file_digest, write_json_atomic
from indomer.labels import TASKS
from indomer.stage import Context, Stage

#: Row kind of a labelled segment in the merge manifest (videos pass through as "video").
EXAMPLE = "example"
_SEGMENT_KEYS = ("id", "source_id", "segment_index", "topic", "start", "end")


#: The merge manifest's kind for a segment that waits for labels (the segment row as cut).
WAITING = "segment"
#: The merge manifest's kind for a labelled segment whose votes settled nothing (no
#: majority, no expert) on some field: it waits for the expert, out of the shards.
UNRESOLVED = "unresolved"
#: What the build prints for the clips that wait (OUT filled in by the build command).
EXPORT_COMMAND = "indomer annotate export {out} --to DIR"
EXPERT_COMMAND = "indomer annotate export {out} --to DIR --only unresolved"


def _sheet_paths(cfg: BuildConfig) -> list[Path]:
    from indomer.merge import sheet_files

    return sheet_files(cfg.annotations)[0] if cfg.annotations else []


def _input_name(cfg: BuildConfig, path: Path) -> str:
    """A file's name for build.json: relative to the config folder, else its base name."""
    path = Path(path).absolute()
    return path.relative_to(cfg.root).as_posix() if path.is_relative_to(cfg.root) else path.name


# --------------------------------------------------------------------------- merge


def merge_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    """Files whose bytes decide the merge: the transcripts and every annotator sheet."""
    files = {f"annotations/{i:03d}/{p.name}": p for i, p in enumerate(_sheet_paths(cfg))}
    if cfg.transcripts is not None:
        files["transcripts"] = cfg.transcripts
    return files


def merge_run(inputs: dict[str, list[dict]], state: Any, ctx: Context) -> tuple[list, list]:
    """Labelled segments (kind ``example``) plus the video rows; the unlabelled rejected."""
    from indomer.merge import merge_rows, merge_sheets

    cfg = ctx.config
    rows = [r for rs in inputs.values() for r in rs]
    videos = [r for r in rows if r.get("kind") == "video"]
    segments = [r for r in rows if r.get("kind") == "segment"]
    known = {s["id"] for s in segments}
    rejected: list[dict] = []
    texts: dict[str, str] = {}
    if cfg.transcripts is not None:
        texts, bad = read_transcripts(cfg.transcripts)
        rejected += bad
        for seg_id in sorted(set(texts) - known):
            rejected.append(
                reject(
                    "merge",
                    seg_id,
                    "transcript for a segment the build does not have",
                    "check the id (or an earlier rejection of that segment)",
                    _input_name(cfg, cfg.transcripts),
                )
            )
    # no sheets yet: nothing labelled, every segment waits (a build before labels)
    result = merge_sheets(cfg.annotations) if cfg.annotations else merge_rows([])
    for r in result.rejected:
        rejected.append(
            reject(
                "merge", r.get("id"), r["reason"], r["fix"], f"{Path(r['file']).name}:{r['line']}"
            )
        )
    for seg_id in sorted(set(result.segments) - known):
        rejected.append(
            reject(
                "merge",
                seg_id,
                "annotator sheets label a segment the build does not have",
                "check the id in the sheet (or an earlier rejection of that segment)",
                "annotator sheets",
            )
        )
    from indomer.merge import contested_ids

    examples = []
    waiting = []
    held = set(contested_ids(result.unresolved))
    for seg in segments:
        merged = result.segments.get(seg["id"])
        if merged is None:
            # no labels yet: not a rejection; kept as the segment row, for annotate export
            waiting.append({**seg, "text": texts.get(seg["id"], seg.get("text"))})
            continue
        row = {k: seg[k] for k in _SEGMENT_KEYS}
        row.update(
            kind=EXAMPLE,
            speaker_id=seg.get("speaker_id"),
            speaker_group=(seg.get("speaker") or {}).get("group"),
            text=texts.get(seg["id"], seg.get("text")),
            text_source=(
                "manual"
                if seg["id"] in texts
                else seg.get("text_source") or ("manual" if seg.get("text") else None)
            ),
            words=seg.get("words"),
            face=seg.get("face"),
            audio_path=seg.get("audio_path"),
            video_path=seg.get("video_path"),
            **merged.row(),
        )
        if seg["id"] in held:
            row["kind"] = UNRESOLVED  # waits for the expert, with its votes
        examples.append(row)
    write_json_atomic(
        ctx.workdir / "labels.json",
        {
            "agreement": result.agreement,
            "warnings": list(result.warnings),
            "rule_violations": list(result.rule_violations),
            "unresolved": list(result.unresolved),
            "waiting": sorted(seg["id"] for seg in waiting),
            "unresolved_clips": sorted(held & known),
            "inputs": {
                f"annotations/{_input_name(cfg, Path(p))}": v for p, v in result.inputs.items()
            },
        },
    )
    return videos + examples + waiting, rejected


def merge_waiting(rows: list[dict]) -> dict | None:
    """The clips of the merge manifest that wait, for the end-of-build lines:
    ``{"count", "labelled", "what", "next", "halt", "unresolved", "unresolved_what",
    "unresolved_next"}``: ``count`` clips wait for labels, ``unresolved`` for the expert;
    ``halt`` when none is labelled and settled (the split and shards stages have nothing to
    do yet). None when every clip is in the shards."""
    count = sum(r.get("kind") == WAITING for r in rows)
    unresolved = sum(r.get("kind") == UNRESOLVED for r in rows)
    labelled = sum(r.get("kind") == EXAMPLE for r in rows)
    if not count and not unresolved:
        return None
    return {
        "count": count,
        "labelled": labelled,
        "what": "clip(s) wait for labels",
        "next": EXPORT_COMMAND,
        "halt": labelled == 0,
        "unresolved": unresolved,
        "unresolved_what": "clip(s) unresolved (no majority)",
        "unresolved_next": EXPERT_COMMAND,
    }


def agreement_lines(agreement: dict) -> list[str]:
    """One line per field of a merge's agreement record (``build.json``'s ``agreement``)."""
    lines = []
    for field_name, a in agreement.items():
        kappa, alpha = (
            "n/a" if a.get(k) is None else f"{a[k]:.3f}"
            for k in ("fleiss_kappa", "krippendorff_alpha")
        )
        lines.append(
            f"agreement {field_name}: Fleiss' kappa {kappa}, Krippendorff's alpha {alpha} "
            f"({a.get('level')}; {a.get('items')} items, {a.get('annotators')} annotators)"
        )
    return lines


def labels_summary(out: Path) -> list[str]:
    """The build's closing lines about labels, from the merge stage's ``labels.json``: each
    field's agreement among the annotators (Fleiss' kappa, Krippendorff's alpha) and how many
    clips are unlabelled and unresolved. Empty when the merge has not run (no sheets yet)."""
    found = sorted(Path(out).glob("work/*_merge/labels.json"))
    if not found:
        return []
    labels = json.loads(found[-1].read_text(encoding="utf-8"))
    lines = agreement_lines(labels.get("agreement") or {})
    if "unresolved_clips" in labels:  # the clips held back for the expert
        unresolved = set(labels["unresolved_clips"])
    else:
        unresolved = {u["id"] for u in labels.get("unresolved", []) if u.get("id")}
    unlabelled = [i for i in labels.get("waiting", []) if i not in unresolved]
    lines.append(
        f"{len(unlabelled)} clip(s) unlabelled, {len(unresolved)} unresolved "
        "(annotators reached no majority and no expert decided)"
    )
    return lines


# --------------------------------------------------------------------------- split


def identity_summary(out: Path) -> tuple[list[str], list[str]]:
    """The build's closing lines about identity: (warnings, for stderr: the speakers stage's
    and the split step's, e.g. too few groups; summary lines, for stdout: the split's expected
    people on two sides). Empty when those stages have not run."""
    from indomer.split import linking_line

    warnings: list[str] = []
    lines: list[str] = []
    identity = sorted(Path(out).glob("work/*_speakers/identity.json"))
    if identity:
        record = json.loads(identity[-1].read_text(encoding="utf-8"))
        warnings += [str(w) for w in record.get("warnings") or []]
    found = sorted(Path(out).glob("work/*_split/split.json"))
    if found:
        info = json.loads(found[-1].read_text(encoding="utf-8"))
        if info.get("warning"):
            warnings.append(info["warning"])
        doc = info.get("document") or {}
        if doc.get("linking"):
            lines.append(f"split {doc.get('name')}: {linking_line(doc)}")
    return [f"warning: {w}" for w in warnings], lines


def _identity(ctx: Context) -> dict | None:
    """The speakers stage's identity record (split groups, operating point), if it ran."""
    d = ctx.dirs.get("speakers")
    path = d / "identity.json" if d is not None else None
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def split_config(cfg: BuildConfig) -> SplitConfig:
    """The split stage's settings are the config's ``split:`` section."""
    return cfg.split


def split_run(inputs: dict[str, list[dict]], cfg: SplitConfig, ctx: Context) -> tuple[list, list]:
    """One split name per example, speaker-disjoint; the document goes to ``split.json``."""
    from indomer.split import default_name, fallback_warning, group_column, plan_split

    rows = [r for rs in inputs.values() for r in rs if r.get("kind") == EXAMPLE]
    if not rows:
        raise DataError("no labelled segments left to split; see rejected.jsonl for why")
    df = pd.DataFrame(
        {
            k: pd.Series([r.get(k) for r in rows], dtype=object)
            for k in ("id", "source_id", "speaker_id", "speaker_group", *TASKS)
        }
    )
    identity = _identity(ctx)
    heard: list[str] = []

    # a build always ends with a dataset: too few groups leave splits empty, with a warning
    # (--strict refuses instead)
    checked, doc = plan_split(
        df,
        cfg.ratios,
        cfg.seed,
        cfg.stratify,
        cfg.name or default_name(cfg.seed),
        linking=identity,
        warn=heard.append,
        few_groups_ok=True,
    )
    empty = [s for s in doc["report"]["splits"] if not doc["report"]["sizes"].get(s)]
    empty += [s for s in doc["ratios"] if s not in doc["report"]["splits"]]
    if empty and ctx.strict:
        raise DataError(f"split: {heard[-1]} (stopped by --strict)")
    key, _, missing = group_column(checked)
    fallback = fallback_warning(key, missing, len(df))
    heard = [w for w in heard if w != fallback]
    warning = "; ".join([*([fallback] if fallback else []), *heard]) or None
    write_json_atomic(ctx.workdir / "split.json", {"document": doc, "warning": warning})
    return [{"id": i, "split": s} for i, s in zip(checked["id"], checked["split"])], []


# --------------------------------------------------------------------------- shards


def identity_input(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    """The speakers stage's identity record, hashed into the split's fingerprint."""
    d = dirs.get("speakers")
    return {"identity": d / "identity.json"} if d is not None else {}


def shards_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    """Everything build.json records by hash: the config and every input table and sheet."""
    files = {"config": cfg.path, "sources": cfg.sources}
    if cfg.segments is not None:
        files["segments"] = cfg.segments
    files.update(merge_inputs(cfg, dirs))
    return files


def shards_stage_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    """What the shards stage's fingerprint hashes: the inputs and the identity record."""
    return {**shards_inputs(cfg, dirs), **identity_input(cfg, dirs)}


def media_salt(inputs: dict[str, list[dict]], out: Path) -> str:
    """Size and mtime of every clip to embed: a re-cut clip rewrites the shards, cheaply."""
    h = hashlib.sha256()
    for r in inputs.get("merge", []):
        for key in ("audio_path", "video_path"):
            rel = r.get(key)
            if rel:
                try:
                    st = os.stat(Path(out) / rel)
                    h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                except OSError:
                    h.update(f"{rel}\0missing\n".encode())
    return h.hexdigest()


def shards_ok(ctx: Context, rows: list[dict]) -> bool:
    """The shard and split files this stage wrote are still there, unchanged."""
    if not (ctx.out / "build.json").is_file():
        return False
    for r in rows:
        p = ctx.out / r["id"]
        if not p.is_file() or p.stat().st_size != r["bytes"] or file_digest(p)["sha256"] != r["sha256"]:
            return False
    return True


def _media(rel: str | None, out: Path, name: str) -> MediaFile | None:
    """The clip to embed (read when its shard is written), or None when it is missing."""
    if not rel:
        return None
    p = out / rel
    return MediaFile(p, name) if p.is_file() else None


def _stage_records(ctx: Context) -> dict:
    stages = {}
    for name, d in ctx.dirs.items():
        if name in ("sources", ctx.name):
            continue
        try:
            fp = json.loads((d / "fingerprint.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        stats = dict(fp.get("stats", {}))
        stats.pop("name", None)
        # Wall-clock time stays in work/ and the summary: build.json must be byte-identical
        # across builds of the same inputs.
        stats.pop("seconds", None)
        # What this run redid is history of the run, not of the dataset: a resumed build
        # must write the same build.json as a clean one.
        stats.pop("redone", None)
        stages[name] = {
            "settings": fp["config"]["settings"],
            "tools": fp["config"]["tools"],
            "stats": stats,
        }
    return stages


def shards_run(inputs: dict[str, list[dict]], state: Any, ctx: Context) -> tuple[list, list]:
    """Commit one generation (data/*.parquet, splits/NAME.json, rejected.jsonl, build.json,
    card, Croissant; :mod:`indomer.generation`) and list the files it holds."""
    from indomer.generation import writing
    from indomer.labels import labels_sha256
    from indomer.versions import library_versions

    cfg, out = ctx.config, ctx.out
    where = {r["id"]: r["split"] for r in inputs["split"]}
    rows = [r for r in inputs["merge"] if r.get("kind") == EXAMPLE]
    videos = [r for r in inputs["merge"] if r.get("kind") == "video"]
    media = {"dir": "clips", "audio": 0, "video": 0, "missing_audio": [], "missing_video": []}
    per_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for r in rows:
        rec = {k: r.get(k) for k in COLUMNS if k not in ("audio", "video")}
        rec["audio"] = _media(r.get("audio_path"), out, f"{r['id']}.wav")
        rec["video"] = _media(r.get("video_path"), out, f"{r['id']}.mp4")
        for col in ("audio", "video"):
            if rec[col] is None:
                media[f"missing_{col}"].append(r["id"])
            else:
                media[col] += 1
        per_split[where[r["id"]]].append(rec)
    media["missing_audio"].sort()
    media["missing_video"].sort()
    split_info = json.loads((ctx.dirs["split"] / "split.json").read_text(encoding="utf-8"))
    doc = split_info["document"]
    labels = json.loads((ctx.dirs["merge"] / "labels.json").read_text(encoding="utf-8"))
    inputs_meta = {
        _input_name(cfg, p) if k != "config" else cfg.path.name: file_digest(p)
        for k, p in sorted(shards_inputs(cfg, ctx.dirs).items())
    }
    sources = {}
    for v in sorted(videos, key=lambda v: v["source_id"]):
        sources[v["source_id"]] = {
            "sha256": v.get("sha256"),
            "license": v.get("license"),
            "topic": v.get("topic"),
            "url": v.get("url"),
            "duration": v.get("duration"),
        }
    stages = _stage_records(ctx)
    tools = {}
    for rec in stages.values():
        tools.update(rec["tools"])
    warnings = list(labels["warnings"])
    if split_info.get("warning"):
        warnings.append(split_info["warning"])
    origins = Counter(r.get("text_source") or "none" for r in rows)
    build = {
        "indomer": __version__,
        "command": "build CONFIG",
        "text_sources": dict(sorted(origins.items())),
        "machine_text": sorted(r["id"] for r in rows if r.get("text_source") == "asr"),
        "source": {"kind": "raw sources (indomer build CONFIG)", "config": cfg.path.name},
        "config": cfg.document,
        "inputs": inputs_meta,
        "sources": sources,
        "labels_sha256": labels_sha256(),
        "versions": {**library_versions(), **tools},
        "stages": stages,
        "rejected": len(ctx.rejected_before()),
        "warnings": warnings,
        "media": media,
        "agreement": labels["agreement"],
        # clips kept out of the shards until labelled, or until the expert settles them
        "waiting": {
            "unlabelled": list(labels.get("waiting", [])),
            "unresolved": list(labels.get("unresolved_clips", [])),
        },
        "rule_violations": labels["rule_violations"],
        "repaired_texts": [],
    }
    identity = _identity(ctx)
    if identity is not None:
        build["speakers"] = identity
    with writing(out, base=False, keep_new=True) as gen:
        for split in SPLITS:
            if per_split[split]:
                df = pd.DataFrame(
                    {
                        c: pd.Series([rec[c] for rec in per_split[split]], dtype=object)
                        for c in COLUMNS
                    }
                )
                write_split(gen.path, split, df, {"indomer": __version__, "config": cfg.document})
        gen.write_json(f"splits/{doc['name']}.json", doc)
        gen.write_text(
            "rejected.jsonl",
            "".join(
                json.dumps(e, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
                for e in ctx.rejected_before()
            ),
        )
        build = gen.commit(build)
    listing = [
        {"id": f["path"], "sha256": f["sha256"], "bytes": f["bytes"]}
        for part in build["outputs"]["splits"].values()
        for f in part["files"]
    ]
    split_file = f"splits/{doc['name']}.json"
    listing.append({"id": split_file, **_digest_bytes(out / split_file)})
    return listing, []


def _digest_bytes(p: Path) -> dict:
    d = file_digest(p)
    return {"sha256": d["sha256"], "bytes": d["size"]}


def tail_stages() -> dict[str, Stage]:
    """merge, split and shards as pipeline stages (see :mod:`indomer.pipeline`)."""
    return {
        "merge": Stage(
            "merge",
            merge_run,
            per_item=False,
            inputs=merge_inputs,
            unit="segment",
            waiting=merge_waiting,
        ),
        "split": Stage(
            "split",
            split_run,
            per_item=False,
            configure=split_config,
            inputs=identity_input,
            unit="segment",
        ),
        "shards": Stage(
            "shards",
            shards_run,
            per_item=False,
            reads=("merge", "split"),
            inputs=shards_stage_inputs,
            salt=media_salt,
            outputs_ok=shards_ok,
            unit="segment",
        ),
    }


__all__ = [
    "agreement_lines",
    "labels_summary",
    "merge_run",
    "merge_waiting",
    "shards_run",
    "split_run",
    "tail_stages",
]
