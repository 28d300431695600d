"""``indomer validate``: schema, label, id, media, leakage and provenance checks of a built dataset."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from indomer.dataset import (
    NEWER_COLUMNS,
    SCHEMA,
    SHARD_RE,
    available_splits,
    hf_features,
    shard_paths,
)
from indomer.errors import DataError, first_few
from indomer.labels import TASKS, emotion_to_sentiment, label_set
from indomer.readjson import read_json

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def _check_wav(data: bytes) -> str | None:
    from indomer.media import wav_info

    info = wav_info(data)
    if info is None or not info[3].startswith("PCM"):
        return "not a PCM WAV" + ("" if info is None else f" ({info[3]})")
    rate, channels = info[0], info[1]
    if rate != 16_000 or channels != 1:
        return f"{rate} Hz, {channels} channel(s); expected 16000 Hz mono"
    return None


def _show(out: Path, root: Path, path: Path) -> Path:
    """A path of the snapshot as the user knows it (under OUT, not under .indomer/gen)."""
    try:
        return Path(out) / Path(path).relative_to(root)
    except ValueError:
        return Path(path)


def _recorded_files(build: dict, build_path: Path, problems: list[str]) -> dict[str, dict]:
    """``outputs.splits.*.files`` of build.json as {path: entry}, malformed parts reported."""
    outputs = build.get("outputs")
    if not isinstance(outputs, dict) or not isinstance(outputs.get("splits"), dict):
        problems.append(f"{build_path}: no outputs.splits shard list; rebuild the dataset")
        return {}
    files: dict[str, dict] = {}
    for split, part in sorted(outputs["splits"].items()):
        entries = part.get("files") if isinstance(part, dict) else None
        if not isinstance(entries, list):
            problems.append(f"{build_path}: outputs.splits.{split}.files is not a list; rebuild")
            continue
        for e in entries:
            ok = (
                isinstance(e, dict)
                and isinstance(e.get("path"), str)
                and isinstance(e.get("sha256"), str)
                and isinstance(e.get("rows"), int)
                and e["path"].startswith("data/")
                and SHARD_RE.match(e["path"][5:]) is not None
            )
            if not ok:
                problems.append(
                    f"{build_path}: outputs.splits.{split}.files holds a malformed entry "
                    f"({str(e)[:80]}); rebuild the dataset"
                )
                continue
            files[e["path"]] = e
    return files


def _check_integrity(
    out: Path, root: Path, build: dict, build_path: Path, problems: list[str]
) -> tuple[set[str], set[str]]:
    """Every shard's sha256 and row count against build.json.

    Returns (unreadable or unlisted shards, shards whose bytes changed).
    """
    from indomer.fsutil import sha256_file

    recorded = _recorded_files(build, build_path, problems)
    on_disk = {
        p.relative_to(root).as_posix(): p for s in available_splits(root) for p in shard_paths(root, s)
    }
    bad: set[str] = set()
    damaged: set[str] = set()
    for rel in sorted(recorded.keys() - on_disk.keys()):
        problems.append(
            f"{out / rel}: listed in build.json but missing; rebuild the dataset (or restore "
            "the file)"
        )
    for rel in sorted(on_disk.keys() - recorded.keys()):
        bad.add(rel)
        problems.append(
            f"{out / rel}: not listed in build.json (not part of this build); remove it or rebuild"
        )
    for rel in sorted(recorded.keys() & on_disk.keys()):
        entry, path = recorded[rel], on_disk[rel]
        changed = sha256_file(path) != entry["sha256"]
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            bad.add(rel)
            problems.append(
                f"{out / rel}: {'sha256 differs from build.json and ' if changed else ''}"
                f"unreadable Parquet ({exc}); rebuild the dataset or restore the file"
            )
            continue
        if changed:
            damaged.add(rel)
            problems.append(
                f"{out / rel}: sha256 differs from build.json (changed or damaged since the "
                "build); rebuild the dataset or restore the file"
            )
        if rows != entry["rows"]:
            problems.append(
                f"{out / rel}: {rows} rows, build.json says {entry['rows']}; rebuild the dataset"
            )
    return bad, damaged


def validate(out: Path) -> tuple[list[str], list[str]]:
    """Return (problems, warnings); a dataset is valid when ``problems`` is empty.

    Never raises for a damaged dataset: every problem is one line naming the file.
    """
    from indomer.dataset import current_generation, snapshot
    from indomer.errors import IndomerError
    from indomer.generation import (
        MANAGED,
        check_links,
        is_generational,
        layout_problem,
    )

    out = Path(out)
    problems: list[str] = []
    warnings: list[str] = []
    if is_generational(out):
        try:
            check_links(out)
        except IndomerError as exc:
            problems.append(str(exc))
        old_layout = layout_problem(out)
        if old_layout is not None:
            problems.append(old_layout)
        for name in MANAGED:
            if name != "build.json" and not (out / name).exists():
                problems.append(
                    f"{out / name}: missing (indomer's link into .indomer/current); rebuild"
                )
    try:  # one generation, pinned; a build.json it cannot read is reported below
        snap = snapshot(out)
    except IndomerError:
        snap = None
    root = snap.root if snap is not None else current_generation(out) or out
    build_path = out / "build.json"
    build: dict = {}
    if not (root / "build.json").is_file() or not build_path.exists():
        problems.append(f"{build_path}: missing; rebuild with 'indomer build'")
    else:
        try:
            doc = read_json(root / "build.json", shown=build_path)
        except DataError as exc:
            problems.append(f"{exc}; rebuild the dataset")
        else:
            if isinstance(doc, dict):
                build = doc
            else:
                problems.append(
                    f"{build_path}: expected a JSON object, found {type(doc).__name__}; "
                    "rebuild the dataset"
                )
    data = root / "data"
    if data.is_dir():
        for p in sorted(data.iterdir()):
            if p.is_file() and not SHARD_RE.match(p.name):
                problems.append(
                    f"{_show(out, root, p)}: not named {{split}}-NNNNN-of-NNNNN.parquet; "
                    "remove or rename it"
                )
    splits = available_splits(root)
    if not splits:
        problems.append(f"{out}: no shards under data/")
        if snap is not None:
            snap.close()
        return problems, warnings
    bad, damaged = (
        _check_integrity(out, root, build, build_path, problems) if build else (set(), set())
    )
    ctx: dict = {
        "features": hf_features(),
        "names": {t: label_set(t).names for t in TASKS},
        "rule": emotion_to_sentiment(),
        "seen": {},
        "groups": {"speaker_id": defaultdict(set), "source_id": defaultdict(set)},
        "missing_speaker": 0,
        "duplicates": [],
        "bad_ids": [],
        "rule_breaks": [],
        "words_outside": [],
        "older": [],
    }
    for split in splits:
        paths = shard_paths(root, split)
        counts = {int(SHARD_RE.match(p.name)["n"]) for p in paths}
        if len(counts) != 1 or len(paths) != counts.pop():
            problems.append(f"{out}/data: split '{split}' has an incomplete shard set; rebuild")
        for path in paths:
            if path.relative_to(root).as_posix() in bad:
                continue  # already reported; its contents cannot be trusted
            try:
                pinned = snap is not None and path in snap.shard_paths(split)
                pf = pq.ParquetFile(snap.handle(path) if pinned else path)
                _check_shard(pf, _show(out, root, path), split, ctx, problems)
            except (pa.ArrowException, OSError, ValueError, KeyError, TypeError) as exc:
                if path.relative_to(root).as_posix() not in damaged:  # else said already
                    problems.append(f"{_show(out, root, path)}: unreadable Parquet ({exc})")
    if ctx["words_outside"]:
        problems.append(
            f"{len(ctx['words_outside'])} rows have word times outside their clip (word times "
            f"count from the clip's start, 0 to end - start): {first_few(ctx['words_outside'])}"
            "; rebuild the dataset"
        )
    if ctx["older"]:
        warnings.append(
            f"{len(ctx['older'])} shard(s) have no {', '.join(NEWER_COLUMNS)} column (made by "
            f"an older indomer; read as null): {first_few(ctx['older'])}; rebuild to add it"
        )
    waiting = (build.get("waiting") or {}) if build else {}
    if waiting.get("unlabelled"):
        warnings.append(
            f"{len(waiting['unlabelled'])} clip(s) wait for labels (not in the shards); export "
            f"them with: indomer annotate export {out} --to DIR"
        )
    if waiting.get("unresolved"):
        fix = (
            "add an expert row (role=expert) for each to the sheets and build again"
            if build.get("command") == "build --release"
            else f"export them for an expert with: indomer annotate export {out} --to DIR "
            "--only unresolved"
        )
        warnings.append(
            f"{len(waiting['unresolved'])} clip(s) unresolved (no majority; not in the shards); "
            + fix
        )
    duplicates, bad_ids, rule_breaks = ctx["duplicates"], ctx["bad_ids"], ctx["rule_breaks"]
    missing_speaker = ctx["missing_speaker"]
    groups = ctx["groups"]
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
    if snap is not None:
        snap.close()
    return problems, warnings


#: Slack for word times at the clip's edges (aligner frames, rounding), seconds.
WORD_SLACK = 0.25


def _word_outside(row: dict) -> str | None:
    """The first timed word outside ``[0, end - start]`` as ``word at t s``, else None.

    Word times count from the clip's start (layout 2); times of the source video land past
    the clip's end in every clip that does not start at 0.
    """
    start, end = row.get("start"), row.get("end")
    if start is None or end is None:
        return None
    length = end - start
    for w in row.get("words") or []:
        for t in (w.get("start"), w.get("end")):
            if t is not None and not -WORD_SLACK <= t <= length + WORD_SLACK:
                return f"{w.get('word')!r} at {t:.2f} s in a {length:.2f} s clip"
    return None


def _speaker_check_problem(check: dict | None) -> str | None:
    """What is wrong with a row's ``speaker_check`` (None: nothing, or not checked)."""
    if check is None:
        return None
    n = check.get("n_speakers")
    if n is not None and n < 0:
        return f"n_speakers {n} is negative"
    for key in ("primary_share", "overlap"):
        v = check.get(key)
        if v is not None and not 0.0 <= v <= 1.0:
            return f"{key} {v} outside 0..1"
    if check.get("flagged") is None:
        return "without 'flagged'"
    return None


def _check_shard(pf, shown: Path, split: str, ctx: dict, problems: list[str]) -> None:
    """Schema, metadata, ids, labels and media of one shard (its open ``ParquetFile``);
    findings go to ``ctx``."""
    schema = pf.schema_arrow
    want, features = SCHEMA.remove_metadata(), ctx["features"]
    older = pa.schema([f for f in want if f.name not in NEWER_COLUMNS])
    if schema.remove_metadata() == older:  # made before the newer columns: still readable
        ctx["older"].append(str(shown))
        want = older
        features = {k: v for k, v in features.items() if k not in NEWER_COLUMNS}
    if schema.remove_metadata() != want:
        problems.append(f"{shown}: columns/types differ from the indomer schema; rebuild")
        return
    meta = (schema.metadata or {}).get(b"huggingface")
    feats = json.loads(meta).get("info", {}).get("features") if meta else None
    if feats != features:
        problems.append(f"{shown}: Hugging Face feature metadata missing or out of date")
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            rid = row["id"]
            where = f"{shown}: {rid}"
            if not isinstance(rid, str) or not SAFE_ID.match(rid):
                ctx["bad_ids"].append(repr(rid))
                continue
            if rid in ctx["seen"]:
                ctx["duplicates"].append(f"{rid} ({ctx['seen'][rid]} and {split})")
            ctx["seen"][rid] = split
            for task in TASKS:
                v = row[task]
                if v is not None and not 0 <= v < len(ctx["names"][task]):
                    problems.append(
                        f"{where}: {task} id {v} outside 0..{len(ctx['names'][task]) - 1}"
                    )
            e, s = row["emotion"], row["sentiment"]
            in_range = (
                e is not None
                and s is not None
                and 0 <= e < len(ctx["names"]["emotion"])
                and 0 <= s < len(ctx["names"]["sentiment"])
            )
            names = ctx["names"]
            if in_range and ctx["rule"][names["emotion"][e]] != names["sentiment"][s]:
                ctx["rule_breaks"].append(rid)
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
            bad_check = _speaker_check_problem(row.get("speaker_check"))
            if bad_check:
                problems.append(f"{where}: speaker_check {bad_check}; rebuild the dataset")
            outside = _word_outside(row)
            if outside:
                ctx["words_outside"].append(f"{rid} ({outside})")
            if row["speaker_id"] is None:
                ctx["missing_speaker"] += 1
            else:
                ctx["groups"]["speaker_id"][row["speaker_id"]].add(split)
            ctx["groups"]["source_id"][row["source_id"]].add(split)
