"""Small stages for the Ray engine tests (importable by Ray workers: the test cluster puts
tests/ on their PYTHONPATH).

- a stage that kills its own worker process with SIGKILL the first time it sees one item
  (a marker file beside OUT says it already did), as a node losing a worker mid-item;
- stages that append "STAGE KEY start|end" to a log file, so tests see the order in which
  items moved through the stages (appends of one short line are atomic);
- :func:`model_stages`: cheap, deterministic stand-ins for the model stages (align, voices,
  faces: pools of workers that load a "model" once) and the whole-dataset speakers stage, so
  the real runner and the real Ray engine build a dataset in seconds that depends on every
  byte those stages compute (words with float scores, embeddings in side files, partial
  rejections, speaker ids from the embeddings, a declared document).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indomer.errors import RowRejected
from indomer.stage import Context, DatasetStage, Inputs, Item, ItemStage, Produced, Stage


def _out(settings: object, ctx: Context) -> Path:
    return ctx.out


def _killer(name: str, victim: str):
    def run(item: Item, out: Path) -> list:
        marker = out.parent / f"killed-{name}-{item.key}"
        if item.key == victim and not marker.exists():
            marker.write_text(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return [item.video, *item.segments]

    return run


def kill_probe(item: Item, out: Path) -> list:
    return _killer("probe", "2")(item, out)


def kill_align(item: Item, out: Path) -> list:
    return _killer("align", "3")(item, out)


def _log(out: Path, line: str) -> None:
    with open(out.parent / "order.log", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _lines(out: Path) -> list[str]:
    path = out.parent / "order.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


#: How many items the streaming test runs through ``cpu_step``.
CPU_ITEMS = 5


def cpu_step(item: Item, out: Path) -> list:
    """The last item of the CPU stage ends only once a GPU step has started (or after 120 s).

    Streaming lets the GPU stage start on the first finished item while the CPU stage still
    runs, so the wait ends at once, however slowly the GPU actor starts on a loaded machine; a
    barrier between stages would hold every GPU start back, the wait would time out, and the
    order the test reads would show it. Order, not time."""
    _log(out, f"cpu {item.key} start")
    ended = sum(line.startswith("cpu") and line.endswith("end") for line in _lines(out))
    if ended == CPU_ITEMS - 1:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                line.startswith("gpu") for line in _lines(out)):
            time.sleep(0.05)
    _log(out, f"cpu {item.key} end")
    return [item.video, *item.segments]


def gpu_step(item: Item, out: Path) -> list:
    _log(out, f"gpu {item.key} start")
    _log(out, f"gpu {item.key} end")
    return [item.video, *item.segments]


def replace(stages: tuple[Stage, ...], **runs) -> tuple[Stage, ...]:
    """``stages`` with the named (item) ones' ``process`` replaced (setup gives them OUT)."""
    out = []
    for s in stages:
        if s.name in runs:
            run, model = runs[s.name]
            s = dataclasses.replace(s, process=run, setup=_out, model=model, settings=_none)
        out.append(s)
    return tuple(out)


def _none() -> None:
    return None


# --------------------------------------------------------------------------- model stages

#: A clip the fake align stage rejects (the others of its video go on): a partial rejection.
REJECTED_CLIP = "clip_3_Cooking_2"


@dataclass(frozen=True)
class Model:
    """What a fake model stage loads once per worker: a seeded projection (numpy BLAS does
    the sums, as the real models' features do), and where the stage writes side files."""

    weights: np.ndarray
    workdir: Path


def load_model(settings: object, ctx: Context) -> Model:
    """Each load is logged beside OUT (``loads.log``), so a test counts them per stage."""
    with open(ctx.out.parent / "loads.log", "a", encoding="utf-8") as fh:
        fh.write(f"{ctx.name} {os.getpid()}\n")
    rng = np.random.default_rng(sum(map(ord, ctx.name)))
    return Model(rng.standard_normal((64, 8)), ctx.workdir)


def _features(model: Model, wav: str) -> np.ndarray:
    """The clip's audio samples, in frames of 64, through the projection: (frames, 8)."""
    raw = Path(wav).read_bytes()[44:]  # the fake cut's plain 16-bit PCM wav
    x = np.frombuffer(raw[: len(raw) // 128 * 128], dtype="<i2").astype(np.float64) / 32768
    return np.tanh(x.reshape(-1, 64) @ model.weights)


def fake_align(item: Item, model: Model) -> list:
    """Words of each clip's text, evenly timed from the clip's start, scored by the model."""
    out: list = [item.video]
    for seg in item.segments:
        if seg.id == REJECTED_CLIP:
            out.append(RowRejected(seg.id, "no word aligned", "check the transcript"))
            continue
        feats = _features(model, seg.audio_path)
        tokens = (seg.text or "").split()
        step = (seg.end - seg.start) / max(len(tokens), 1)
        words = tuple(
            {"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3),
             "score": float(1 / (1 + np.exp(-feats[i % len(feats)].sum())))}
            for i, w in enumerate(tokens)
        )
        out.append(dataclasses.replace(seg, words=words, text_source="manual"))
    return out


def fake_voices(item: Item, model: Model) -> list:
    """Each clip's voice embedding, written to ``embeddings/ID.npy`` in the stage's work
    folder (a side file, as the real stage's), with its check summary in ``speaker``."""
    folder = model.workdir / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    out: list = [item.video]
    for seg in item.segments:
        video = np.resize(np.frombuffer(Path(seg.video_path).read_bytes(), dtype=np.uint8), 64)
        emb = _features(model, seg.audio_path).mean(axis=0) + (video / 255) @ model.weights
        emb = emb / np.linalg.norm(emb)
        with open(folder / f"{seg.id}.npy", "wb") as fh:
            np.save(fh, emb)
        share = round(float(abs(emb[0])), 6)
        out.append(dataclasses.replace(seg, speaker={
            "n_speakers": 1, "primary_share": share, "overlap": 0.0, "flagged": False,
            "embedding": f"embeddings/{seg.id}.npy",
        }))
    return out


def fake_faces(item: Item, model: Model) -> list:
    """A face-track summary from the clip's video bytes (the fake cut writes text there)."""
    out: list = [item.video]
    for seg in item.segments:
        data = np.frombuffer(Path(seg.video_path).read_bytes(), dtype=np.uint8)
        frames = len(data)
        box = [round(float(v), 6) for v in (np.resize(data, 64).astype(np.float64) / 255)
               @ model.weights[:, :4] / 64]
        out.append(dataclasses.replace(seg, face={
            "frames": frames, "detected": frames - int(data[-1]) % 3, "multiple": 0,
            "box": box, "continuity": 1.0, "flagged": False,
        }))
    return out


def voices_folder(settings: object, ctx: Context) -> Path:
    return ctx.dirs["voices"]


def fake_speakers(inputs: Inputs, voices: Path) -> Produced:
    """One speaker id per source, from its clips' embeddings (read from the voices stage's
    side files): the sources ranked by their mean embedding's lean, the last two one person;
    the embeddings go to the declared document ``embeddings.json``."""
    rows = inputs.rows()
    emb = {r["id"]: np.load(voices / r["speaker"]["embedding"]).tolist()
           for r in rows if r.get("kind") == "segment"}
    by_source: dict[str, list[list[float]]] = {}
    for r in rows:
        if r.get("kind") == "segment":
            by_source.setdefault(r["source_id"], []).append(emb[r["id"]])
    lean = {src: float(np.mean(v, axis=0) @ np.arange(8.0)) for src, v in by_source.items()}
    order = sorted(lean, key=lambda src: (lean[src], src))
    person = {src: f"spk{min(order.index(src), 2)}" for src in lean}  # three people
    out = [dict(r, speaker_id=person[r["source_id"]]) if r.get("kind") == "segment" else r
           for r in rows]
    return Produced(out, documents={"embeddings.json": emb})


def model_stages() -> tuple[Stage, ...]:
    """tests/test_pipeline.py's fake pipeline with the fake model stages and speakers."""
    import test_pipeline as tp

    fakes = {
        "align": ItemStage("align", fake_align, setup=load_model, model=True),
        "voices": ItemStage("voices", fake_voices, setup=load_model, model=True),
        "faces": ItemStage("faces", fake_faces, setup=load_model, model=True),
        "speakers": DatasetStage("speakers", fake_speakers, setup=voices_folder,
                                 outputs=("embeddings.json",)),
    }
    return tuple(fakes.get(s.name, s) for s in tp.fake_stages())
