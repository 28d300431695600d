"""Merge raw annotator sheets into final labels, keeping every vote and the agreement.

A sheet is a CSV (``annotations/template.csv``; the rules for annotators are in
``annotations/GUIDELINE.md``) with one row per (annotator, segment). Per segment and field:

- **majority**: a value chosen by at least 2 regular annotators *and* by strictly more of
  them than any other value;
- otherwise the **expert's** vote (``adjudicated`` becomes True: it is True when *any*
  field of the segment, intensity included, came from the expert);
- otherwise the field is **unresolved**: it stays ``None`` and the field is listed in
  ``unresolved`` and ``warnings`` (never dropped silently). A raw build holds a clip with a
  *contested* field (votes cast, none settled: :func:`contested_ids`) out of the shards
  until the expert settles it.

The overall sentiment vote is derived from ``sentiment_score`` in [-1, 1] with a dead zone:
``score < -0.1`` negative, ``score > 0.1`` positive, otherwise neutral (:data:`DEAD_ZONE`), so
that "barely positive" hesitations do not split the vote. ``emotion_intensity`` is the median
intensity of the regular annotators who chose the final emotion, rounded half up (1.5 -> 2);
if none of them gave one, the expert's intensity when the expert chose that emotion.

Bad rows (unknown label, score or intensity out of range, missing or unsafe id, duplicate
(annotator, id)) are returned in ``rejected`` with file:line, what was expected and the fix;
the good rows still merge. A file that cannot be a sheet at all (empty, not UTF-8, missing
a required column) raises :class:`DataError`. Same sheets in, same result out: files, rows,
segments and votes are all sorted.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from jsonschema import Draft202012Validator

from indomer.agreement import field_agreement
from indomer.errors import DataError, first_few, require_columns
from indomer.labels import TASKS, emotion_to_sentiment, fold, label_set

#: Required sheet columns, in template order; ``note`` is optional.
SHEET_COLUMNS: tuple[str, ...] = (
    "id",
    "annotator",
    "role",
    "sentiment_score",
    "emotion",
    "emotion_intensity",
    "text_sentiment",
    "audio_sentiment",
    "video_sentiment",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("note",)
#: Columns ``annotate export --format csv`` adds for the annotator to read (the transcript, the
#: clip's media files, the votes an expert settles); the merge ignores them without a warning.
CONTEXT_COLUMNS: tuple[str, ...] = ("transcript", "video", "audio", "votes")
ROLES: tuple[str, ...] = ("annotator", "expert")
#: |score| <= DEAD_ZONE is a neutral overall sentiment vote.
DEAD_ZONE = 0.1
#: A file with this name inside a folder given to :func:`merge_sheets` is skipped (and said so).
TEMPLATE_NAME = "template.csv"
#: Columns :meth:`MergeResult.rows` fills, in dataset order.
ROW_COLUMNS: tuple[str, ...] = (*TASKS, "emotion_intensity", "annotations", "adjudicated")
#: Agreement fields -> (Krippendorff level, whether Fleiss' kappa applies).
AGREEMENT_FIELDS: dict[str, tuple[str, bool]] = {
    "emotion": ("nominal", True),
    "emotion_intensity": ("ordinal", True),
    "sentiment": ("nominal", True),
    "sentiment_score": ("interval", False),
    "text_sentiment": ("nominal", True),
    "audio_sentiment": ("nominal", True),
    "video_sentiment": ("nominal", True),
}
_LABEL_COLUMNS = ("emotion", "text_sentiment", "audio_sentiment", "video_sentiment")


def score_to_sentiment(score: float) -> str:
    """The overall sentiment class of a score in [-1, 1], with the documented dead zone."""
    if score < -DEAD_ZONE:
        return "negative"
    if score > DEAD_ZONE:
        return "positive"
    return "neutral"


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    text = (
        resources.files("indomer.schemas")
        .joinpath("annotator_sheet.schema.json")
        .read_text("utf-8")
    )
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@dataclass(frozen=True)
class SheetRow:
    """One accepted sheet row: canonical labels (None = abstained) and where it came from."""

    file: str
    line: int
    id: str
    annotator: str
    role: str
    sentiment_score: float | None
    emotion_intensity: int | None
    labels: tuple[tuple[str, str | None], ...]  # (task, canonical name) for all five TASKS
    note: str | None = None

    def label(self, task: str) -> str | None:
        """The canonical vote for ``task`` (``sentiment`` is derived from the score)."""
        return dict(self.labels)[task]

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def votes(self) -> list[dict]:
        """This row as ``{annotator, field, value}`` dicts, string values, abstentions left out."""
        out = [{"annotator": self.annotator, "field": "role", "value": self.role}]
        if self.sentiment_score is not None:
            out.append(
                {
                    "annotator": self.annotator,
                    "field": "sentiment_score",
                    "value": repr(self.sentiment_score),
                }
            )
        if self.emotion_intensity is not None:
            out.append(
                {
                    "annotator": self.annotator,
                    "field": "emotion_intensity",
                    "value": str(self.emotion_intensity),
                }
            )
        for task, value in self.labels:
            if value is not None:
                out.append({"annotator": self.annotator, "field": task, "value": value})
        return out

    def _content(self) -> tuple:
        return (self.role, self.sentiment_score, self.emotion_intensity, self.labels)


@dataclass(frozen=True)
class MergedSegment:
    """Final labels of one segment (canonical names; None = unresolved) and its raw votes."""

    id: str
    emotion: str | None
    sentiment: str | None
    text_sentiment: str | None
    audio_sentiment: str | None
    video_sentiment: str | None
    emotion_intensity: int | None
    adjudicated: bool
    votes: tuple[dict, ...]

    def row(self) -> dict:
        """The dataset columns this segment fills (``annotations`` = the raw votes)."""
        return {
            "id": self.id,
            **{task: getattr(self, task) for task in TASKS},
            "emotion_intensity": self.emotion_intensity,
            "annotations": [dict(v) for v in self.votes],
            "adjudicated": self.adjudicated,
        }


@dataclass(frozen=True)
class MergeResult:
    """Everything the merge decided and everything it could not use.

    - ``segments``: id -> :class:`MergedSegment`, sorted by id;
    - ``agreement``: field -> ``{"fleiss_kappa", "krippendorff_alpha", "items", "annotators",
      "level"}`` among regular annotators (see :mod:`indomer.agreement`);
    - ``rejected``: ``{"stage": "merge", "where": "file:line", "file", "line", "id", "reason",
      "fix", "message"}`` per bad row;
    - ``unresolved``: ``{"id", "field", "reason", "fix", "votes": {value: count},
      "contested"}``; ``contested``: votes were cast but no majority or single expert
      settled them (such a clip waits for the expert; :func:`contested_ids`), rather than
      nobody voting on the field at all;
    - ``rule_violations``: final labels breaking emotion -> sentiment
      (``{"id", "emotion", "sentiment", "expected_sentiment"}``);
    - ``warnings``: one line each (unresolved fields, rule violations, ignored columns, ...);
    - ``inputs``: sheet path -> ``{"sha256", "size"}`` for build.json.
    """

    segments: dict[str, MergedSegment]
    agreement: dict[str, dict]
    rejected: list[dict] = field(default_factory=list)
    unresolved: list[dict] = field(default_factory=list)
    rule_violations: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, dict] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One dict per segment (sorted by id) with ``id`` and :data:`ROW_COLUMNS`."""
        return [seg.row() for seg in self.segments.values()]


# ---------------------------------------------------------------------------------------
# Reading sheets


def _reject(file: str, line: int, seg_id: str | None, reason: str, fix: str) -> dict:
    where = f"{file}:{line}"
    head = f"{where}: {seg_id}" if seg_id else where
    return {
        "stage": "merge",
        "where": where,
        "file": file,
        "line": line,
        "id": seg_id,
        "reason": reason,
        "fix": fix,
        "message": f"{head}: {reason}; {fix}",
    }


def _parse_number(text: str | None) -> float | str | None:
    """A finite float, accepting a decimal comma (``0,5``, the Indonesian Excel habit)."""
    if text is None:
        return None
    candidate = text.replace(",", ".") if text.count(",") == 1 and "." not in text else text
    try:
        value = float(candidate)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _parse_int(text: str | None) -> int | str | None:
    number = _parse_number(text)
    if isinstance(number, float):
        return int(number) if number.is_integer() else text
    return number


_ALL_EMOTIONS = ", ".join(label_set("emotion").names)
_ALL_SENTIMENTS = ", ".join(label_set("sentiment").names)


def _schema_problem(column: str, raw: str | None) -> tuple[str, str]:
    """The one-line reason and fix for a column that failed the sheet schema."""
    if column == "id":
        if raw is None:
            return "missing id", "fill in the segment id (e.g. clip_1_Cooking_1)"
        return (
            f"unsafe segment id {raw!r}",
            (
                "use letters, digits, '_', '.', '-' only, starting with a letter or digit "
                "(e.g. clip_1_Cooking_1); ids are used in file names"
            ),
        )
    if column == "annotator":
        if raw is None:
            return "missing annotator", "fill in the annotator's name or code"
        return (
            f"bad annotator name {raw!r}",
            "use a short name or code on one line (at most 100 characters)",
        )
    if column == "role":
        return f"role is {raw!r}", "write annotator or expert"
    if column == "sentiment_score":
        return (
            f"sentiment_score {raw!r} is not a number in [-1, 1]",
            "write a number from -1 (very negative) to 1 (very positive), e.g. 0.4",
        )
    if column == "emotion_intensity":
        return (
            f"emotion_intensity {raw!r} is not an integer 0-3",
            "write 0 (none), 1 (weak), 2 (clear) or 3 (strong)",
        )
    return f"{column} {raw!r} is not valid", f"see the {column} column in annotations/template.csv"


def _parse_row(cells: dict[str, str], file: str, line: int) -> tuple[SheetRow | None, dict | None]:
    """Validate one row; return (row, None) or (None, rejected entry) with every problem."""
    raw = {k: (v.strip() if v is not None else "") or None for k, v in cells.items()}
    doc: dict = {
        c: raw.get(c) for c in (*SHEET_COLUMNS, *OPTIONAL_COLUMNS) if c in raw or c in SHEET_COLUMNS
    }
    if doc["role"] is not None:
        doc["role"] = doc["role"].lower()
    doc["sentiment_score"] = _parse_number(doc["sentiment_score"])
    doc["emotion_intensity"] = _parse_int(doc["emotion_intensity"])
    seg_id = raw.get("id")
    problems: list[tuple[str, str]] = []
    bad_columns = set()
    for err in sorted(_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.path]):
        column = str(err.path[0]) if err.path else "row"
        if column not in bad_columns:
            bad_columns.add(column)
            problems.append(_schema_problem(column, raw.get(column)))
    labels: dict[str, str | None] = {}
    for column in _LABEL_COLUMNS:
        value = doc[column]
        if value is None or column in bad_columns:
            labels[column] = None
            continue
        name = label_set(column).canonical(value)
        if name is None:
            expected = _ALL_EMOTIONS if column == "emotion" else _ALL_SENTIMENTS
            problems.append(
                (
                    f"unknown {column} label {value!r}",
                    f"use one of {expected} (or an alias in schemas/labels.yaml)",
                )
            )
        labels[column] = name
    score = doc["sentiment_score"] if "sentiment_score" not in bad_columns else None
    intensity = doc["emotion_intensity"] if "emotion_intensity" not in bad_columns else None
    if (
        not problems
        and score is None
        and intensity is None
        and all(v is None for v in labels.values())
    ):
        problems.append(
            (
                "row has no judgement (all label cells blank)",
                "fill in the score, emotion and sentiments, or delete the row",
            )
        )
    if problems:
        reason = "; ".join(p[0] for p in problems)
        fix = "; ".join(dict.fromkeys(p[1] for p in problems))
        return None, _reject(file, line, seg_id, reason, fix)
    labels["sentiment"] = None if score is None else score_to_sentiment(float(score))
    return SheetRow(
        file=file,
        line=line,
        id=doc["id"],
        annotator=doc["annotator"],
        role=doc["role"],
        sentiment_score=None if score is None else float(score),
        emotion_intensity=intensity,
        labels=tuple((task, labels[task]) for task in TASKS),
        note=doc.get("note"),
    ), None


def _sha256(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def read_sheet(path: str | Path) -> tuple[list[SheetRow], list[dict], list[str], dict]:
    """Read one sheet: (accepted rows, rejected entries, warnings, ``{"sha256", "size"}``).

    UTF-8 with or without BOM, CRLF or LF; ``;`` is taken as the delimiter when the header
    holds more ``;`` than ``,`` (Excel in an Indonesian locale). Header names are trimmed
    and lower-cased. Fully blank lines are skipped (spreadsheets append them).
    """
    path = Path(path)
    file = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{file}: cannot read the sheet ({exc.strerror}); check the path") from exc
    expected = ",".join(SHEET_COLUMNS)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{file}: not UTF-8 (byte {exc.start}); save the sheet as 'CSV UTF-8'"
        ) from exc
    if not text.strip():
        raise DataError(
            f"{file}: empty file; expected a header line {expected} (copy annotations/template.csv)"
        )
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
        records = []
        prev = reader.line_num
        for cells in reader:
            records.append((prev + 1, cells))
            prev = reader.line_num
    except csv.Error as exc:
        raise DataError(
            f"{file}:{reader.line_num}: unreadable CSV ({exc}); "
            "re-save it as CSV from the spreadsheet"
        ) from exc
    dupes = sorted(h for h, n in Counter(header).items() if n > 1 and h)
    if dupes:
        raise DataError(f"{file}:1: column(s) {', '.join(dupes)} appear twice; keep one of each")
    require_columns(file, header, SHEET_COLUMNS,
                    f"{expected}[,note] (see annotations/template.csv)")
    warnings = []
    known = {*SHEET_COLUMNS, *OPTIONAL_COLUMNS, *CONTEXT_COLUMNS}
    extra = [h for h in header if h not in known]
    if extra:
        warnings.append(
            f"{file}:1: ignored column(s) {', '.join(repr(h) for h in extra)}; "
            f"the merge reads {expected},note"
        )
    rows: list[SheetRow] = []
    rejected: list[dict] = []
    seen_any = False
    for line, cells in records:
        if not any(c.strip() for c in cells):
            continue
        seen_any = True
        if len(cells) != len(header):
            at = header.index("id")
            seg_id = (cells[at].strip() or None) if len(cells) > at else None
            rejected.append(
                _reject(
                    file,
                    line,
                    seg_id,
                    f"{len(cells)} cells but the header has {len(header)}",
                    "quote cells that hold the delimiter and keep one cell per column",
                )
            )
            continue
        row, bad = _parse_row(dict(zip(header, cells, strict=True)), file, line)
        if bad is not None:
            rejected.append(bad)
        else:
            rows.append(row)
    if not seen_any:
        raise DataError(f"{file}: header only, no rows; expected one row per (annotator, segment)")
    return rows, rejected, warnings, _sha256(data)


def sheet_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files and folders -> (sheet files, sorted and de-duplicated; warnings).

    A folder contributes its ``*.csv`` files (not recursive), minus ``template.csv``.
    """
    found: dict[str, Path] = {}
    warnings = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            inside = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() == ".csv")
            for q in inside:
                if q.name == TEMPLATE_NAME:
                    warnings.append(
                        f"{q}: skipped (the blank template); name the file itself to merge it"
                    )
                    continue
                found.setdefault(str(q.resolve()), q)
            if not any(q.name != TEMPLATE_NAME for q in inside):
                raise DataError(
                    f"{p}: folder holds no *.csv annotator sheets; "
                    "put the sheets there or name the files"
                )
        elif p.is_file():
            found.setdefault(str(p.resolve()), p)
        else:
            raise DataError(
                f"{p}: no such file or folder; give annotator sheet files (*.csv) or folders"
            )
    if not found:
        raise DataError(
            "no annotator sheets given; pass sheet files (*.csv) or folders holding them"
        )
    return [found[k] for k in sorted(found)], warnings


# ---------------------------------------------------------------------------------------
# Merging


def _dedupe(rows: list[SheetRow]) -> tuple[list[SheetRow], list[dict]]:
    """One row per (annotator, id): identical copies keep the first; conflicting ones all go."""
    groups: dict[tuple[str, str], list[SheetRow]] = defaultdict(list)
    for r in rows:
        groups[(r.annotator, r.id)].append(r)
    kept, rejected = [], []
    for (annotator, seg_id), group in groups.items():
        if len(group) == 1:
            kept.append(group[0])
        elif len({r._content() for r in group}) == 1:
            kept.append(group[0])
            for r in group[1:]:
                rejected.append(
                    _reject(
                        r.file,
                        r.line,
                        seg_id,
                        f"duplicate row of annotator {annotator!r} (same votes as "
                        f"{group[0].where})",
                        "delete the repeated row",
                    )
                )
        else:
            places = ", ".join(r.where for r in group)
            for r in group:
                rejected.append(
                    _reject(
                        r.file,
                        r.line,
                        seg_id,
                        f"annotator {annotator!r} voted {len(group)} times with "
                        f"different votes ({places})",
                        "keep exactly one row per annotator and segment",
                    )
                )
    return kept, rejected


def _counts_text(counts: Counter) -> str:
    return ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def decide(regular: list[str | None], expert: list[str | None]) -> tuple[str | None, str, str]:
    """(value, how, reason) for one field: how is "majority", "expert" or "unresolved"."""
    counts = Counter(v for v in regular if v is not None)
    if counts:
        ranked = counts.most_common()
        top_value, top = min(ranked, key=lambda kv: (-kv[1], kv[0]))
        runner_up = max((n for v, n in ranked if v != top_value), default=0)
        if top >= 2 and top > runner_up:
            return top_value, "majority", ""
    votes = f"votes: {_counts_text(counts)}" if counts else "no annotator votes"
    experts = sorted({v for v in expert if v is not None})
    if len(experts) == 1:
        return experts[0], "expert", ""
    if len(experts) > 1:
        return (
            None,
            "unresolved",
            f"no majority ({votes}) and the experts disagree ({', '.join(experts)})",
        )
    return None, "unresolved", f"no majority ({votes}) and no expert vote"


def contested_ids(unresolved: Iterable[dict]) -> list[str]:
    """Clips with a field whose votes reached no majority and no expert settled (sorted).

    They wait for the expert (``annotate export --only unresolved``) rather than enter the
    shards with that label missing; a field nobody voted on does not hold a clip back.
    Entries written before ``contested`` existed count when they hold votes.
    """
    return sorted(
        {u["id"] for u in unresolved if u.get("contested", bool(u.get("votes")))}
    )


def median_half_up(values: list[int]) -> int:
    """Median of integers, a .5 median rounded up (documented: 1 and 2 -> 2)."""
    s = sorted(values)
    mid = len(s) // 2
    m = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    return math.floor(m + 0.5)


def _merge_segment(seg_id: str, rows: list[SheetRow]) -> tuple[MergedSegment, list[dict]]:
    regular = [r for r in rows if r.role == "annotator"]
    experts = [r for r in rows if r.role == "expert"]
    final: dict[str, str | None] = {}
    unresolved = []
    by_expert = False
    for task in TASKS:
        value, how, reason = decide(
            [r.label(task) for r in regular], [r.label(task) for r in experts]
        )
        final[task] = value
        by_expert |= how == "expert"
        if how == "unresolved":
            counts = Counter(r.label(task) for r in regular if r.label(task) is not None)
            unresolved.append(
                {
                    "id": seg_id,
                    "field": task,
                    "reason": reason,
                    "fix": "add an expert row (role=expert) for this id with this field filled in",
                    "votes": dict(sorted(counts.items())),
                    # someone voted but nothing was settled: the clip waits for the expert
                    "contested": bool(counts)
                    or any(r.label(task) is not None for r in experts),
                }
            )
    intensity = None
    emotion = final["emotion"]
    if emotion is not None:
        chosen = [
            r.emotion_intensity
            for r in regular
            if r.label("emotion") == emotion and r.emotion_intensity is not None
        ]
        expert_chosen = sorted(
            {
                r.emotion_intensity
                for r in experts
                if r.label("emotion") == emotion and r.emotion_intensity is not None
            }
        )
        if chosen:
            intensity = median_half_up(chosen)
        elif len(expert_chosen) == 1:
            intensity = expert_chosen[0]
            by_expert = True
    votes = sorted(
        (v for r in rows for v in r.votes()), key=lambda v: (v["annotator"], v["field"], v["value"])
    )
    seg = MergedSegment(
        id=seg_id, emotion_intensity=intensity, adjudicated=by_expert, votes=tuple(votes), **final
    )
    return seg, unresolved


def _agreement(rows: list[SheetRow]) -> dict[str, dict]:
    """Agreement per field among regular annotators (expert votes are adjudication, not ratings)."""
    ratings: dict[str, dict[str, dict]] = {f: defaultdict(dict) for f in AGREEMENT_FIELDS}
    for r in rows:
        if r.role != "annotator":
            continue
        for task in TASKS:
            ratings[task][r.id][r.annotator] = r.label(task)
        ratings["sentiment_score"][r.id][r.annotator] = r.sentiment_score
        ratings["emotion_intensity"][r.id][r.annotator] = r.emotion_intensity
    return {
        f: field_agreement(ratings[f], level, kappa=kappa)
        for f, (level, kappa) in AGREEMENT_FIELDS.items()
    }


def _name_warnings(rows: list[SheetRow]) -> list[str]:
    warnings = []
    spellings: dict[str, set[str]] = defaultdict(set)
    roles: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        spellings[fold(r.annotator)].add(r.annotator)
        roles[r.annotator].add(r.role)
    for names in sorted(sorted(s) for s in spellings.values() if len(s) > 1):
        warnings.append(
            f"annotator names {', '.join(map(repr, names))} differ only in case or accents "
            "and are counted as different people; use one spelling"
        )
    for name in sorted(n for n, rs in roles.items() if len(rs) > 1):
        warnings.append(
            f"annotator {name!r} is both annotator and expert; the role is taken per row"
        )
    return warnings


def merge_rows(rows: list[SheetRow]) -> MergeResult:
    """Merge already-read rows (see :func:`merge_sheets` for the rules)."""
    rows = sorted(rows, key=lambda r: (r.id, r.annotator, r.file, r.line))
    kept, rejected = _dedupe(rows)
    warnings = _name_warnings(kept)
    by_id: dict[str, list[SheetRow]] = defaultdict(list)
    for r in kept:
        by_id[r.id].append(r)
    segments: dict[str, MergedSegment] = {}
    unresolved: list[dict] = []
    violations: list[dict] = []
    rule = emotion_to_sentiment()
    for seg_id in sorted(by_id):
        seg, unres = _merge_segment(seg_id, by_id[seg_id])
        segments[seg_id] = seg
        unresolved.extend(unres)
        if (
            seg.emotion is not None
            and seg.sentiment is not None
            and rule[seg.emotion] != seg.sentiment
        ):
            violations.append(
                {
                    "id": seg_id,
                    "emotion": seg.emotion,
                    "sentiment": seg.sentiment,
                    "expected_sentiment": rule[seg.emotion],
                }
            )
    for u in unresolved:
        warnings.append(f"{u['id']}: {u['field']} unresolved: {u['reason']}; {u['fix']}")
    for v in violations:
        warnings.append(
            f"{v['id']}: final emotion {v['emotion']} implies sentiment "
            f"{v['expected_sentiment']} but the final sentiment is {v['sentiment']} "
            "(release rule; check the votes or ask the expert)"
        )
    return MergeResult(
        segments=segments,
        agreement=_agreement(kept),
        rejected=rejected,
        unresolved=unresolved,
        rule_violations=violations,
        warnings=warnings,
    )


def merge_sheets(paths: Iterable[str | Path]) -> MergeResult:
    """Read and merge annotator sheets given as files and/or folders (their ``*.csv``).

    Raises :class:`DataError` for a sheet that cannot be read as one; bad rows go to
    ``rejected`` and never stop the good ones.
    """
    files, warnings = sheet_files(paths)
    rows: list[SheetRow] = []
    rejected: list[dict] = []
    inputs: dict[str, dict] = {}
    for f in files:
        got, bad, warn, digest = read_sheet(f)
        rows.extend(got)
        rejected.extend(bad)
        warnings.extend(warn)
        inputs[str(f)] = digest
    merged = merge_rows(rows)
    rejected.extend(merged.rejected)
    rejected.sort(key=lambda e: (e["file"], e["line"]))
    if not merged.segments and rejected:
        warnings.append(
            f"no row could be used; first problems: {first_few(e['message'] for e in rejected)}"
        )
    return MergeResult(
        segments=merged.segments,
        agreement=merged.agreement,
        rejected=rejected,
        unresolved=merged.unresolved,
        rule_violations=merged.rule_violations,
        warnings=warnings + merged.warnings,
        inputs=inputs,
    )
