"""Release mode: import the public IndoMER annotation release into the dataset layout.

The release ships the same labels three times (``Annotations.csv`` and two JSON split
pairs); we cross-check all of them so that a disagreement is reported, not inherited.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from indomer.errors import DataError, UsageError
from indomer.fsutil import file_digest
from indomer.labels import emotion_to_sentiment, label_set

CSV_NAME = "Annotations.csv"
CSV_COLUMNS = (
    "video_name",
    "audio_name",
    "emotion",
    "sentiment",
    "text_sentiment",
    "audio_sentiment",
    "video_sentiment",
    "text",
)
#: (class files, official split) -> our split name.
JSON_FILES = {
    ("7_Class/7_class_train.json", "3_Class/3_class_train.json"): "train",
    ("7_Class/7_class_val.json", "3_Class/3_class_val.json"): "validation",
}
JSON7_KEYS = ("sample_id", "text", "label", "sentiment_label")
JSON3_KEYS = ("sample_id", "text", "label", "text_label", "audio_label", "video_label")
#: The release id convention; anything else (``../x``, spaces) is refused before any path use.
ID_RE = re.compile(r"^clip_(?P<source>[0-9A-Za-z]+)_(?P<topic>[A-Za-z]+)_(?P<index>[1-9][0-9]*)\Z")
#: Topic spellings that name the same topic.
TOPIC_ALIASES = {"Opinions": "Opinion"}


@dataclass
class ImportResult:
    """Rows per split plus everything build.json and the card report about the import."""

    splits: dict[str, pd.DataFrame]
    rejected: list[dict] = field(default_factory=list)
    repaired_texts: list[dict] = field(default_factory=list)
    rule_violations: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, dict] = field(default_factory=dict)
    media: dict | None = None


def parse_id(seg_id: str) -> tuple[str, str, int] | None:
    """``clip_12_Opinions_3`` -> (``12``, ``Opinion``, 3); None when it breaks the convention."""
    m = ID_RE.match(seg_id)
    if not m:
        return None
    topic = TOPIC_ALIASES.get(m["topic"], m["topic"])
    return m["source"], topic, int(m["index"])


def repair_mojibake(text: str) -> str | None:
    """Undo a GBK-read-as-Latin-1 round trip (``it¡¯s`` -> ``it’s``); None if not one."""
    try:
        fixed = text.encode("latin-1").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return fixed if fixed != text else None


def read_csv(path: Path) -> list[tuple[int, dict]]:
    """Rows of Annotations.csv with their 1-based file line numbers (BOM and CRLF tolerated)."""
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(
            f"{path}: empty file; expected the release CSV with header {','.join(CSV_COLUMNS)}"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}:1: missing column(s) {', '.join(missing)}; expected header "
            f"{','.join(CSV_COLUMNS)}"
        )
    rows = []
    for row in reader:
        rows.append((reader.line_num, row))
    if not rows:
        raise DataError(f"{path}: header only, no rows; expected one row per segment")
    return rows


def read_json_split(path: Path, keys: tuple[str, ...]) -> dict[str, dict]:
    """A release JSON split file as {sample_id: record}; structural problems are DataErrors."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: missing; the release layout needs it (see SOURCE.md)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}); re-download the release") from exc
    if not isinstance(doc, list) or not doc:
        raise DataError(f"{path}: expected a non-empty JSON list of segment objects")
    out: dict[str, dict] = {}
    for i, rec in enumerate(doc):
        if not isinstance(rec, dict) or any(k not in rec for k in keys):
            missing = [k for k in keys if not isinstance(rec, dict) or k not in rec]
            raise DataError(f"{path}: item {i}: missing key(s) {', '.join(missing)}")
        sid = rec["sample_id"]
        if sid in out:
            raise DataError(f"{path}: item {i}: duplicate sample_id {sid!r}")
        out[sid] = rec
    return out


def import_release(
    release: Path, media_dir: Path | None = None, *, strict: bool = False
) -> ImportResult:
    """Read and cross-check a release directory; return the rows of train and validation.

    Bad rows are collected in ``rejected`` (with file:line and the fix) and the rest kept;
    with ``strict`` the first bad row raises instead.
    """
    release = Path(release)
    csv_path = release / CSV_NAME
    if not csv_path.is_file():
        raise UsageError(
            f"{release}: no {CSV_NAME} here; point --release at the folder holding "
            "Annotations.csv, 7_Class/ and 3_Class/ (or use github:yanxm01/INDOMER@<commit>)"
        )
    result = ImportResult(splits={})
    result.inputs[CSV_NAME] = file_digest(csv_path)

    def reject(where: str, seg_id: str | None, reason: str, fix: str) -> None:
        entry = {"stage": "import", "where": where, "id": seg_id, "reason": reason, "fix": fix}
        if strict:
            raise DataError(f"{where}: {seg_id or ''}: {reason}; {fix}".replace(": : ", ": "))
        result.rejected.append(entry)

    # Which official split, and which 7/3-class records, each id has.
    split_of: dict[str, str] = {}
    rec7: dict[str, dict] = {}
    rec3: dict[str, dict] = {}
    for (f7, f3), split in JSON_FILES.items():
        r7 = read_json_split(release / f7, JSON7_KEYS)
        r3 = read_json_split(release / f3, JSON3_KEYS)
        result.inputs[f7] = file_digest(release / f7)
        result.inputs[f3] = file_digest(release / f3)
        if set(r7) != set(r3):
            only7 = sorted(set(r7) - set(r3))
            only3 = sorted(set(r3) - set(r7))
            result.warnings.append(
                f"{f7} and {f3} list different ids (only in 7-class: {len(only7)}, only in "
                f"3-class: {len(only3)}); modality labels of the former come from the CSV only"
            )
        for sid in r7:
            if sid in split_of:
                reject(
                    f7, sid, f"id is in both {split_of[sid]} and {split}", "keep it in one split"
                )
                continue
            split_of[sid] = split
        rec7.update(r7)
        rec3.update({k: v for k, v in r3.items() if k in r7})

    emo = label_set("emotion")
    sen = label_set("sentiment")
    rule = emotion_to_sentiment()
    seen: dict[str, int] = {}
    rows: dict[str, list[dict]] = {s: [] for s in JSON_FILES.values()}
    csv_rows = read_csv(csv_path)
    for line, row in csv_rows:
        where = f"{CSV_NAME}:{line}"
        video_name = (row.get("video_name") or "").strip()
        seg_id = video_name.removesuffix(".mp4")
        parsed = parse_id(seg_id)
        if parsed is None:
            reject(
                where,
                seg_id or None,
                f"id {seg_id!r} breaks the convention clip_<video>_<Topic>_<n>",
                "fix video_name (e.g. clip_1_Cooking_1.mp4)",
            )
            continue
        if not video_name.endswith(".mp4") or row.get("audio_name", "").strip() != f"{seg_id}.wav":
            reject(
                where,
                seg_id,
                "video_name/audio_name are not <id>.mp4/<id>.wav",
                "name both files after the segment id",
            )
            continue
        if seg_id in seen:
            reject(
                where,
                seg_id,
                f"duplicate id (first on line {seen[seg_id]})",
                "remove the duplicate row",
            )
            continue
        seen[seg_id] = line
        labels = {}
        bad = False
        for col in CSV_COLUMNS[2:7]:
            ls = emo if col == "emotion" else sen
            name = ls.canonical(row.get(col) or "")
            if name is None:
                reject(
                    where,
                    seg_id,
                    f"unknown {col} label {row.get(col)!r}",
                    f"use one of {', '.join(ls.release.values())}",
                )
                bad = True
                break
            labels[col] = name
        if bad:
            continue
        if seg_id not in rec7:
            reject(
                where, seg_id, "not in any 7_Class JSON split", "add it to 7_class_train/val.json"
            )
            continue
        j7 = rec7[seg_id]
        j3 = rec3.get(seg_id)
        disagreements = []
        if emo.canonical(str(j7["label"])) != labels["emotion"]:
            disagreements.append(f"emotion CSV {row['emotion']!r} vs 7-class {j7['label']!r}")
        if sen.canonical(str(j7["sentiment_label"])) != labels["sentiment"]:
            disagreements.append(
                f"sentiment CSV {row['sentiment']!r} vs 7-class {j7['sentiment_label']!r}"
            )
        if j3 is not None:
            for col, key in (
                ("sentiment", "label"),
                ("text_sentiment", "text_label"),
                ("audio_sentiment", "audio_label"),
                ("video_sentiment", "video_label"),
            ):
                if sen.canonical(str(j3[key])) != labels[col]:
                    disagreements.append(f"{col} CSV {row[col]!r} vs 3-class {key} {j3[key]!r}")
            if j3["text"] != j7["text"]:
                disagreements.append("text differs between the 7- and 3-class files")
        text = row["text"]
        if text != j7["text"]:
            if repair_mojibake(text) == j7["text"]:
                result.repaired_texts.append(
                    {"id": seg_id, "line": line, "csv": text, "json": j7["text"]}
                )
                text = j7["text"]
            else:
                disagreements.append("text differs between the CSV and the JSON")
        if disagreements:
            reject(
                where,
                seg_id,
                "CSV and JSON disagree: " + "; ".join(disagreements),
                "correct whichever file is wrong",
            )
            continue
        if rule[labels["emotion"]] != labels["sentiment"]:
            result.rule_violations.append(
                {
                    "id": seg_id,
                    "emotion": labels["emotion"],
                    "sentiment": labels["sentiment"],
                    "expected_sentiment": rule[labels["emotion"]],
                }
            )
        source_id, topic, index = parsed
        rows[split_of[seg_id]].append(
            {
                "id": seg_id,
                "source_id": source_id,
                "segment_index": index,
                "topic": topic,
                "text": text,
                **labels,
            }
        )
    for sid in sorted(set(rec7) - set(seen)):
        reject(
            f"{sid} in JSON",
            sid,
            f"in the {split_of.get(sid)} JSON but not in {CSV_NAME}",
            "add the row to Annotations.csv",
        )

    for split, split_rows in rows.items():
        result.splits[split] = pd.DataFrame(split_rows)
    if media_dir is not None:
        result.media = attach_media(result.splits, Path(media_dir))
    return result


def attach_media(splits: dict[str, pd.DataFrame], media_dir: Path) -> dict:
    """Embed each clip's ``<id>.wav`` / ``<id>.mp4`` bytes where present; report the missing."""
    if not media_dir.is_dir():
        raise UsageError(
            f"{media_dir}: --media-dir is not a folder; give the folder holding <id>.wav/.mp4"
        )
    report: dict = {
        "dir": media_dir.name,
        "audio": 0,
        "video": 0,
        "missing_audio": [],
        "missing_video": [],
    }
    for df in splits.values():
        audio, video = [], []
        for seg_id in df["id"] if len(df) else []:
            # seg_id already matched ID_RE, so it cannot climb out of media_dir.
            for ext, col, out in (("wav", "audio", audio), ("mp4", "video", video)):
                path = media_dir / f"{seg_id}.{ext}"
                if path.is_file():
                    out.append({"bytes": path.read_bytes(), "path": path.name})
                    report[col] += 1
                else:
                    out.append(None)
                    report[f"missing_{col}"].append(seg_id)
        df["audio"] = audio
        df["video"] = video
    for key in ("missing_audio", "missing_video"):
        report[key] = sorted(report[key])
    return report
