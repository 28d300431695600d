"""``indomer.calibrate.parsers``: the RTTM/UEM readers, solo speech, uri-to-wav matching, WAV
decoding and input collection."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from calibrate.helpers import SR, _wav_float
from indomer.calibrate.parsers import (
    Turn,
    collect_inputs,
    match_wavs,
    read_rttm,
    read_uem,
    read_wav,
    solo_speech,
)
from indomer.errors import DataError, UsageError
from indomer.media import wav_bytes

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
