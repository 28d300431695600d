"""``indomer speakers review``: the identity record of a built dataset and its review queue as
text, with the ``speakers.csv`` line that settles each uncertain pair."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from indomer.errors import UsageError

# --------------------------------------------------------------------------- review


def review_record(out: Path, unfinished: Path | None = None) -> dict:
    """The identity record of the dataset at ``out`` (``build.json["speakers"]``), with the
    active split's assignment (``split``: name, group -> split) when there is one, both read
    from one pinned generation.

    A build that stopped before writing its dataset still has the speakers stage's record:
    ``unfinished``, the runner's declared output that the command passes in
    (:func:`indomer.pipeline.finished_output`); the review works on every build that has
    voices, and this module never looks into the runner's ``work/``.
    """
    from indomer.dataset import snapshot
    from indomer.readjson import read_json

    out = Path(out)
    with snapshot(out) as snap:
        build, split_doc = snap.build, snap.split_doc
    record = build.get("speakers") if build else None
    if not build:
        if unfinished is None:
            raise UsageError(f"{out}: no build.json and no speakers record under work/; build "
                             "the dataset first (through the speakers stage)")
        record = read_json(unfinished)
    if not isinstance(record, dict):
        raise UsageError(
            f"{out}: no speaker linking in build.json (a release build has no speaker ids); "
            "build from source videos with the speakers stage"
        )
    record = json.loads(json.dumps(record))  # plain JSON, and a copy
    split = (build or {}).get("split") or {}
    where = None
    if isinstance(split_doc, dict):
        doc = split_doc
        where = {str(g): s for s, gs in (doc.get("assignment") or {}).items() for g in gs}
        record["split"] = {"name": doc.get("name"), "file": split["file"],
                           "expected_people_on_two_sides":
                               doc.get("expected_people_on_two_sides")}
    from indomer.identity import review_queue

    record["review"] = [{**e, "speakers_csv": settle_lines(e)}
                        for e in review_queue(record.get("pairs") or [], where)]
    return record


def settle_lines(entry: Mapping) -> dict[str, str]:
    """The ``speakers.csv`` lines (header ``source_id,speaker_id,same_as,not_same_as``) that
    answer a review entry: ``same`` or ``different``."""
    a, b = entry["source_a"], entry["source_b"]
    return {"same": f"{a},,{b},", "different": f"{a},,,{b}"}


def format_review(record: Mapping, limit: int = 50) -> str:
    """The review queue as text: what identity rests on, then the pairs ranked by how much an
    answer lowers the expected people on two sides, each with its evidence and the
    ``speakers.csv`` line for either answer."""
    op = record.get("operating_point") or {}
    cal = op.get("calibration") or {}
    split = record.get("split") or {}
    expected = split.get("expected_people_on_two_sides")
    lines = [
        f"speaker ids at voice cosine {op.get('threshold')} ({op.get('embedding')}); pairs at "
        f"p >= {op.get('hard_p')} are kept together; faces: "
        + (f"same >= {op.get('face_same')}, different < {op.get('face_different')}"
           if op.get("face_same") is not None else "not used"),
        f"calibration: {cal.get('source')} ({cal.get('file')})",
        (
            f"{record.get('n_speakers')} speakers in {record.get('n_groups')} groups; "
            f"{len(record.get('pairs') or [])} uncertain group pairs; "
            f"{record.get('disagreements_total', len(record.get('disagreements') or []))} "
            "voice/face disagreements"
        ),
        (f"split {split.get('name')}: expected people on two sides "
         + ("unknown" if expected is None else f"{expected:.2f}")) if split
        else "no split yet: every uncertain pair could end up on two sides",
    ]
    for w in record.get("warnings") or []:
        lines.append(f"warning: {w}")
    queue = list(record.get("review") or [])[:limit]
    if not queue:
        lines.append("nothing to review")
        return "\n".join(lines)
    lines.append("")
    # columns as wide as the longest source id (AMI-style ids run past 12 characters)
    w = max([11, *(len(str(e[k])) for e in queue for k in ("source_a", "source_b"))]) + 1
    lines.append(f"{'#':>3} {'source a':<{w}}{'source b':<{w}}{'p':>7}{'gain':>7}{'voice':>7}"
                 f"{'score':>7}{'face':>7}{'sec a':>7}{'sec b':>7}  apart  same | different")
    for k, e in enumerate(queue, start=1):
        face = "-" if e.get("face_cosine") is None else f"{e['face_cosine']:.3f}"
        settle = settle_lines(e)
        lines.append(
            f"{k:>3} {e['source_a']:<{w}}{e['source_b']:<{w}}{e['p']:>7.3f}"
            f"{e['expected_reduction']:>7.3f}{e['voice_cosine']:>7.3f}{e['voice_score']:>7.3f}"
            f"{face:>7}{e['seconds_a']:>7.1f}{e['seconds_b']:>7.1f}  "
            f"{'yes' if e.get('on_two_sides') else 'no':<5}  {settle['same']} | "
            f"{settle['different']}"
        )
    lines.append("")
    lines.append(
        "p: probability of one person; gain: expected people on two sides an answer removes. "
        "Settle a pair with its line in speakers.csv (header "
        "source_id,speaker_id,same_as,not_same_as): the 'same' line if A and B are one person, "
        "the 'different' line if not; then rebuild (only the speakers stage and those after "
        "it rerun)"
    )
    return "\n".join(lines)
