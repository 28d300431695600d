"""Release mode: import the public IndoMER annotation release into the dataset layout.

The release ships the same labels three times (``Annotations.csv`` and two JSON split
pairs); we cross-check all of them so that a disagreement is reported, not inherited.

Clip media (``--media-dir``) are checked before they are embedded: only regular files are
read (never through a link, so a link named like a clip cannot smuggle another file into the
shards), and only audio and video that decode are kept; a bad file is rejected with its
reason, and its row is kept without that medium.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import PIPE
from typing import BinaryIO, Self

import numpy as np
import pandas as pd

from indomer import media
from indomer.dataset import AUDIO_SAMPLING_RATE, MediaFile
from indomer.errors import DataError, IndomerError, UsageError, require_columns
from indomer.fsutil import file_digest
from indomer.labels import emotion_to_sentiment, label_set

CSV_NAME = "Annotations.csv"
CSV_COLUMNS = (
    "video_name",
    "audio_name",
    "emotion",
    "sentiment",
    "text_sentiment",
    "audio_sentiment",
    "video_sentiment",
    "text",
)
#: (class files, official split) -> our split name.
JSON_FILES = {
    ("7_Class/7_class_train.json", "3_Class/3_class_train.json"): "train",
    ("7_Class/7_class_val.json", "3_Class/3_class_val.json"): "validation",
}
JSON7_KEYS = ("sample_id", "text", "label", "sentiment_label")
JSON3_KEYS = ("sample_id", "text", "label", "text_label", "audio_label", "video_label")
#: The release id convention; anything else (``../x``, spaces) is refused before any path use.
ID_RE = re.compile(r"^clip_(?P<source>[0-9A-Za-z]+)_(?P<topic>[A-Za-z]+)_(?P<index>[1-9][0-9]*)\Z")
#: Topic spellings that name the same topic.
TOPIC_ALIASES = {"Opinions": "Opinion"}


@dataclass
class ImportResult:
    """Rows per split plus everything build.json and the card report about the import.

    With media, the ``audio``/``video`` columns hold :class:`~indomer.dataset.MediaFile`
    values read when a shard is written. A WAV that had to be converted to 16 kHz mono lives
    in a temporary folder owned by this result (``scratch``): write the shards before
    :meth:`close` (or before the end of ``with import_release(...) as result:``); an
    unclosed result removes the folder when it is garbage-collected.
    """

    splits: dict[str, pd.DataFrame]
    rejected: list[dict] = field(default_factory=list)
    repaired_texts: list[dict] = field(default_factory=list)
    rule_violations: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, dict] = field(default_factory=dict)
    media: dict | None = None
    scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False, compare=False)

    def close(self) -> None:
        """Remove the converted WAVs; the ``audio`` values that point there become unusable."""
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_id(seg_id: str) -> tuple[str, str, int] | None:
    """``clip_12_Opinions_3`` -> (``12``, ``Opinion``, 3); None when it breaks the convention."""
    m = ID_RE.match(seg_id)
    if not m:
        return None
    topic = TOPIC_ALIASES.get(m["topic"], m["topic"])
    return m["source"], topic, int(m["index"])


def repair_mojibake(text: str) -> str | None:
    """Undo a GBK-read-as-Latin-1 round trip (``it¡¯s`` -> ``it’s``); None if not one."""
    try:
        fixed = text.encode("latin-1").decode("gbk")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return fixed if fixed != text else None


def read_csv(path: Path) -> list[tuple[int, dict]]:
    """Rows of Annotations.csv with their 1-based file line numbers (BOM and CRLF tolerated)."""
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(
            f"{path}: empty file; expected the release CSV with header {','.join(CSV_COLUMNS)}"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 (byte {exc.start}); re-save the file as UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    require_columns(path, header, CSV_COLUMNS, ",".join(CSV_COLUMNS))
    rows = []
    for row in reader:
        rows.append((reader.line_num, row))
    if not rows:
        raise DataError(f"{path}: header only, no rows; expected one row per segment")
    return rows


def ends_mid_line(path: Path) -> bool:
    """True when the file's last line has no line break: the release ends every line with
    CRLF, so a copy that stops mid-line was cut (an interrupted download or copy)."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def check_not_truncated(path: Path, csv_rows: list[tuple[int, dict]], json_ids) -> None:
    """Raise one clear error when Annotations.csv looks cut short, instead of one "add the
    row" rejection per segment it lost.

    It looks truncated when its last line is cut off (no line break) and either some JSON
    ids lack a CSV row or that last row lacks fields, or when most (over half) of the JSON
    ids lack a row: a hand edit drops a few rows, a cut drops the tail. A few missing rows
    in a whole file stay per-row rejections.
    """
    present = {(row.get("video_name") or "").strip().removesuffix(".mp4") for _, row in csv_rows}
    absent = set(json_ids) - present
    cut = ends_mid_line(path)
    short_last = bool(csv_rows) and any(v is None for v in csv_rows[-1][1].values())
    if not ((cut and (absent or short_last)) or 2 * len(absent) > len(json_ids)):
        return
    why = [f"{len(absent):,} of them have no row"] if absent else []
    why += ["its last line is cut off"] if cut else []
    raise DataError(
        f"{path}: looks truncated: {len(csv_rows):,} rows against {len(json_ids):,} segments "
        f"in the JSON splits ({'; '.join(why)}); download {CSV_NAME} again "
        "(or build from github:yanxm01/INDOMER@<commit>)"
    )


def read_json_split(path: Path, keys: tuple[str, ...]) -> dict[str, dict]:
    """A release JSON split file as {sample_id: record}; structural problems are DataErrors."""
    from indomer.readjson import read_json

    if not path.is_file():
        raise DataError(f"{path}: missing; the release layout needs it (see SOURCE.md)")
    doc = read_json(path)
    if not isinstance(doc, list) or not doc:
        raise DataError(f"{path}: expected a non-empty JSON list of segment objects")
    out: dict[str, dict] = {}
    for i, rec in enumerate(doc):
        if not isinstance(rec, dict) or any(k not in rec for k in keys):
            missing = [k for k in keys if not isinstance(rec, dict) or k not in rec]
            raise DataError(f"{path}: item {i}: missing key(s) {', '.join(missing)}")
        sid = rec["sample_id"]
        if sid in out:
            raise DataError(f"{path}: item {i}: duplicate sample_id {sid!r}")
        out[sid] = rec
    return out


def import_release(
    release: Path,
    media_dir: Path | None = None,
    *,
    strict: bool = False,
    scratch_dir: Path | None = None,
) -> ImportResult:
    """Read and cross-check a release directory; return the rows of train and validation.

    Bad rows are collected in ``rejected`` (with file:line and the fix) and the rest kept;
    with ``strict`` the first bad row (or bad media file) raises instead. A CSV that looks
    truncated raises one :class:`DataError` instead of one rejection per missing row.

    ``media_dir`` clips are checked as :func:`attach_media` says. WAVs converted to 16 kHz
    mono go to a temporary folder inside ``scratch_dir`` (the system's default without it;
    give a folder on disk, not a RAM-backed /tmp, for a large media folder), owned by the
    result: call ``result.close()`` (or use ``with``) once the shards are written.
    """
    release = Path(release)
    csv_path = release / CSV_NAME
    if not csv_path.is_file():
        raise UsageError(
            f"{release}: no {CSV_NAME} here; point --release at the folder holding "
            "Annotations.csv, 7_Class/ and 3_Class/ (or use github:yanxm01/INDOMER@<commit>)"
        )
    result = ImportResult(splits={})
    result.inputs[CSV_NAME] = file_digest(csv_path)

    def reject(
        where: str, seg_id: str | None, reason: str, fix: str, *, stage: str = "import"
    ) -> None:
        entry = {"stage": stage, "where": where, "id": seg_id, "reason": reason, "fix": fix}
        if strict:
            raise DataError(f"{where}: {seg_id or ''}: {reason}; {fix}".replace(": : ", ": "))
        result.rejected.append(entry)

    # Which official split, and which 7/3-class records, each id has.
    split_of: dict[str, str] = {}
    rec7: dict[str, dict] = {}
    rec3: dict[str, dict] = {}
    for (f7, f3), split in JSON_FILES.items():
        r7 = read_json_split(release / f7, JSON7_KEYS)
        r3 = read_json_split(release / f3, JSON3_KEYS)
        result.inputs[f7] = file_digest(release / f7)
        result.inputs[f3] = file_digest(release / f3)
        if set(r7) != set(r3):
            only7 = sorted(set(r7) - set(r3))
            only3 = sorted(set(r3) - set(r7))
            result.warnings.append(
                f"{f7} and {f3} list different ids (only in 7-class: {len(only7)}, only in "
                f"3-class: {len(only3)}); modality labels of the former come from the CSV only"
            )
        for sid in r7:
            if sid in split_of:
                reject(
                    f7, sid, f"id is in both {split_of[sid]} and {split}", "keep it in one split"
                )
                continue
            split_of[sid] = split
        rec7.update(r7)
        rec3.update({k: v for k, v in r3.items() if k in r7})

    emo = label_set("emotion")
    sen = label_set("sentiment")
    rule = emotion_to_sentiment()
    seen: dict[str, int] = {}
    rows: dict[str, list[dict]] = {s: [] for s in JSON_FILES.values()}
    csv_rows = read_csv(csv_path)
    check_not_truncated(csv_path, csv_rows, rec7)
    for line, row in csv_rows:
        where = f"{CSV_NAME}:{line}"
        video_name = (row.get("video_name") or "").strip()
        seg_id = video_name.removesuffix(".mp4")
        parsed = parse_id(seg_id)
        if parsed is None:
            reject(
                where,
                seg_id or None,
                f"id {seg_id!r} breaks the convention clip_<video>_<Topic>_<n>",
                "fix video_name (e.g. clip_1_Cooking_1.mp4)",
            )
            continue
        if not video_name.endswith(".mp4") or row.get("audio_name", "").strip() != f"{seg_id}.wav":
            reject(
                where,
                seg_id,
                "video_name/audio_name are not <id>.mp4/<id>.wav",
                "name both files after the segment id",
            )
            continue
        if seg_id in seen:
            reject(
                where,
                seg_id,
                f"duplicate id (first on line {seen[seg_id]})",
                "remove the duplicate row",
            )
            continue
        seen[seg_id] = line
        labels = {}
        bad = False
        for col in CSV_COLUMNS[2:7]:
            ls = emo if col == "emotion" else sen
            name = ls.canonical(row.get(col) or "")
            if name is None:
                reject(
                    where,
                    seg_id,
                    f"unknown {col} label {row.get(col)!r}",
                    f"use one of {', '.join(ls.release.values())}",
                )
                bad = True
                break
            labels[col] = name
        if bad:
            continue
        if seg_id not in rec7:
            reject(
                where, seg_id, "not in any 7_Class JSON split", "add it to 7_class_train/val.json"
            )
            continue
        j7 = rec7[seg_id]
        j3 = rec3.get(seg_id)
        disagreements = []
        if emo.canonical(str(j7["label"])) != labels["emotion"]:
            disagreements.append(f"emotion CSV {row['emotion']!r} vs 7-class {j7['label']!r}")
        if sen.canonical(str(j7["sentiment_label"])) != labels["sentiment"]:
            disagreements.append(
                f"sentiment CSV {row['sentiment']!r} vs 7-class {j7['sentiment_label']!r}"
            )
        if j3 is not None:
            for col, key in (
                ("sentiment", "label"),
                ("text_sentiment", "text_label"),
                ("audio_sentiment", "audio_label"),
                ("video_sentiment", "video_label"),
            ):
                if sen.canonical(str(j3[key])) != labels[col]:
                    disagreements.append(f"{col} CSV {row[col]!r} vs 3-class {key} {j3[key]!r}")
            if j3["text"] != j7["text"]:
                disagreements.append("text differs between the 7- and 3-class files")
        text = row["text"]
        if text != j7["text"]:
            if repair_mojibake(text) == j7["text"]:
                result.repaired_texts.append(
                    {"id": seg_id, "line": line, "csv": text, "json": j7["text"]}
                )
                text = j7["text"]
            else:
                disagreements.append("text differs between the CSV and the JSON")
        if disagreements:
            reject(
                where,
                seg_id,
                "CSV and JSON disagree: " + "; ".join(disagreements),
                "correct whichever file is wrong",
            )
            continue
        if rule[labels["emotion"]] != labels["sentiment"]:
            result.rule_violations.append(
                {
                    "id": seg_id,
                    "emotion": labels["emotion"],
                    "sentiment": labels["sentiment"],
                    "expected_sentiment": rule[labels["emotion"]],
                }
            )
        source_id, topic, index = parsed
        rows[split_of[seg_id]].append(
            {
                "id": seg_id,
                "source_id": source_id,
                "segment_index": index,
                "topic": topic,
                "text": text,
                **labels,
            }
        )
    for sid in sorted(set(rec7) - set(seen)):
        reject(
            f"{sid} in JSON",
            sid,
            f"in the {split_of.get(sid)} JSON but not in {CSV_NAME}",
            "add the row to Annotations.csv",
        )

    for split, split_rows in rows.items():
        result.splits[split] = pd.DataFrame(split_rows)
    if media_dir is not None:
        try:
            result.media = attach_media(
                result.splits, Path(media_dir), result, reject, scratch_dir=scratch_dir
            )
        except BaseException:
            result.close()
            raise
    return result


# ---------------------------------------------------------------------------------------
# Clip media: only regular files, never through a link, and only what decodes.

#: What a wav must be to be embedded as it is (DESIGN §3); anything else is converted.
WAV_CHANNELS, WAV_SUBTYPE = 1, "PCM_16"
#: Open a clip without following a link, and without blocking on a FIFO swapped in.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_FD_ARG = re.compile(r"file:/dev/fd/\d+")
#: The fix for a clip that is there but cannot be read as media.
REEXPORT = "export the clip again (16 kHz mono wav; H.264/AAC mp4) or remove it"
LINK_FIX = (
    "put the clip file itself in the media folder (cp --dereference), not a link; "
    "links are never followed"
)


class MediaToolMissing(media.MissingProgramError):
    """ffmpeg/ffprobe are needed to check a clip and are not installed."""

    def __init__(self, program: str, clip: str) -> None:
        IndomerError.__init__(
            self,
            f"{clip}: checking it needs {program}, which is not on PATH; install ffmpeg "
            "(tools/install.sh media, or apt-get install ffmpeg), or leave the mp4 files and "
            "every wav that is not 16 kHz mono 16-bit PCM out of --media-dir",
        )


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class CheckedMediaFile(MediaFile):
    """A clip from --media-dir embedded as it is. When its shard is written it is opened
    again without following links and refused unless it is still the file that was checked
    (same device, inode, size and modification time), so nothing swapped in meanwhile is read.
    """

    identity: tuple[int, int, int, int]

    @property
    def size(self) -> int:
        return self.identity[2]

    def load(self) -> dict:
        try:
            fd = os.open(self.file, _OPEN_FLAGS)
        except OSError as exc:
            raise DataError(
                f"{self.file}: cannot be read again ({exc.strerror}); it changed after it was "
                "checked; run the build again"
            ) from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read() if stat.S_ISREG(st.st_mode) else b""
        if _identity(st) != self.identity or len(data) != self.identity[2]:
            raise DataError(f"{self.file}: changed after it was checked; run the build again")
        return {"bytes": data, "path": self.name}


@dataclass(frozen=True)
class ClipCheck:
    """What the check made of one ``<id>.<ext>``: embed ``value``, reject (``reason``,
    ``fix``), or neither (no such file)."""

    value: MediaFile | None = None
    converted: bool = False
    reason: str | None = None
    fix: str | None = None


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "a special file"


def _detail(exc: media.MediaError, name: str, *, first: bool = False) -> str:
    """ffmpeg's message with the descriptor path replaced by the clip's name (reproducible)."""
    text = _FD_ARG.sub(name, exc.first if first else exc.detail)
    return text.removeprefix(f"{name}: ") or "no detail"


def _need_tools(clip: str) -> None:
    for program in ("ffprobe", "ffmpeg"):
        if shutil.which(program) is None:
            raise MediaToolMissing(program, clip)


def wav_status(fh: BinaryIO) -> tuple[str, str]:
    """Check an open WAV through the one WAV header reader (:func:`indomer.media.wav_header`,
    libsndfile): ("ok", "") for a complete 16 kHz mono 16-bit PCM WAV, ("bad", why) for one
    whose header says so but whose data is short or empty, and ("other", why) for anything
    else (which ffmpeg may still convert)."""
    head = media.wav_header(fh)
    fh.seek(0)
    if head is None:
        return "other", "not a WAV file libsndfile reads"
    if (head.channels, head.subtype, head.rate) != (WAV_CHANNELS, WAV_SUBTYPE,
                                                    AUDIO_SAMPLING_RATE):
        return "other", f"{head.channels} ch, {head.subtype}, {head.rate} Hz"
    if head.announced == 0:
        return "bad", "a WAV without samples"
    if head.frames != head.announced:
        return "bad", (f"truncated WAV (its header announces {head.announced:,} samples, it "
                       f"holds {head.frames:,})")
    return "ok", ""


def _check_audio(fh: BinaryIO, name: str, convert_dir: Callable[[], Path]) -> ClipCheck:
    status, why = wav_status(fh)
    if status == "ok":
        return ClipCheck()  # caller embeds the file itself
    if status == "bad":
        return ClipCheck(reason=f"{name}: {why}", fix=REEXPORT)
    probed = _probe(fh, name, "decodable audio")
    if isinstance(probed, ClipCheck):
        return probed
    fd, info = probed
    if media.pick_stream(info, "audio") is None:
        return ClipCheck(reason=f"{name}: not decodable audio (no audio stream)", fix=REEXPORT)
    args = [
        "-threads", "1", "-i", media.fd_arg(fd),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", str(WAV_CHANNELS), "-ar", str(AUDIO_SAMPLING_RATE),
        "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as pcm:
        try:
            media.run_ffmpeg(args, stdout=pcm, strict=True, pass_fds=(fd,))
        except media.MediaError as exc:
            why = _detail(exc, name, first=True)
            return ClipCheck(reason=f"{name}: not decodable audio (ffmpeg: {why})", fix=REEXPORT)
        pcm.seek(0)
        samples = np.fromfile(pcm, dtype="<i2")
    if not len(samples):
        return ClipCheck(reason=f"{name}: not decodable audio (no samples decode)", fix=REEXPORT)
    out = convert_dir() / name
    out.write_bytes(media.wav_bytes(samples, AUDIO_SAMPLING_RATE))
    return ClipCheck(value=MediaFile(out, name), converted=True)


def _probe(fh: BinaryIO, name: str, what: str) -> tuple[int, dict] | ClipCheck:
    """``(file descriptor, ffprobe info)`` of an open clip, or the check refusing it as not
    ``what`` (one probe for audio and video alike)."""
    _need_tools(name)
    fd = fh.fileno()
    try:
        return fd, media.ffprobe(name, fd=fd)
    except media.MediaError as exc:
        return ClipCheck(reason=f"{name}: not {what} (ffprobe: {_detail(exc, name)})",
                         fix=REEXPORT)


def _check_video(fh: BinaryIO, name: str) -> ClipCheck:
    probed = _probe(fh, name, "a readable MP4")
    if isinstance(probed, ClipCheck):
        return probed
    fd, info = probed
    container = str(info["format"].get("format_name", ""))
    if "mp4" not in container.split(","):
        return ClipCheck(reason=f"{name}: not an MP4 (ffprobe reads {container})", fix=REEXPORT)
    streams = {k: media.pick_stream(info, k) for k in ("video", "audio")}
    lacking = [k for k, st in streams.items() if st is None]
    if lacking:
        return ClipCheck(
            reason=f"{name}: MP4 without {' and '.join(lacking)} stream",
            fix="export the clip with both its picture and its sound (H.264/AAC mp4)",
        )
    # Every packet is read (a cut file reports "partial file"), every audio frame and every
    # video key frame decoded: a tenth of a full decode, and garbage data shows at once.
    maps = [a for k in ("video", "audio") for a in ("-map", f"0:{streams[k]['index']}")]
    args = ["-threads", "1", "-skip_frame", "nokey", "-i", media.fd_arg(fd), *maps]
    try:
        out = media.run_ffmpeg(
            [*args, "-f", "framecrc", "pipe:1"], stdout=PIPE, strict=True, pass_fds=(fd,)
        )
    except media.MediaError as exc:
        if "partial file" in exc.detail:  # the demuxer found packets past the end
            reason = f"{name}: truncated MP4 (ffmpeg: {_detail(exc, name)})"
        else:
            reason = f"{name}: does not decode (ffmpeg: {_detail(exc, name, first=True)})"
        return ClipCheck(reason=reason, fix=REEXPORT)
    seen = {ln.split(b",", 1)[0].strip() for ln in out.splitlines() if ln[:1] != b"#"}
    for n, kind in enumerate(("video", "audio")):
        if str(n).encode() not in seen:
            return ClipCheck(reason=f"{name}: does not decode (no {kind} frame)", fix=REEXPORT)
    return ClipCheck()


def check_clip(
    media_dir: Path, dir_fd: int, name: str, convert_dir: Callable[[], Path]
) -> ClipCheck:
    """Check ``media_dir/name`` (looked up through ``dir_fd``) and say what to embed.

    Only a regular file is opened, with O_NOFOLLOW, and its checks read the open file (the
    tools get it as ``/dev/fd/N``), so a name swapped for a link after ``lstat`` is never
    followed.
    """
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return ClipCheck()
    except OSError as exc:
        return ClipCheck(
            reason=f"{name}: cannot be read ({exc.strerror})", fix="check its permissions"
        )
    if not stat.S_ISREG(st.st_mode):
        kind = _kind_of(st.st_mode)
        fix = LINK_FIX if stat.S_ISLNK(st.st_mode) else "replace it by the clip file, or remove it"
        return ClipCheck(reason=f"{name}: {kind}, not a regular file", fix=fix)
    try:
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        return ClipCheck(
            reason=f"{name}: cannot be opened as a regular file ({exc.strerror})", fix=LINK_FIX
        )
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ClipCheck(
                reason=f"{name}: {_kind_of(st.st_mode)}, not a regular file", fix=LINK_FIX
            )
        if st.st_size == 0:
            return ClipCheck(reason=f"{name}: empty file (0 bytes)", fix=REEXPORT)
        if name.endswith(".wav"):
            found = _check_audio(fh, name, convert_dir)
        else:
            found = _check_video(fh, name)
        if found.reason is None and found.value is None:
            found = ClipCheck(value=CheckedMediaFile(media_dir / name, name, _identity(st)))
        return found


def attach_media(
    splits: dict[str, pd.DataFrame],
    media_dir: Path,
    result: ImportResult,
    reject: Callable[..., None],
    *,
    scratch_dir: Path | None = None,
) -> dict:
    """Put each clip's ``<id>.wav`` / ``<id>.mp4`` in the ``audio``/``video`` columns as a
    :class:`MediaFile` (read when its shard is written); report what is missing.

    A name that is not a regular file (a link, a directory, a FIFO), a wav that does not
    decode as audio, an mp4 without a decodable video and audio stream is rejected through
    ``reject`` and counted as missing; its row stays. A 16 kHz mono 16-bit PCM wav is
    embedded as it is (a pure-Python check, no ffmpeg needed); any other decodable audio is
    converted to that (ffmpeg, one thread, a fixed WAV header: the same bytes every time)
    into ``result.scratch``. Without ffmpeg/ffprobe, a clip that needs them stops the import
    with :class:`MediaToolMissing` rather than being embedded unchecked or dropped.
    """
    try:
        dir_fd = os.open(media_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        raise UsageError(
            f"{media_dir}: --media-dir is not a folder; give the folder holding <id>.wav/.mp4"
        ) from None
    media_dir = media_dir.absolute()
    lock = threading.Lock()

    def convert_dir() -> Path:
        with lock:
            if result.scratch is None:
                base = None if scratch_dir is None else os.fspath(scratch_dir)
                result.scratch = tempfile.TemporaryDirectory(prefix="indomer-media-", dir=base)
            return Path(result.scratch.name)

    report: dict = {
        "dir": media_dir.name,
        "audio": 0,
        "video": 0,
        "converted_audio": [],
        "rejected_audio": [],
        "rejected_video": [],
        "missing_audio": [],
        "missing_video": [],
    }
    cols = (("wav", "audio"), ("mp4", "video"))
    # seg_id already matched ID_RE, so a name cannot climb out of media_dir.
    jobs = [
        (seg_id, ext, col)
        for df in splits.values()
        for seg_id in df.get("id", [])
        for ext, col in cols
    ]
    try:
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            checks = list(
                pool.map(
                    lambda j: check_clip(media_dir, dir_fd, f"{j[0]}.{j[1]}", convert_dir), jobs
                )
            )
    finally:
        os.close(dir_fd)
    found = {(seg_id, col): check for (seg_id, _, col), check in zip(jobs, checks)}
    for df in splits.values():
        values: dict[str, list] = {col: [] for _, col in cols}
        for seg_id in df["id"] if len(df) else []:
            for ext, col in cols:
                check = found[(seg_id, col)]
                if check.reason is not None:
                    where = f"{media_dir.name}/{seg_id}.{ext}"
                    reject(where, seg_id, check.reason, check.fix or REEXPORT, stage="media")
                    report[f"rejected_{col}"].append(seg_id)
                if check.value is None:
                    report[f"missing_{col}"].append(seg_id)
                else:
                    report[col] += 1
                    if check.converted:
                        report["converted_audio"].append(seg_id)
                values[col].append(check.value)
        for col, column in values.items():
            df[col] = column
    for key, value in report.items():
        if isinstance(value, list):
            report[key] = sorted(value)
    return report
