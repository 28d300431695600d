"""Natural-pause segmentation: the rules on hand-made probabilities, then the stage on speech."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak, write_wav
from indomer.errors import DataError, RowRejected, UsageError
from indomer.rows import Video
from indomer.stages import segment
from indomer.stages.segment import Settings, check_given, segments_from_probs, settings_from

FS = 0.1  # frame length of the hand-made arrays: easy arithmetic
EXACT = Settings(pad=0.0)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                  reason="ffmpeg not on PATH (apt-get install ffmpeg)")


def probs(speech: list[tuple[float, float]], total: float, on: float = 0.9,
          off: float = 0.05) -> np.ndarray:
    """Probabilities ``on`` inside the given (start, end) seconds and ``off`` elsewhere."""
    p = np.full(round(total / FS), off)
    for start, end in speech:
        p[round(start / FS): round(end / FS)] = on
    return p


def test_sentences_separated_by_pauses_become_clips():
    p = probs([(1.0, 3.0), (4.0, 6.5), (7.5, 9.0)], 10.0)
    assert segments_from_probs(p, FS, EXACT) == [(1.0, 3.0), (4.0, 6.5), (7.5, 9.0)]


def test_min_pause_is_respected():
    # 0.2 s (a breath) stays inside the clip; 0.4 s ends it
    p = probs([(1.0, 3.0), (3.2, 5.0), (5.4, 7.0)], 8.0)
    assert segments_from_probs(p, FS, EXACT) == [(1.0, 5.0), (5.4, 7.0)]
    assert segments_from_probs(p, FS, Settings(pad=0.0, min_pause=0.5)) == [(1.0, 7.0)]
    assert segments_from_probs(p, FS, Settings(pad=0.0, min_pause=0.1)) == [
        (1.0, 3.0), (3.2, 5.0), (5.4, 7.0)]


def test_long_stretch_splits_at_its_longest_pause():
    # 20 s with only short pauses (0.1 s at 6 s, 0.2 s at 10 s): too long for one clip
    p = probs([(0.0, 6.0), (6.1, 10.0), (10.2, 20.0)], 20.0)
    assert segments_from_probs(p, FS, EXACT) == [(0.0, 10.0), (10.2, 20.0)]


def test_long_stretch_splits_recursively_until_every_piece_fits():
    # 40 s, pauses under min_pause=0.5: 0.2 s at 9, 0.1 s at 19, 0.4 s at 29.
    # Cut at 29 (longest); the 29 s left is cut at 9, and the 19.8 s left at 19.
    p = probs([(0, 9), (9.2, 19), (19.1, 29), (29.4, 40)], 40.0)
    settings = Settings(pad=0.0, min_pause=0.5)
    assert segments_from_probs(p, FS, settings) == [
        (0.0, 9.0), (9.2, 19.0), (19.1, 29.0), (29.4, 40.0)]
    # with a 30 s limit, the longest pause alone is enough
    assert segments_from_probs(p, FS, Settings(pad=0.0, min_pause=0.5, max_clip=30.0)) == [
        (0.0, 29.0), (29.4, 40.0)]


def test_split_prefers_a_pause_that_leaves_no_tiny_piece():
    # the longest pause (0.25 s) is 0.5 s from the start: cutting there would leave a 0.5 s
    # piece, so the 0.2 s pause in the middle is used
    p = probs([(0.0, 0.5), (0.75, 8.0), (8.2, 16.0)], 16.0)
    assert segments_from_probs(p, FS, EXACT) == [(0.0, 8.0), (8.2, 16.0)]


def test_unbroken_speech_splits_at_its_least_likely_frame():
    p = probs([(0.0, 20.0)], 20.0)
    p[120] = 0.6  # still speech (above 0.35), but the least sure frame
    assert segments_from_probs(p, FS, EXACT) == [(0.0, 12.0), (12.0, 20.0)]


def test_tiny_piece_merges_with_the_nearer_neighbour():
    # 0.4 s piece: 0.5 s after the first clip, 1.0 s before the last
    p = probs([(0.0, 3.0), (3.5, 3.9), (4.9, 8.0)], 8.0)
    assert segments_from_probs(p, FS, EXACT) == [(0.0, 3.9), (4.9, 8.0)]
    # mirrored: nearer the next clip
    p = probs([(0.0, 3.0), (4.0, 4.4), (4.9, 8.0)], 8.0)
    assert segments_from_probs(p, FS, EXACT) == [(0.0, 3.0), (4.0, 8.0)]


def test_tiny_piece_stays_alone_when_merging_would_exceed_max_clip():
    p = probs([(0.0, 14.5), (15.0, 15.5)], 16.0)
    assert segments_from_probs(p, FS, EXACT) == [(0.0, 14.5), (15.0, 15.5)]


def test_hysteresis_and_noise():
    p = probs([(1.0, 4.0)], 6.0)
    p[20:25] = 0.4  # dips above threshold - 0.15 do not end speech
    p[50] = 0.9  # a 0.1 s click far from speech ... kept only if min_speech allows it
    assert segments_from_probs(p, FS, Settings(pad=0.0, min_speech=0.2)) == [(1.0, 4.0)]
    q = np.full(60, 0.45)  # never reaches the threshold
    assert segments_from_probs(q, FS, EXACT) == []


def test_padding_is_clamped_by_the_ends_and_the_middle_of_the_pause():
    p = probs([(0.1, 3.0), (3.4, 6.0)], 6.0)
    assert segments_from_probs(p, FS, Settings(pad=0.3)) == [(0.0, 3.2), (3.2, 6.0)]
    assert segments_from_probs(p, FS, Settings(pad=0.03), duration=5.99) == [
        (0.07, 3.03), (3.37, 5.99)]


def test_settings_are_checked_and_read_from_config_shapes():
    # what two fields say together: the dataclass; one field's bounds: the config's model
    with pytest.raises(ValueError, match=r"max_clip \(4\) must be greater than min_clip \(5\)"):
        Settings(min_clip=5.0, max_clip=4.0)
    with pytest.raises(UsageError, match=r"^config: segment: max_clip \(4\) must be greater"):
        settings_from({"min_clip": 5.0, "max_clip": 4.0})
    with pytest.raises(UsageError, match="segment.threshold: 1.5 is greater than or equal to"):
        settings_from({"threshold": 1.5})
    with pytest.raises(UsageError, match="segment.thresh: unknown setting"):
        settings_from({"thresh": 0.5})
    assert settings_from({"segment": {"pad": 0}}) == Settings(pad=0.0)
    assert settings_from(None) == Settings()
    assert settings_from({"segment": {"pad": 0.1}}) == Settings(pad=0.1)
    assert settings_from({"max_clip": 10.0}).max_clip == 10.0
    with pytest.raises(UsageError, match="unknown setting"):
        settings_from({"maxclip": 10.0})


def test_check_given_accepts_good_timestamps():
    check_given([("clip_1_Cooking_1", 0.0, 3.0), ("clip_1_Cooking_2", 3.0, 7.5)], 8.0)


def test_check_given_names_both_rows_of_an_overlap():
    with pytest.raises(DataError) as err:
        check_given([("clip_1_Cooking_1", 0.0, 4.0), ("clip_1_Cooking_2", 3.0, 7.0),
                     ("clip_1_Cooking_3", 7.0, 8.0)], 10.0)
    msg = str(err.value)
    assert "clip_1_Cooking_2" in msg and "clip_1_Cooking_1" in msg
    assert "clip_1_Cooking_3" not in msg
    assert msg.startswith("clip_1_Cooking_2")


def test_check_given_names_out_of_range_rows():
    with pytest.raises(DataError) as err:
        check_given([("a", -1.0, 2.0), ("b", 2.0, 12.0), ("c", 5.0, 5.0), ("d", 6.0, 7.0)],
                    10.0)
    msg = str(err.value)
    for row_id, words in (("a", "before"), ("b", "past"), ("c", "not after")):
        assert f"{row_id}: " in msg and words in msg
    assert "d:" not in msg
    check_given([("b", 2.0, 10.02)], 10.0, tolerance=0.05)


def test_check_given_catches_a_segment_inside_a_long_one():
    with pytest.raises(DataError, match="x .*overlaps long"):
        check_given([("long", 0.0, 10.0), ("y", 2.0, 3.0), ("x", 5.0, 6.0)], 20.0)


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory):
    wav, truth = speak([t for _, t in DEMO_SENTENCES[:3]], VOICES["f4"])
    path = tmp_path_factory.mktemp("segment") / "src.wav"
    write_wav(path, wav)
    return path, truth


@needs_ffmpeg
@pytest.mark.slow
def test_process_cuts_sentences_with_release_ids(speech_file):
    path, truth = speech_file
    video = Video(source_id="7", topic="Cooking", path=str(path))
    clips = segment.process(video, Settings())
    assert [c.id for c in clips] == ["clip_7_Cooking_1", "clip_7_Cooking_2", "clip_7_Cooking_3"]
    assert [c.segment_index for c in clips] == [1, 2, 3]
    for clip, sentence in zip(clips, truth["sentences"], strict=True):
        assert clip.source_id == "7" and clip.topic == "Cooking"
        assert clip.source_path == str(path)
        assert abs(clip.start - sentence["start"]) <= 0.25
        assert abs(clip.end - sentence["end"]) <= 0.25
    assert segment.process(video, Settings()) == clips  # deterministic


@needs_ffmpeg
def test_process_rejects_unreadable_missing_and_silent_media(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(RowRejected) as err:
        segment.process(Video(source_id="3", topic="Travel", path=str(bad)))
    assert err.value.row_id == "3" and "ffmpeg" in err.value.reason
    with pytest.raises(RowRejected, match="no media file"):
        segment.process(Video(source_id="4", topic="Travel"))
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(32_000, dtype=np.float32))
    with pytest.raises(RowRejected, match="no speech"):
        segment.process(Video(source_id="5", topic="Travel", path=str(silent)))


@needs_ffmpeg
@pytest.mark.slow
def test_the_stage_rejects_a_bad_video_and_segments_the_next_with_one_vad(speech_file,
                                                                          tmp_path):
    from indomer.backends.vad import load_vad
    from indomer.stage import Item

    path, _ = speech_file
    state = segment.State(segment.settings_from({"segment": {"pad": 0.0}}), None, load_vad())
    bad = Video(source_id="1", topic="Opinion", path=str(tmp_path / "missing.mp4"))
    with pytest.raises(RowRejected):
        segment.STAGE.process(Item("1", bad), state)
    good = Video(source_id="2", topic="Opinion", path=str(path))
    rows = segment.STAGE.process(Item("2", good), state)
    assert rows[0] == good
    assert [c.id for c in rows[1:]] == [f"clip_2_Opinion_{n}" for n in (1, 2, 3)]
