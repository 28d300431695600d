"""The calibration set as read: RTTM turns, UEM scored regions and 16 kHz WAVs matched by
recording, and each (speaker, recording) voice's solo speech (see :mod:`indomer.calibrate`)."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indomer.errors import DataError, UsageError

SAMPLE_RATE = 16_000
#: Default least solo speech of one (speaker, recording) voice, in seconds.
MIN_SOLO = 2.0
#: Annotated speech may run this far past the audio's end (RTTM rounding) before the
#: recording is reported as cut short.
TRUNCATION_SLACK = 0.5


SUFFIXES = (".rttm", ".uem", ".wav")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Turn:
    """One ``SPEAKER`` line of an RTTM file (``path``, ``line``)."""

    uri: str
    speaker: str
    start: float
    end: float
    path: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Inputs:
    """The files of a calibration, sorted: annotations (RTTM), UEMs and WAVs."""

    rttms: tuple[Path, ...]
    uems: tuple[Path, ...]
    wavs: tuple[Path, ...]


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """``text`` without accents (NFD, combining marks dropped, NFC again): ``trñ00`` -> ``trn00``."""
    decomposed = unicodedata.normalize("NFD", text)
    return nfc("".join(c for c in decomposed if not unicodedata.combining(c)))


def collect_inputs(paths: Iterable[str | Path]) -> Inputs:
    """RTTM, UEM and WAV files named directly or held by the given folders (not recursively)."""
    found: dict[str, set[Path]] = {s: set() for s in SUFFIXES}
    paths = list(paths)
    if not paths:
        raise UsageError("give RTTM files, WAV files, or folders holding both")
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.iterdir()):
                suffix = child.suffix.lower()
                if suffix in found and child.is_file():
                    found[suffix].add(child)
        elif path.is_file():
            suffix = path.suffix.lower()
            if suffix not in found:
                raise UsageError(f"{path}: not an .rttm, .uem or .wav file; give those, or "
                                 "folders holding them")
            found[suffix].add(path)
        else:
            raise UsageError(f"{path}: no such file or folder")

    def unique(files: set[Path]) -> tuple[Path, ...]:
        by_real: dict[Path, Path] = {}
        for f in sorted(files):
            by_real.setdefault(f.resolve(), f)
        return tuple(sorted(by_real.values()))

    inputs = Inputs(unique(found[".rttm"]), unique(found[".uem"]), unique(found[".wav"]))
    if not inputs.rttms:
        raise UsageError("no .rttm file among the inputs; give the speaker-labelled RTTM too")
    if not inputs.wavs:
        raise UsageError("no .wav file among the inputs; give the recordings the RTTM annotates")
    return inputs


def _lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if fields and not fields[0].startswith(";;"):
            yield number, fields


def _seconds(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise DataError(f"{where}: {what} {text!r} is not a number of seconds >= 0")
    return value


def read_rttm(path: str | Path) -> list[Turn]:
    """The ``SPEAKER`` turns of an RTTM file (other line types and ``;;`` comments skipped).

    Fields: ``SPEAKER uri channel onset duration ortho stype speaker [conf [slat]]``; uri and
    speaker are normalised to Unicode NFC. A turn of zero duration is kept (it adds nothing).
    """
    path = Path(path)
    turns: list[Turn] = []
    for number, fields in _lines(path):
        where = f"{path}:{number}"
        if fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise DataError(f"{where}: a SPEAKER line needs at least 8 fields (SPEAKER uri "
                            f"channel onset duration <NA> <NA> speaker), found {len(fields)}")
        onset = _seconds(fields[3], where, "onset")
        duration = _seconds(fields[4], where, "duration")
        turns.append(Turn(nfc(fields[1]), nfc(fields[7]), onset, onset + duration, path, number))
    return turns


def read_uem(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """uri -> annotated ``(start, end)`` intervals of a UEM file (``uri channel start end``)."""
    path = Path(path)
    out: dict[str, list[tuple[float, float]]] = {}
    for number, fields in _lines(path):
        where = f"{path}:{number}"
        if len(fields) != 4:
            raise DataError(f"{where}: a UEM line has 4 fields (uri channel start end), found "
                            f"{len(fields)}")
        start = _seconds(fields[2], where, "start")
        end = _seconds(fields[3], where, "end")
        if end < start:
            raise DataError(f"{where}: end {fields[3]} is before start {fields[2]}")
        out.setdefault(nfc(fields[0]), []).append((start, end))
    return out


def match_wavs(
    uris: Iterable[str], wavs: Sequence[Path]
) -> tuple[dict[str, tuple[Path, str]], list[str]]:
    """uri -> (wav, ``"exact"`` or ``"accent-folded"``), and the uris left without a wav.

    Two WAVs with one stem, or a uri whose accent-folded form fits two WAVs, are errors.
    """
    exact: dict[str, Path] = {}
    folded: dict[str, list[Path]] = {}
    for wav in wavs:
        stem = nfc(wav.stem)
        if stem in exact:
            raise UsageError(f"{wav}: two recordings named {stem!r} (the other is "
                             f"{exact[stem]}); give one of them")
        exact[stem] = wav
        folded.setdefault(fold(stem), []).append(wav)
    matched: dict[str, tuple[Path, str]] = {}
    missing: list[str] = []
    for uri in sorted(set(uris)):
        if uri in exact:
            matched[uri] = (exact[uri], "exact")
            continue
        candidates = folded.get(fold(uri), [])
        if len(candidates) > 1:
            raise UsageError(f"RTTM uri {uri!r} fits {candidates[0].name} and "
                             f"{candidates[1].name} once accents are folded; rename one")
        if candidates:
            matched[uri] = (candidates[0], "accent-folded")
        else:
            missing.append(uri)
    return matched, missing


def read_wav(path: str | Path) -> np.ndarray:
    """A WAV file as mono float32 in [-1, 1] (PCM 8/16/24/32-bit or IEEE float, channels
    averaged; read by :func:`indomer.media.read_wav`); it must be 16 kHz, the rate both
    voice encoders take."""
    from indomer.media import read_wav as read_audio

    path = Path(path)
    fix = f"convert it: ffmpeg -i {path} -ac 1 -ar {SAMPLE_RATE} OUT.wav"
    x, rate = read_audio(path, fix=fix)
    if rate != SAMPLE_RATE:
        raise DataError(f"{path}: {rate} Hz audio; the voice encoders take {SAMPLE_RATE} Hz; "
                        f"{fix}")
    if x.shape[1] > 1:
        return np.ascontiguousarray(x.mean(axis=1, dtype=np.float32))
    return np.ascontiguousarray(x[:, 0])


# --------------------------------------------------------------------------- solo speech


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _intersect(a: Sequence[tuple[float, float]],
               b: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def solo_speech(
    turns: Iterable[Turn], annotated: Sequence[tuple[float, float]] | None = None
) -> dict[str, list[tuple[float, float]]]:
    """speaker -> sorted ``(start, end)`` stretches of one recording where that speaker alone
    is active, inside ``annotated`` (a UEM's intervals; None: everywhere). A sweep over the
    turn boundaries, ``O(n log n)``."""
    events: list[tuple[float, int, str]] = []
    for t in turns:
        if t.end > t.start:
            events += [(t.start, 1, t.speaker), (t.end, -1, t.speaker)]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    active: dict[str, int] = {}
    pieces: dict[str, list[tuple[float, float]]] = {}
    previous = None
    for time, delta, speaker in events:
        if previous is not None and time > previous:
            speaking = [s for s, c in active.items() if c > 0]
            if len(speaking) == 1:
                pieces.setdefault(speaking[0], []).append((previous, time))
        previous = time
        active[speaker] = active.get(speaker, 0) + delta
    out: dict[str, list[tuple[float, float]]] = {}
    for speaker, spans in sorted(pieces.items()):
        merged = _merge(spans)
        if annotated is not None:
            merged = _intersect(merged, _merge(annotated))
        if merged:
            out[speaker] = merged
    return out


@dataclass(frozen=True)
class Voice:
    """One speaker in one recording: the solo stretches of speech that will be embedded."""

    speaker: str
    recording: str
    segments: tuple[tuple[float, float], ...]

    @property
    def seconds(self) -> float:
        return sum(end - start for start, end in self.segments)


@dataclass(frozen=True)
class Recording:
    """An annotated recording: its RTTM uri, its WAV and how the two were matched."""

    uri: str
    wav: Path
    match: str
    duration: float
    speakers: int


@dataclass
class Calibration:
    """The voices of a calibration set and where they come from (before any embedding)."""

    inputs: Inputs
    recordings: list[Recording]
    voices: list[Voice]
    short: list[Voice]
    unmatched: list[Turn] = field(default_factory=list)
    #: Recordings whose audio ends before their annotated speech does (a truncated file):
    #: (wav, audio seconds, the turn that reaches furthest).
    cut_short: list[tuple[Path, float, Turn]] = field(default_factory=list)


def load_calibration(paths: Iterable[str | Path], *, min_solo: float = MIN_SOLO) -> Calibration:
    """Read the inputs and cut every recording's solo speech into voices (no model yet).

    ``unmatched`` holds the first turn of each uri without a WAV; when no uri has one, that is
    an error.
    """
    if not min_solo > 0:
        raise UsageError(f"--min-solo must be > 0 seconds, got {min_solo}")
    inputs = collect_inputs(paths)
    turns: dict[str, list[Turn]] = {}
    owner: dict[str, Path] = {}
    for path in inputs.rttms:
        for turn in read_rttm(path):
            first = owner.setdefault(turn.uri, path)
            if first != path:
                raise DataError(f"{turn.where}: recording {turn.uri!r} is annotated in {first} "
                                "too; give each recording one RTTM file")
            turns.setdefault(turn.uri, []).append(turn)
    if not turns:
        raise DataError(f"{inputs.rttms[0]}: no SPEAKER line in the RTTM input; give the "
                        "speaker-labelled RTTM")
    uem: dict[str, list[tuple[float, float]]] = {}
    for path in inputs.uems:
        for uri, spans in read_uem(path).items():
            uem.setdefault(uri, []).extend(spans)
    matched, missing = match_wavs(turns, inputs.wavs)
    unmatched = [turns[uri][0] for uri in missing]
    if not matched:
        raise DataError(f"{unmatched[0].where}: no RTTM recording has a WAV among the inputs "
                        f"(looked for {unmatched[0].uri}.wav and {len(unmatched) - 1} more); "
                        "give the folder of the recordings")
    recordings: list[Recording] = []
    voices: list[Voice] = []
    short: list[Voice] = []
    cut_short: list[tuple[Path, float, Turn]] = []
    for uri in sorted(matched):
        wav, how = matched[uri]
        duration = read_wav(wav).size / SAMPLE_RATE  # also checks that it can be read
        last = max(turns[uri], key=lambda t: t.end)
        if last.end > duration + TRUNCATION_SLACK:
            cut_short.append((Path(wav), duration, last))
        annotated = _intersect(_merge(uem[uri]), [(0.0, duration)]) if uri in uem else [
            (0.0, duration)]
        solo = solo_speech(turns[uri], annotated)
        recordings.append(Recording(uri, wav, how, duration,
                                    len({t.speaker for t in turns[uri]})))
        for speaker, spans in solo.items():
            voice = Voice(speaker, uri, tuple(spans))
            (voices if voice.seconds >= min_solo else short).append(voice)
    voices.sort(key=lambda v: (v.speaker, v.recording))
    short.sort(key=lambda v: (v.speaker, v.recording))
    return Calibration(inputs, recordings, voices, short, unmatched, cut_short)


def samples(seconds: float) -> int:
    return round(seconds * SAMPLE_RATE)


def solo_audio(cal: Calibration) -> Iterator[tuple[Voice, np.ndarray]]:
    """Each voice with its concatenated solo speech (16 kHz mono float32), reading one WAV
    at a time (memory: one recording), in recording order."""
    wavs = {r.uri: r.wav for r in cal.recordings}
    for uri in sorted({v.recording for v in cal.voices}):
        x = read_wav(wavs[uri])
        for voice in (v for v in cal.voices if v.recording == uri):
            yield voice, np.concatenate([x[samples(s):samples(e)] for s, e in voice.segments])
