"""``indomer demo``: a small synthetic Indonesian corpus, built by the real raw-mode pipeline.

Seven source videos (about 100 s) of six people, each with their own voice and their own real face (from
the scikit-image and matplotlib wheels; the person with voice ``m3`` speaks in two sources
and shows the same face in both, as one person would), sentences with pauses, manual
transcripts, and annotator sheets with disagreements that the merge resolves. Six people
let the speaker-disjoint split put two or more in each of train, validation and test, so
the scores' speaker-level intervals are defined. Everything is generated offline and
deterministically, so the demo doubles as an end-to-end check of a fresh install.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from indomer.fsutil import write_text_atomic
from indomer.labels import emotion_to_sentiment
from indomer.rows import segment_id


@dataclass(frozen=True)
class DemoSource:
    """One synthetic source video: who speaks, which face, which sentences."""

    source_id: str
    topic: str
    voice: str
    face: str
    sentences: tuple[int, ...]  # indices into DEMO_SENTENCES


#: One face per voice, so the voice and the face of a source name the same person: voice m3
#: with face lfw26 is one "person" appearing in sources 1 and 4. The faces are as far apart
#: as the face identity model allows (cosine 0.78-0.84 between people, 0.99 and more for one
#: person, also across sources 1 and 4), so the faces can tell apart the voices that
#: resemblyzer finds alike (m3, id, m2 and m7; f2 and f4). Three sentences a source, two for
#: the last two people, keep the corpus at about 100 s of video.
SOURCES: tuple[DemoSource, ...] = (
    DemoSource("1", "Sharing", "m3", "lfw26", (0, 2, 6)),
    DemoSource("2", "Family", "f2", "hopper", (3, 7, 10)),
    DemoSource("3", "Opinion", "id", "lfw20", (5, 11, 8)),
    DemoSource("4", "Cooking", "m3", "lfw26", (4, 9, 11)),
    DemoSource("5", "Health", "f4", "lfw31", (8, 1, 3)),
    DemoSource("6", "Travel", "m7", "lfw77", (1, 10)),
    DemoSource("7", "Work", "m2", "lfw32", (5, 0)),
)
#: Clips left out of transcripts.csv: the align stage gives them an ASR draft (machine text).
UNTRANSCRIBED = frozenset({"clip_5_Health_3"})
SPEAKERS = {"m3": "spk_a", "f2": "spk_b", "id": "spk_c", "f4": "spk_d", "m7": "spk_e",
            "m2": "spk_f"}
#: Frames per second of the talking heads: the faces stage samples 2.5 a second, and every
#: frame more is only decoded and encoded again by probe, cut and faces.
FPS = 10
#: Train, validation, test: 9.5, 4.75 and 4.75 of the 19 clips. Sizes come first in the
#: split's search, and only person m3 (six clips) with a three-clip person fills train,
#: while validation and test each take a three-clip and a two-clip person: two people each.
RATIOS = (0.5, 0.25, 0.25)
SCORE = {"positive": 0.6, "neutral": 0.0, "negative": -0.6}
SENT_ID = {"negative": "negatif", "neutral": "netral", "positive": "positif"}


def _sheet_rows(seg: str, emotion: str, n: int) -> list[dict]:
    """Three annotators and an expert: mostly agreeing, with a planned disagreement pattern.

    Every third segment has all three annotators disagreeing on emotion, so the expert
    decides (``adjudicated``); every other segment has one dissenter, so the majority wins.
    """
    sentiment = emotion_to_sentiment()[emotion]
    others = [e for e in ("neutral", "sadness", "happiness", "anger") if e != emotion]
    if n % 3 == 0:
        votes = [emotion, others[0], others[1]]
    else:
        votes = [emotion, emotion, others[n % 2]]
    rows = []
    for annotator, vote in zip(("A1", "A2", "A3"), votes):
        s = emotion_to_sentiment()[vote]
        rows.append({"annotator": annotator, "role": "annotator", "emotion": vote,
                     "sentiment_score": SCORE[s], "sentiment": s})
    rows.append({"annotator": "E", "role": "expert", "emotion": emotion,
                 "sentiment_score": SCORE[sentiment], "sentiment": sentiment})
    out = []
    for r in rows:
        out.append({
            "id": seg,
            "annotator": r["annotator"],
            "role": r["role"],
            "sentiment_score": r["sentiment_score"],
            "emotion": r["emotion"],
            "emotion_intensity": 0 if r["emotion"] == "neutral" else 2,
            "text_sentiment": SENT_ID[r["sentiment"]],
            "audio_sentiment": SENT_ID[r["sentiment"]],
            "video_sentiment": SENT_ID[sentiment],
        })
    return out


def _csv(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _synthesize(src: DemoSource, media: Path) -> dict:
    """Speak one source's sentences and film its talking head; return the speech's truth
    (:func:`indomer.demo.synth.speak`).

    Depends only on ``src``, so sources can be made in any order or process.
    """
    from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak, talking_head, write_wav

    wav, spoken = speak([DEMO_SENTENCES[i][1] for i in src.sentences], VOICES[src.voice])
    write_wav(media / f"{src.source_id}.wav", wav)
    mp4 = media / f"{src.source_id}.mp4"
    if not mp4.is_file():
        talking_head(wav, src.face, mp4, fps=FPS)
    return spoken


def make_corpus(folder: Path, log: Callable[[str], None] = lambda m: None, *,
                sources: Sequence[DemoSource] = SOURCES, jobs: int = 1) -> Path:
    """Generate the corpus and its build config under ``folder``; return the config path.

    ``sources``: the demo's by default; tests pass a few of their own for a smaller corpus.
    ``jobs``: sources synthesised at once, in spawned processes (the bytes do not change).
    """
    from indomer.demo.synth import DEMO_SENTENCES

    folder = Path(folder)
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    demo_sources = tuple(sources)
    workers = min(jobs, len(demo_sources))
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from indomer.executors import exit_with_parent

        # a killed `indomer demo` must not leave its synthesising workers behind
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=exit_with_parent) as pool:
            spoken_all = list(pool.map(_synthesize, demo_sources, [media] * len(demo_sources)))
    else:
        spoken_all = [_synthesize(src, media) for src in demo_sources]
    sources, transcripts, sheet, truth = [], [], [], {}
    n = 0
    for src, spoken in zip(demo_sources, spoken_all):
        log(f"source {src.source_id}: {spoken['duration']:.1f} s, voice {src.voice}, face {src.face}")
        sources.append({"source_id": src.source_id, "url_or_path": f"media/{src.source_id}.mp4",
                        "topic": src.topic, "license": "CC0-1.0 (synthetic)"})
        for k, (i, sent) in enumerate(zip(src.sentences, spoken["sentences"]), start=1):
            seg = segment_id(src.source_id, src.topic, k)
            emotion = DEMO_SENTENCES[i][0]
            if seg not in UNTRANSCRIBED:
                transcripts.append({"id": seg, "text": DEMO_SENTENCES[i][1]})
            sheet.extend(_sheet_rows(seg, emotion, n))
            truth[seg] = {"emotion": emotion, "start": sent["start"], "end": sent["end"],
                          "speaker": SPEAKERS[src.voice], "face": src.face,
                          "text": DEMO_SENTENCES[i][1], "transcribed": seg not in UNTRANSCRIBED}
            n += 1
    write_text_atomic(folder / "sources.csv",
                      _csv(sources, ["source_id", "url_or_path", "topic", "license"]))
    write_text_atomic(folder / "transcripts.csv", _csv(transcripts, ["id", "text"]))
    fields = ["id", "annotator", "role", "sentiment_score", "emotion", "emotion_intensity",
              "text_sentiment", "audio_sentiment", "video_sentiment"]
    write_text_atomic(folder / "sheets" / "annotations.csv", _csv(sheet, fields))
    write_text_atomic(folder / "truth.json", json.dumps(truth, indent=2, sort_keys=True) + "\n")
    config = folder / "config.yaml"
    write_text_atomic(
        config,
        "# indomer demo: synthetic Indonesian monologues (see indomer/demo/corpus.py)\n"
        "sources: sources.csv\n"
        "transcripts: transcripts.csv\n"
        "annotations: [sheets]\n"
        f"split: {{ratios: [{', '.join(map(str, RATIOS))}], seed: 0, stratify: emotion}}\n"
        "segment: {min_pause: 0.3, min_clip: 1.0, max_clip: 15.0}\n"
        "# Forced alignment with the multilingual Whisper base of the whisper-base extra\n"
        "# (the default, offline; wav2vec2 needs an Indonesian CTC from the hub).\n"
        "align: {method: whisper}\n",
    )
    return config


def baseline_predictions(dataset: Path, path: Path, split: str) -> str:
    """Majority-class baseline: the train split's most frequent label, for every segment."""
    from indomer.dataset import snapshot

    with snapshot(dataset) as snap:  # both splits of one generation
        train = snap.read("train", columns=["id", "emotion", "sentiment"])
        ids = snap.read(split, columns=["id"])["id"]
    emotion = Counter(train["emotion"]).most_common(1)[0][0]
    sentiment = Counter(train["sentiment"]).most_common(1)[0][0]
    lines = "".join(json.dumps({"id": i, "emotion": emotion, "sentiment": sentiment}) + "\n" for i in ids)
    write_text_atomic(path, lines)
    return emotion


def run_demo(out: Path, *, jobs: int = 1, quiet: bool = False,
             log: Callable[[str], None] = print, engine: str = "local",
             address: str | None = None,
             progress: Callable[[str], None] | None = None) -> dict:
    """Generate the corpus, build it, validate it and score a baseline; return what was made.

    ``log`` gets the summaries, ``progress`` (default: ``log``) the lines written while the
    corpus and the build run: the CLI sends the one to stdout, the other to stderr."""
    progress = log if progress is None else progress
    from indomer.dataset import available_splits
    from indomer.pipeline import run_pipeline, summary
    from indomer.scoring import format_report, score_predictions
    from indomer.stats import compute_stats, format_table
    from indomer.validate import validate

    out = Path(out)
    corpus, dataset = out / "corpus", out / "dataset"
    config = make_corpus(corpus, log=progress, jobs=jobs)
    report = run_pipeline(config, dataset, jobs=jobs, quiet=quiet, log=progress, engine=engine,
                          address=address)
    for line in summary(report):
        log(line)
    from indomer.tail import labels_summary

    for line in labels_summary(report["documents"]):
        log(line)
    problems, _ = validate(dataset)
    log(f"validate {dataset}: " + ("valid" if not problems else "; ".join(problems)))
    log(format_table(compute_stats(dataset)))
    split = "test" if "test" in available_splits(dataset) else "validation"
    preds = out / "baseline.jsonl"
    label = baseline_predictions(dataset, preds, split)
    scores = score_predictions(preds, [dataset], split=split, task="all", n_resamples=200)
    log(f"baseline: predict the train majority ({label}) for every {split} segment")
    log(format_report(scores))
    return {"dataset": dataset, "corpus": corpus, "problems": problems, "scores": scores}
