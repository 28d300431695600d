"""The annotation round trip: cut clips out to annotators, their answers back as sheets.

``indomer annotate export OUT --to DIR`` reads a raw build's merge manifest (every clip the
build cut, labelled or waiting for labels) and writes, atomically:

- ``labelstudio`` (default): ``tasks.json`` (one Label Studio task per clip: the mp4 with its
  sound, the 16 kHz wav, the transcript with word times, clip id, source, topic, speaker)
  and ``label_config.xml`` with the fields of ``annotations/template.csv`` (emotion with the
  Indonesian names shown, intensity 0-3, sentiment score in [-1, 1], text/audio/video
  sentiment, a free note). Media are referenced through Label Studio's local-files serving
  (``/data/local-files/?d=PATH``, PATH relative to the document root, by default OUT) or
  under ``--media-url``. ``--preds`` adds a model's answers as pre-annotations
  (``predictions`` with ``model_version``); ``labelstudio.json`` says how to serve the media.
- ``csv``: one sheet per annotator in the template's format, ids and roles filled in.

``indomer annotate import EXPORT.json --out SHEETS`` reads Label Studio's JSON export (full:
``annotations[]`` with ``completed_by`` a number or a user object, ``was_cancelled``; or
JSON_MIN: one flat record per annotation) and writes one sheet per annotator, named by a
pseudonym (A1, A2, ... and E1, ... for experts, numbered in the order of the Label Studio
user ids, or taken from ``--annotator-map map.csv``). E-mail addresses never reach an output
file (notes holding one are redacted). Cancelled (skipped) annotations are left out and
counted; when one person annotated a clip twice, the latest counts and the other is listed.
A bad task or annotation is one line naming the task id and the field, written to
``import-rejections.jsonl`` beside the sheets (not a ``*.csv``, so the merge never reads it);
the good ones are still imported.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from indomer.errors import DataError, UsageError
from indomer.labels import label_set
from indomer.merge import CONTEXT_COLUMNS, OPTIONAL_COLUMNS, SHEET_COLUMNS

#: Export formats and clip selections.
FORMATS: tuple[str, ...] = ("labelstudio", "csv")
ONLY: tuple[str, ...] = ("unlabelled", "unresolved", "all")
#: The label config's control names: the sheet columns they fill.
CONTROLS: dict[str, str] = {
    "emotion": "emotion",
    "intensity": "emotion_intensity",
    "sentiment_score": "sentiment_score",
    "text_sentiment": "text_sentiment",
    "audio_sentiment": "audio_sentiment",
    "video_sentiment": "video_sentiment",
    "note": "note",
}
#: Controls an annotation must hold (the label config marks them required).
REQUIRED: tuple[str, ...] = ("emotion", "sentiment_score")
#: Label Studio's local-files serving (its two settings; the document root is their folder).
LOCAL_FILES_PREFIX = "/data/local-files/?d="
LOCAL_FILES_ENV = (
    "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true",
    "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT",
)
#: A sentiment-only prediction becomes this score (the middle of each side of the dead zone).
PREDICTED_SCORE = {"negative": -0.5, "neutral": 0.0, "positive": 0.5}
REJECTIONS = "import-rejections.jsonl"
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+")
_SAFE_CLIP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_PSEUDONYM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")


# --------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class Clip:
    """One cut clip of a raw build, as the merge stage left it."""

    row: dict
    labelled: bool
    unresolved: bool

    @property
    def id(self) -> str:
        return self.row["id"]


def read_clips(out: Path) -> list[Clip]:
    """Every clip of the build at ``out`` (merge manifest), sorted by id."""
    from indomer.pipeline import finished_output, read_manifest

    out = Path(out)
    manifest = finished_output(out, "merge", "manifest.jsonl")
    if manifest is None:
        raise UsageError(
            f"{out}: no finished merge stage under {out / 'work'}; run "
            "'indomer build CONFIG.yaml --out OUT' first (it runs without annotator sheets)"
        )
    from indomer.generation import check_layout

    check_layout(out)  # word times in source seconds would not match the task's player
    labels_path = finished_output(out, "merge", "labels.json")
    labels = json.loads(labels_path.read_text("utf-8")) if labels_path is not None else {}
    unresolved = {u["id"] for u in labels.get("unresolved", [])}
    clips = []
    for r in read_manifest(manifest):
        # segment: waits for labels; example: labelled; unresolved: waits for the expert
        if r.get("kind") not in ("segment", "example", "unresolved"):
            continue
        clips.append(
            Clip(r, r["kind"] != "segment", r["id"] in unresolved or r["kind"] == "unresolved")
        )
    return sorted(clips, key=lambda c: c.id)


def select(clips: list[Clip], only: str) -> list[Clip]:
    """The clips ``--only`` names: waiting for labels, without a majority, or all."""
    if only == "unlabelled":
        return [c for c in clips if not c.labelled]
    if only == "unresolved":
        return [c for c in clips if c.unresolved]
    return list(clips)


# --------------------------------------------------------------------------- label config


def _choices(name: str, to: str, task: str, required: bool, hint: str) -> list[str]:
    ls = label_set(task)
    req = ' required="true"' if required else ""
    lines = [
        f"  <Header value={quoteattr(hint)}/>",
        f'  <Choices name="{name}" toName="{to}" choice="single-radio" showInline="true"{req}>',
    ]
    for canon in ls.names:
        shown = ls.release[canon]
        lines.append(f"    <Choice value={quoteattr(shown)} hint={quoteattr(canon)}/>")
    lines.append("  </Choices>")
    return lines


def label_config() -> str:
    """Label Studio's labelling config with the fields of ``annotations/template.csv``."""
    lines = [
        "<View>",
        '  <Header value="$clip_id ($topic, source $source_id, speaker $speaker_id)"/>',
        '  <Video name="video" value="$video" height="360"/>',
        '  <Audio name="audio" value="$audio"/>',
        '  <Header value="Transkrip"/>',
        '  <Text name="transcript" value="$transcript"/>',
        '  <Text name="word_times" value="$word_times"/>',
        '  <Text name="votes" value="$votes"/>',
        *_choices("emotion", "video", "emotion", True, "Emosi dominan (emotion)"),
        '  <Header value="Intensitas emosi 0-3 (emotion_intensity)"/>',
        '  <Choices name="intensity" toName="video" choice="single-radio" showInline="true">',
        *(f'    <Choice value="{i}"/>' for i in range(4)),
        "  </Choices>",
        '  <Header value="Skor sentimen keseluruhan, -1 sampai 1 (sentiment_score)"/>',
        (
            '  <Number name="sentiment_score" toName="video" min="-1" max="1" step="0.1"'
            ' required="true"/>'
        ),
        *_choices(
            "text_sentiment",
            "transcript",
            "text_sentiment",
            False,
            "Sentimen teks saja (text_sentiment)",
        ),
        *_choices(
            "audio_sentiment",
            "audio",
            "audio_sentiment",
            False,
            "Sentimen suara saja (audio_sentiment)",
        ),
        *_choices(
            "video_sentiment",
            "video",
            "video_sentiment",
            False,
            "Sentimen gambar saja (video_sentiment)",
        ),
        '  <Header value="Catatan untuk ahli (note)"/>',
        '  <TextArea name="note" toName="video" maxSubmissions="1" rows="2"/>',
        "</View>",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- export


def _media_url(rel: str | None, out: Path, root: Path, media_url: str | None) -> str | None:
    if not rel:
        return None
    path = (out / rel).absolute()
    if media_url is not None:
        return media_url.rstrip("/") + "/" + quote(path.relative_to(out.absolute()).as_posix())
    try:
        inside = path.relative_to(root.absolute()).as_posix()
    except ValueError:
        raise UsageError(
            f"{path}: not under the document root {root}; give --document-root a folder "
            "that holds the build"
        ) from None
    return LOCAL_FILES_PREFIX + quote(inside, safe="/")


def _word_times(words: list[dict] | None) -> str:
    out = []
    for w in words or []:
        if w.get("start") is None:
            out.append(f"[-] {w.get('word', '')}")
        else:
            out.append(f"[{w['start']:.2f}-{w['end']:.2f}] {w.get('word', '')}")
    return "  ".join(out)


def _prediction(pred: dict, model: str) -> dict | None:
    """A preds.jsonl row as a Label Studio prediction (unparseable values left out)."""
    from indomer.textparse import parse_label

    result = []
    targets = {
        "emotion": "video",
        "text_sentiment": "transcript",
        "audio_sentiment": "audio",
        "video_sentiment": "video",
    }
    for task, to in targets.items():
        name = parse_label(pred.get(task), task) if task in pred else None
        if name is not None:
            result.append(
                {
                    "from_name": task,
                    "to_name": to,
                    "type": "choices",
                    "value": {"choices": [label_set(task).release[name]]},
                }
            )
    score = pred.get("sentiment_score")
    if not (
        isinstance(score, (int, float))
        and not isinstance(score, bool)
        and math.isfinite(score)
        and -1 <= score <= 1
    ):
        sent = parse_label(pred.get("sentiment"), "sentiment") if "sentiment" in pred else None
        score = PREDICTED_SCORE.get(sent) if sent else None
    if score is not None:
        result.append(
            {
                "from_name": "sentiment_score",
                "to_name": "video",
                "type": "number",
                "value": {"number": float(score)},
            }
        )
    if not result:
        return None
    return {"model_version": model, "result": result}


def read_predictions(path: Path) -> dict[str, dict]:
    """id -> preds.jsonl row (the scorer's reader: its checks, its one-line errors)."""
    from indomer.scoring import read_predictions as read

    return dict(read(path).rows)


def unresolved_votes(out: Path) -> dict[str, str]:
    """Clip id -> the annotators' votes where they reached no majority, one line for the
    expert (``emotion: anger (kemarahan) 1, sadness (kesedihan) 1``), from the merge stage's
    ``labels.json``; counts, not names (the sheets are pseudonymous anyway)."""
    from indomer.pipeline import finished_output

    path = finished_output(Path(out), "merge", "labels.json")
    if path is None:
        return {}
    doc = json.loads(path.read_text("utf-8"))
    parts: dict[str, list[str]] = {}
    for u in doc.get("unresolved", []):
        task = u.get("field")
        try:
            ls = label_set(task)
        except (KeyError, ValueError):
            ls = None
        votes = []
        for value, n in sorted((u.get("votes") or {}).items()):
            shown = ls.release.get(value) if ls is not None else None
            name = f"{value} ({shown})" if shown and shown != value else str(value)
            votes.append(f"{name} {n}")
        parts.setdefault(u["id"], []).append(f"{task}: {', '.join(votes) or 'no votes'}")
    return {k: "; ".join(v) for k, v in parts.items()}


class TaskOptions(TypedDict, total=False):
    """Which clips become Label Studio tasks and how their media are served: the options
    ``annotate export`` and ``annotate push`` share (see :func:`labelstudio_tasks`)."""

    only: str
    predictions: Path | None
    model: str | None
    media_url: str | None
    document_root: Path | None


def labelstudio_tasks(
    out: Path,
    *,
    only: str = "unlabelled",
    predictions: Path | None = None,
    model: str | None = None,
    media_url: str | None = None,
    document_root: Path | None = None,
) -> tuple[list[dict], dict]:
    """The Label Studio tasks of ``--only``'s clips and how their media are served
    (``labelstudio.json``'s content): what ``annotate export`` writes and ``annotate push``
    sends. Every task carries ``votes`` (the annotators' votes of an unresolved clip, else
    empty), since Label Studio refuses a task lacking a field the label config names."""
    out = Path(out).absolute()
    if only not in ONLY:
        raise UsageError(f"--only {only!r}: expected one of {', '.join(ONLY)}")
    clips = select(read_clips(out), only)
    preds = read_predictions(predictions) if predictions is not None else {}
    model = model or (predictions.stem if predictions is not None else None)
    votes = unresolved_votes(out)
    root = Path(document_root).absolute() if document_root is not None else out
    tasks = []
    n_pred = 0
    for c in clips:
        r = c.row
        data = {
            "clip_id": c.id,
            "source_id": r.get("source_id"),
            "segment_index": r.get("segment_index"),
            "topic": r.get("topic"),
            "speaker_id": r.get("speaker_id") or "",
            "start": r.get("start"),
            "end": r.get("end"),
            "video": _media_url(r.get("video_path"), out, root, media_url),
            "audio": _media_url(r.get("audio_path"), out, root, media_url),
            "transcript": r.get("text") or "",
            "text_source": r.get("text_source"),
            "words": [dict(w) for w in (r.get("words") or [])],
            "word_times": _word_times(r.get("words")),
            "votes": f"Suara anotator (votes): {votes[c.id]}" if c.id in votes else "",
        }
        task: dict[str, Any] = {"data": data}
        if c.id in preds:
            pred = _prediction(preds[c.id], model or "model")
            if pred is not None:
                task["predictions"] = [pred]
                n_pred += 1
        tasks.append(task)
    clip_dirs = sorted(
        {
            str((out / c.row[k]).parent)
            for c in clips
            for k in ("video_path", "audio_path")
            if c.row.get(k)
        }
    )
    serving = {
        "media": "url prefix" if media_url is not None else "local files",
        "media_url": media_url,
        "environment": None
        if media_url is not None
        else {
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(root),
        },
        "local_storage_paths": [] if media_url is not None else clip_dirs,
        "tasks": len(tasks),
        "predictions": n_pred,
        "model_version": model if n_pred else None,
    }
    return tasks, serving


def export(
    out: Path,
    to: Path,
    *,
    fmt: str = "labelstudio",
    only: str = "unlabelled",
    predictions: Path | None = None,
    model: str | None = None,
    media_url: str | None = None,
    document_root: Path | None = None,
    annotators: tuple[str, ...] = ("A1", "A2", "A3"),
) -> dict:
    """Write the export into ``to``; return ``{"tasks", "files", "format", "only", ...}``."""
    out = Path(out).absolute()
    to = Path(to)
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if only not in ONLY:
        raise UsageError(f"--only {only!r}: expected one of {', '.join(ONLY)}")
    from indomer.outputs import Outputs

    folder = Outputs([out, predictions]).folder(to, "--to", "indomer annotate export")
    if fmt == "csv":
        names = [f"{a}.csv" for a in (annotators if only != "unresolved" else ("E1",))]
    else:
        names = ["tasks.json", "label_config.xml", "labelstudio.json"]
    folder.check(names, folder.owned())  # before any work: refused now or written later
    files: list[str] = []
    written: dict[str, bytes] = {}
    if fmt == "csv":
        clips = select(read_clips(out), only)
        votes = unresolved_votes(out)
        sheet_names = annotators if only != "unresolved" else ("E1",)
        role = "expert" if only == "unresolved" else "annotator"
        for name in sheet_names:
            if not _PSEUDONYM.match(name):
                raise UsageError(f"--annotators {name!r}: use letters, digits, '_' or '-'")
            rows = []
            for c in clips:
                row = dict.fromkeys((*SHEET_COLUMNS, *OPTIONAL_COLUMNS, *CONTEXT_COLUMNS), "")
                row.update(id=c.id, annotator=name, role=role)
                row["transcript"] = c.row.get("text") or ""
                for kind in ("video", "audio"):
                    rel = c.row.get(f"{kind}_path")
                    row[kind] = str(out / rel) if rel else ""
                row["votes"] = votes.get(c.id, "")
                rows.append(row)
            written[f"{name}.csv"] = _sheet_text(rows, CONTEXT_COLUMNS).encode("utf-8")
            files.append(f"{name}.csv")
        folder.write_files(written)
        return {"format": fmt, "only": only, "tasks": len(clips), "files": files, "to": str(to)}
    tasks, serving = labelstudio_tasks(
        out,
        only=only,
        predictions=predictions,
        model=model,
        media_url=media_url,
        document_root=document_root,
    )
    root = Path(document_root).absolute() if document_root is not None else out
    written["tasks.json"] = (json.dumps(tasks, ensure_ascii=False, indent=1) + "\n").encode()
    written["label_config.xml"] = label_config().encode("utf-8")
    written["labelstudio.json"] = (json.dumps(serving, indent=2, sort_keys=True) + "\n").encode()
    folder.write_files(written)
    files = ["tasks.json", "label_config.xml", "labelstudio.json"]
    return {
        "format": fmt,
        "only": only,
        "tasks": len(tasks),
        "predictions": serving["predictions"],
        "files": files,
        "to": str(to),
        "document_root": str(root),
        "local_storage_paths": serving["local_storage_paths"],
    }


def _sheet_text(rows: Iterable[dict], context: tuple[str, ...] = ()) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(
        buf, fieldnames=[*SHEET_COLUMNS, *OPTIONAL_COLUMNS, *context], lineterminator="\n"
    )
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# --------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """What an import wrote and what it left out (counts and one line per problem)."""

    sheets: dict[str, int] = field(default_factory=dict)  # file name -> rows
    tasks: int = 0
    annotations: int = 0
    cancelled: int = 0
    superseded: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return (
            [e["message"] for e in self.rejected]
            + [e["message"] for e in self.superseded]
            + self.warnings
        )


def _redact(text: str) -> str:
    """``text`` with every e-mail address removed, after NFKC (so a full-width ``＠`` or
    other look-alike is caught too)."""
    return _EMAIL.sub("[e-mail removed]", unicodedata.normalize("NFKC", text))


def _shown(value: Any, limit: int = 60) -> str:
    """A user's value for a rejection line: redacted, on one line, at most ``limit`` chars."""
    text = _redact(" ".join(repr(value).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _who(completed_by: Any) -> tuple[str | None, str | None]:
    """(Label Studio user id, e-mail) of ``completed_by`` (a number, an object, a string)."""
    if isinstance(completed_by, bool):
        return None, None
    if isinstance(completed_by, int):
        return str(completed_by), None
    if isinstance(completed_by, dict):
        uid = completed_by.get("id")
        email = completed_by.get("email")
        return (
            str(uid) if isinstance(uid, int) and not isinstance(uid, bool) else None,
            email if isinstance(email, str) and email else None,
        )
    if isinstance(completed_by, str) and completed_by.strip():
        text = completed_by.strip()
        return (text, None) if text.isdigit() else (None, text)
    return None, None


def _read_map(path: Path) -> dict[str, str]:
    """map.csv: ``who,annotator`` (who = Label Studio user id or e-mail) -> pseudonym."""
    from indomer.config import read_table

    out: dict[str, str] = {}
    for line, cells in read_table(Path(path), ("who", "annotator")):
        if cells is None or not cells["who"] or not cells["annotator"]:
            raise DataError(f"{path}:{line}: expected two cells: who,annotator")
        if not _PSEUDONYM.match(cells["annotator"]) or "@" in cells["annotator"]:
            raise DataError(
                f"{path}:{line}: annotator {cells['annotator']!r}: use a code such as A1 "
                "(letters, digits, '_', '-'; never an e-mail address)"
            )
        out[cells["who"].lower()] = cells["annotator"]
    return out


def _choice(value: Any) -> Any:
    """A control's answer from a full result value or a JSON_MIN cell."""
    if isinstance(value, dict):
        for key in ("choices", "number", "text", "rating"):
            if key in value:
                v = value[key]
                return v[0] if isinstance(v, list) and len(v) == 1 else v
        return value
    if isinstance(value, list):
        if len(value) == 1:
            return _choice(value[0])
        return value
    return value


@dataclass
class _Answer:
    task_id: str
    clip: str
    uid: str | None
    email: str | None
    when: tuple
    annotation_id: str
    values: dict[str, Any]


def _task_id(task: dict, n: int) -> str:
    """The task's Label Studio id when it is a number, else its position ``#n``: a task id is
    stored in rejections, and a string id could carry anything."""
    tid = task.get("id")
    if isinstance(tid, int) and not isinstance(tid, bool):
        return str(tid)
    return f"#{n}"


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _when(obj: dict, id_key: str) -> tuple[str, str]:
    stamp = obj.get("updated_at") or obj.get("created_at") or ""
    ident = obj.get(id_key, "")
    return (
        stamp if isinstance(stamp, str) else "",
        str(ident) if isinstance(ident, (int, str)) and not isinstance(ident, bool) else "",
    )


def _records(doc: Any) -> tuple[list[dict], int, int, list[dict]]:
    """The export as flat annotation records: (records, tasks, cancelled, rejected).

    Every field is checked for its type before use: a task or annotation of the wrong shape
    is one rejection (task number, field, reason), never an exception.
    """
    rejected: list[dict] = []
    if not isinstance(doc, list):
        raise DataError("the export is not a JSON list of tasks; export the project as JSON")
    records = []
    cancelled = 0
    for n, task in enumerate(doc):
        if not isinstance(task, dict):
            rejected.append(_bad(f"#{n}", "task", "not a JSON object"))
            continue
        tid = _task_id(task, n)
        if "annotations" in task or "data" in task:  # full JSON
            data = task.get("data")
            if not isinstance(data, dict):
                rejected.append(_bad(tid, "data", "not a JSON object", "export the project again"))
                continue
            anns = task.get("annotations")
            if anns is None:
                anns = []
            if not isinstance(anns, list):
                rejected.append(
                    _bad(tid, "annotations", "not a JSON list", "export the project again")
                )
                continue
            for ann in anns:
                if not isinstance(ann, dict):
                    rejected.append(_bad(tid, "annotations", "not a JSON object"))
                    continue
                if ann.get("was_cancelled") is True or ann.get("skipped") is True:
                    cancelled += 1
                    continue
                results = ann.get("result")
                if results is None:
                    results = []
                if not isinstance(results, list):
                    rejected.append(_bad(tid, "result", "not a JSON list"))
                    continue
                values: dict[str, Any] = {}
                unknown = []
                for res in results:
                    name = res.get("from_name") if isinstance(res, dict) else None
                    if isinstance(name, str) and name in CONTROLS:
                        values[name] = _choice(res.get("value"))
                    elif name is not None:
                        unknown.append(_shown(name, 40) if not isinstance(name, str) else name)
                uid, email = _who(ann.get("completed_by"))
                aid = _when(ann, "id")[1]
                records.append(
                    {
                        "task": tid,
                        "clip": data.get("clip_id"),
                        "uid": uid,
                        "email": email,
                        "values": values,
                        "unknown": unknown,
                        "when": _when(ann, "id"),
                        "annotation_id": aid,
                    }
                )
        else:  # JSON_MIN: one flat record per annotation, task data keys mixed in
            uid, email = _who(task.get("annotator"))
            values = {k: _choice(task[k]) for k in CONTROLS if k in task}
            records.append(
                {
                    "task": tid,
                    "clip": task.get("clip_id"),
                    "uid": uid,
                    "email": email,
                    "values": values,
                    "unknown": [],
                    "when": _when(task, "annotation_id"),
                    "annotation_id": _when(task, "annotation_id")[1],
                }
            )
    return records, len(doc), cancelled, rejected


def _bad(task_id: str, fld: str, reason: str, fix: str = "") -> dict:
    """One rejection: task number, field and reason, each redacted (it is written to
    import-rejections.jsonl and shown)."""
    task_id, fld, reason, fix = (_redact(x) for x in (task_id, fld, reason, fix))
    msg = f"task {task_id}: {fld}: {reason}" + (f"; {fix}" if fix else "")
    return {"task": task_id, "field": fld, "reason": reason, "fix": fix, "message": msg}


def _sheet_row(rec: dict, known: set[str] | None) -> tuple[dict | None, dict | None]:
    """One annotation as sheet cells (canonical labels), or the first problem."""
    tid, values = rec["task"], rec["values"]
    clip = rec["clip"]
    if not isinstance(clip, str) or not _SAFE_CLIP.match(clip):
        return None, _bad(
            tid,
            "clip_id",
            f"{_shown(clip)} is not a clip id",
            "import an export of tasks written by indomer annotate export",
        )
    if known is not None and clip not in known:
        return None, _bad(
            tid, "clip_id", f"{clip} is not a clip of the build", "check the project (or --build)"
        )
    if rec["uid"] is None and rec["email"] is None:
        return None, _bad(tid, "completed_by", "no annotator", "export with user details")
    if rec["unknown"] and not any(k in values for k in CONTROLS):
        return None, _bad(
            tid,
            rec["unknown"][0],
            f"not a field of indomer's label config (missing {', '.join(REQUIRED)})",
            "label with the label_config.xml of indomer annotate export",
        )
    for name in REQUIRED:
        if values.get(name) in (None, "", []):
            return None, _bad(
                tid, name, "missing", "label with the label_config.xml of indomer annotate export"
            )
    row = dict.fromkeys((*SHEET_COLUMNS, *OPTIONAL_COLUMNS), "")
    row["id"] = clip
    for name in ("emotion", "text_sentiment", "audio_sentiment", "video_sentiment"):
        v = values.get(name)
        if v in (None, "", []):
            continue
        canon = label_set(name).canonical(v) if isinstance(v, str) else None
        if canon is None:
            return None, _bad(
                tid,
                name,
                f"{_shown(v)} is not a {name} label",
                f"use one of {', '.join(label_set(name).release.values())}",
            )
        row[name] = canon
    score = values.get("sentiment_score")
    if isinstance(score, str):
        try:
            score = float(score)
        except ValueError:
            pass
    if (
        not isinstance(score, (int, float))
        or isinstance(score, bool)
        or not math.isfinite(score)
        or not -1 <= score <= 1
    ):
        return None, _bad(
            tid,
            "sentiment_score",
            f"{_shown(score)} is not a number in [-1, 1]",
            "score from -1 (very negative) to 1 (very positive)",
        )
    row["sentiment_score"] = repr(float(score))
    intensity = values.get("intensity")
    if intensity not in (None, "", []):
        try:
            level = int(str(intensity))
        except ValueError:
            level = -1
        if str(level) != str(intensity).strip() or not 0 <= level <= 3:
            return None, _bad(
                tid, "intensity", f"{_shown(intensity)} is not an intensity 0-3", "choose 0, 1, 2 or 3"
            )
        row["emotion_intensity"] = str(level)
    note = values.get("note")
    if isinstance(note, list):
        note = " ".join(str(x) for x in note)
    if note:
        row["note"] = _redact(str(note).replace("\n", " ").strip())
    return row, None


def import_export(
    export_path: Path,
    sheets: Path,
    *,
    experts: Iterable[str] = (),
    annotator_map: Path | None = None,
    known: set[str] | None = None,
) -> ImportResult:
    """Label Studio export -> annotator sheets in ``sheets`` (see the module doc)."""
    from indomer.outputs import Outputs
    from indomer.readjson import read_json

    folder = Outputs([export_path, annotator_map]).folder(
        sheets, "--out", "indomer annotate import"
    )
    if not Path(export_path).is_file():
        raise UsageError(f"{export_path}: no such file; give Label Studio's JSON export")
    doc = read_json(export_path)
    records, n_tasks, cancelled, rejected = _records(doc)
    result = ImportResult(tasks=n_tasks, cancelled=cancelled)
    if not records and not rejected:
        rejected.append(
            _bad(
                "-",
                "annotations",
                "the export holds no annotations",
                "label some tasks, then export again",
            )
        )
    mapping = _read_map(annotator_map) if annotator_map is not None else {}
    expert_keys = {e.strip().lower() for e in experts if e.strip()}
    good: list[tuple[dict, dict]] = []
    for rec in records:
        row, bad = _sheet_row(rec, known)
        if bad is not None:
            rejected.append(bad)
        else:
            good.append((rec, row))
    # pseudonyms: the map, else A1.. / E1.. in the order of Label Studio's user ids
    people: dict[tuple, dict] = {}
    for rec, _ in good:
        key = (rec["uid"] or "", (rec["email"] or "").lower())
        people.setdefault(key, rec)

    def order(key: tuple) -> tuple:
        uid, email = key
        return (0, int(uid), "") if uid.isdigit() else (1, 0, email)

    names: dict[tuple, tuple[str, str]] = {}
    counts = {"annotator": 0, "expert": 0}
    for key in sorted(people, key=order):
        uid, email = key
        role = "expert" if {uid.lower(), email} & expert_keys else "annotator"
        mapped = mapping.get(email) or mapping.get(uid.lower())
        if mapped is None and mapping:
            rejected.append(
                _bad(
                    people[key]["task"],
                    "completed_by",
                    f"user {uid or '(no id)'} is not in --annotators",
                    "add a who,annotator row for this user",
                )
            )
            names[key] = ("", role)
            continue
        if mapped is None:
            counts[role] += 1
            mapped = f"{'E' if role == 'expert' else 'A'}{counts[role]}"
        names[key] = (mapped, role)
    matched = {k for key in names for k in key if k} & expert_keys
    for e in sorted(expert_keys - matched):
        shown = "an e-mail address" if "@" in e else f"user {e}"
        result.warnings.append(
            f"--experts: {shown} matched no annotator of the export (Label Studio's API export "
            "names users by id only: give the expert's user id too, or an export with user "
            "details)"
        )
    latest: dict[tuple[str, str], tuple[dict, dict]] = {}
    for rec, row in sorted(good, key=lambda g: g[0]["when"]):
        name, role = names[(rec["uid"] or "", (rec["email"] or "").lower())]
        if not name:
            continue
        row = {**row, "annotator": name, "role": role}
        slot = (name, row["id"])
        if slot in latest:
            old = latest[slot][0]
            result.superseded.append(
                {
                    "task": old["task"],
                    "annotation": _redact(old["annotation_id"]),
                    "message": _redact(
                        f"task {old['task']}: {row['id']}: annotation "
                        f"{old['annotation_id']} of {name} replaced by their later "
                        f"annotation {rec['annotation_id']} (the latest counts)"
                    ),
                }
            )
        latest[slot] = (rec, row)
    result.annotations = len(latest)
    by_name: dict[str, list[dict]] = {}
    for (name, _), (_, row) in sorted(latest.items()):
        by_name.setdefault(name, []).append(row)
    files: dict[str, bytes] = {}
    for name, rows in sorted(by_name.items()):
        rows.sort(key=lambda r: r["id"])
        files[f"{name}.csv"] = _sheet_text(rows).encode("utf-8")
        result.sheets[f"{name}.csv"] = len(rows)
    result.rejected = rejected
    lines = [
        json.dumps(
            {k: v for k, v in {**e, "kind": "rejected"}.items()}, sort_keys=True, ensure_ascii=False
        )
        for e in rejected
    ] + [
        json.dumps({**e, "kind": "superseded"}, sort_keys=True, ensure_ascii=False)
        for e in result.superseded
    ]
    files[REJECTIONS] = "".join(x + "\n" for x in lines).encode("utf-8")
    folder.write_files(files)
    return result


def summary_counts(result: ImportResult) -> Counter:
    """Counts for the command's last line."""
    return Counter(
        sheets=len(result.sheets),
        rows=sum(result.sheets.values()),
        cancelled=result.cancelled,
        rejected=len(result.rejected),
        superseded=len(result.superseded),
    )


__all__ = ["FORMATS", "ONLY", "export", "import_export", "label_config", "read_clips"]
