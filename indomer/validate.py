"""``indomer validate``: schema, label, id, media, leakage and provenance checks of a built dataset."""

from __future__ import annotations

import io
import json
import re
import wave
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from indomer.dataset import SCHEMA, SHARD_RE, available_splits, hf_features, shard_paths
from indomer.errors import first_few
from indomer.labels import TASKS, emotion_to_sentiment, label_set

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def _check_wav(data: bytes) -> str | None:
    try:
        with wave.open(io.BytesIO(data)) as w:
            if w.getframerate() != 16_000 or w.getnchannels() != 1:
                return (
                    f"{w.getframerate()} Hz, {w.getnchannels()} channel(s); expected 16000 Hz mono"
                )
    except (wave.Error, EOFError) as exc:
        return f"not a PCM WAV ({exc})"
    return None


def validate(out: Path) -> tuple[list[str], list[str]]:
    """Return (problems, warnings); a dataset is valid when ``problems`` is empty."""
    out = Path(out)
    problems: list[str] = []
    warnings: list[str] = []
    build_path = out / "build.json"
    build: dict = {}
    if not build_path.is_file():
        problems.append(f"{build_path}: missing; rebuild with 'indomer build'")
    else:
        try:
            build = json.loads(build_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            problems.append(f"{build_path}: not valid JSON ({exc})")
    data = out / "data"
    if data.is_dir():
        for p in sorted(data.iterdir()):
            if p.is_file() and not SHARD_RE.match(p.name):
                problems.append(
                    f"{p}: not named {{split}}-NNNNN-of-NNNNN.parquet; remove or rename it"
                )
    splits = available_splits(out)
    if not splits:
        problems.append(f"{out}: no shards under data/")
        return problems, warnings
    expected_features = hf_features()
    names = {t: label_set(t).names for t in TASKS}
    rule = emotion_to_sentiment()
    seen: dict[str, str] = {}
    groups: dict[str, dict[str, set[str]]] = {
        "speaker_id": defaultdict(set),
        "source_id": defaultdict(set),
    }
    missing_speaker = 0
    duplicates, bad_ids, rule_breaks = [], [], []
    for split in splits:
        paths = shard_paths(out, split)
        counts = {int(SHARD_RE.match(p.name)["n"]) for p in paths}
        if len(counts) != 1 or len(paths) != counts.pop():
            problems.append(f"{out}/data: split '{split}' has an incomplete shard set; rebuild")
        for path in paths:
            try:
                pf = pq.ParquetFile(path)
            except (pa.ArrowInvalid, OSError) as exc:
                problems.append(f"{path}: unreadable Parquet ({exc})")
                continue
            schema = pf.schema_arrow
            if schema.remove_metadata() != SCHEMA.remove_metadata():
                problems.append(f"{path}: columns/types differ from the indomer schema; rebuild")
                continue
            meta = (schema.metadata or {}).get(b"huggingface")
            feats = json.loads(meta).get("info", {}).get("features") if meta else None
            if feats != expected_features:
                problems.append(f"{path}: Hugging Face feature metadata missing or out of date")
            for batch in pf.iter_batches(batch_size=256):
                for row in batch.to_pylist():
                    rid = row["id"]
                    where = f"{path.name}: {rid}"
                    if not isinstance(rid, str) or not SAFE_ID.match(rid):
                        bad_ids.append(repr(rid))
                        continue
                    if rid in seen:
                        duplicates.append(f"{rid} ({seen[rid]} and {split})")
                    seen[rid] = split
                    for task in TASKS:
                        v = row[task]
                        if v is not None and not 0 <= v < len(names[task]):
                            problems.append(
                                f"{where}: {task} id {v} outside 0..{len(names[task]) - 1}"
                            )
                    e, s = row["emotion"], row["sentiment"]
                    in_range = (
                        e is not None
                        and s is not None
                        and 0 <= e < len(names["emotion"])
                        and 0 <= s < len(names["sentiment"])
                    )
                    if in_range and rule[names["emotion"][e]] != names["sentiment"][s]:
                        rule_breaks.append(rid)
                    if row["audio"] and row["audio"].get("bytes"):
                        err = _check_wav(row["audio"]["bytes"])
                        if err:
                            problems.append(f"{where}: audio {err}")
                    if (
                        row["video"]
                        and row["video"].get("bytes")
                        and row["video"]["bytes"][4:8] != b"ftyp"
                    ):
                        problems.append(f"{where}: video bytes are not an MP4 (no ftyp box)")
                    if row["speaker_id"] is None:
                        missing_speaker += 1
                    else:
                        groups["speaker_id"][row["speaker_id"]].add(split)
                    groups["source_id"][row["source_id"]].add(split)
    if bad_ids:
        problems.append(f"ids with unsafe characters: {first_few(bad_ids)}")
    if duplicates:
        problems.append(f"duplicate ids: {first_few(duplicates)}")
    if rule_breaks:
        warnings.append(
            f"{len(rule_breaks)} rows break the emotion->sentiment rule: {first_few(rule_breaks)}"
        )
    key = "speaker_id" if missing_speaker == 0 else "source_id"
    if missing_speaker:
        warnings.append(
            f"{missing_speaker} rows have no speaker_id; leakage checked by source video"
        )
    leaks = sorted(g for g, where in groups[key].items() if len(where) > 1)
    if leaks:
        problems.append(f"{key} in more than one split (leakage): {first_few(leaks)}")
    recorded = {
        f["path"]: f["sha256"]
        for s in build.get("outputs", {}).get("splits", {}).values()
        for f in s["files"]
    }
    if build and recorded:
        from indomer.card import shard_manifest

        actual = {
            f["path"]: f["sha256"]
            for s in shard_manifest(out)["splits"].values()
            for f in s["files"]
        }
        if actual != recorded:
            changed = sorted(set(actual.items()) ^ set(recorded.items()))
            problems.append(
                f"build.json does not match the shards ({first_few(sorted({p for p, _ in changed}))}); "
                "run 'indomer split' or rebuild so provenance and card are recomputed"
            )
    return problems, warnings
