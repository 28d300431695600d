"""Helpers shared by the scoring test files (tests/test_scoring.py and tests/scoring/)."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def release_refs(release_dir: Path, split: str = "val") -> list[Path]:
    return [
        release_dir / "7_Class" / f"7_class_{split}.json",
        release_dir / "3_Class" / f"3_class_{split}.json",
    ]


def release_ids(release_dir: Path) -> list[str]:
    records = json.loads((release_dir / "7_Class" / "7_class_val.json").read_text("utf-8"))
    return [r["sample_id"] for r in records]
