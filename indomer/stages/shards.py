"""Shards stage: one new dataset generation (whole dataset).

The shards with the clip wav/mp4 bytes embedded, ``splits/NAME.json``, ``rejected.jsonl``
and ``build.json`` (config, inputs with sha256, versions, stage counts, never run times),
committed at once (:mod:`indomer.generation`). Same inputs, same bytes. It reads the merge
and split manifests and the declared documents of the merge (labels), split (its document)
and speakers (identity) stages.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from indomer.config import BuildConfig
from indomer.dataset import COLUMNS, SPLITS, MediaFile
from indomer.fsutil import file_digest
from indomer.stage import Context, DatasetStage, Inputs, Produced
from indomer.tail import (
    EXAMPLE,
    IDENTITY,
    LABELS,
    SPLIT,
    commit_generation,
    document_input,
    input_name,
    provenance,
    shards_inputs,
)


def shards_stage_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    """What the shards stage's fingerprint hashes: the inputs and the identity record."""
    return {**shards_inputs(cfg, dirs), **document_input(IDENTITY, "identity", cfg, dirs)}


def media_salt(inputs: Inputs, out: Path) -> str:
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


def shards_run(inputs: Inputs, state: Context) -> Produced:
    """Commit one generation (data/*.parquet, splits/NAME.json, rejected.jsonl, build.json,
    card, Croissant; :mod:`indomer.generation`) and list the files it holds. The state is
    the stage's context: build.json records the earlier stages' settings and rejections."""
    from indomer.versions import library_versions

    ctx = state
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
    split_info = inputs.documents[SPLIT]
    doc = split_info["document"]
    labels = inputs.documents[LABELS]
    inputs_meta = {
        input_name(cfg, p) if k != "config" else cfg.path.name: file_digest(p)
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
    build = provenance(
        command="build CONFIG",
        source={"kind": "raw sources (indomer build CONFIG)", "config": cfg.path.name},
        config=cfg.document,
        inputs=inputs_meta,
        versions={**library_versions(), **tools},
        rejected=len(ctx.rejected_before()),
        warnings=warnings,
        media=media,
        agreement=labels["agreement"],
        rule_violations=labels["rule_violations"],
        repaired_texts=[],
        text_sources=dict(sorted(origins.items())),
        machine_text=sorted(r["id"] for r in rows if r.get("text_source") == "asr"),
        sources=sources,
        stages=stages,
        waiting={
            "unlabelled": list(labels.get("waiting", [])),
            "unresolved": list(labels.get("unresolved_clips", [])),
        },
        speakers=inputs.documents.get(IDENTITY),
    )
    frames = {
        split: pd.DataFrame(
            {c: pd.Series([rec[c] for rec in recs], dtype=object) for c in COLUMNS}
        )
        for split, recs in per_split.items()
        if recs
    }
    build = commit_generation(
        out, frames, {doc["name"]: doc}, ctx.rejected_before(), build, active=doc["name"],
        keep_new=True,
    )
    listing = [
        {"id": f["path"], "sha256": f["sha256"], "bytes": f["bytes"]}
        for part in build["outputs"]["splits"].values()
        for f in part["files"]
    ]
    split_file = f"splits/{doc['name']}.json"
    listing.append({"id": split_file, **_digest_bytes(out / split_file)})
    return Produced(listing)


def _digest_bytes(p: Path) -> dict:
    d = file_digest(p)
    return {"sha256": d["sha256"], "bytes": d["size"]}


def _context(settings: None, ctx: Context) -> Context:
    return ctx


STAGE = DatasetStage(
    "shards",
    shards_run,
    setup=_context,
    reads=("merge", "split"),
    inputs=shards_stage_inputs,
    needs=(LABELS, SPLIT, IDENTITY),
    salt=media_salt,
    outputs_ok=shards_ok,
)
