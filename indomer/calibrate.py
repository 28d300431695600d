"""Calibrate the voice-embedding threshold of speaker linking on real, speaker-labelled speech.

The speakers stage links voices across videos at a cosine threshold
(:data:`indomer.speakers.RESEMBLYZER_THRESHOLD`); that default came from synthetic voices,
which are nearly identical in every video. A real person is not. This module measures, on
recordings with a speaker-labelled RTTM, how similar one person's voice is across two
recordings and how similar two different people are, and turns the two distributions into
operating points (``indomer speakers calibrate``).

How, and why:

* **Inputs.** RTTM files (``SPEAKER uri channel onset duration <NA> <NA> speaker ...``),
  optional UEM files (``uri channel start end``: only that part of a recording is annotated;
  a recording absent from every UEM counts as annotated throughout), and 16 kHz WAV files.
  Folders contribute their ``*.rttm``, ``*.uem`` and ``*.wav`` files (not recursively). Each
  RTTM ``uri`` is matched to the WAV whose file stem equals it (both in Unicode NFC), or, when
  none does, to the only WAV whose stem equals it once accents are folded (NFD, combining
  marks dropped): pyannote.audio's test excerpt annotates ``trn00`` whose audio is
  ``trñ00.wav``. A uri with no WAV is left out and reported (:attr:`Calibration.unmatched`).
* **Solo speech.** Per recording, the time where exactly one speaker label is active (a
  speaker's own overlapping turns count once; overlap with anyone else is dropped), inside the
  UEM. One *voice* is one (speaker, recording) with at least ``min_solo`` seconds of it.
* **Pooling: one embedding of the concatenated solo speech** (``encoder.embed`` on the solo
  pieces of a voice, in time order). resemblyzer's ``embed_utterance`` already averages its
  1.6 s sliding windows, so this weights every stretch of speech by its duration, as a
  duration-weighted mean of per-segment embeddings would, but it keeps the many AMI turns
  shorter than the encoders' 0.5 s minimum, which per-segment embedding must drop (in the AMI
  excerpt 17 of the 75 solo pieces of the kept voices are under 0.5 s, 4 of the 7 of MÉO069
  in trn00, and resemblyzer's silence trimming leaves 19 unembeddable); a pyannote model
  (``window="whole"``) gets the same one call. Both poolings give close figures on the AMI
  excerpt (same person min 0.669 concatenated, 0.702 segment-weighted; different people max
  0.859 and 0.867).
* **Pairs.** *Same person*: one speaker label in two different recordings. *Different
  people*: two labels in two different recordings. Pairs of two people in one recording are
  counted (``pairs.same_recording``) but left out of both distributions: they share the room,
  the microphone and the channel, which no same-person pair does, so they would make the
  different-people distribution look closer than the cross-video links the pipeline decides.
  With ``v`` voices that is ``v(v-1)/2`` pairs in all; AMI's 20 voices give 6 + 173 + 11.
* **Linking rule.** Two voices are linked when their cosine is at least the threshold (the
  rule of :mod:`indomer.speakers`). The *miss rate* at ``t`` is the share of same-person pairs
  below ``t``; the *false-merge rate* the share of different-people pairs at or above ``t``.
* **Operating points.** The equal-error rate is where the two rates cross, interpolated
  linearly between the two thresholds that bracket the crossing; its threshold is the lower
  of those two: the first, scanning down from 1, where the false-merge rate reaches the miss
  rate. For a target miss rate ``r``, the threshold is the largest one whose miss rate is at
  most ``r`` (the ``floor(r n) + 1``-th smallest same-person cosine). The *split-safe* point
  is ``min same-person cosine - margin``: it links every calibration pair with room to spare,
  at the price of false merges, which only make the groups that a split keeps apart coarser
  (a missed link would leak a person across splits). Its ``components`` are the groups
  single linkage at that threshold forms over all calibration voices.

Reported thresholds are rounded *down* to 6 decimals and every rate is measured at the
reported value, so applying a number from the report reproduces its rates exactly. Figures
are rounded to 6 decimals; embeddings run with one torch thread, so the JSON is the same on
every run on one machine.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
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
#: Default margin of the split-safe threshold below the smallest same-person cosine.
MARGIN = 0.05
#: Target miss rates reported (share of same-person pairs left unlinked).
TARGETS = (0.0, 0.01, 0.05, 0.10)
#: Decimals of the figures in the report.
DECIMALS = 6
#: Closest different-people pairs listed in the report.
CLOSEST = 5
SUFFIXES = (".rttm", ".uem", ".wav")
POOLING = "one embedding of the concatenated solo speech of each voice"


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
    """A WAV file as mono float32 in [-1, 1] (PCM 8/16/24/32-bit or IEEE float 32/64-bit,
    channels averaged); it must be 16 kHz, the rate both voice encoders take."""
    path = Path(path)
    fix = f"convert it: ffmpeg -i {path} -ac 1 -ar {SAMPLE_RATE} OUT.wav"
    data = path.read_bytes()
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise DataError(f"{path}: not a WAV file (no RIFF/WAVE header); {fix}")
    fmt: bytes | None = None
    frames: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = data[pos + 8:pos + 8 + size]  # an oversized (streamed, RF64) size: the rest
        if chunk == b"fmt ":
            fmt = body
        elif chunk == b"data":
            frames = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None or len(fmt) < 16 or frames is None:
        raise DataError(f"{path}: WAV file without a fmt and a data chunk; {fix}")
    tag = int.from_bytes(fmt[0:2], "little")
    channels = int.from_bytes(fmt[2:4], "little")
    rate = int.from_bytes(fmt[4:8], "little")
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
        tag = int.from_bytes(fmt[24:26], "little")
    if rate != SAMPLE_RATE:
        raise DataError(f"{path}: {rate} Hz audio; the voice encoders take {SAMPLE_RATE} Hz; "
                        f"{fix}")
    width = bits // 8
    if channels < 1 or width < 1 or bits % 8:
        raise DataError(f"{path}: unreadable WAV format ({channels} channels, {bits} bits); "
                        f"{fix}")
    n = len(frames) // (width * channels) * channels
    raw = frames[: n * width]
    if tag == 1 and bits == 8:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == 1 and bits in (16, 32):
        x = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float32) / float(2 ** (bits - 1))
    elif tag == 1 and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    elif tag == 3 and bits in (32, 64):
        x = np.frombuffer(raw, dtype=f"<f{width}").astype(np.float32)
    else:
        raise DataError(f"{path}: WAV sample format {tag} with {bits} bits is not PCM or IEEE "
                        f"float; {fix}")
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


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


# --------------------------------------------------------------------------- scores


def _floor(x: float) -> float:
    return math.floor(x * 10 ** DECIMALS + 1e-9) / 10 ** DECIMALS


def _round(x: float) -> float:
    return round(float(x), DECIMALS)


def rates(same: np.ndarray, different: np.ndarray, threshold: float) -> tuple[float, float]:
    """(miss rate, false-merge rate) when pairs at cosine >= ``threshold`` are linked."""
    miss = float(np.mean(same < threshold)) if same.size else 0.0
    merge = float(np.mean(different >= threshold)) if different.size else 0.0
    return miss, merge


def equal_error(same: Sequence[float], different: Sequence[float]) -> tuple[float, float]:
    """(equal-error rate, threshold): see the module docstring for the interpolation."""
    s = np.asarray(same, dtype=np.float64)
    d = np.asarray(different, dtype=np.float64)
    if not s.size or not d.size:
        raise DataError("the equal-error rate needs same-person and different-people pairs")
    # every distinct score, descending, after "above every score" (nothing linked)
    candidates = np.unique(np.concatenate([s, d]))[::-1]
    miss = np.r_[1.0, np.searchsorted(np.sort(s), candidates, side="left") / s.size]
    merge = np.r_[0.0, 1.0 - np.searchsorted(np.sort(d), candidates, side="left") / d.size]
    # the first point where false merges reach misses (at the lowest score: all merged, no miss)
    k = int(np.argmax(merge >= miss))
    gap_before, gap_after = miss[k - 1] - merge[k - 1], merge[k] - miss[k]
    share = gap_before / (gap_before + gap_after) if gap_before + gap_after else 0.0
    return float(merge[k - 1] + share * (merge[k] - merge[k - 1])), float(candidates[k - 1])


def threshold_at_miss(same: Sequence[float], target: float) -> float:
    """The largest threshold whose miss rate on ``same`` is at most ``target``."""
    s = np.sort(np.asarray(same, dtype=np.float64))
    if not s.size:
        raise DataError("a threshold at a miss rate needs same-person pairs")
    allowed = math.floor(target * s.size + 1e-9)
    return float(s[min(allowed, s.size - 1)])


def components(vectors: np.ndarray, threshold: float) -> list[int]:
    """Single linkage at ``threshold``: the component index of each vector (0, 1, ... in order
    of first member)."""
    n = len(vectors)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        sim = vectors @ vectors.T
        for i, j in zip(*np.nonzero(np.triu(sim >= threshold, k=1)), strict=True):
            a, b = root(int(i)), root(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    labels: dict[int, int] = {}
    return [labels.setdefault(root(i), len(labels)) for i in range(n)]


def _stats(x: np.ndarray) -> dict:
    if not x.size:
        return {"n": 0}
    return {"n": int(x.size), "min": _round(x.min()), "median": _round(np.median(x)),
            "max": _round(x.max()), "mean": _round(x.mean())}


def operating_points(same: Sequence[float], different: Sequence[float],
                     *, margin: float = MARGIN, targets: Sequence[float] = TARGETS) -> dict:
    """EER, thresholds at target miss rates, and the split-safe threshold (no components)."""
    s = np.asarray(same, dtype=np.float64)
    d = np.asarray(different, dtype=np.float64)
    eer, eer_t = equal_error(s, d)
    eer_t = _floor(eer_t)
    miss, merge = rates(s, d, eer_t)
    out: dict = {"eer": {"rate": _round(eer), "threshold": eer_t, "miss_rate": _round(miss),
                         "false_merge_rate": _round(merge)}}
    rows = []
    for target in targets:
        t = _floor(threshold_at_miss(s, target))
        miss, merge = rates(s, d, t)
        rows.append({"target_miss_rate": target, "threshold": t, "miss_rate": _round(miss),
                     "false_merge_rate": _round(merge)})
    out["at_miss_rate"] = rows
    t = _floor(float(s.min()) - margin)
    miss, merge = rates(s, d, t)
    out["split_safe"] = {"margin": margin, "threshold": t, "miss_rate": _round(miss),
                         "false_merge_rate": _round(merge)}
    return out


# --------------------------------------------------------------------------- the report


Loader = Callable[[str], object]


#: A Hugging Face hub id: ``name`` or ``namespace/name``.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def check_model_name(name: str) -> None:
    """``resemblyzer``, an existing local path, or something shaped like a hub id."""
    if name == "resemblyzer" or Path(name).expanduser().exists() or HUB_ID.match(name):
        return
    raise UsageError(f"--embedding {name}: no such file or folder, and not a hub id "
                     "(namespace/name); give resemblyzer, a local pyannote embedding model, "
                     "or a cached hub id")


def _default_loader(name: str):
    from indomer.backends.voice import load_encoder

    return load_encoder(name)


def _model_version(name: str) -> str:
    from indomer.backends.voice import model_version

    return model_version(name)


def evaluate(cal: Calibration, name: str, *, margin: float = MARGIN,
             loader: Loader = _default_loader,
             version: Callable[[str], str] = _model_version) -> dict:
    """Embed every voice of ``cal`` with model ``name`` and report its figures."""
    encoder = loader(name)
    embedded: dict[Voice, np.ndarray | None] = {}
    for voice, audio in solo_audio(cal):
        v = encoder.embed(audio)  # type: ignore[attr-defined]
        embedded[voice] = None if v is None else np.asarray(v, dtype=np.float64).ravel()
    kept = [v for v in cal.voices if embedded[v] is not None]
    not_embedded = [f"{v.speaker}@{v.recording}" for v in cal.voices if embedded[v] is None]
    vectors = [embedded[v] / np.linalg.norm(embedded[v]) for v in kept]
    x = np.stack(vectors) if vectors else np.zeros((0, 1))
    sim = x @ x.T
    same: list[tuple[float, int, int]] = []
    different: list[tuple[float, int, int]] = []
    same_recording = 0
    for i in range(len(kept)):
        for j in range(i + 1, len(kept)):
            a, b = kept[i], kept[j]
            if a.recording == b.recording:
                same_recording += 1
            else:
                (same if a.speaker == b.speaker else different).append((float(sim[i, j]), i, j))
    if not same or not different:
        raise DataError(
            f"{name}: {len(same)} same-person and {len(different)} different-people pairs "
            f"among {len(kept)} voices; calibration needs both: give recordings where one "
            "speaker label occurs in two recordings (or lower --min-solo)")
    s = np.array([c for c, _, _ in same])
    d = np.array([c for c, _, _ in different])
    report = {
        "model": version(name),
        "voices": len(kept),
        "not_embedded": not_embedded,
        "pairs": {"same_person": len(same), "different_people": len(different),
                  "same_recording": same_recording},
        "same_person": _stats(s),
        "different_people": _stats(d),
        **operating_points(s, d, margin=margin),
    }
    safe = report["split_safe"]
    labels = components(x, safe["threshold"])
    sizes = np.bincount(labels)
    safe["components"] = int(sizes.size)
    safe["largest_component"] = int(sizes.max())
    safe["people"] = len({v.speaker for v in kept})

    def pair(c: float, i: int, j: int) -> dict:
        return {"cosine": _round(c), "a": f"{kept[i].speaker}@{kept[i].recording}",
                "b": f"{kept[j].speaker}@{kept[j].recording}"}

    report["probability"] = probability_fit(x, same, different)
    report["same_person_pairs"] = [pair(*p) for p in sorted(same, key=lambda p: (p[0], p[1:]))]
    report["closest_different_pairs"] = [
        pair(*p) for p in sorted(different, key=lambda p: (-p[0], p[1:]))[:CLOSEST]]
    return report


def probability_fit(x: np.ndarray, same: Sequence[tuple[float, int, int]],
                    different: Sequence[tuple[float, int, int]]) -> dict:
    """The score -> probability mapping the speakers stage uses (:mod:`indomer.identity`):
    a logistic regression of "one person" on the cohort-normalised cosine (each pair scored
    after subtracting the mean of the other voices), with that score's figures and the mean
    voice that pads a small dataset's cohort."""
    from indomer.identity import MIN_COHORT, cohort_scores, fit_logistic, unit

    score = cohort_scores(x)
    s = np.array([score[i, j] for _, i, j in same])
    d = np.array([score[i, j] for _, i, j in different])
    slope, intercept = fit_logistic(np.concatenate([s, d]),
                                    np.concatenate([np.ones(s.size), np.zeros(d.size)]))
    points = operating_points(s, d, margin=0.0)
    return {
        "score": "cosine after subtracting the mean of the other voices (leave-pair-out cohort)",
        "model": "logistic: logit p = slope * score + intercept",
        "slope": _round(slope),
        "intercept": _round(intercept),
        "prior": _round(s.size / (s.size + d.size)),
        "n_same": int(s.size),
        "n_different": int(d.size),
        "same_person": {**_stats(s), "sd": _round(s.std(ddof=1)) if s.size > 1 else None},
        "different_people": {**_stats(d), "sd": _round(d.std(ddof=1)) if d.size > 1 else None},
        "eer": points["eer"],
        "zero_miss": points["at_miss_rate"][0],
        "min_cohort": MIN_COHORT,
        "cohort_mean": [_round(v) for v in unit(x.mean(axis=0))],
    }


def _names(paths: Sequence[Path]) -> dict[Path, str]:
    """Each file's path relative to the folder common to all (POSIX separators)."""
    import os

    if not paths:
        return {}
    absolute = [p.resolve() for p in paths]
    root = Path(os.path.commonpath([p.parent for p in absolute]))
    return {p: nfc(a.relative_to(root).as_posix()) for p, a in zip(paths, absolute, strict=True)}


def calibrate(
    paths: Iterable[str | Path],
    *,
    embeddings: Sequence[str] = ("resemblyzer",),
    min_solo: float = MIN_SOLO,
    margin: float = MARGIN,
    source: str | None = None,
    loader: Loader = _default_loader,
    version: Callable[[str], str] = _model_version,
    log: Callable[[str], None] | None = None,
) -> dict:
    """The calibration report (a JSON-ready dict) of the labelled speech in ``paths``.

    ``log`` gets one ``FILE:LINE: ...`` line per RTTM uri left out for want of a WAV.
    """
    if not 0 <= margin < 1:
        raise UsageError(f"--margin must be in [0, 1), got {margin}")
    if not embeddings:
        raise UsageError("give at least one --embedding model")
    for name in embeddings:
        check_model_name(name)
    from indomer import __version__
    from indomer.fsutil import sha256_file

    cal = load_calibration(paths, min_solo=min_solo)
    for turn in cal.unmatched if log is not None else ():
        log(f"{turn.where}: RTTM uri {turn.uri!r} has no WAV among the inputs (expected "
            f"{turn.uri}.wav); its speakers are left out")
    for wav, seconds, turn in cal.cut_short if log is not None else ():
        log(f"{wav}: the audio ends at {seconds:.2f} s but {turn.where} annotates speech up to "
            f"{turn.end:.2f} s (a truncated file?); the speech after {seconds:.2f} s is left "
            "out, and with it any voice that falls under --min-solo; give the whole recording")
    used = [*cal.inputs.rttms, *cal.inputs.uems, *(r.wav for r in cal.recordings)]
    names = _names(used)
    models = {name: evaluate(cal, name, margin=margin, loader=loader, version=version)
              for name in dict.fromkeys(embeddings)}
    return {
        "indomer": __version__,
        "source": source,
        "settings": {"min_solo": min_solo, "margin": margin, "targets": list(TARGETS),
                     "pooling": POOLING, "link": "cosine >= threshold",
                     "pairs": "same person: one speaker label in two recordings; different "
                              "people: two labels in two recordings (pairs within one "
                              "recording are counted, not scored)",
                     "sample_rate": SAMPLE_RATE},
        "files": {names[p]: sha256_file(p) for p in used},
        "recordings": [{"uri": r.uri, "wav": names[r.wav], "match": r.match,
                        "seconds": _round(r.duration), "speakers": r.speakers}
                       for r in cal.recordings],
        "unmatched": [{"uri": t.uri, "where": f"{names[t.path]}:{t.line}"}
                      for t in cal.unmatched],
        "voices": [{"speaker": v.speaker, "recording": v.recording,
                    "solo_seconds": _round(v.seconds), "segments": len(v.segments)}
                   for v in cal.voices],
        "too_short": len(cal.short),
        "models": models,
    }


def render(report: dict) -> str:
    """The report as a readable table, one block per embedding model."""
    lines: list[str] = []
    voices = report["voices"]
    lines.append(f"{len(report['recordings'])} recordings, {len(voices)} voices "
                 f"(speaker x recording) with >= {report['settings']['min_solo']:g} s of solo "
                 f"speech, {len({v['speaker'] for v in voices})} speakers; "
                 f"{report['too_short']} shorter voices left out")
    for r in report["recordings"]:
        if r["match"] != "exact":
            lines.append(f"matched: RTTM uri {r['uri']!r} -> {r['wav']} ({r['match']})")
    for name, m in report["models"].items():
        lines += ["", f"model {name}: {m['model']}",
                  f"{'pairs':<18}{'n':>5}{'min':>9}{'median':>9}{'max':>9}{'mean':>9}"]
        for key in ("same_person", "different_people"):
            st = m[key]
            lines.append(f"{key.replace('_', ' '):<18}{st['n']:>5}{st['min']:>9.3f}"
                         f"{st['median']:>9.3f}{st['max']:>9.3f}{st['mean']:>9.3f}")
        lines.append(f"({m['pairs']['same_recording']} pairs within one recording not scored)")
        lines += ["", f"{'operating point':<26}{'threshold':>10}{'miss':>8}{'false merge':>13}"]
        e = m["eer"]
        lines.append(f"{'EER ' + format(e['rate'], '.3f'):<26}{e['threshold']:>10.4f}"
                     f"{e['miss_rate']:>8.3f}{e['false_merge_rate']:>13.3f}")
        for row in m["at_miss_rate"]:
            lines.append(f"{'miss <= ' + format(row['target_miss_rate'], 'g'):<26}"
                         f"{row['threshold']:>10.4f}{row['miss_rate']:>8.3f}"
                         f"{row['false_merge_rate']:>13.3f}")
        s = m["split_safe"]
        lines.append(f"{'split-safe (margin ' + format(s['margin'], 'g') + ')':<26}"
                     f"{s['threshold']:>10.4f}{s['miss_rate']:>8.3f}"
                     f"{s['false_merge_rate']:>13.3f}")
        lines.append(f"split-safe single linkage: {s['components']} groups of {s['people']} "
                     f"people over {m['voices']} voices (largest {s['largest_component']})")
        prob = m.get("probability")
        if prob:
            lines.append(f"probability of one person (cohort-normalised score, EER "
                         f"{prob['eer']['rate']:.3f}): logit p = {prob['slope']:.4f} * score "
                         f"{prob['intercept']:+.4f}")
    return "\n".join(lines) + "\n"
