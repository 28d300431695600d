"""The speakers stage: settings, per-source process (no diarization, a scripted pipeline with
known turns, the random local pyannote pipeline) and the whole-dataset identify step."""

from __future__ import annotations

import dataclasses
import shutil
import wave
from types import SimpleNamespace

import numpy as np
import pytest
from speaker_fixtures import clips_of, random_pipeline_dir

from indomer.backends.diarize import solo_regions
from indomer.backends.voice import load_encoder
from indomer.config import make_settings
from indomer.demo.synth import VOICES, write_wav
from indomer.errors import DataError, RowRejected, UsageError
from indomer.rows import Segment, Video, from_json, to_json
from indomer.speakers import decode_embedding, derived_id
from indomer.stages import speakers, voices
from indomer.stages.speakers import Settings, identify
from indomer.stages.voices import State, mixed_reason, process

SR = 16_000
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None, reason="ffmpeg not on PATH (apt-get install ffmpeg)"
)


def make_source(tmp_path, source_id: str, voice: str, sentences=(0, 2), *, clip_wavs=True):
    """A source wav (standing in for the video) and its clips, cut at the sentence truth."""
    topic = "Test"
    wav, clips = clips_of(source_id, topic, VOICES[voice], sentences)
    src = tmp_path / f"{source_id}.wav"
    write_wav(src, wav)
    video = Video(source_id=source_id, topic=topic, path=str(src))
    segs = []
    for n, (cid, start, end, clip) in enumerate(clips, start=1):
        audio = None
        if clip_wavs:
            audio = tmp_path / f"{cid}.wav"
            write_wav(audio, clip)
        segs.append(
            Segment(
                id=cid,
                source_id=source_id,
                segment_index=n,
                topic=topic,
                start=start,
                end=end,
                source_path=str(src),
                audio_path=None if audio is None else str(audio),
            )
        )
    return video, segs


class ScriptedPipeline:
    """Stands in for a pyannote pipeline: returns fixed turns, records what it was given."""

    def __init__(self, turns):
        self.turns = turns
        self.calls = []

    def __call__(self, file):
        self.calls.append((sorted(file), tuple(file["waveform"].shape), file["sample_rate"]))
        tracks = [
            (SimpleNamespace(start=s, end=e), i, lab) for i, (s, e, lab) in enumerate(self.turns)
        ]
        annotation = SimpleNamespace(itertracks=lambda yield_label: iter(tracks))
        return SimpleNamespace(speaker_diarization=annotation)


# --------------------------------------------------------------------------- settings


def test_settings_defaults_and_checks():
    s = Settings()
    assert (s.embedding, s.diarization, s.cluster_threshold, s.on_mixed) == (
        "resemblyzer",
        None,
        0.95,
        "flag",
    )
    tuned = Settings(threshold=0.9, overrides="speakers.csv", on_mixed="reject")
    assert tuned.for_items() == Settings(threshold=0.9, on_mixed="reject").for_items()
    assert tuned.for_items() != Settings().for_items()
    other = {"embedding": "x/y", "threshold": 0.6, "link_threshold": 0.5}
    assert Settings(**other).for_items().embedding == "x/y"
    # what two fields say together: checked when the settings are made from the config
    with pytest.raises(UsageError, match="speakers: threshold and link_threshold: required"):
        make_settings(Settings, {"embedding": "pyannote/wespeaker-voxceleb-resnet34-LM"},
                      "speakers")
    with pytest.raises(UsageError, match="required with embedding"):
        # a threshold alone is not a calibration
        make_settings(Settings, {"embedding": "x/y", "threshold": 0.6}, "speakers")
    assert Settings(**other).cluster_threshold == 0.6
    assert Settings(**other).cluster_link_threshold == 0.5
    with pytest.raises(UsageError, match=r"link_threshold \(0.7\) must not exceed threshold"):
        make_settings(Settings, {"threshold": 0.6, "link_threshold": 0.7}, "speakers")
    # one field's bounds: the config's pydantic model (tests/test_config.py has every one)
    for bad, match in (
        ({"threshold": 0.0}, "speakers.threshold: 0.0 is less than or equal to the minimum"),
        ({"min_primary_share": 1.5}, "speakers.min_primary_share: 1.5 is greater than"),
        ({"max_overlap": -0.1}, "speakers.max_overlap: -0.1 is less than the minimum of 0"),
        ({"on_mixed": "drop"}, "speakers.on_mixed: 'drop' is not one of"),
        ({"min_speaker_time": -1.0}, "speakers.min_speaker_time: -1.0 is less than"),
    ):
        with pytest.raises(UsageError, match=match):
            make_settings(Settings, bad, "speakers")
    # the config loader's typed path: YAML values in, one-line errors out
    assert make_settings(
        Settings, {"on_mixed": "reject", "threshold": 0.95}, "speakers"
    ) == Settings(on_mixed="reject", threshold=0.95)
    with pytest.raises(UsageError, match="speakers.on_mixed: 'drop' is not"):
        make_settings(Settings, {"on_mixed": "drop"}, "speakers")
    assert speakers.ITEM_FIELDS and set(speakers.CLUSTER_FIELDS) <= {
        f.name for f in dataclasses.fields(Settings)
    }


def test_mixed_reason():
    s = Settings(min_primary_share=0.8, max_overlap=0.2)
    assert mixed_reason(None, s) is None
    ok = {"n_speakers": 1, "primary": "A", "primary_share": 1.0, "overlap": 0.0}
    assert mixed_reason(ok, s) is None
    bad = {"n_speakers": 2, "primary": "A", "primary_share": 0.5, "overlap": 0.25}
    assert mixed_reason(bad, s) == (
        "2 speakers: the main speaker has 50% of the speech (speakers.min_primary_share is "
        "0.8) and 25% of the speech is overlapped (speakers.max_overlap is 0.2)"
    )
    none = {"n_speakers": 0, "primary": None, "primary_share": None, "overlap": None}
    assert mixed_reason(none, s) == "diarization found no speech in the clip"


# --------------------------------------------------------------------------- process


@pytest.mark.slow
def test_process_without_diarization_embeds_every_clip(tmp_path):
    video, segs = make_source(tmp_path, "1", "m3")
    state = State(Settings(), load_encoder())
    rows = process(video, segs, state)
    assert [r.id for r in rows] == [s.id for s in segs]
    for row, seg in zip(rows, segs, strict=True):
        assert dataclasses.replace(row, speaker=None) == seg
        sp = row.speaker
        assert {
            k: sp[k] for k in ("n_speakers", "primary_share", "overlap", "flagged", "primary")
        } == {
            "n_speakers": None,
            "primary_share": None,
            "overlap": None,
            "flagged": False,
            "primary": None,
        }
        vec = decode_embedding(sp["embedding"])
        assert vec.shape == (256,) and abs(float(np.linalg.norm(vec)) - 1) < 1e-5
        assert from_json(to_json(row)) == row  # the manifest round trip keeps it
    assert process(video, segs, state) == rows  # deterministic


@needs_ffmpeg
@pytest.mark.slow
def test_process_reads_the_source_when_clip_wavs_are_missing(tmp_path):
    video, segs = make_source(tmp_path, "2", "f4", (1,))
    _, bare = make_source(tmp_path / "bare", "2", "f4", (1,), clip_wavs=False)
    bare = [dataclasses.replace(s, source_path=segs[0].source_path) for s in bare]
    state = State(Settings(), load_encoder())
    with_wav = process(video, segs, state)[0].speaker["embedding"]
    from_source = process(video, bare, state)[0].speaker["embedding"]
    assert from_source == with_wav  # the same samples either way
    with pytest.raises(RowRejected, match="no media file"):
        process(
            Video(source_id="3", topic="Test"),
            [dataclasses.replace(bare[0], id="clip_3_Test_1", source_id="3", source_path=None)],
            state,
        )


@needs_ffmpeg
@pytest.mark.slow
def test_process_with_known_turns_flags_rejects_and_embeds_the_main_voice(tmp_path):
    video, segs = make_source(tmp_path, "4", "id", (0, 2))
    a, b = segs
    # clip a: one speaker; clip b: SPEAKER_01 talks over the first 40 % of it
    cut = b.start + 0.4 * (b.end - b.start)
    turns = [
        (a.start, a.end, "SPEAKER_00"),
        (b.start, b.end, "SPEAKER_00"),
        (b.start, cut, "SPEAKER_01"),
    ]
    pipeline = ScriptedPipeline(turns)
    encoder = load_encoder()
    rows = process(video, segs, State(Settings(), encoder, pipeline))
    with wave.open(video.path) as fh:
        n = fh.getnframes()
    # one diarization per source (not per clip), on the whole source, in memory
    assert pipeline.calls == [(["sample_rate", "waveform"], (1, n), SR)]
    first, second = (r.speaker for r in rows)
    assert (
        first["n_speakers"],
        first["primary_share"],
        first["overlap"],
        first["flagged"],
        first["primary"],
    ) == (1, 1.0, 0.0, False, "SPEAKER_00")
    assert second["n_speakers"] == 2 and second["primary"] == "SPEAKER_00"
    assert second["primary_share"] == 1.0 and second["overlap"] == pytest.approx(0.4, abs=1e-5)
    assert second["flagged"] is True  # 40 % overlapped > max_overlap 0.2
    # the embedding is of the stretch where SPEAKER_00 speaks alone
    [(s0, e0)] = solo_regions(turns, b.start, b.end, "SPEAKER_00")
    assert s0 == round(cut - b.start, 6)
    clip = voices._read_clip_wav(b.audio_path)
    solo = clip[round(s0 * SR) : round(e0 * SR)]
    np.testing.assert_array_equal(decode_embedding(second["embedding"]), encoder.embed(solo))
    # on_mixed: reject drops the second clip in place, with the reason and the fix
    rows = process(video, segs, State(Settings(on_mixed="reject"), encoder, pipeline))
    assert isinstance(rows[0], Segment) and isinstance(rows[1], RowRejected)
    assert rows[1].row_id == b.id and "40% of the speech is overlapped" in rows[1].reason
    assert "speakers.on_mixed: flag" in rows[1].fix


@needs_ffmpeg
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # random weights: empty clusters
def test_process_with_the_random_local_pipeline(tmp_path):
    video, segs = make_source(tmp_path, "5", "f2", (3,))
    state = voices.setup(Settings(diarization=str(random_pipeline_dir())))
    assert state.pipeline is not None
    [row] = process(video, segs, state)
    sp = row.speaker
    assert isinstance(sp["n_speakers"], int) and isinstance(sp["flagged"], bool)
    if sp["n_speakers"]:
        assert 0.0 < sp["primary_share"] <= 1.0 and 0.0 <= sp["overlap"] <= 1.0
        assert sp["primary"].startswith("SPEAKER_")
    else:
        assert sp["primary_share"] is None and sp["flagged"] is True
    assert sp["embedding"] is not None
    versions = speakers.tool_versions(state.settings)
    assert versions["voice"].startswith("resemblyzer ")
    assert versions["diarization"].startswith("pipeline@sha256:")


# --------------------------------------------------------------------------- identify


def seg_with(cid: str, source: str, vec, **speaker) -> Segment:
    sp = {
        "n_speakers": None,
        "primary_share": None,
        "overlap": None,
        "flagged": False,
        "primary": None,
        "embedding": None if vec is None else voices.encode_embedding(vec),
        **speaker,
    }
    return Segment(
        id=cid, source_id=source, segment_index=1, topic="T", start=0.0, end=1.0, speaker=sp
    )


def e(i: int) -> np.ndarray:
    v = np.zeros(8, dtype=np.float32)
    v[i] = 1.0
    return v


def test_assign_sets_ids_drops_vectors_and_applies_pins(tmp_path):
    video = Video(source_id="1", topic="T")
    rows = [
        video,
        seg_with("clip_1_T_1", "1", e(0)),
        seg_with("clip_2_T_1", "2", e(0)),
        seg_with("clip_3_T_1", "3", e(1)),
        seg_with("clip_4_T_1", "4", None),
    ]
    out = identify(rows)[0]
    assert out[0] is video
    ids = {r.id: r.speaker_id for r in out[1:]}
    assert ids == {
        "clip_1_T_1": derived_id("clip_1_T_1"),
        "clip_2_T_1": derived_id("clip_1_T_1"),
        "clip_3_T_1": derived_id("clip_3_T_1"),
        "clip_4_T_1": None,
    }
    assert all("embedding" not in r.speaker for r in out[1:])
    assert out[1].speaker == {
        "n_speakers": None,
        "primary_share": None,
        "overlap": None,
        "flagged": False,
        "primary": None,
        "group": derived_id("clip_1_T_1").replace("spk_", "grp_"),  # named like the speaker
    }
    # embeddings given separately win over the rows'
    ids2 = {
        r.id: r.speaker_id
        for r in identify(rows, {"clip_1_T_1": e(0), "clip_2_T_1": e(1), "clip_3_T_1": e(1)})[0][1:]
    }
    assert ids2["clip_2_T_1"] == ids2["clip_3_T_1"] == derived_id("clip_2_T_1")
    # speakers.csv relative to the config folder; an unused pin is reported
    (tmp_path / "speakers.csv").write_text("source_id,speaker_id\n3,siti\n9,nobody\n")
    heard = []
    out = identify(
        rows, settings=Settings(overrides="speakers.csv"), root=tmp_path, log=heard.append
    )[0]
    assert {r.id: r.speaker_id for r in out[1:]}["clip_3_T_1"] == "siti"
    where = tmp_path / "speakers.csv"
    assert heard[0] == f"speakers.csv pin unused: {where}:3: source 9 is not in this build"
    # 1 s clips: every voice is under speakers.min_voice_seconds, one line each, and it goes on
    assert [h.split(":")[0] for h in heard[1:]] == ["source 1", "source 2", "source 3"]
    assert all("speakers.min_voice_seconds (2 s)" in h for h in heard[1:])


def test_importing_the_stage_loads_no_torch_or_pyannote():
    import subprocess
    import sys

    code = ("import sys, indomer.stages.speakers, indomer.stages.voices, indomer.speakers, indomer.backends.voice, "
            "indomer.backends.diarize; bad = [m for m in ('torch', 'pyannote', 'resemblyzer') "
            "if m in sys.modules]; assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr


def test_a_calibration_for_another_model_is_reported_and_the_default_used(tmp_path):
    from indomer.speakers import encode_embedding

    rng = np.random.default_rng(0)
    rows = [Segment(id=f"clip_{k}_T_1", source_id=str(k), segment_index=1, topic="T",
                    start=0.0, end=5.0,
                    speaker={"embedding": encode_embedding(rng.standard_normal(256)),
                             "primary": None, "flagged": False}) for k in range(1, 5)]
    other = tmp_path / "cal.json"
    other.write_text('{"models": {"x/ecapa": {"probability": {"slope": 1, "intercept": 0}}}}')
    heard = []
    _, record = identify(rows, settings=Settings(calibration="cal.json"), root=tmp_path,
                         log=heard.append)
    (line,) = [h for h in heard if h.startswith(str(other))]
    assert "no probability calibration for embedding 'resemblyzer' (it has x/ecapa)" in line
    assert record["operating_point"]["calibration"]["source"].startswith("AMI excerpt")
    assert record["warnings"] == heard
    # an unreadable file is one line naming it
    other.write_text("{not json")
    with pytest.raises(DataError, match=r"cal.json:1:2: not valid JSON"):
        identify(rows, settings=Settings(calibration=str(other)))


def test_a_known_prior_shifts_every_pair_by_the_same_odds():
    from indomer.speakers import encode_embedding

    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 256))
    base[1] = base[0] + 0.8 * rng.standard_normal(256)  # a plausible pair
    rows = [Segment(id=f"clip_{k}_T_1", source_id=str(k), segment_index=1, topic="T",
                    start=0.0, end=5.0,
                    speaker={"embedding": encode_embedding(base[k]), "primary": None,
                             "flagged": False}) for k in range(6)]
    _, default = identify(rows, settings=Settings())
    _, known = identify(rows, settings=Settings(prior=0.001))
    # unset, the prior is the dataset's own, estimated from its voices (with six sources, the
    # calibration set's prior as 100 pseudo-pairs keeps it near AMI's 3.4%)
    cal = default["operating_point"]["calibration"]["prior"]
    assert default["operating_point"]["calibration"]["prior_from"].startswith("estimated")
    assert 0.02 < cal < 0.06
    assert known["operating_point"]["calibration"]["prior"] == 0.001
    assert known["operating_point"]["calibration"]["prior_from"] == "speakers.prior"
    assert (known["operating_point"]["calibration"]["calibration_prior"]
            == default["operating_point"]["calibration"]["calibration_prior"] == 0.03352)
    shift = (0.001 / 0.999) / (cal / (1 - cal))
    before = {(e["a"], e["b"]): e["pair_p"] for e in default["pairs"]}
    after = {(e["a"], e["b"]): e["pair_p"] for e in known["pairs"]}
    assert after and set(after) <= set(before)
    for k, p in after.items():
        q = before[k]
        assert p / (1 - p) == pytest.approx(q / (1 - q) * shift, rel=1e-3)
    with pytest.raises(UsageError, match="speakers.prior: 1.0 is greater than or equal to the "):
        make_settings(Settings, {"prior": 1.0}, "speakers")
