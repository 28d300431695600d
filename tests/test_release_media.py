"""Release mode with --media-dir: only regular files that decode are embedded (streamed as
MediaFile values), everything else is rejected with its reason while its row stays; and a
truncated or BOM-prefixed Annotations.csv (issue 9)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest

from indomer.dataset import MediaFile, to_table
from indomer.errors import DataError
from indomer.release import CheckedMediaFile, MediaToolMissing, import_release

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
N_SEGMENTS = 1944


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def _wav(samples: np.ndarray, rate: int = 16_000, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


def _noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-8000, 8000, size=n, dtype=np.int16)


def _mp4(path: Path, *, audio: bool = True) -> Path:
    """One second of H.264 (+ AAC) at 160x120, moov in front (as clips are cut)."""
    args = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"]
        args += ["-map", "0:v", "-map", "1:a", "-c:a", "aac"]
    args += ["-t", "1", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    _ffmpeg(*args, "-threads", "1", "-movflags", "+faststart", str(path))
    return path


def _decode_16k_mono(path: Path) -> np.ndarray:
    """The oracle for a converted wav: ffmpeg's own 16 kHz mono decode of the original."""
    res = subprocess.run(
        [FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-ac", "1", "-ar", "16000",
         "-f", "s16le", "-"],
        check=True, capture_output=True,
    )  # fmt: skip
    return np.frombuffer(res.stdout, dtype="<i2")


def _read_wav(data: bytes) -> tuple[np.ndarray, int, int, int]:
    with wave.open(io.BytesIO(data), "rb") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return samples, w.getframerate(), w.getnchannels(), w.getsampwidth()


#: file name -> (what it is, a fragment of its rejection reason); None: embedded.
EXPECTED = {
    "clip_2_Cooking_1.wav": ("16 kHz mono wav", None),
    "clip_2_Cooking_1.mp4": ("H.264/AAC mp4", None),
    "clip_2_Cooking_2.wav": ("44.1 kHz stereo wav", None),
    "clip_2_Cooking_2.mp4": ("mp4 without audio", "MP4 without audio stream"),
    "clip_2_Cooking_3.wav": ("link to a good wav outside", "a symbolic link, not a regular file"),
    "clip_2_Cooking_3.mp4": ("link to a good mp4 outside", "a symbolic link, not a regular file"),
    "clip_2_Cooking_4.wav": ("text", "not decodable audio (ffprobe: Invalid data found"),
    "clip_2_Cooking_4.mp4": ("first 60% of a good mp4", "truncated MP4 (ffmpeg: "),
    "clip_2_Cooking_5.wav": ("a directory", "a directory, not a regular file"),
    "clip_2_Cooking_5.mp4": ("a FIFO", "a FIFO (named pipe), not a regular file"),
    "clip_2_Cooking_6.wav": ("wav cut short", "truncated WAV (its header announces 16,000"),
    "clip_2_Cooking_7.wav": ("link to /etc/passwd", "a symbolic link, not a regular file"),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A media folder holding every case of EXPECTED, and good clips outside it."""
    root = tmp_path_factory.mktemp("clips")
    outside = root / "outside"
    outside.mkdir()
    good_wav = outside / "secret.wav"
    good_wav.write_bytes(_wav(_noise(8000, 9)))
    good_mp4 = _mp4(outside / "secret.mp4")
    d = root / "media"
    d.mkdir()
    (d / "clip_2_Cooking_1.wav").write_bytes(_wav(_noise(16_000, 1)))
    _mp4(d / "clip_2_Cooking_1.mp4")
    stereo = np.stack([_noise(44_100, 2), _noise(44_100, 3)], axis=1).reshape(-1)
    (d / "clip_2_Cooking_2.wav").write_bytes(_wav(stereo, rate=44_100, channels=2))
    _mp4(d / "clip_2_Cooking_2.mp4", audio=False)
    (d / "clip_2_Cooking_3.wav").symlink_to(good_wav)
    (d / "clip_2_Cooking_3.mp4").symlink_to(good_mp4)
    (d / "clip_2_Cooking_4.wav").write_text("this is not audio\n")
    data = _mp4(root / "whole.mp4").read_bytes()
    (d / "clip_2_Cooking_4.mp4").write_bytes(data[: len(data) * 6 // 10])
    (d / "clip_2_Cooking_5.wav").mkdir()
    os.mkfifo(d / "clip_2_Cooking_5.mp4")
    whole = _wav(_noise(16_000, 4))
    (d / "clip_2_Cooking_6.wav").write_bytes(whole[: len(whole) // 2])
    (d / "clip_2_Cooking_7.wav").symlink_to("/etc/passwd")
    return d


def _by_id(result) -> dict:
    return {i: row for df in result.splits.values() for i, row in df.set_index("id").iterrows()}


@pytest.mark.slow
def test_only_regular_decodable_clips_are_embedded(release_dir, clips):
    plain = import_release(release_dir)
    with import_release(release_dir, clips) as result:
        # no row is lost because of a bad file
        assert {k: len(v) for k, v in result.splits.items()} == {
            k: len(v) for k, v in plain.splits.items()
        }
        assert sum(len(v) for v in result.splits.values()) == N_SEGMENTS
        rows = _by_id(result)
        for seg in (f"clip_2_Cooking_{n}" for n in range(1, 8)):
            assert rows[seg]["emotion"] == _by_id(plain)[seg]["emotion"]

        embedded = {
            v.name
            for df in result.splits.values()
            for col in ("audio", "video")
            for v in df[col]
            if v is not None
        }
        assert embedded == {n for n, (_, why) in EXPECTED.items() if why is None}
        rejected = {r["where"]: r for r in result.rejected}
        assert set(rejected) == {f"media/{n}" for n, (_, why) in EXPECTED.items() if why}
        for name, (_, why) in EXPECTED.items():
            if why:
                r = rejected[f"media/{name}"]
                assert r["stage"] == "media" and r["id"] == name.rsplit(".", 1)[0]
                assert r["reason"].startswith(f"{name}: {why}"), r["reason"]
                assert r["fix"]
                assert "/dev/fd/" not in r["reason"] and str(clips) not in r["reason"]
        assert "cp --dereference" in rejected["media/clip_2_Cooking_3.wav"]["fix"]

        m = result.media
        assert (m["audio"], m["video"]) == (2, 1)
        assert m["converted_audio"] == ["clip_2_Cooking_2"]
        assert m["rejected_audio"] == [f"clip_2_Cooking_{n}" for n in (3, 4, 5, 6, 7)]
        assert m["rejected_video"] == [f"clip_2_Cooking_{n}" for n in (2, 3, 4, 5)]
        assert len(m["missing_audio"]) == N_SEGMENTS - 2
        assert len(m["missing_video"]) == N_SEGMENTS - 1
        assert (
            "clip_2_Cooking_3" in m["missing_audio"]
            and "clip_2_Cooking_1" not in m["missing_audio"]
        )

        # embedded as they are, read only when the shard is written
        good = rows["clip_2_Cooking_1"]
        assert isinstance(good["audio"], CheckedMediaFile)
        assert isinstance(good["video"], CheckedMediaFile)
        assert good["audio"].load() == {
            "bytes": (clips / "clip_2_Cooking_1.wav").read_bytes(),
            "path": "clip_2_Cooking_1.wav",
        }
        assert good["video"].load()["bytes"] == (clips / "clip_2_Cooking_1.mp4").read_bytes()
        assert (
            rows["clip_2_Cooking_3"]["audio"] is None and rows["clip_2_Cooking_3"]["video"] is None
        )

        # what a shard receives: to_table loads the MediaFile values, nothing else leaks in
        val = result.splits["validation"]
        table = to_table(val[val["id"].str.startswith("clip_2_Cooking_")])
        blobs = [a["bytes"] for a in table.column("audio").to_pylist() if a is not None]
        assert len(blobs) == 2
        passwd = Path("/etc/passwd").read_bytes()
        secret = (clips.parent / "outside" / "secret.wav").read_bytes()
        assert not any(passwd[:64] in b or b == secret for b in blobs)


@pytest.mark.slow
def test_converted_wav_is_16k_mono_and_deterministic(release_dir, clips, tmp_path):
    with import_release(release_dir, clips) as first:
        conv = _by_id(first)["clip_2_Cooking_2"]["audio"]
        assert isinstance(conv, MediaFile) and not isinstance(conv, CheckedMediaFile)
        scratch = Path(first.scratch.name)
        assert conv.file.parent == scratch and conv.name == "clip_2_Cooking_2.wav"
        blob = conv.load()["bytes"]
    assert not scratch.exists()  # the with block owns the converted files
    samples, rate, channels, width = _read_wav(blob)
    assert (rate, channels, width) == (16_000, 1, 2)
    truth = _decode_16k_mono(clips / "clip_2_Cooking_2.wav")
    assert len(samples) == 16_000 and np.array_equal(samples, truth)
    # the same bytes every time, wherever the scratch folder is
    again = import_release(release_dir, clips, scratch_dir=tmp_path)
    conv2 = _by_id(again)["clip_2_Cooking_2"]["audio"]
    assert conv2.file.parent.parent == tmp_path
    assert conv2.load()["bytes"] == blob
    again.close()
    assert not conv2.file.exists()


@pytest.mark.slow
def test_a_clip_swapped_after_the_check_is_refused(release_dir, tmp_path):
    d = tmp_path / "media"
    d.mkdir()
    (d / "clip_2_Cooking_1.wav").write_bytes(_wav(_noise(1600, 1)))
    (d / "clip_2_Cooking_2.wav").write_bytes(_wav(_noise(1600, 2)))
    other = tmp_path / "other.wav"
    other.write_bytes(_wav(_noise(1600, 3)))
    result = import_release(release_dir, d)
    rows = _by_id(result)
    link = d / "link.tmp"
    link.symlink_to(other)
    os.replace(link, d / "clip_2_Cooking_1.wav")  # a link now stands where the file was
    with pytest.raises(DataError, match=r"clip_2_Cooking_1\.wav: cannot be read again"):
        rows["clip_2_Cooking_1"]["audio"].load()
    with open(d / "clip_2_Cooking_2.wav", "ab") as fh:  # changed in place
        fh.write(b"\x00\x00")
    with pytest.raises(DataError, match=r"clip_2_Cooking_2\.wav: changed after it was checked"):
        rows["clip_2_Cooking_2"]["audio"].load()


@pytest.mark.slow
def test_build_cli_embeds_checked_media(release_dir, tmp_path, monkeypatch):
    """End to end: the shards hold the checked clips, rejected.jsonl the bad ones, and the
    converted wavs' temporary folder is gone once the build is written."""
    import json

    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from indomer.cli import main

    d = tmp_path / "media"
    d.mkdir()
    stereo = np.stack([_noise(22_050, 2), _noise(22_050, 3)], axis=1).reshape(-1)
    (d / "clip_2_Cooking_1.wav").write_bytes(_wav(stereo, rate=44_100, channels=2))
    _mp4(d / "clip_2_Cooking_1.mp4")
    (d / "clip_2_Cooking_2.wav").symlink_to("/etc/passwd")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the converted wav goes
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        ["build", "--release", str(release_dir), "--media-dir", str(d), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    # the refused file is counted as such, not as "0 rejected" after its rejection line
    assert "0 rows rejected, 1 media file(s) rejected (their rows kept without them)" in (
        res.stdout
    )
    [rej] = [json.loads(ln) for ln in (out / "rejected.jsonl").read_text().splitlines()]
    assert rej["where"] == "media/clip_2_Cooking_2.wav" and "symbolic link" in rej["reason"]
    rows = []
    for shard in sorted((out / "data").glob("validation-*.parquet")):
        rows += pq.read_table(shard, columns=["id", "audio", "video"]).to_pylist()
    assert len(rows) == 356
    media_rows = {r["id"]: r for r in rows if r["audio"] or r["video"]}
    assert set(media_rows) == {"clip_2_Cooking_1"}
    samples, rate, channels, _ = _read_wav(media_rows["clip_2_Cooking_1"]["audio"]["bytes"])
    assert (rate, channels, len(samples)) == (16_000, 1, 8000)
    assert (
        media_rows["clip_2_Cooking_1"]["video"]["bytes"]
        == (d / "clip_2_Cooking_1.mp4").read_bytes()
    )
    assert not [p for p in scratch.iterdir() if p.name.startswith("indomer-media-")]


def test_strict_stops_at_a_bad_clip(release_dir, tmp_path):
    d = tmp_path / "media"
    d.mkdir()
    (d / "clip_2_Cooking_1.wav").symlink_to("/etc/passwd")
    with pytest.raises(DataError, match=r"clip_2_Cooking_1\.wav: a symbolic link"):
        import_release(release_dir, d, strict=True)


def test_without_ffmpeg_only_canonical_wavs_are_checked(release_dir, tmp_path, monkeypatch):
    d = tmp_path / "media"
    d.mkdir()
    (d / "clip_2_Cooking_1.wav").write_bytes(_wav(_noise(1600, 1)))
    (d / "clip_2_Cooking_2.wav").write_bytes(_wav(_noise(1600, 2))[:100])  # cut short
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    # a 16 kHz mono 16-bit PCM wav is checked in pure Python: no ffmpeg needed
    result = import_release(release_dir, d)
    assert result.media["audio"] == 1 and result.media["rejected_audio"] == ["clip_2_Cooking_2"]
    # anything else needs ffprobe: one clear line, never an unchecked clip
    (d / "clip_2_Cooking_3.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(MediaToolMissing) as err:
        import_release(release_dir, d)
    msg = str(err.value)
    assert "\n" not in msg and err.value.exit_code == 2
    assert msg.startswith("clip_2_Cooking_3.mp4: checking it needs ffprobe")
    assert "tools/install.sh media" in msg


# ---------------------------------------------------------------------------------------
# Annotations.csv cut short, and with a byte-order mark


def _json_ids(release: Path) -> set[str]:
    import json

    ids: set[str] = set()
    for name in ("7_class_train.json", "7_class_val.json"):
        ids |= {r["sample_id"] for r in json.loads((release / "7_Class" / name).read_text())}
    return ids


def _truncation_error(release: Path, **kw) -> str:
    with pytest.raises(DataError) as err:
        import_release(release, **kw)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("bom", [False, True])
def test_csv_cut_mid_line_says_truncated(release_copy, bom):
    path = release_copy / "Annotations.csv"
    raw = path.read_bytes()
    cut = raw[: len(raw) // 2]
    assert not cut.endswith(b"\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + cut)
    lines = cut.decode("utf-8", "replace").split("\r\n")
    rows = len(lines) - 1  # the header, then the complete rows and the cut one
    present = {ln.split(",", 1)[0].removesuffix(".mp4") for ln in lines[1:]}
    absent = len(_json_ids(release_copy) - present)
    assert 900 < absent < N_SEGMENTS
    for strict in (False, True):  # never one "add the row" line per lost segment
        msg = _truncation_error(release_copy, strict=strict)
        assert msg == (
            f"{path}: looks truncated: {rows:,} rows against {N_SEGMENTS:,} segments in the "
            f"JSON splits ({absent:,} of them have no row; its last line is cut off); download "
            "Annotations.csv again (or build from github:yanxm01/INDOMER@<commit>)"
        )


def test_csv_cut_at_a_line_break_with_most_rows_gone(release_copy):
    path = release_copy / "Annotations.csv"
    lines = path.read_bytes().split(b"\r\n")
    path.write_bytes(b"\r\n".join(lines[:101]) + b"\r\n")
    msg = _truncation_error(release_copy)
    assert re.search(
        rf"looks truncated: 100 rows against 1,944 segments in the JSON splits "
        rf"\({N_SEGMENTS - 100:,} of them have no row\);",
        msg,
    )


def test_csv_with_the_last_row_cut_inside_its_fields(release_copy):
    path = release_copy / "Annotations.csv"
    raw = path.read_bytes().removesuffix(b"\r\n")
    last = raw.rsplit(b"\r\n", 1)[1]
    keep = last.index(b".wav,") + len(b".wav,") + 3  # video_name, audio_name, 3 letters
    path.write_bytes(raw[: len(raw) - len(last) + keep])
    msg = _truncation_error(release_copy)
    assert "looks truncated: 1,944 rows" in msg and "(its last line is cut off)" in msg


def test_a_few_missing_rows_stay_per_row_rejections(release_copy):
    path = release_copy / "Annotations.csv"
    lines = path.read_bytes().split(b"\r\n")
    gone = [ln.split(b",", 1)[0].decode().removesuffix(".mp4") for ln in lines[1:4]]
    path.write_bytes(b"\r\n".join(lines[:1] + lines[4:]))  # still ends with CRLF
    result = import_release(release_copy)
    assert sorted(r["id"] for r in result.rejected) == sorted(gone)
    assert all("not in Annotations.csv" in r["reason"] for r in result.rejected)
    assert sum(len(d) for d in result.splits.values()) == N_SEGMENTS - 3


def test_byte_order_mark_is_accepted(release_dir, release_copy):
    path = release_copy / "Annotations.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # CRLF kept, as Excel saves it
    result = import_release(release_copy)
    plain = import_release(release_dir)
    assert not result.rejected and not result.warnings
    for split, df in plain.splits.items():
        assert result.splits[split].equals(df)
