"""Speaker calibration (indomer/calibrate.py, ``indomer speakers calibrate``): the RTTM/UEM
readers, solo speech, uri-to-wav matching and the operating points on hand-computed cases
(scikit-learn's ``roc_curve`` as the reference), then the whole calibration on real speech, the
AMI excerpt that ``bash tools/install.sh test`` fetches into ``.cache/ami``."""

from __future__ import annotations

import functools
import json
import math
import struct
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from indomer.calibrate import (
    Turn,
    calibrate,
    collect_inputs,
    components,
    equal_error,
    load_calibration,
    match_wavs,
    operating_points,
    rates,
    read_rttm,
    read_uem,
    read_wav,
    render,
    solo_speech,
    threshold_at_miss,
)
from indomer.cli import main
from indomer.errors import DataError, UsageError
from indomer.media import wav_bytes

ROOT = Path(__file__).resolve().parents[1]
AMI = ROOT / ".cache" / "ami"
RECORD = ROOT / "indomer" / "data" / "calibration" / "resemblyzer-ami.json"
SR = 16_000


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="indomer")


# --------------------------------------------------------------------------- readers


RTTM = """\
;; a comment
SPKR-INFO rec1 1 <NA> <NA> <NA> unknown A <NA> <NA>
SPEAKER rec1 1 0.000 5.000 <NA> <NA> A <NA> <NA>
SPEAKER rec1 1 1.000 1.000 <NA> <NA> A <NA> <NA>
SPEAKER rec1 1 3.000 5.000 <NA> <NA> B <NA> <NA>
SPEAKER rec1 1 7.000 3.000 <NA> <NA> A <NA> <NA>

SPEAKER rec1 1 12.0 1.0 <NA> <NA> C
SPEAKER rec2 1 0.5 2.5 <NA> <NA> M\u0045\u0301O069 <NA> <NA>
"""


def test_read_rttm_keeps_speaker_lines_in_nfc(tmp_path: Path) -> None:
    path = tmp_path / "a.rttm"
    path.write_text(RTTM, encoding="utf-8")
    turns = read_rttm(path)
    assert [(t.uri, t.speaker, t.start, t.end, t.line) for t in turns] == [
        ("rec1", "A", 0.0, 5.0, 3), ("rec1", "A", 1.0, 2.0, 4), ("rec1", "B", 3.0, 8.0, 5),
        ("rec1", "A", 7.0, 10.0, 6), ("rec1", "C", 12.0, 13.0, 8),
        ("rec2", "MÉO069", 0.5, 3.0, 9),
    ]
    assert turns[-1].speaker == unicodedata.normalize("NFC", "MÉO069")  # NFD in the file
    assert turns[0].where == f"{path}:3"


@pytest.mark.parametrize(
    "line, message",
    [
        ("SPEAKER rec1 1 0.0 1.0 <NA> <NA>", "a SPEAKER line needs at least 8 fields"),
        ("SPEAKER rec1 1 zero 1.0 <NA> <NA> A", "onset 'zero' is not a number of seconds"),
        ("SPEAKER rec1 1 0.0 -1.0 <NA> <NA> A", "duration '-1.0' is not a number of seconds"),
        ("SPEAKER rec1 1 nan 1.0 <NA> <NA> A", "onset 'nan'"),
    ],
)
def test_read_rttm_names_the_bad_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.rttm"
    path.write_text(f"SPEAKER rec1 1 0.0 1.0 <NA> <NA> A\n{line}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:2: {message}"):
        read_rttm(path)


def test_read_uem(tmp_path: Path) -> None:
    path = tmp_path / "a.uem"
    path.write_text("rec1 NA 0.000 9.000\nrec1 NA 11.0 20.0\nrec2 NA 0 1\n", encoding="utf-8")
    assert read_uem(path) == {"rec1": [(0.0, 9.0), (11.0, 20.0)], "rec2": [(0.0, 1.0)]}
    path.write_text("rec1 NA 5 3\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:1: end 3 is before start 5"):
        read_uem(path)
    path.write_text("rec1 NA 5\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:1: a UEM line has 4 fields"):
        read_uem(path)


def test_solo_speech_known_answers(tmp_path: Path) -> None:
    """A speaks 0-5 (and 1-2 again: her own overlap counts once) and 7-10, B 3-8, C 12-13:
    A alone 0-3 and 8-10, B alone 5-7, C alone 12-13."""
    path = tmp_path / "a.rttm"
    path.write_text(RTTM, encoding="utf-8")
    turns = [t for t in read_rttm(path) if t.uri == "rec1"]
    assert solo_speech(turns) == {"A": [(0.0, 3.0), (8.0, 10.0)], "B": [(5.0, 7.0)],
                                  "C": [(12.0, 13.0)]}
    # inside a UEM of 0-9 and 12.5-20
    assert solo_speech(turns, [(12.5, 20.0), (0.0, 9.0)]) == {
        "A": [(0.0, 3.0), (8.0, 9.0)], "B": [(5.0, 7.0)], "C": [(12.5, 13.0)]}
    # adjacent turns of one speaker join; three at once leave no one alone
    more = [Turn("r", "A", 0, 1, path, 1), Turn("r", "A", 1, 2, path, 2),
            Turn("r", "B", 3, 5, path, 3), Turn("r", "C", 3, 5, path, 4),
            Turn("r", "D", 4, 6, path, 5), Turn("r", "E", 7, 7, path, 6)]
    assert solo_speech(more) == {"A": [(0, 2)], "D": [(5, 6)]}


def test_match_wavs_by_stem_then_by_folded_accents(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "trñ00")
    wavs = [tmp_path / "dev00.wav", tmp_path / f"{nfd}.wav", tmp_path / "trn01.wav"]
    matched, missing = match_wavs(["dev00", "trn00", "trn01", "tst00"], wavs)
    assert matched == {"dev00": (wavs[0], "exact"), "trn00": (wavs[1], "accent-folded"),
                       "trn01": (wavs[2], "exact")}
    assert missing == ["tst00"]
    # an exact stem wins over a folded one
    assert match_wavs(["trñ00"], wavs)[0] == {"trñ00": (wavs[1], "exact")}
    with pytest.raises(UsageError, match="'trn00' fits trñ00.wav and trň00.wav once accents"):
        match_wavs(["trn00"], [tmp_path / "trñ00.wav", tmp_path / "trň00.wav"])
    with pytest.raises(UsageError, match="two recordings named 'a'"):
        match_wavs(["a"], [tmp_path / "a.wav", tmp_path / "b" / "a.wav"])


def _wav_float(samples: np.ndarray, rate: int = SR, channels: int = 1) -> bytes:
    data = np.asarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_read_wav_pcm_and_float(tmp_path: Path) -> None:
    x = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    (tmp_path / "p.wav").write_bytes(wav_bytes(x, SR))
    np.testing.assert_allclose(read_wav(tmp_path / "p.wav"), x / 32768.0)
    y = np.array([0.25, -0.5, 0.125, 1.0], dtype=np.float32)
    (tmp_path / "f.wav").write_bytes(_wav_float(y))
    np.testing.assert_array_equal(read_wav(tmp_path / "f.wav"), y)
    (tmp_path / "s.wav").write_bytes(_wav_float(y, channels=2))  # two frames of 2 channels
    np.testing.assert_allclose(read_wav(tmp_path / "s.wav"), [-0.125, 0.5625])
    (tmp_path / "r.wav").write_bytes(_wav_float(y, rate=44_100))
    with pytest.raises(DataError, match=r"r\.wav: 44100 Hz audio; .* ffmpeg -i .* -ar 16000"):
        read_wav(tmp_path / "r.wav")
    (tmp_path / "n.wav").write_bytes(b"not a wav at all")
    with pytest.raises(DataError, match=r"n\.wav: not a WAV file"):
        read_wav(tmp_path / "n.wav")


def test_collect_inputs(tmp_path: Path) -> None:
    for name in ("a.rttm", "a.uem", "a.wav", "b.WAV", "notes.txt"):
        (tmp_path / name).write_text("", encoding="utf-8")
    got = collect_inputs([tmp_path, tmp_path / "a.wav"])
    assert got.rttms == (tmp_path / "a.rttm",)
    assert got.uems == (tmp_path / "a.uem",)
    assert got.wavs == (tmp_path / "a.wav", tmp_path / "b.WAV")
    with pytest.raises(UsageError, match="notes.txt: not an .rttm, .uem or .wav file"):
        collect_inputs([tmp_path / "notes.txt"])
    with pytest.raises(UsageError, match="no .rttm file among the inputs"):
        collect_inputs([tmp_path / "a.wav"])
    with pytest.raises(UsageError, match="nothing: no such file or folder"):
        collect_inputs([tmp_path / "nothing"])


# --------------------------------------------------------------------------- operating points

SAME = [0.9, 0.8, 0.7, 0.6]
DIFF = [0.75, 0.5, 0.4, 0.3, 0.2]


def test_rates_threshold_at_miss_and_split_safe_by_hand() -> None:
    s, d = np.array(SAME), np.array(DIFF)
    assert rates(s, d, 0.7) == (0.25, 0.2)  # 0.6 missed; 0.75 merged
    assert rates(s, d, 0.6) == (0.0, 0.2)
    # largest threshold whose miss rate is <= target: floor(target * 4) + 1-th smallest
    assert [threshold_at_miss(SAME, r) for r in (0, 0.01, 0.25, 0.3, 0.5, 0.75, 1)] == [
        0.6, 0.6, 0.7, 0.7, 0.8, 0.9, 0.9]
    # EER: scanning down, at 0.7 (miss 0.25, merge 0.2) then 0.6 (0, 0.2): crosses at 0.2
    assert equal_error(SAME, DIFF) == pytest.approx((0.2, 0.6))
    # a crossing on a false-merge step: miss stays 0.5 while merge goes 0 -> 1
    assert equal_error([0.9, 0.1], [0.5]) == pytest.approx((0.5, 0.5))
    points = operating_points(SAME, DIFF, margin=0.05)
    assert points["eer"] == {"rate": 0.2, "threshold": 0.6, "miss_rate": 0.0,
                             "false_merge_rate": 0.2}
    assert [(p["target_miss_rate"], p["threshold"], p["miss_rate"], p["false_merge_rate"])
            for p in points["at_miss_rate"]] == [
        (0.0, 0.6, 0.0, 0.2), (0.01, 0.6, 0.0, 0.2), (0.05, 0.6, 0.0, 0.2),
        (0.1, 0.6, 0.0, 0.2)]
    assert points["split_safe"] == {"margin": 0.05, "threshold": 0.55, "miss_rate": 0.0,
                                    "false_merge_rate": 0.2}
    # 0.25 below the smallest same-person score: 0.75, 0.5 and 0.4 are merged
    wide = operating_points(SAME, DIFF, margin=0.25)["split_safe"]
    assert (wide["threshold"], wide["false_merge_rate"]) == (0.35, 0.6)


def test_operating_points_match_sklearn_roc_curve() -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(7)
    for _ in range(20):
        same = rng.normal(0.85, 0.06, rng.integers(3, 40))
        diff = rng.normal(0.65, 0.08, rng.integers(10, 300))
        y = np.r_[np.ones(same.size), np.zeros(diff.size)]
        fpr, tpr, thr = roc_curve(y, np.r_[same, diff], drop_intermediate=False)
        fnr = 1 - tpr
        ours = np.array([rates(same, diff, t) for t in thr[1:]])
        np.testing.assert_allclose(ours, np.c_[fnr[1:], fpr[1:]], rtol=0, atol=1e-12)
        # continuous scores: the curve moves one rate at a time, so the interpolated EER is
        # the smallest max(miss, false merge) over its points, and its threshold the first
        # point where false merge reaches miss
        eer, at = equal_error(same, diff)
        assert eer == pytest.approx(np.min(np.maximum(fnr, fpr)), abs=1e-12)
        assert at == thr[np.argmax(fpr >= fnr)]
        for target in (0.0, 0.05, 0.1):
            t = threshold_at_miss(same, target)
            assert rates(same, diff, t)[0] <= target
            assert rates(same, diff, np.nextafter(t, 2))[0] > target  # the largest


def test_components_single_linkage() -> None:
    angles = np.radians([0, 20, 40, 100, 185])  # 0-20-40 chain at cos 20°; 100, 185 alone
    x = np.c_[np.cos(angles), np.sin(angles)]
    assert components(x, math.cos(math.radians(25))) == [0, 0, 0, 1, 2]
    assert components(x, math.cos(math.radians(15))) == [0, 1, 2, 3, 4]
    assert components(x, math.cos(math.radians(80))) == [0, 0, 0, 0, 1]
    assert components(np.zeros((0, 2)), 0.5) == []


# --------------------------------------------------------------------------- synthetic set


class FakeEncoder:
    """A voice is its speaker's direction plus a per-recording tilt: known cosines."""

    name = "fake"

    def __init__(self, cal_audio: dict[float, tuple[str, str]]) -> None:
        self.by_level = cal_audio

    def embed(self, wav: np.ndarray) -> np.ndarray | None:
        speaker, recording = self.by_level[round(float(wav[0]), 4)]
        base = {"A": [1, 0, 0, 0], "B": [0, 1, 0, 0], "C": [0, 0, 1, 0]}[speaker]
        tilt = {"r1": [0, 0, 0, 0.0], "r2": [0, 0, 0, 0.5], "r3": [0, 0, 0, -0.5]}[recording]
        v = np.array(base, dtype=np.float64) + tilt
        return (v / np.linalg.norm(v)).astype(np.float32)


def _synthetic(tmp_path: Path) -> tuple[Path, dict[float, tuple[str, str]]]:
    """r1: A 0-3, B 2-6 (A solo 0-2, B solo 3-6); r2: A 0-4, C 4-4.5; r3: B 0-5, C 5-8.
    r4 is annotated but has no wav. Each voice's audio is a constant level naming it."""
    levels = {("A", "r1"): 0.1, ("B", "r1"): 0.2, ("A", "r2"): 0.3, ("C", "r2"): 0.4,
              ("B", "r3"): 0.5, ("C", "r3"): 0.6}
    turns = {"r1": [("A", 0, 3), ("B", 2, 4)], "r2": [("A", 0, 4), ("C", 4, 0.5)],
             "r3": [("B", 0, 5), ("C", 5, 3)], "r4": [("A", 0, 9)]}
    lines = []
    for uri, spans in turns.items():
        for speaker, start, duration in spans:
            lines.append(f"SPEAKER {uri} 1 {start} {duration} <NA> <NA> {speaker} <NA> <NA>")
        if uri == "r4":
            continue
        x = np.zeros(9 * SR, dtype=np.float32)
        for speaker, start, duration in spans:
            x[int(start * SR):int((start + duration) * SR)] = levels[(speaker, uri)]
        (tmp_path / f"{uri}.wav").write_bytes(_wav_float(x))
    (tmp_path / "set.rttm").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path, {v: k for k, v in levels.items()}


def test_calibrate_counts_pairs_across_recordings_only(tmp_path: Path) -> None:
    folder, by_level = _synthetic(tmp_path)
    cal = load_calibration([folder], min_solo=1.0)
    assert [(v.speaker, v.recording, v.segments) for v in cal.voices] == [
        ("A", "r1", ((0.0, 2.0),)), ("A", "r2", ((0.0, 4.0),)), ("B", "r1", ((3.0, 6.0),)),
        ("B", "r3", ((0.0, 5.0),)), ("C", "r3", ((5.0, 8.0),))]
    assert [(v.speaker, v.recording) for v in cal.short] == [("C", "r2")]  # 0.5 s
    assert [(t.uri, t.line) for t in cal.unmatched] == [("r4", 7)]
    logged: list[str] = []
    report = calibrate([folder], min_solo=1.0, margin=0.1, source="synthetic",
                       loader=lambda name: FakeEncoder(by_level),
                       version=lambda name: f"{name} v0", log=logged.append)
    assert logged == [(f"{folder / 'set.rttm'}:7: RTTM uri 'r4' has no WAV among the inputs "
                       "(expected r4.wav); its speakers are left out")]
    m = report["models"]["resemblyzer"]
    # same person: A r1-r2 and B r1-r3 (cos of a tilted and a plain axis: 1/sqrt(1.25));
    # different people in two recordings: A1-B3, A1-C3, A2-B1, A2-B3, A2-C3, B1-C3;
    # within one recording: A1-B1, B3-C3
    assert m["pairs"] == {"same_person": 2, "different_people": 6, "same_recording": 2}
    c = 1 / math.sqrt(1.25)
    assert m["same_person"]["min"] == m["same_person"]["max"] == pytest.approx(c, abs=1e-6)
    assert m["different_people"]["max"] == pytest.approx(0.0, abs=1e-6)  # A1 . B3
    assert m["different_people"]["min"] == pytest.approx(-0.25 / 1.25, abs=1e-6)  # A2 . B3
    assert m["split_safe"]["threshold"] == pytest.approx(c - 0.1, abs=1e-6)
    assert (m["split_safe"]["miss_rate"], m["split_safe"]["false_merge_rate"]) == (0.0, 0.0)
    # single linkage: {A1, A2}, {B1, B3}, {C3}
    assert (m["split_safe"]["components"], m["split_safe"]["people"]) == (3, 3)
    assert report["unmatched"] == [{"uri": "r4", "where": "set.rttm:7"}]
    assert sorted(report["files"]) == ["r1.wav", "r2.wav", "r3.wav", "set.rttm"]
    assert report["source"] == "synthetic" and m["model"] == "resemblyzer v0"
    assert "3 recordings, 5 voices" in render(report)


def test_calibrate_needs_both_kinds_of_pairs(tmp_path: Path) -> None:
    folder, by_level = _synthetic(tmp_path)
    # r2 and r3 alone: A2, B3, C3 (C2 is too short): no one in two recordings
    with pytest.raises(DataError, match="0 same-person and 2 different-people pairs among 3"):
        calibrate([folder / "set.rttm", folder / "r2.wav", folder / "r3.wav"], min_solo=1.0,
                  loader=lambda name: FakeEncoder(by_level), version=str)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    folder, _ = _synthetic(tmp_path)
    (tmp_path / "x").mkdir()
    bad = tmp_path / "x" / "bad.rttm"
    bad.write_text("SPEAKER r1 1 0 x <NA> <NA> A\n", encoding="utf-8")
    res = invoke("speakers", "calibrate", str(bad), str(folder / "r1.wav"))
    assert (res.exit_code, res.stdout) == (1, "")
    assert res.stderr == f"error: {bad}:1: duration 'x' is not a number of seconds >= 0\n"
    res = invoke("speakers", "calibrate", str(tmp_path / "nope"))
    assert res.exit_code == 2
    assert res.stderr == f"error: {tmp_path / 'nope'}: no such file or folder\n"
    res = invoke("speakers", "calibrate", str(folder), "--min-solo", "0")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "'--min-solo': 0.0 is not in the range x>0" in res.stderr
    twice = tmp_path / "x" / "twice.rttm"
    twice.write_text("SPEAKER r1 1 0 1 <NA> <NA> A\n", encoding="utf-8")
    res = invoke("speakers", "calibrate", str(folder), str(twice))
    assert res.exit_code == 1
    assert res.stderr == (f"error: {twice}:1: recording 'r1' is annotated in "
                          f"{folder / 'set.rttm'} too; give each recording one RTTM file\n")
    res = invoke("speakers", "calibrate", str(folder), "--embedding", str(tmp_path / "no.ckpt"))
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: --embedding {tmp_path / 'no.ckpt'}: no such file or "
                                 "folder, and not a hub id")
    only = tmp_path / "only"
    only.mkdir()
    (only / "set.rttm").write_text("SPEAKER zz 1 0 1 <NA> <NA> A\n", encoding="utf-8")
    (only / "other.wav").write_bytes(_wav_float(np.zeros(SR)))
    res = invoke("speakers", "calibrate", str(only))
    assert res.exit_code == 1
    assert res.stderr == (f"error: {only / 'set.rttm'}:1: no RTTM recording has a WAV among "
                          "the inputs (looked for zz.wav and 0 more); give the folder of the "
                          "recordings\n")


# --------------------------------------------------------------------------- AMI, for real


def ami_report() -> dict:
    """``indomer speakers calibrate .cache/ami --json -``, run once (resemblyzer on 14 x 30 s:
    about 8 s of CPU). A missing excerpt fails the test (it is not skipped)."""
    if not (AMI / ".complete").is_file():
        pytest.fail(f"{AMI}: the AMI excerpt is missing; fetch it with: bash tools/install.sh "
                    "test", pytrace=False)
    return _ami_run()


@functools.cache
def _ami_run() -> dict:
    res = invoke("speakers", "calibrate", str(AMI), "--json", "-")
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    return json.loads(res.stdout)


@pytest.mark.slow
def test_ami_calibration() -> None:
    r = ami_report()
    assert len(r["recordings"]) == 14
    assert {x["uri"]: x["wav"] for x in r["recordings"]}["trn00"] == "trñ00.wav"
    assert r["unmatched"] == []
    m = r["models"]["resemblyzer"]
    same, diff = m["same_person"], m["different_people"]
    assert same["n"] >= 4 and m["pairs"]["same_person"] == same["n"]
    assert any(p["a"].startswith("MÉO069@") for p in m["same_person_pairs"])
    # real voices: one person across recordings is far below the synthetic 0.95 ...
    assert 0.55 <= same["min"] <= 0.80 and same["max"] < 0.95
    assert 0.75 <= diff["max"] <= 0.95
    # ... so the split-safe threshold links every same-person pair, by the margin
    safe = m["split_safe"]
    assert safe["miss_rate"] == 0.0
    assert safe["threshold"] == pytest.approx(same["min"] - 0.05, abs=2e-6)
    assert all(p["cosine"] >= safe["threshold"] for p in m["same_person_pairs"])
    assert 1 <= safe["components"] <= safe["people"]
    assert 0 < m["eer"]["rate"] < 0.5


@pytest.mark.slow
def test_ami_matches_the_shipped_record() -> None:
    """The shipped record is this run: same files, same voices, figures to 1e-4 (resemblyzer's
    last bits vary across machines)."""
    ami_json = ami_report()
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    assert record["source"].startswith("AMI excerpt in pyannote.audio 4.0.7 sdist tests/data")
    assert record["files"] == ami_json["files"]
    assert record["voices"] == ami_json["voices"]
    ours, shipped = ami_json["models"]["resemblyzer"], record["models"]["resemblyzer"]
    assert ours["pairs"] == shipped["pairs"]
    for key in ("same_person", "different_people"):
        for stat in ("min", "median", "max", "mean"):
            assert ours[key][stat] == pytest.approx(shipped[key][stat], abs=1e-4)
    assert ours["split_safe"]["threshold"] == pytest.approx(
        shipped["split_safe"]["threshold"], abs=1e-4)
    assert ours["split_safe"]["components"] == shipped["split_safe"]["components"]


@pytest.mark.slow
def test_the_shipped_probability_fit_is_this_run_and_what_a_build_uses() -> None:
    """Issue 18: a build maps the cohort-normalised voice score to a probability with the
    logistic fit that this AMI run makes, and says where it comes from."""
    from indomer.speakers import score_model

    ours = ami_report()["models"]["resemblyzer"]["probability"]
    shipped = json.loads(RECORD.read_text(encoding="utf-8"))["models"]["resemblyzer"]
    shipped = shipped["probability"]
    assert ours["slope"] == pytest.approx(shipped["slope"], rel=1e-2)
    assert ours["intercept"] == pytest.approx(shipped["intercept"], rel=1e-2)
    assert (ours["n_same"], ours["n_different"]) == (6, 173)
    # the normalised score separates better than the raw cosine (EER 0.167 raw)
    assert ours["eer"]["rate"] < 0.15
    model, info = score_model("resemblyzer")
    assert model.slope == shipped["slope"] and len(model.cohort_mean) == 256
    assert info["source"].startswith("AMI excerpt") and info["n_same"] == 6


def test_a_truncated_wav_is_named_not_dropped_silently(tmp_path: Path) -> None:
    folder, by_level = _synthetic(tmp_path)
    data = (folder / "r3.wav").read_bytes()
    # cut r3 at 6 s of its 9 s, its header still declaring 9 s (a download that stopped)
    head = len(data) - 9 * SR * 4
    (folder / "r3.wav").write_bytes(data[: head + 6 * SR * 4])
    cal = load_calibration([folder], min_solo=1.0)
    assert [(w.name, round(s, 2), t.line) for w, s, t in cal.cut_short] == [("r3.wav", 6.0, 6)]
    assert ("C", "r3") in [(v.speaker, v.recording) for v in cal.voices]  # 5-6 s: 1 s left
    logged: list[str] = []
    calibrate([folder], min_solo=1.0, margin=0.1, source="synthetic",
              loader=lambda name: FakeEncoder(by_level), version=lambda name: f"{name} v0",
              log=logged.append)
    assert (f"{folder / 'r3.wav'}: the audio ends at 6.00 s but {folder / 'set.rttm'}:6 "
            "annotates speech up to 8.00 s (a truncated file?)") in "\n".join(logged)
    (tmp_path / "whole").mkdir()
    whole, _ = _synthetic(tmp_path / "whole")
    assert load_calibration([whole], min_solo=1.0).cut_short == []
