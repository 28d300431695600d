"""cut on generated media, against exact truth: frame counts, first/last frames, wav samples
(lag 0 against the source's own 16 kHz resample), byte-identical reruns, and rejections."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from indomer import media
from indomer.errors import RowRejected
from indomer.rows import Segment, Video
from indomer.stage import FolderState, Item
from indomer.stages import cut
from stages import media_fixtures as mf

pytestmark = pytest.mark.slow

FPS = 25
SPANS = [(0.0, 1.0), (1.234567, 2.5), (2.5, 4.02), (3.3, 3.9), (4.5, 6.0)]


def _segs(source_id: str, spans) -> list[Segment]:
    return [
        Segment(
            id=f"clip_{source_id}_Cooking_{i}",
            source_id=source_id,
            segment_index=i,
            topic="Cooking",
            start=s,
            end=e,
        )
        for i, (s, e) in enumerate(spans, start=1)
    ]


def _frames_in(start: float, end: float, fps: int = FPS) -> range:
    """Indices of the source frames whose timestamps k/fps lie in [start, end)."""
    s, e = round(start * 1e6), round(end * 1e6)
    step = 1_000_000 // fps
    return range(-(-s // step), -(-e // step))


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("cut")
    mp4 = mf.make_av(d / "src.mp4", seconds=6.0, fps=FPS, sample_rate=44100, channels=2, seed=3)
    mkv = mf.make_av(d / "late.mkv", seconds=4.0, fps=FPS, sample_rate=22050, audio_delay=0.5)
    video = Video(source_id="1", topic="Cooking", path=str(mp4))
    late = Video(source_id="2", topic="Cooking", path=str(mkv))
    settings = cut.Settings(clips_per_process=2)  # three groups: exercises the seeks
    rows = cut.process(video, _segs("1", SPANS), settings, d / "a" / "clips")
    late_spans = [(0.25, 1.25), (1.0, 2.0)]
    late_rows = cut.process(late, _segs("2", late_spans), settings, d / "late" / "clips")
    return {
        "dir": d, "mp4": mp4, "mkv": mkv, "video": video, "late": late, "rows": rows,
        "late_rows": late_rows, "late_spans": late_spans, "settings": settings,
    }


def test_every_segment_is_cut_with_paths_filled(src):
    rows = src["rows"]
    assert [r.id for r in rows] == [f"clip_1_Cooking_{i}" for i in range(1, 6)]
    clips = src["dir"] / "a" / "clips"
    for r in rows:
        assert isinstance(r, Segment)
        assert r.video_path == str(clips / f"{r.id}.mp4")
        assert r.audio_path == str(clips / f"{r.id}.wav")
        assert r.source_path == str(src["mp4"])
    assert not list(clips.glob(".*")), "temp files left behind"


def test_mp4_is_h264_aac_and_frame_accurate(src):
    for r, (s, e) in zip(src["rows"], SPANS):
        info = mf.ffprobe_streams(Path(r.video_path))
        v, a = info["video"], info["audio"]
        assert (v["codec_name"], v["pix_fmt"], a["codec_name"]) == ("h264", "yuv420p", "aac")
        assert (a["sample_rate"], a["channels"]) == ("44100", 2)  # the source's audio
        assert float(v["start_time"]) == 0.0 and float(a["start_time"]) == 0.0
        want = _frames_in(s, e)
        assert int(v["nb_read_frames"]) == len(want)
        assert abs(float(v["duration"]) - (e - s)) <= 1 / FPS + 1e-6
        assert abs(float(a["duration"]) - (e - s)) <= 1 / FPS
        tracks = media.mp4_tracks(r.video_path)  # the cutter's own check agrees with ffprobe
        assert tracks["vide"] == (pytest.approx(float(v["duration"])), len(want))


def _gray(path: Path) -> np.ndarray:
    out = subprocess.run(
        [mf.FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
         "-vf", "scale=80:60", "-pix_fmt", "gray", "-f", "rawvideo", "-"],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, 60, 80).astype(np.float32)


def test_clips_start_and_end_on_the_right_source_frames(src):
    source = _gray(src["mp4"])
    assert len(source) == 150
    for r, (s, e) in zip(src["rows"], SPANS):
        clip = _gray(Path(r.video_path))
        want = _frames_in(s, e)
        for got, k in ((clip[0], want[0]), (clip[-1], want[-1])):
            nearest = int(np.argmin(((source - got) ** 2).mean(axis=(1, 2))))
            assert nearest == k, f"{r.id}: frame {nearest}, expected source frame {k}"


def _lag(clip: np.ndarray, truth: np.ndarray, i0: int, search: int = 200) -> int:
    """Offset of ``clip`` in ``truth`` around ``i0`` by cross-correlation (0 = aligned)."""
    lo = max(i0 - search, 0)
    window = truth[lo : i0 + len(clip) + search].astype(np.float64)
    corr = np.correlate(window, clip.astype(np.float64), mode="valid")
    return int(np.argmax(corr)) + lo - i0


def test_wav_is_the_sources_16k_resample_over_the_span(src):
    truth = mf.decode_16k(src["mp4"])
    for r, (s, e) in zip(src["rows"], SPANS):
        wav, rate, channels = mf.read_wav(Path(r.audio_path))
        assert (rate, channels) == (16000, 1)
        i0, i1 = round(s * 16000), round(e * 16000)
        assert len(wav) == i1 - i0
        assert _lag(wav, truth, i0) == 0
        assert np.array_equal(wav, truth[i0:i1])


def test_audio_that_starts_late_keeps_its_place(src):
    """The mkv's audio starts 0.5 s after its video: the wav pads the gap with silence
    and the mp4's audio track starts late instead of being pulled forward."""
    truth = mf.decode_16k(src["mkv"])  # sample 0 of this sits at 0.5 s
    r1, r2 = src["late_rows"]
    w1, _, _ = mf.read_wav(Path(r1.audio_path))
    assert len(w1) == 16000
    assert not w1[:4000].any()
    assert np.array_equal(w1[4000:], truth[:12000])
    w2, _, _ = mf.read_wav(Path(r2.audio_path))
    assert np.array_equal(w2, truth[8000:24000])
    a = mf.ffprobe_streams(Path(r1.video_path))["audio"]
    priming = 1024 / 22050  # AAC's encoder delay, which the edit list skips
    assert float(a["start_time"]) == pytest.approx(0.25 - priming, abs=1e-3)


def test_cuts_are_byte_identical_across_runs_and_groupings(src):
    d = src["dir"]
    again = cut.process(src["video"], _segs("1", SPANS), src["settings"], d / "b" / "clips")
    one_run = cut.process(
        src["video"], _segs("1", SPANS), cut.Settings(clips_per_process=8), d / "c" / "clips"
    )
    for r, r2, r3 in zip(src["rows"], again, one_run):
        for field in ("video_path", "audio_path"):
            first = Path(getattr(r, field)).read_bytes()
            assert Path(getattr(r2, field)).read_bytes() == first, (r.id, field)
            assert Path(getattr(r3, field)).read_bytes() == first, (r.id, field)


def _stage_cut(sources, clips_dir, settings=None):
    """Every source through the stage's contract (``STAGE.process(item, state)``), as the
    runner's executors run it: (cut segments, rejections), in input order."""
    state = FolderState(settings or cut.Settings(), clips_dir)
    rows = []
    for video, segs in sources:
        out = cut.STAGE.process(Item(video.source_id, video, tuple(segs)), state)
        assert out[0] == video  # the video row goes on, first
        rows += out[1:]
    return ([r for r in rows if isinstance(r, Segment)],
            [r for r in rows if isinstance(r, RowRejected)])


def test_the_stage_cuts_sources_one_item_at_a_time_with_the_same_bytes(src):
    d = src["dir"]
    kept, rejected = _stage_cut(
        [(src["video"], _segs("1", SPANS[:2])), (src["late"], _segs("2", src["late_spans"]))],
        d / "par" / "clips",
        src["settings"],
    )
    assert rejected == []
    assert [k.id for k in kept] == [
        "clip_1_Cooking_1", "clip_1_Cooking_2", "clip_2_Cooking_1", "clip_2_Cooking_2",
    ]
    before = {r.id: r for r in src["rows"] + src["late_rows"]}
    for k in kept:
        assert Path(k.video_path).read_bytes() == Path(before[k.id].video_path).read_bytes()
        assert Path(k.audio_path).read_bytes() == Path(before[k.id].audio_path).read_bytes()


def test_bad_segments_are_rejected_in_place_and_write_nothing(src, tmp_path):
    good = _segs("1", [(1.0, 2.0)])[0]
    bad = [
        Segment("../x", "1", 2, "Cooking", 1.0, 2.0),
        Segment(".hidden", "1", 3, "Cooking", 1.0, 2.0),
        Segment("clip_1_Cooking_4", "1", 4, "Cooking", 2.0, 1.0),
        Segment("clip_1_Cooking_5", "1", 5, "Cooking", 5.0, 7.0),
        Segment("clip_1_Cooking_6", "1", 6, "Cooking", 2.0, 2.01),
        Segment("clip_9_Cooking_1", "9", 1, "Cooking", 1.0, 2.0),
        good,  # a duplicate id
    ]
    clips = tmp_path / "deep" / "clips"
    rows = cut.process(src["video"], [good, *bad], src["settings"], clips)
    assert isinstance(rows[0], Segment)
    reasons = [r.reason for r in rows[1:]]
    assert all(isinstance(r, RowRejected) and r.fix for r in rows[1:])
    assert [r.row_id for r in rows[1:]] == [s.id for s in bad]
    for got, want in zip(
        reasons,
        ["unsafe segment id", "unsafe segment id", "bad span", "after the source's end",
         "shorter than one video frame", "belongs to source '9'", "duplicate segment id"],
    ):
        assert want in got
    assert sorted(p.name for p in clips.iterdir()) == [f"{good.id}.mp4", f"{good.id}.wav"]
    assert not list(tmp_path.rglob("x.*")) and not list(tmp_path.rglob("*.tmp"))


def test_an_unusable_source_rejects_all_its_segments(src, tmp_path):
    silent = Video("3", "Cooking", path=str(mf.make_video_only(tmp_path / "silent.mp4")))
    missing = Video("4", "Cooking", path=str(tmp_path / "nope.mp4"))
    kept, rejected = _stage_cut(
        [(silent, _segs("3", [(0.0, 1.0)])), (missing, _segs("4", [(0.0, 1.0), (1.0, 2.0)]))],
        tmp_path / "clips",
    )
    assert kept == []
    assert [r.row_id for r in rejected] == ["clip_3_Cooking_1", "clip_4_Cooking_1", "clip_4_Cooking_2"]
    assert "no audio stream" in rejected[0].reason and "not found" in rejected[1].reason
    assert list((tmp_path / "clips").iterdir()) == []


def test_a_failed_encode_leaves_no_files(src, tmp_path, monkeypatch):
    real = media.run_ffmpeg

    def failing(args, **kw):
        if "-filter_complex" in args:
            raise media.MediaError("ffmpeg failed: boom", "boom")
        return real(args, **kw)

    monkeypatch.setattr(media, "run_ffmpeg", failing)
    rows = cut.process(src["video"], _segs("1", SPANS[:3]), src["settings"], tmp_path)
    assert all(isinstance(r, RowRejected) and "boom" in r.reason for r in rows)
    assert list(tmp_path.iterdir()) == []


def test_max_height_scales_down_keeping_the_aspect(src, tmp_path):
    [r] = cut.process(
        src["video"], _segs("1", [(0.0, 0.4)]), cut.Settings(max_height=120), tmp_path
    )
    v = mf.ffprobe_streams(Path(r.video_path))["video"]
    assert (v["width"], v["height"]) == (160, 120)


def test_bad_settings_are_refused_by_name():
    from indomer.config import make_settings
    from indomer.errors import UsageError

    with pytest.raises(UsageError, match=r"^config: cut.crf: 99 is greater than the maximum"):
        make_settings(cut.Settings, {"crf": 99}, "cut")
    with pytest.raises(UsageError, match=r"cut.preset: 'fastest' is not one of 'ultrafast',"):
        make_settings(cut.Settings, {"preset": "fastest"}, "cut")
    assert cut.X264_PRESETS[0] == "ultrafast" and len(cut.X264_PRESETS) == 10


def test_odd_sizes_and_awkward_paths(tmp_path):
    """A name ffmpeg could misread (spaces, ':', quotes, brackets) and an odd frame size,
    which yuv420p cannot hold: the clip is cropped by the scaler to even numbers."""
    weird = tmp_path / "my data: 'x' [1],y;z"
    weird.mkdir()
    src = mf.make_av(weird / "-odd, name.mp4", seconds=1.0, size="161x121", pix_fmt="yuv444p")
    video = Video(source_id="5", topic="Cooking", path=str(src))
    [r] = cut.process(video, _segs("5", [(0.2, 0.8)]), None, weird / "clips [a]")
    v = mf.ffprobe_streams(Path(r.video_path))["video"]
    assert (v["width"] % 2, v["height"] % 2, v["pix_fmt"]) == (0, 0, "yuv420p")
    assert v["height"] == 120
    assert len(mf.read_wav(Path(r.audio_path))[0]) == round(0.6 * 16000)


def test_webm_opus_audio_lands_on_the_timeline(tmp_path):
    """YouTube's VP9 + Opus: the container starts at -7 ms and the decoder drops Opus's
    pre-roll, so the first sample sits at +7 ms on ffmpeg's timeline, not at 0. Checked
    against an oracle that places the audio by its timestamps."""
    src = mf.make_av(tmp_path / "yt.webm", seconds=3.0, size="160x120", sample_rate=48000)
    spans = [(0.0, 1.0), (1.2, 2.5)]
    rows = cut.process(Video("6", "Cooking", path=str(src)), _segs("6", spans), None, tmp_path)
    oracle = mf.decode_16k_on_timeline(src)
    for r, (s, e) in zip(rows, spans):
        wav, _, _ = mf.read_wav(Path(r.audio_path))
        i0 = round(s * 16000)
        assert len(wav) == round(e * 16000) - i0
        assert _lag(wav, oracle, i0) == 0
        ref = oracle[i0 : i0 + len(wav)].astype(float)
        assert np.corrcoef(wav.astype(float)[200:], ref[200:])[0, 1] > 0.999


def test_a_rotated_source_gives_upright_clips(src, tmp_path):
    """Phones store portrait video sideways plus a rotation; clips come out as displayed."""
    rotated = mf.make_rotated(tmp_path / "portrait.mp4", src["mp4"], 90)
    video = Video(source_id="1", topic="Cooking", path=str(rotated))
    [r] = cut.process(video, _segs("1", [(0.0, 0.4)]), cut.Settings(max_height=160), tmp_path)
    v = mf.ffprobe_streams(Path(r.video_path))["video"]
    assert (v["width"], v["height"]) == (120, 160)
    assert not any("rotation" in sd for sd in v.get("side_data_list", []))
