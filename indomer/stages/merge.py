"""Merge stage: transcripts and annotator sheets onto the cut segments (whole dataset).

Transcripts and annotator sheets (:func:`indomer.merge.merge_sheets`) go onto the segments.
A segment no sheet labels yet *waits for labels*: it stays in the merge manifest as a plain
segment (so ``indomer annotate export`` can hand it to annotators), is not a rejection and
never reaches a shard; the declared document ``labels.json`` lists it under ``waiting``. A
segment whose annotators reached no majority on a field and no expert settled it
(:func:`indomer.merge.contested_ids`) *waits for the expert* the same way: kept in the
manifest as kind ``unresolved`` with its votes (for ``annotate export --only unresolved``),
listed under ``unresolved_clips``, never in a shard with that label missing. When no segment
is labelled (a build before labels, no ``annotations:`` in the config), the build stops after
this stage, successfully. Sheet or transcript ids matching no segment are listed in
``rejected.jsonl``. Nothing disappears silently.
"""

from __future__ import annotations

from pathlib import Path

from indomer.config import BuildConfig, read_transcripts, reject
from indomer.stage import Context, DatasetStage, Inputs, Produced
from indomer.tail import (
    EXAMPLE,
    EXPERT_COMMAND,
    EXPORT_COMMAND,
    UNRESOLVED,
    WAITING,
    input_name,
    merge_inputs,
    merge_sheets,
)

_SEGMENT_KEYS = ("id", "source_id", "segment_index", "topic", "start", "end")
#: The fields of the speakers stage's clip summary that the shards carry (``speaker_check``).
SPEAKER_CHECK_KEYS = ("n_speakers", "primary_share", "overlap", "flagged")


def speaker_check(summary: object) -> dict | None:
    """The shard's ``speaker_check`` of a segment from the speakers stage's summary (None
    when the speakers stage did not run): the flags travel with the dataset, not in work/."""
    if not isinstance(summary, dict):
        return None
    return {k: summary.get(k) for k in SPEAKER_CHECK_KEYS}


def merge_run(inputs: Inputs, state: BuildConfig) -> Produced:
    """The video rows, the labelled segments (kind ``example``, or ``unresolved`` when they
    wait for the expert) and the segments that wait for labels; ``labels.json`` records the
    agreement, warnings and who waits. Ids of sheets or transcripts matching no segment are
    rejected."""
    cfg = state  # the config: its transcripts and annotator sheets
    rows = inputs.rows()
    videos = [r for r in rows if r.get("kind") == "video"]
    segments = [r for r in rows if r.get("kind") == "segment"]
    known = {s["id"] for s in segments}
    rejected: list[dict] = []
    texts: dict[str, str] = {}
    if cfg.transcripts is not None:
        texts, bad = read_transcripts(cfg.transcripts)
        rejected += bad
        for seg_id in sorted(set(texts) - known):
            rejected.append(
                reject(
                    "merge",
                    seg_id,
                    "transcript for a segment the build does not have",
                    "check the id (or an earlier rejection of that segment)",
                    input_name(cfg, cfg.transcripts),
                )
            )
    # no sheets yet: nothing labelled, every segment waits (a build before labels)
    result, bad = merge_sheets(
        cfg.annotations,
        known,
        "annotator sheets label a segment the build does not have",
        "check the id in the sheet (or an earlier rejection of that segment)",
    )
    rejected += bad
    from indomer.merge import contested_ids

    examples = []
    waiting = []
    held = set(contested_ids(result.unresolved))
    for seg in segments:
        merged = result.segments.get(seg["id"])
        if merged is None:
            # no labels yet: not a rejection; kept as the segment row, for annotate export
            waiting.append({**seg, "text": texts.get(seg["id"], seg.get("text"))})
            continue
        row = {k: seg[k] for k in _SEGMENT_KEYS}
        row.update(
            kind=EXAMPLE,
            speaker_id=seg.get("speaker_id"),
            speaker_group=(seg.get("speaker") or {}).get("group"),
            text=texts.get(seg["id"], seg.get("text")),
            text_source=(
                "manual"
                if seg["id"] in texts
                else seg.get("text_source") or ("manual" if seg.get("text") else None)
            ),
            words=seg.get("words"),
            face=seg.get("face"),
            speaker_check=speaker_check(seg.get("speaker")),
            audio_path=seg.get("audio_path"),
            video_path=seg.get("video_path"),
            **merged.row(),
        )
        if seg["id"] in held:
            row["kind"] = UNRESOLVED  # waits for the expert, with its votes
        examples.append(row)
    labels = {
        "agreement": result.agreement,
        "warnings": list(result.warnings),
        "rule_violations": list(result.rule_violations),
        "unresolved": list(result.unresolved),
        "waiting": sorted(seg["id"] for seg in waiting),
        "unresolved_clips": sorted(held & known),
        "inputs": {
            f"annotations/{input_name(cfg, Path(p))}": v for p, v in result.inputs.items()
        },
    }
    return Produced(videos + examples + waiting, rejected, {"labels.json": labels})


def merge_waiting(rows: list[dict]) -> dict | None:
    """The clips of the merge manifest that wait, for the end-of-build lines:
    ``{"count", "labelled", "what", "next", "halt", "unresolved", "unresolved_what",
    "unresolved_next"}``: ``count`` clips wait for labels, ``unresolved`` for the expert;
    ``halt`` when none is labelled and settled (the split and shards stages have nothing to
    do yet). None when every clip is in the shards."""
    count = sum(r.get("kind") == WAITING for r in rows)
    unresolved = sum(r.get("kind") == UNRESOLVED for r in rows)
    labelled = sum(r.get("kind") == EXAMPLE for r in rows)
    if not count and not unresolved:
        return None
    return {
        "count": count,
        "labelled": labelled,
        "what": "clip(s) wait for labels",
        "next": EXPORT_COMMAND,
        "halt": labelled == 0,
        "unresolved": unresolved,
        "unresolved_what": "clip(s) unresolved (no majority)",
        "unresolved_next": EXPERT_COMMAND,
    }


def _setup(settings: None, ctx: Context) -> BuildConfig:
    """The merge reads the config's transcripts and annotations."""
    return ctx.config


STAGE = DatasetStage(
    "merge",
    merge_run,
    setup=_setup,
    inputs=merge_inputs,
    outputs=("labels.json",),
    waiting=merge_waiting,
)
