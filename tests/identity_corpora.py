"""Corpora that are not the demo, written as a user would lay them out for ``indomer build``:
a ``sources.csv`` of media files, a ``segments.csv``, annotator sheets and a ``config.yaml``.

* :func:`off_screen_corpus`: six espeak-ng sources of four people whose voices sound alike in
  pairs (m3/id, f2/f4); two sources are off-screen (a video with no face in it, voice only),
  so their identity rests on the voice alone.
* :func:`ami_corpus`: the AMI excerpt (``.cache/ami``, from ``bash tools/install.sh test``) as
  one audio-only monologue source per person and recording: that speaker's solo speech in the
  recording, concatenated (what ``speakers calibrate`` embeds). Audio-only sources are built
  with ``probe: {require_video: false}``.

Segments are given (``segments.csv``) and no ASR runs (``align: {asr: false}``, no
transcripts), so a build costs what identity needs: probe, cut, voices, faces.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AMI = ROOT / ".cache" / "ami"
SR = 16_000

#: (source id, voice, face or None for off-screen, sentence indices). The issue's case: six
#: talking-head sources by four people, two of them off-screen. m3 and id, f2 and f4 are the
#: voice pairs resemblyzer finds alike; each off-screen source is one of those voices.
OFF_SCREEN = (
    ("1", "m3", "lfw26", (0, 2, 4)),
    ("2", "m3", None, (1, 3, 6)),
    ("3", "f2", "hopper", (7, 9, 10)),
    ("4", "f2", None, (8, 11, 5)),
    ("5", "id", "lfw20", (5, 8, 0)),
    ("6", "f4", "lfw31", (6, 1, 3)),
)
SHEET_FIELDS = ["id", "annotator", "role", "sentiment_score", "emotion", "emotion_intensity",
                "text_sentiment", "audio_sentiment", "video_sentiment"]
_SENTIMENT_ID = {"negative": "negatif", "neutral": "netral", "positive": "positif"}
_SCORE = {"negative": -0.6, "neutral": 0.0, "positive": 0.6}


def _write_csv(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _sheet(clip: str, emotion: str) -> list[dict]:
    """Three annotators who agree (the labels are not under test)."""
    from indomer.labels import emotion_to_sentiment

    s = emotion_to_sentiment()[emotion]
    return [{"id": clip, "annotator": a, "role": "annotator", "sentiment_score": _SCORE[s],
             "emotion": emotion, "emotion_intensity": 0 if emotion == "neutral" else 2,
             "text_sentiment": _SENTIMENT_ID[s], "audio_sentiment": _SENTIMENT_ID[s],
             "video_sentiment": _SENTIMENT_ID[s]} for a in ("A1", "A2", "A3")]


def faceless_video(wav: np.ndarray, out_mp4: Path) -> None:
    """An H.264/AAC mp4 of a plain background (no face anywhere) over ``wav``: an off-screen
    speaker, as in a video of slides or scenery with a voice-over."""
    from indomer.demo.synth import _ffmpeg, write_wav

    audio = out_mp4.with_suffix(".wav")
    write_wav(audio, wav)
    subprocess.run(
        [_ffmpeg(), "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", "color=c=0xc4beb2:s=640x480:r=25",
         "-i", str(audio), "-map", "0:v:0", "-map", "1:a:0", "-shortest",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
         "-threads", "1", "-c:a", "aac", "-b:a", "96k", "-ar", str(SR), "-ac", "1",
         "-fflags", "+bitexact", "-map_metadata", "-1", str(out_mp4)],
        check=True)
    audio.unlink()


def off_screen_corpus(folder: Path) -> tuple[Path, dict[str, str]]:
    """(config path, source id -> true person) of :data:`OFF_SCREEN`, laid out in ``folder``."""
    from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak, talking_head
    from indomer.rows import segment_id

    sources, segments, sheet, truth = [], [], [], {}
    for source_id, voice, face, sentences in OFF_SCREEN:
        wav, spoken = speak([DEMO_SENTENCES[i][1] for i in sentences], VOICES[voice])
        mp4 = folder / "media" / f"{source_id}.mp4"
        mp4.parent.mkdir(parents=True, exist_ok=True)
        if face is None:
            faceless_video(wav, mp4)
        else:
            talking_head(wav, face, mp4)
        sources.append({"source_id": source_id, "url_or_path": f"media/{source_id}.mp4",
                        "topic": "Vlog", "license": "CC0-1.0 (synthetic)"})
        for k, (i, s) in enumerate(zip(sentences, spoken["sentences"]), start=1):
            clip = segment_id(source_id, "Vlog", k)
            segments.append({"id": clip, "source_id": source_id,
                             "start": f"{max(0.0, s['start'] - 0.1):.3f}",
                             "end": f"{s['end'] + 0.1:.3f}"})
            sheet.extend(_sheet(clip, DEMO_SENTENCES[i][0]))
        truth[source_id] = voice
    _write_csv(folder / "sources.csv", sources, ["source_id", "url_or_path", "topic", "license"])
    _write_csv(folder / "segments.csv", segments, ["id", "source_id", "start", "end"])
    _write_csv(folder / "sheets" / "labels.csv", sheet, SHEET_FIELDS)
    config = folder / "config.yaml"
    config.write_text(
        "sources: sources.csv\nsegments: segments.csv\nannotations: [sheets]\n"
        "align: {method: whisper, asr: false}\n"
        "split: {ratios: [0.6, 0.2, 0.2], seed: 0, stratify: emotion}\n", encoding="utf-8")
    return config, truth


def ami_corpus(folder: Path, clip_seconds: float = 8.0) -> tuple[Path, dict[str, str]]:
    """(config path, source id -> true speaker) of the AMI excerpt as audio-only monologues:
    one WAV per (speaker, recording), cut into clips of about ``clip_seconds``."""
    import pytest

    from indomer.calibrate import load_calibration, solo_audio
    from indomer.demo.synth import write_wav

    if not (AMI / ".complete").is_file():
        pytest.fail(f"{AMI}: the AMI excerpt is missing; fetch it with: bash tools/install.sh "
                    "test")
    sources, segments, sheet, truth = [], [], [], {}
    for voice, audio in solo_audio(load_calibration([AMI])):
        source_id = f"{voice.speaker}-{voice.recording}".replace("É", "E")
        write_wav(folder / "media" / f"{source_id}.wav", audio)
        sources.append({"source_id": source_id, "url_or_path": f"media/{source_id}.wav",
                        "topic": "Meeting", "license": "CC-BY-4.0 (AMI corpus)"})
        seconds = audio.size / SR
        edges = np.linspace(0.0, seconds, max(1, round(seconds / clip_seconds)) + 1)
        for k in range(len(edges) - 1):
            clip = f"clip_{source_id}_Meeting_{k + 1}"
            segments.append({"id": clip, "source_id": source_id, "start": f"{edges[k]:.3f}",
                             "end": f"{edges[k + 1]:.3f}"})
            sheet.extend(_sheet(clip, "neutral"))
        truth[source_id] = voice.speaker
    _write_csv(folder / "sources.csv", sources, ["source_id", "url_or_path", "topic", "license"])
    _write_csv(folder / "segments.csv", segments, ["id", "source_id", "start", "end"])
    _write_csv(folder / "sheets" / "labels.csv", sheet, SHEET_FIELDS)
    return ami_config(folder), truth


def ami_config(folder: Path, *, ratios: str = "[0.5, 0.5]", extra: str = "",
               name: str = "config.yaml") -> Path:
    """A build config for :func:`ami_corpus`'s folder (``extra``: more YAML lines)."""
    config = folder / name
    config.write_text(
        "sources: sources.csv\nsegments: segments.csv\nannotations: [sheets]\n"
        "probe: {require_video: false}   # audio-only sources: a voice, no video\n"
        "align: {method: whisper, asr: false}\n"
        f"split: {{ratios: {ratios}, seed: 0, stratify: none}}\n" + extra, encoding="utf-8")
    return config
