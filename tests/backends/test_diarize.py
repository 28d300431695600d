"""Diarization: the per-clip summary on hand-made turns (exact), the offline guard, and the
pyannote code path with a random-weight pipeline loaded from a local folder."""

from __future__ import annotations

import os

import pytest
from speaker_fixtures import clips_of, random_pipeline_dir

from indomer.backends import diarize
from indomer.backends.diarize import (
    available,
    clip_summary,
    diarize_source,
    hub_access,
    load_pipeline,
    model_version,
    solo_regions,
)
from indomer.demo.synth import VOICES
from indomer.errors import UsageError

# A: 0-4 s and 6-10 s; B: 3-5 s (overlaps A for 1 s); C: 9.75-12 s (overlaps A 0.25 s)
TURNS = [(0.0, 4.0, "A"), (3.0, 5.0, "B"), (6.0, 10.0, "A"), (9.75, 12.0, "C")]


def test_one_speaker_alone():
    assert clip_summary(TURNS, 6.0, 9.5) == {
        "n_speakers": 1,
        "primary": "A",
        "primary_share": 1.0,
        "overlap": 0.0,
    }


def test_shares_and_overlap_are_exact():
    # clip 2-6 s: speech 2-5 (A 2-4, B 3-5) = 3 s; A 2 s; overlap 3-4 = 1 s
    s = clip_summary(TURNS, 2.0, 6.0)
    assert s == {
        "n_speakers": 2,
        "primary": "A",
        "primary_share": round(2 / 3, 6),
        "overlap": round(1 / 3, 6),
    }
    # clip 0-12 s: speech 0-5 and 6-12 = 11 s; A 8 s; overlaps 1 + 0.25 s
    s = clip_summary(TURNS, 0.0, 12.0)
    assert s == {
        "n_speakers": 3,
        "primary": "A",
        "primary_share": round(8 / 11, 6),
        "overlap": round(1.25 / 11, 6),
    }


def test_min_speaker_time_ignores_a_speaker_who_barely_enters():
    # clip 6-10 s: C speaks 0.25 s at the end
    assert clip_summary(TURNS, 6.0, 10.0)["n_speakers"] == 2
    s = clip_summary(TURNS, 6.0, 10.0, min_speaker_time=0.5)
    assert s == {"n_speakers": 1, "primary": "A", "primary_share": 1.0, "overlap": 0.0625}


def test_ties_pick_the_smaller_label_and_silence_has_no_primary():
    turns = [(0.0, 1.0, "SPEAKER_01"), (1.0, 2.0, "SPEAKER_00")]
    assert clip_summary(turns, 0.0, 2.0)["primary"] == "SPEAKER_00"
    assert clip_summary(turns, 0.0, 2.0)["primary_share"] == 0.5
    assert clip_summary(TURNS, 5.0, 6.0) == {
        "n_speakers": 0,
        "primary": None,
        "primary_share": None,
        "overlap": None,
    }
    assert clip_summary([], 0.0, 3.0)["n_speakers"] == 0


def test_overlapping_turns_of_one_label_count_once():
    turns = [(0.0, 2.0, "A"), (1.0, 3.0, "A"), (2.5, 3.5, "B")]
    assert clip_summary(turns, 0.0, 4.0) == {
        "n_speakers": 2,
        "primary": "A",
        "primary_share": round(3 / 3.5, 6),
        "overlap": round(0.5 / 3.5, 6),
    }


def test_solo_regions_are_clip_relative():
    assert solo_regions(TURNS, 2.0, 11.0, "A") == [(0.0, 1.0), (4.0, 7.75)]
    assert solo_regions(TURNS, 2.0, 11.0, "B") == [(2.0, 3.0)]
    assert solo_regions(TURNS, 2.0, 11.0, "Z") == []


def test_hub_guard_refuses_requests_without_touching_the_network():
    from huggingface_hub import get_session
    from huggingface_hub.errors import OfflineModeIsEnabled

    with (
        hub_access(allow_download=False),
        pytest.raises(OfflineModeIsEnabled, match="downloads are off"),
    ):
        get_session().get("https://huggingface.co/api/models/pyannote/x")
    # the previous backend is back afterwards
    from huggingface_hub.utils import _http

    before = _http._GLOBAL_BACKEND_FACTORY
    with hub_access(allow_download=False):
        assert _http._GLOBAL_BACKEND_FACTORY is not before
    assert _http._GLOBAL_BACKEND_FACTORY is before
    with hub_access(allow_download=True):
        assert _http._GLOBAL_BACKEND_FACTORY is before


def test_missing_hub_model_names_the_licence_and_the_fetch_command(tmp_path):
    with pytest.raises(UsageError) as err:
        load_pipeline("pyannote/speaker-diarization-community-1", cache_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith(
        "speakers.diarization: pyannote model "
        "'pyannote/speaker-diarization-community-1' is not in the local"
    )
    assert "https://hf.co/pyannote/speaker-diarization-community-1" in msg
    assert "gated" in msg and "licence" in msg
    assert "huggingface-cli download pyannote/speaker-diarization-community-1" in msg
    assert "\n" not in msg


def test_a_path_that_is_neither_a_folder_nor_a_hub_id_is_one_line(tmp_path):
    with pytest.raises(UsageError) as err:
        load_pipeline(str(tmp_path / "no" / "such" / "model"), cache_dir=tmp_path)
    msg = str(err.value)
    assert "is neither an existing local path nor a hub id" in msg and "\n" not in msg


def test_model_version_of_an_uncached_hub_id():
    assert model_version("someone/not-here").startswith("someone/not-here@not cached; pyannote")
    assert not available("someone/not-here")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # random weights: empty clusters
def test_local_random_pipeline_runs_on_in_memory_audio():
    folder = random_pipeline_dir()
    pipeline = load_pipeline(str(folder))
    assert load_pipeline(str(folder)) is pipeline  # loaded once per process
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"  # telemetry off
    assert available(str(folder))
    wav, _ = clips_of("9", "Test", VOICES["f2"], (0,))
    turns = diarize_source(wav, pipeline)
    duration = wav.size / 16_000
    assert isinstance(turns, list) and turns == sorted(turns)
    for start, end, label in turns:
        assert isinstance(start, float) and isinstance(end, float) and isinstance(label, str)
        assert 0.0 <= start < end <= duration
        assert label.startswith("SPEAKER_")
    summary = clip_summary(turns, 0.0, duration)
    assert set(summary) == {"n_speakers", "primary", "primary_share", "overlap"}
    assert diarize_source(wav[:0], pipeline) == []
    version = model_version(str(folder))
    assert version.startswith("pipeline@sha256:") and version == model_version(str(folder))


def test_local_folder_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match=r"speakers.diarization: cannot load .*fix the path"):
        load_pipeline(str(tmp_path))
    assert diarize.SAMPLE_RATE == 16_000
