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

The parts: :mod:`~indomer.calibrate.parsers` (RTTM, UEM, WAV and solo speech),
:mod:`~indomer.calibrate.metrics` (rates, operating points, the probability fit) and
:mod:`~indomer.calibrate.render` (the table); this module embeds the voices and assembles
the report.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from indomer.calibrate.metrics import (
    DECIMALS,
    MARGIN,
    TARGETS,
    _round,
    _stats,
    components,
    equal_error,
    operating_points,
    probability_fit,
    rates,
    threshold_at_miss,
)
from indomer.calibrate.parsers import (
    MIN_SOLO,
    SAMPLE_RATE,
    SUFFIXES,
    TRUNCATION_SLACK,
    Calibration,
    Inputs,
    Recording,
    Turn,
    Voice,
    collect_inputs,
    fold,
    load_calibration,
    match_wavs,
    nfc,
    read_rttm,
    read_uem,
    read_wav,
    samples,
    solo_audio,
    solo_speech,
)
from indomer.calibrate.render import render
from indomer.errors import DataError, UsageError

#: The package's API: the driver below (evaluate, calibrate) and what its parts (parsers,
#: metrics, render) export, so that ``from indomer.calibrate import ...`` keeps working.
__all__ = [
    "CLOSEST",
    "DECIMALS",
    "MARGIN",
    "MIN_SOLO",
    "POOLING",
    "SAMPLE_RATE",
    "SUFFIXES",
    "TARGETS",
    "TRUNCATION_SLACK",
    "Calibration",
    "Inputs",
    "Recording",
    "Turn",
    "Voice",
    "calibrate",
    "check_model_name",
    "collect_inputs",
    "components",
    "equal_error",
    "evaluate",
    "fold",
    "load_calibration",
    "match_wavs",
    "nfc",
    "operating_points",
    "probability_fit",
    "rates",
    "read_rttm",
    "read_uem",
    "read_wav",
    "render",
    "samples",
    "solo_audio",
    "solo_speech",
    "threshold_at_miss",
]


#: Closest different-people pairs listed in the report.
CLOSEST = 5


POOLING = "one embedding of the concatenated solo speech of each voice"


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
