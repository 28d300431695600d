"""Statistics computed from the shards, checked against counts made independently from the CSV."""

from __future__ import annotations

import csv
import io
import json
import wave

import pandas as pd
from click.testing import CliRunner

from indomer.cli import main
from indomer.dataset import write_split
from indomer.stats import compute_stats, wav_seconds, words


def test_release_statistics_match_an_independent_count(built, release_dir):
    with open(release_dir / "Annotations.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    videos = {r["video_name"].split("_")[1] for r in rows}
    stats = compute_stats(built)
    assert stats["overall"]["segments"] == len(rows) == 1944
    assert stats["overall"]["videos"] == len(videos) == 207
    assert stats["overall"]["speakers"] is None
    assert stats["splits"]["validation"]["classes"]["emotion"]["fear"] == 4
    assert stats["overall"]["classes"]["sentiment"] == {
        "negative": 303,
        "neutral": 1316,
        "positive": 325,
    }
    assert sum(stats["topics"].values()) == 1944 and stats["topics"]["Opinion"] == 138
    assert "duration" not in stats["overall"]


def test_words_and_vocabulary_by_hand(tmp_path):
    df = pd.DataFrame(
        {
            "id": ["clip_1_A_1", "clip_1_A_2"],
            "source_id": ["1", "1"],
            "segment_index": [1, 2],
            "topic": ["A", "A"],
            "text": ["Gara-gara dia, it’s OK!", "dia  bilang ok"],
            "start": [0.0, None],
            "end": [2.0, None],
        }
    )
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 24000)
    df["audio"] = [None, {"bytes": buf.getvalue(), "path": "clip_1_A_2.wav"}]
    write_split(tmp_path, "train", df)
    assert words("Gara-gara dia, it’s OK!") == ["Gara-gara", "dia", "it’s", "OK"]
    s = compute_stats(tmp_path)["overall"]
    assert s["words_per_segment"] == 3.5 and s["vocabulary"] == 5  # gara-gara dia it’s ok bilang
    assert s["duration"] == {
        "segments_with_duration": 2,
        "total_hours": round(3.5 / 3600, 4),
        "mean_seconds": 1.75,
        "speech_rate_wps": 2.0,
    }
    assert wav_seconds(b"nope") is None


def test_stats_cli_table_and_json(built, tmp_path):
    res = CliRunner().invoke(main, ["stats", str(built), "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[1].split() == ["segments", "1944", "1588", "356"]
    assert json.loads((tmp_path / "s.json").read_text())["overall"]["videos"] == 207
