"""``indomer browse``: one local page over a built dataset, read-only.

The page (``indomer/data/browse/``: HTML, CSS and JavaScript, no build step, no CDN) gets all
it shows from one JSON document, :meth:`Browser.payload`: the clips' text columns, votes,
word times and flags, plus each predictions file's answers. The server adds the clips' media,
read from the shards with HTTP Range support (Chromium cannot seek a video served without it),
one row group column at a time, never a whole shard. ``--html`` inlines the same document
(and, with ``--with-media``, the media) into one file that works from ``file://``, where
``fetch()`` of a local file is refused.

Safety: the server binds 127.0.0.1 unless told otherwise, knows three kinds of paths (the
page, its data, a clip's media) and serves nothing else; a clip id in a URL is looked up in
the dataset's own id set before anything else, so an unknown one is a 404 and never reaches
a file name. The dataset is read from one generation (:func:`indomer.dataset.snapshot`)
so that a writer switching generations meanwhile cannot mix two.
"""

from __future__ import annotations

import base64
import functools
import html
import ipaddress
import json
import math
import re
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from indomer.dataset import MEDIA_COLUMNS, SPLITS, Snapshot, columns_except, snapshot
from indomer.errors import DataError, IndomerError, UsageError, first_few
from indomer.generation import check_layout
from indomer.labels import TASKS, label_set

#: The columns the table shows, read from the shards (media columns are indexed, not read).
TEXT_COLUMNS: tuple[str, ...] = columns_except(*MEDIA_COLUMNS)
MEDIA_KINDS: dict[str, str] = {"video": "video/mp4", "audio": "audio/wav"}
#: The vote table's columns: the annotation fields in a fixed order, with the names the page
#: shows (a field not listed here comes after them, in alphabetical order, under its own name).
VOTE_FIELDS: tuple[tuple[str, str], ...] = (
    ("role", "role"),
    ("emotion", "emotion"),
    ("emotion_intensity", "intensity (0-3)"),
    ("sentiment", "sentiment"),
    ("sentiment_score", "sentiment score (-1 to 1)"),
    ("text_sentiment", "text sentiment"),
    ("audio_sentiment", "audio sentiment"),
    ("video_sentiment", "video sentiment"),
)
#: Decoded media columns of this many row groups stay in memory (a group is <= 64 clips).
CACHED_GROUPS = 2
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: The request pool: worker threads, connections waiting for one, the listen backlog, and the
#: seconds an idle or trickling connection is kept.
WORKERS, QUEUED, BACKLOG, IDLE_TIMEOUT = 32, 2048, 1024, 15.0

Warn = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class MediaRef:
    """Where one clip's media struct lies: shard file, row group, row inside the group."""

    shard: Path
    group: int
    row: int


def _clean(value: Any) -> Any:
    """NaN floats (pandas' missing) to None, so the JSON stays valid."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@functools.lru_cache(maxsize=4096)
def _emotion_name(value: str) -> str | None:
    return label_set("emotion").canonical(value)


def natural_key(text: str) -> tuple:
    """Sort key of the page's natural order (``natural()`` in app.js): digit runs compare as
    numbers (``clip_2`` before ``clip_10``; equal numbers, the shorter run first), the rest by
    code point, so the first view and a click on the id column agree. A digit run sorts
    against text by its first character, as the code-point comparison in app.js does."""
    key = []
    for part in re.findall(r"[0-9]+|[^0-9]+", text):  # ASCII digits, as JavaScript's \d
        if "0" <= part[0] <= "9":
            key.append((1, int(part), len(part)))
        else:
            key.append((0 if part[0] < "0" else 2, part))
    return tuple(key)


def _sort_votes(votes: list[dict]) -> list[dict]:
    """Votes in the table's order: annotators before experts (each in the dataset's order),
    then the fields of :data:`VOTE_FIELDS` in its order, other fields by name."""
    order = {f: i for i, (f, _) in enumerate(VOTE_FIELDS)}
    experts = {v["annotator"] for v in votes if v["field"] == "role" and v["value"] == "expert"}
    first: dict[Any, int] = {}
    for v in votes:
        first.setdefault(v["annotator"], len(first))
    return sorted(
        votes,
        key=lambda v: (
            v["annotator"] in experts,
            first[v["annotator"]],
            order.get(v["field"], len(order)),
            str(v["field"]),
        ),
    )


def _agreement(votes: list[dict], label: str | None) -> str | None:
    """``k/n``: of the n annotators' emotion votes, how many name the final label (experts,
    ``role`` = expert, are left out: they settle disagreements, they do not vote in them)."""
    experts = {v["annotator"] for v in votes if v["field"] == "role" and v["value"] == "expert"}
    names = [
        _emotion_name(v["value"])
        for v in votes
        if v["field"] == "emotion" and v["value"] and v["annotator"] not in experts
    ]
    if not names:
        return None
    return f"{sum(n == label for n in names)}/{len(names)}"


def _read_clips(snap: Snapshot) -> tuple[list[dict], dict[tuple[str, str], MediaRef]]:
    """Every clip's page row, in split then id order, and where its media lie."""
    machine = set(snap.build.get("machine_text") or [])
    clips: list[dict] = []
    media: dict[tuple[str, str], MediaRef] = {}
    for split in snap.splits():
        for shard in snap.shard_paths(split):
            try:
                pf = snap.parquet(shard)
                have = set(pf.schema_arrow.names)
                cols = [c for c in TEXT_COLUMNS if c in have]
                kinds = [k for k in MEDIA_KINDS if k in have]
                # the text columns and the media paths (not their bytes), whole file at once
                records = pf.read(columns=cols + [f"{k}.path" for k in kinds]).to_pylist()
                where = [
                    (g, i)
                    for g in range(pf.num_row_groups)
                    for i in range(pf.metadata.row_group(g).num_rows)
                ]
                for rec, (g, i) in zip(records, where, strict=True):
                    row = _clip_row(rec, split, machine)
                    for k in kinds:
                        if rec.get(k) is not None:
                            media[(row["id"], k)] = MediaRef(shard, g, i)
                    row["media"] = [k for k in kinds if (row["id"], k) in media]
                    clips.append(row)
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataError(
                    f"{shard}: not a readable Parquet shard ({exc}); run 'indomer validate'"
                ) from exc
    order = {s: i for i, s in enumerate(SPLITS)}
    clips.sort(key=lambda c: (order.get(c["split"], len(order)), natural_key(c["id"])))
    return clips, media


def _clip_row(rec: dict, split: str, machine: set[str]) -> dict:
    seg_id = rec["id"]
    row: dict[str, Any] = {
        "id": seg_id,
        "split": split,
        "source": rec.get("source_id"),
        "index": rec.get("segment_index"),
        "topic": rec.get("topic"),
        "speaker": rec.get("speaker_id"),
        "start": _clean(rec.get("start")),
        "end": _clean(rec.get("end")),
        "text": rec.get("text") or "",
    }
    for task in TASKS:
        value = rec.get(task)
        names = label_set(task).names
        if value is not None and not 0 <= value < len(names):
            raise DataError(
                f"{seg_id}: {task} ClassLabel id {value} outside 0..{len(names) - 1}; "
                "run 'indomer validate' and rebuild"
            )
        row[task] = None if value is None else names[value]
    row["intensity"] = rec.get("emotion_intensity")
    words = rec.get("words") or []
    row["words"] = [[w.get("word"), _clean(w.get("start")), _clean(w.get("end"))] for w in words]
    # a clip without words (a release build has no word times) has no count to show: None,
    # which the page shows as unknown, not as "0 unaligned"
    unaligned = sum(1 for w in row["words"] if w[1] is None or w[2] is None)
    row["unaligned"] = unaligned if row["words"] else None
    votes = _sort_votes(
        [
            {"annotator": v.get("annotator"), "field": v.get("field"), "value": v.get("value")}
            for v in rec.get("annotations") or []
        ]
    )
    row["votes"] = votes
    row["agreement"] = _agreement(votes, row["emotion"])
    row["adjudicated"] = rec.get("adjudicated")
    row["draft"] = seg_id in machine
    # the speaker check travels in the shards (a copied or pushed dataset keeps it)
    check = rec.get("speaker_check")
    if check is not None:
        check = {k: check.get(k) for k in ("flagged", "n_speakers", "primary_share")}
    row["speaker_flag"] = None if check is None else bool(check.get("flagged"))
    row["speaker_check"] = check
    face = rec.get("face")
    row["face_flag"] = None if face is None else bool(face.get("flagged"))
    return row


@dataclass
class System:
    """One predictions file: each clip's answer per task (None: names no label), and its
    scores per split and task (:func:`system_scores`)."""

    name: str
    path: str
    tasks: list[str]
    answers: dict[str, dict[str, str | None]]
    raw: dict[str, dict[str, Any]]
    preds: Any = None  # the scoring.Predictions read, for system_scores (not in the JSON)
    scores: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "tasks": self.tasks,
            "answers": self.answers,
            "raw": self.raw,
            "scores": self.scores,
        }


def read_system(path: Path, ids: set[str], warn: Warn) -> System | None:
    """A predictions file for the page; problems go to ``warn`` as ``indomer score`` words
    them, and a file that cannot be read at all is left out (None), never fatal."""
    from indomer.scoring import encode_predictions, read_predictions

    try:
        preds = read_predictions(path)
    except IndomerError as exc:
        warn(f"{exc}; left out of the page")
        return None
    extra = [i for i in preds.rows if i not in ids]
    if extra:
        warn(
            f"{preds.path}: {len(extra)} ids are not in the dataset: {first_few(extra)}; "
            "they are left out of the page (predictions for another dataset?)"
        )
    known = [i for i in preds.rows if i in ids]
    answers: dict[str, dict[str, str | None]] = {i: {} for i in known}
    raw: dict[str, dict[str, Any]] = {i: {} for i in known}
    tasks = preds.tasks()
    for task in tasks:
        have = [i for i in known if task in preds.rows[i]]
        codes = encode_predictions(preds, have, task, True, "dataset")
        names = label_set(task).names
        invalid = []
        for seg_id, code in zip(have, codes, strict=True):
            answers[seg_id][task] = names[code] if code >= 0 else None
            raw[seg_id][task] = preds.rows[seg_id][task]
            if code < 0:
                invalid.append(seg_id)
        if invalid:
            warn(
                f"{preds.path}: {len(invalid)} {task} answers name no label, or two: "
                f"{first_few(invalid)}; counted as invalid (wrong), as 'indomer score' does"
            )
    return System(preds.path.name, str(preds.path), tasks, answers, raw, preds)


def system_scores(
    system: System, root: Path, clips: list[dict], refs: dict[str, Any], warn: Warn
) -> list[dict]:
    """Macro-F1, accuracy and their intervals per split the file answers and per task, computed
    by :func:`indomer.scoring.score_task` with ``indomer score``'s defaults (1,000 speaker
    resamples, seed 0), so each equals ``indomer score PREDS --refs OUT --split S``
    (``--allow-missing`` where the file leaves some of the split's clips out) on the file's
    lines of that split. ``refs`` caches each split's references across systems."""
    from indomer.scoring import Predictions, load_references, score_task

    preds = system.preds
    if preds is None:
        return []
    where = {c["id"]: c["split"] for c in clips}
    out: list[dict] = []
    for split in SPLITS:
        rows = {i: r for i, r in preds.rows.items() if where.get(i) == split}
        if not rows:
            continue
        part = Predictions(preds.path, rows, {i: preds.lines[i] for i in rows})
        try:
            if split not in refs:
                refs[split] = load_references(root, split)
            references = refs[split]
            for task in part.tasks():
                if not references.has_task(task):
                    continue
                r = score_task(part, references, task, allow_missing=True)
                ci = r.get("ci95") or {}
                out.append(
                    {
                        "split": split,
                        "task": task,
                        "n": r["n"],
                        "n_missing": r["n_missing"],
                        "n_invalid": r["n_invalid"],
                        "macro_f1": r["metrics"]["macro_f1"],
                        "accuracy": r["metrics"]["accuracy"],
                        "ci95": {k: ci.get(k) for k in ("macro_f1", "accuracy")},
                        # why an interval is null (too few units, ...), as score prints it
                        "ci95_undefined": {
                            k: v
                            for k, v in (r.get("ci95_undefined") or {}).items()
                            if k in ("macro_f1", "accuracy")
                        },
                        "bootstrap": r.get("bootstrap"),
                    }
                )
        except IndomerError as exc:
            warn(f"{preds.path}: cannot score its {split} answers ({exc}); no figures shown")
    return out


@dataclass
class Browser:
    """The page's data over one generation of a built dataset, and its media by clip id."""

    out: Path
    root: Path
    clips: list[dict]
    media: dict[tuple[str, str], MediaRef]
    systems: list[System]
    problems: list[str]
    build: dict
    #: the pinned generation the media are read from (held open while the page is served)
    snap: Snapshot | None = None
    ids: frozenset[str] = field(init=False)
    _cache: OrderedDict = field(init=False, default_factory=OrderedDict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.ids = frozenset(c["id"] for c in self.clips)

    def payload(self) -> dict:
        """The one JSON document the page renders (sorted keys when dumped)."""
        counts = {s: sum(c["split"] == s for c in self.clips) for s in SPLITS}
        split = self.build.get("split")
        return {
            "dataset": {
                "name": self.out.name or str(self.out),
                "path": str(self.out),
                "clips": len(self.clips),
                "splits": {s: n for s, n in counts.items() if n},
                "split_name": split.get("name") if isinstance(split, dict) else None,
                "media": sorted({k for (_, k) in self.media}),
                "kind": "raw" if self.build.get("config", {}).get("sources") else "release",
                "word_times": any(c["unaligned"] is not None for c in self.clips),
            },
            "labels": {t: list(label_set(t).names) for t in TASKS},
            "vote_fields": [list(f) for f in VOTE_FIELDS],
            "clips": self.clips,
            "systems": [s.to_json() for s in self.systems],
            "problems": self.problems,
            "identity": _identity_queue(self.out, self.build),
        }

    def payload_json(self) -> str:
        return json.dumps(self.payload(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    def media_bytes(self, seg_id: str, kind: str) -> bytes | None:
        """The clip's media file, from its shard's row group (a few groups stay cached)."""
        if seg_id not in self.ids or kind not in MEDIA_KINDS:
            return None
        ref = self.media.get((seg_id, kind))
        if ref is None:
            return None
        key = (ref.shard, ref.group, kind)
        with self._lock:
            column = self._cache.get(key)
            if column is not None:
                self._cache.move_to_end(key)
        if column is None:
            pf = self.snap.parquet(ref.shard) if self.snap else pq.ParquetFile(ref.shard)
            column = pf.read_row_group(ref.group, columns=[f"{kind}.bytes"]).column(kind)
            with self._lock:
                self._cache[key] = column
                while len(self._cache) > CACHED_GROUPS:
                    self._cache.popitem(last=False)
        value = column[ref.row].as_py()
        return None if value is None else value.get("bytes")

    def page(self, *, inline: bool, with_media: bool = False) -> str:
        """The page's HTML; ``inline`` puts the data (and, ``with_media``, the media) into it."""
        static = resources.files("indomer") / "data" / "browse"
        page = (static / "index.html").read_text(encoding="utf-8")
        css = (static / "app.css").read_text(encoding="utf-8")
        js = (static / "app.js").read_text(encoding="utf-8")
        data = ""
        if inline:
            data = _script_json("indomer-data", self.payload_json())
            if with_media:
                blobs = {}
                for seg_id, kind in sorted(self.media):
                    blob = self.media_bytes(seg_id, kind)
                    if blob:
                        blobs[f"{kind}/{seg_id}"] = base64.b64encode(blob).decode("ascii")
                data += _script_json("indomer-media", json.dumps(blobs, sort_keys=True))
        parts = {
            "title": html.escape(f"indomer browse: {self.out.name}"),
            "css": css,
            "data": data,
            "js": js,
        }
        # one pass: a transcript that happens to contain "{{js}}" stays text
        return re.sub(r"\{\{(title|css|data|js)\}\}", lambda m: parts[m.group(1)], page)


#: Review entries the page lists (``indomer speakers review`` has them all).
REVIEW_SHOWN = 50


def _identity_queue(out: Path, build: dict) -> dict | None:
    """The ``indomer speakers review`` queue, for the page (None without speaker linking)."""
    if not isinstance(build.get("speakers"), dict):
        return None
    from indomer.speakers import review_record

    record = review_record(out)
    keep = ("source_a", "source_b", "p", "expected_reduction", "on_two_sides", "voice_cosine",
            "face_cosine", "speakers_csv")
    return {
        "expected": (record.get("split") or {}).get("expected_people_on_two_sides"),
        "total": len(record["review"]),
        "review": [{k: e.get(k) for k in keep} for e in record["review"][:REVIEW_SHOWN]],
    }


def _script_json(element_id: str, text: str) -> str:
    """JSON inside a <script> element: ``</`` and ``<!--`` cannot end or confuse it."""
    safe = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json" id="{element_id}">{safe}</script>\n'


def load(out: str | Path, preds: Sequence[str | Path] = (), warn: Warn = _stderr) -> Browser:
    """Read a built dataset (one generation) and the predictions files for the page."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"{out}: no such folder; give a dataset built by 'indomer build'")
    check_layout(out)  # word times in source seconds would light the wrong words
    snap = snapshot(out)  # held for the server's life: its media stay this generation's
    root = snap.root
    if not snap.splits():
        snap.close()
        raise UsageError(
            f"{out}: no shards under data/; give a dataset built by 'indomer build' "
            "(the folder named by --out)"
        )
    build = snap.build
    clips, media = _read_clips(snap)
    ids = {c["id"] for c in clips}
    problems: list[str] = []

    def record(message: str) -> None:
        problems.append(message)
        warn(message)

    systems = []
    names: set[str] = set()
    refs: dict[str, Any] = {}
    for p in preds:
        system = read_system(Path(p), ids, record)
        if system is not None:
            base, n = system.name, 2
            while system.name in names:  # two files of one name in two folders
                system.name = f"{base} ({n})"
                n += 1
            names.add(system.name)
            system.scores = system_scores(system, root, clips, refs, record)
            systems.append(system)
    return Browser(out, root, clips, media, systems, problems, build, snap)


def write_html(
    out: str | Path,
    file: str | Path,
    preds: Sequence[str | Path] = (),
    *,
    with_media: bool = False,
    warn: Warn = _stderr,
) -> Path:
    """Write the self-contained page (data inlined) to ``file`` through the output guard
    (never into OUT, never over a --preds file)."""
    from indomer.outputs import Outputs

    target = Path(file)
    guard = Outputs([out, *preds])
    if target.is_dir():
        raise UsageError(f"--html {file}: a folder; give a file name such as review.html")
    guard.file(target, "--html")
    browser = load(out, preds, warn)
    dataset = browser.out.resolve()
    if target.resolve().is_relative_to(dataset) or target.resolve().is_relative_to(
        browser.root.resolve()
    ):
        raise UsageError(
            f"--html {file}: inside the dataset {out}, which browse only reads; "
            "write the page somewhere else"
        )
    guard.write_text(target, browser.page(inline=True, with_media=with_media), "--html")
    return target


# --------------------------------------------------------------------------- the server


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range ``[first, last]`` a ``Range`` header asks of ``size`` bytes.

    None: serve the whole file (no header, a syntax the server ignores as RFC 9110 allows,
    or several ranges); ``"unsatisfiable"``: answer 416.
    """
    if not header:
        return None
    m = RANGE_RE.match(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # invalid syntax: ignored
    if start >= size:
        return "unsatisfiable"
    return start, end


class Handler(BaseHTTPRequestHandler):
    """GET/HEAD of ``/``, ``/data.json`` and ``/media/{video|audio}/{id}``; 404 otherwise."""

    server: BrowseServer
    protocol_version = "HTTP/1.1"
    #: Seconds a connection may sit idle (or trickle a request) before it is closed: a
    #: worker is never held by a silent socket for longer.
    timeout = IDLE_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        try:
            self._route(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser cancelled a media request (it does while seeking)
        except Exception as exc:  # noqa: BLE001 (a request must never kill the server)
            self.server.warn(f"{self.path}: {type(exc).__name__}: {exc}")
            try:
                self._send(
                    HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n", "text/plain", head
                )
            except OSError:
                pass

    def _route(self, head: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host")):
            # a page elsewhere reaching us by DNS rebinding names its own host: refused
            self._send(HTTPStatus.FORBIDDEN, b"forbidden host\n", "text/plain", head)
            return
        path = urlsplit(self.path).path
        browser = self.server.browser
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8", head)
            return
        if path == "/data.json":
            self._send(HTTPStatus.OK, self.server.data, "application/json", head)
            return
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "media" and parts[2] in MEDIA_KINDS:
            seg_id = unquote(parts[3])
            if seg_id in browser.ids:  # checked before any lookup
                try:
                    blob = browser.media_bytes(seg_id, parts[2])
                except (OSError, pa.ArrowInvalid) as exc:
                    # a writer replaced the generation we read and collected the old one
                    self.server.warn(
                        f"{seg_id}: cannot read its {parts[2]} ({exc}); the dataset changed "
                        "since browse started: restart 'indomer browse'"
                    )
                    self._send(
                        HTTPStatus.SERVICE_UNAVAILABLE,
                        b"the dataset changed; restart indomer browse\n",
                        "text/plain",
                        head,
                    )
                    return
                if blob is not None:
                    self._send_media(blob, MEDIA_KINDS[parts[2]], head)
                    return
        self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        ctype: str,
        head: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_media(self, blob: bytes, ctype: str, head: bool) -> None:
        size = len(blob)
        want = parse_range(self.headers.get("Range"), size)
        if want == "unsatisfiable":
            self._send(
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                b"",
                ctype,
                head,
                {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
            return
        if want is None:
            self._send(HTTPStatus.OK, blob, ctype, head, {"Accept-Ranges": "bytes"})
            return
        first, last = want
        self._send(
            HTTPStatus.PARTIAL_CONTENT,
            blob[first : last + 1],
            ctype,
            head,
            {"Content-Range": f"bytes {first}-{last}/{size}", "Accept-Ranges": "bytes"},
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or an IP literal in 127.0.0.0/8 or ``::1`` (parsed,
    so ``127.0.0.1.attacker.example`` is not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BrowseServer(HTTPServer):
    """An HTTP server holding one :class:`Browser` and its rendered page; requests are
    handled by a bounded pool of :data:`WORKERS` threads, at most :data:`QUEUED` waiting
    (more get 503 at once), with a listen backlog of :data:`BACKLOG`."""

    request_queue_size = BACKLOG

    def __init__(
        self, address: tuple[str, int], browser: Browser, warn: Warn, verbose: bool = False
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)
        self.browser = browser
        self.warn = warn
        self.verbose = verbose
        self.page = browser.page(inline=False).encode("utf-8")
        self.data = browser.payload_json().encode("utf-8")
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="browse")
        self._slots = threading.BoundedSemaphore(WORKERS + QUEUED)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to the pool, or answer 503 when the pool and its queue are
        full (a flood never grows threads or memory without bound)."""
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
                    b"Connection: close\r\nRetry-After: 1\r\n\r\nbusy\n"
                )
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._work, request, client_address)
        except RuntimeError:  # the pool is shut down: the server is closing
            self._slots.release()
            self.shutdown_request(request)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 (one warning line, as handle_error says)
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        super().server_close()
        pool = getattr(self, "_pool", None)  # absent when the bind itself failed
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One warning line instead of the standard library's traceback."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            self.warn(f"request from {client_address[0]}: {type(exc).__name__}: {exc}")

    def host_allowed(self, header: str | None) -> bool:
        """Bound to loopback, only requests naming a loopback host are answered (no DNS
        rebinding); bound to another address, the user chose to share: any host."""
        if not self.loopback:
            return True
        if not header:
            return False
        try:
            name = urlsplit(f"//{header}").hostname or ""
        except ValueError:
            return False
        return is_loopback(name)

    @property
    def loopback(self) -> bool:
        """Whether the server listens on a loopback address only."""
        return is_loopback(str(self.server_address[0]))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"


def make_server(
    out: str | Path,
    preds: Sequence[str | Path] = (),
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    warn: Warn = _stderr,
    verbose: bool = False,
) -> BrowseServer:
    """A bound (not yet serving) server over ``out``; port 0 picks a free port."""
    browser = load(out, preds, warn)
    try:
        server = BrowseServer((host, port), browser, warn, verbose)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "choose another --port (0 picks a free one) or --host"
        ) from None
    if not server.loopback:
        warn(
            f"--host {host}: not a loopback address; every machine that can reach this one "
            "sees the dataset, its media and predictions (no password); use 127.0.0.1 to keep "
            "it on this machine"
        )
    return server
