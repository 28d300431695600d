"""Release import against the real public release and damaged copies of it."""

from __future__ import annotations

import csv
import io
import json
import wave
from collections import Counter
from pathlib import Path

import pytest
import truth

from indomer.dataset import MediaFile
from indomer.errors import DataError, UsageError
from indomer.release import import_release, parse_id, repair_mojibake

VAL_EMOTION = truth.VAL_EMOTION
TRAIN_EMOTION = {
    "neutral": 1054,
    "happiness": 278,
    "sadness": 142,
    "anger": 69,
    "disgust": 33,
    "surprise": 7,
    "fear": 5,
}


def _rewrite_csv(path: Path, edit) -> None:
    """Apply ``edit(rows) -> rows`` to Annotations.csv, keeping its CRLF form."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        rows = list(reader)
    rows = edit(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")


def test_release_imports_with_released_counts(release_dir):
    result = import_release(release_dir)
    assert {k: len(v) for k, v in result.splits.items()} == {"train": 1588, "validation": 356}
    assert dict(Counter(result.splits["validation"]["emotion"])) == VAL_EMOTION
    assert dict(Counter(result.splits["train"]["emotion"])) == TRAIN_EMOTION
    assert result.rejected == [] and result.rule_violations == []
    train = result.splits["train"]
    assert train["source_id"].nunique() == 173
    assert result.splits["validation"]["source_id"].nunique() == 34


def test_garbled_csv_texts_take_the_clean_json_text(release_dir):
    result = import_release(release_dir)
    repaired = {r["id"]: r for r in result.repaired_texts}
    assert len(repaired) == 15
    assert repaired["clip_13_Product_14"]["csv"].endswith("it¡¯s not good.")
    every = {i: t for df in result.splits.values() for i, t in zip(df["id"], df["text"])}
    assert (
        every["clip_13_Product_14"] == "Tapi di mata gue, wah nggak, not okay, man, it’s not good."
    )
    assert not any("¡" in t or "£" in t for t in every.values())


def test_derived_columns(release_dir):
    df = import_release(release_dir).splits["train"].set_index("id")
    assert df.loc["clip_1_Cooking_1", ["source_id", "segment_index", "topic"]].tolist() == [
        "1",
        1,
        "Cooking",
    ]
    topics = Counter(t for d in import_release(release_dir).splits.values() for t in d["topic"])
    assert "Opinions" not in topics and topics["Opinion"] == 138
    assert len(topics) == 13


def test_parse_id_and_mojibake_helpers():
    assert parse_id("clip_12_Opinions_3") == ("12", "Opinion", 3)
    for bad in ("../x", "clip_1_Cooking_0", "clip_1_Cook ing_1", "clip_1_Cooking_1/../../etc", ""):
        assert parse_id(bad) is None
    assert repair_mojibake("it¡¯s") == "it’s"
    assert repair_mojibake("plain text") is None
    assert repair_mojibake("kata “indah”") is None


def test_bom_and_lf_are_tolerated(release_copy):
    path = release_copy / "Annotations.csv"
    raw = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + raw.replace(b"\r\n", b"\n"))
    result = import_release(release_copy)
    assert sum(len(d) for d in result.splits.values()) == 1944 and not result.rejected


def test_missing_column_is_one_clear_error(release_copy):
    path = release_copy / "Annotations.csv"
    path.write_bytes(path.read_bytes().replace(b"audio_sentiment,", b"audio_sent,", 1))
    with pytest.raises(DataError, match=r"Annotations.csv:1: missing column\(s\) audio_sentiment"):
        import_release(release_copy)


def test_empty_csv_and_missing_release(release_copy, tmp_path):
    (release_copy / "Annotations.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        import_release(release_copy)
    with pytest.raises(UsageError, match="no Annotations.csv"):
        import_release(tmp_path / "nowhere")


def test_bad_rows_are_rejected_and_good_rows_kept(release_copy):
    def damage(rows):
        rows[0]["emotion"] = "kebahagiaan"  # CSV says happiness, JSON says netral
        rows[1]["video_name"] = "../x.mp4"
        rows[2]["sentiment"] = "bingung"
        rows.append(dict(rows[5]))  # duplicate
        return rows

    _rewrite_csv(release_copy / "Annotations.csv", damage)
    result = import_release(release_copy)
    by_id = {r["id"]: r for r in result.rejected}
    assert "CSV and JSON disagree: emotion" in by_id["clip_1_Cooking_1"]["reason"]
    assert by_id["clip_1_Cooking_1"]["where"] == "Annotations.csv:2"
    assert "breaks the convention" in by_id["../x"]["reason"]
    assert "unknown sentiment label 'bingung'" in by_id["clip_1_Cooking_3"]["reason"]
    assert any("duplicate id (first on line 7)" in r["reason"] for r in result.rejected)
    # clip_1_Cooking_2's CSV row was renamed, so its JSON record has no CSV row
    assert "not in Annotations.csv" in by_id["clip_1_Cooking_2"]["reason"]
    kept = {i for d in result.splits.values() for i in d["id"]}
    assert len(kept) == 1944 - 3 and "clip_1_Cooking_4" in kept


def test_strict_stops_at_the_first_bad_row(release_copy):
    _rewrite_csv(
        release_copy / "Annotations.csv",
        lambda rows: [{**rows[0], "sentiment": "bingung"}, *rows[1:]],
    )
    with pytest.raises(DataError, match=r"^Annotations.csv:2: clip_1_Cooking_1: unknown sentiment"):
        import_release(release_copy, strict=True)


def test_json_label_disagreement_in_3_class_file(release_copy):
    path = release_copy / "3_Class" / "3_class_val.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc[0]["audio_label"] = "negatif" if doc[0]["audio_label"] != "negatif" else "positif"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = import_release(release_copy)
    assert [r["id"] for r in result.rejected] == [doc[0]["sample_id"]]
    assert "audio_sentiment CSV" in result.rejected[0]["reason"]


def _wav(seconds: float) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(b"\x00\x00" * int(16_000 * seconds))
    return buf.getvalue()


def test_media_dir_embeds_present_clips_and_reports_missing(release_dir, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "clip_2_Cooking_1.wav").write_bytes(_wav(1.5))
    # an ftyp box and nothing else: named like a clip, but no media in it
    (media / "clip_2_Cooking_1.mp4").write_bytes(
        b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    )
    (media / "clip_1_Cooking_1.wav").write_bytes(_wav(0.25))
    result = import_release(release_dir, media)
    assert result.media["audio"] == 2 and result.media["video"] == 0
    assert len(result.media["missing_audio"]) == 1942 and len(result.media["missing_video"]) == 1944
    assert result.media["rejected_video"] == ["clip_2_Cooking_1"]
    [bad] = result.rejected
    assert bad["stage"] == "media" and bad["where"] == "media/clip_2_Cooking_1.mp4"
    assert bad["reason"].startswith("clip_2_Cooking_1.mp4: not a readable MP4 (ffprobe: ")
    val = result.splits["validation"].set_index("id")
    assert isinstance(val.loc["clip_2_Cooking_1", "audio"], MediaFile)
    assert val.loc["clip_2_Cooking_1", "audio"].load() == {
        "bytes": _wav(1.5),
        "path": "clip_2_Cooking_1.wav",
    }
    assert val.loc["clip_2_Cooking_1", "video"] is None
    assert val.loc["clip_2_Cooking_3", "audio"] is None
    assert sum(len(d) for d in result.splits.values()) == 1944


def _pcm_wav(frames: int, rate: int = 16_000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(2 * frames * channels))
    return buf.getvalue()


def test_wav_status_reads_the_header_through_the_one_wav_reader():
    """Issue 22: the release's clip check reads WAVs through media.wav_header (soundfile),
    not the stdlib wave module; what it tells apart is unchanged."""
    import inspect

    from indomer import release
    from indomer.release import wav_status

    whole = _pcm_wav(16_000)
    assert wav_status(io.BytesIO(whole)) == ("ok", "")
    # cut short: the header still announces 16,000 samples; 44 header bytes + 15,956 bytes
    assert wav_status(io.BytesIO(whole[:16_000])) == (
        "bad", "truncated WAV (its header announces 16,000 samples, it holds 7,978)")
    assert wav_status(io.BytesIO(_pcm_wav(0))) == ("bad", "a WAV without samples")
    assert wav_status(io.BytesIO(_pcm_wav(10, 44_100, 2))) == ("other", "2 ch, PCM_16, 44100 Hz")
    assert wav_status(io.BytesIO(b"not audio"))[0] == "other"
    fh = io.BytesIO(whole)
    wav_status(fh)
    assert fh.tell() == 0  # the caller embeds or converts the file from its start
    assert "import wave" not in inspect.getsource(release)
