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
from indomer.stats import compute_stats, format_table, wav_seconds, words


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


SENT = {"negatif": "negative", "netral": "neutral", "positif": "positive"}


def test_cross_modal_agreement_matches_a_hand_count(built, release_dir):
    with open(release_dir / "Annotations.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cm = compute_stats(built)["cross_modal"]
    n = len(rows)
    for task in ("text_sentiment", "audio_sentiment", "video_sentiment"):
        agree = sum(r[task] == r["sentiment"] for r in rows)
        assert cm["vs_sentiment"][task] == {"agree": agree, "n": n, "rate": round(agree / n, 4)}
    assert cm["vs_sentiment"]["text_sentiment"]["agree"] == 1326
    pair = sum(r["audio_sentiment"] == r["video_sentiment"] for r in rows)
    assert cm["pairwise"]["audio_sentiment/video_sentiment"]["agree"] == pair == 1293
    same = [r for r in rows if r["text_sentiment"] == r["audio_sentiment"] == r["video_sentiment"]]
    assert cm["all_modalities"]["agree"] == len(same) == 736
    assert cm["all_with_sentiment"]["agree"] == sum(
        r["sentiment"] == r["text_sentiment"] for r in same
    )
    matrix = cm["confusion"]["video_sentiment"]["matrix"]
    names = cm["confusion"]["video_sentiment"]["labels"]
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            want = sum(SENT[r["sentiment"]] == a and SENT[r["video_sentiment"]] == b for r in rows)
            assert matrix[i][j] == want


def test_agreement_counts_only_rows_with_both_labels(tmp_path):
    df = pd.DataFrame(
        {
            "id": ["a_1", "a_2", "a_3", "a_4"],
            "source_id": ["1"] * 4,
            "topic": ["T"] * 4,
            "text": ["x"] * 4,
            "sentiment": ["positive", "negative", None, "neutral"],
            "text_sentiment": ["positive", "positive", "neutral", None],
            "audio_sentiment": ["positive", "negative", "neutral", "neutral"],
            "video_sentiment": [None, None, None, None],
        }
    )
    write_split(tmp_path, "train", df)
    cm = compute_stats(tmp_path)["cross_modal"]
    assert cm["vs_sentiment"]["text_sentiment"] == {"agree": 1, "n": 2, "rate": 0.5}
    assert cm["vs_sentiment"]["audio_sentiment"] == {"agree": 3, "n": 3, "rate": 1.0}
    assert cm["vs_sentiment"]["video_sentiment"] == {"agree": 0, "n": 0, "rate": None}
    assert cm["pairwise"]["text_sentiment/audio_sentiment"] == {"agree": 2, "n": 3, "rate": 0.6667}
    assert cm["all_modalities"] == {"agree": 0, "n": 0, "rate": None}


def test_unknowns_are_reported_as_unknown(built):
    stats = compute_stats(built)
    ov = stats["overall"]
    assert ov["gender"] is None and ov["speakers"] is None and "duration" not in ov
    assert stats["columns"]["speaker_id"] == 0 and stats["columns"]["text"] == 1944
    assert stats["columns"]["audio"] == 0 and stats["columns"]["emotion"] == 1944
    table = format_table(stats)
    assert "male/female" in table and table.count("unknown") >= 3
    assert (
        "durations" in table
        and "text = overall sentiment            1326    1944   0.6821" in table
    )


def test_a_gender_column_is_counted_when_a_build_has_one(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from indomer.dataset import to_table

    df = pd.DataFrame(
        {"id": ["a_1", "a_2", "a_3"], "source_id": ["1"] * 3, "topic": ["T"] * 3, "text": ["x"] * 3}
    )
    table = to_table(df).append_column("gender", pa.array(["female", "male", None]))
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "train-00000-of-00001.parquet")
    ov = compute_stats(tmp_path)["overall"]
    assert ov["gender"] == {"female": 1, "male": 1, "unknown": 1}
    assert "gender female" in format_table(compute_stats(tmp_path))


def test_stats_json_carries_cross_modal_and_columns(built, tmp_path):
    res = CliRunner().invoke(main, ["stats", str(built), "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["cross_modal"]["vs_sentiment"]["video_sentiment"]["agree"] == 1249
    assert doc["columns"]["words"] == 0 and doc["overall"]["segments_without_text"] == 0
    assert "audio = video" in res.output


def test_stats_on_a_folder_without_shards_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["stats", str(tmp_path)])
    assert res.exit_code == 2 and res.output.strip().startswith("error: ")
    assert len(res.output.strip().splitlines()) == 1


def test_missing_texts_and_labels_are_counted_not_crashed_on(tmp_path):
    df = pd.DataFrame(
        {
            "id": ["a_1", "a_2", "a_3"],
            "source_id": ["1"] * 3,
            "topic": ["T"] * 3,
            "text": ["satu dua", None, "  "],
            "emotion": ["fear", None, None],
        }
    )
    write_split(tmp_path, "train", df)
    stats = compute_stats(tmp_path)
    ov = stats["overall"]
    assert ov["segments_without_text"] == 2 and ov["words_per_segment"] == round(2 / 3, 4)
    assert stats["columns"]["text"] == 1 and stats["columns"]["emotion"] == 1
    assert ov["classes"]["emotion"]["fear"] == 1 and sum(ov["classes"]["emotion"].values()) == 1
