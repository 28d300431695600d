"""``indomer build --release``: release (and optional annotator sheets) -> shards, card, provenance.

The release's rows go through the tail raw builds use (:mod:`indomer.tail`): the same sheet
merge, the same provenance builder and the same generation commit; what is the release's own
is its official split and keeping the user's splits over a rebuild.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from indomer import tail
from indomer.dataset import SPLITS
from indomer.labels import TASKS
from indomer.release import import_release
from indomer.tail import merge_sheets
from indomer.versions import library_versions

OFFICIAL_SPLIT = "official"


def _user_splits(out: Path) -> tuple[dict[str, dict], str | None]:
    """The split documents other than ``official`` in the dataset already at ``out`` (a
    rebuild keeps them), by name, and the name of the one that was active there, if it was
    one of them."""
    from indomer.generation import current_generation, read_build

    prev = current_generation(Path(out))
    if prev is None:
        return {}, None
    kept: dict[str, dict] = {}
    for path in sorted((prev / "splits").glob("*.json")):
        if path.stem == OFFICIAL_SPLIT:
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict):
            kept[path.stem] = doc
    split = read_build(prev).get("split")
    name = split.get("name") if isinstance(split, dict) else None
    return kept, name if isinstance(name, str) and name in kept else None


def _user_figures(out: Path) -> dict[str, bytes]:
    """The files under ``figures/`` of the dataset already at ``out`` (``stats --plots``
    drew them): a rebuild carries them over, and the commit keeps them only while they were
    drawn from the very shards it writes (:func:`indomer.card.fresh_figures`)."""
    from indomer.generation import current_generation

    prev = current_generation(Path(out))
    if prev is None or not (prev / "figures").is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted((prev / "figures").iterdir())
            if p.is_file() and not p.is_symlink()}


def _figures_lines(before: dict[str, bytes], out: Path) -> list[str]:
    """What became of the figures a rebuild found: kept (drawn from these same shards) or
    dropped as stale, named, with the command that draws them again."""
    drawn = sorted(n for n in before if n != "figures.json")
    if not drawn:
        return []
    kept = [n for n in drawn if (Path(out) / "figures" / n).is_file()]
    stale = [n for n in drawn if n not in kept]
    lines = []
    if kept:
        lines.append(f"kept {len(kept)} figure(s) drawn from these same shards: {', '.join(kept)}")
    if stale:
        lines.append(
            f"warning: dropped {len(stale)} stale figure(s) drawn from other shards: "
            f"{', '.join(stale)}; draw them again with: indomer stats {out} --plots "
            f"{Path(out) / 'figures'}"
        )
    return lines


def _follow(
    name: str, doc: dict, splits: dict, out: Path, warnings: list[str]
) -> tuple[dict, str]:
    """The release's rows split as the user's active split ``doc`` says, so a rebuild does not
    silently switch the dataset back to ``official``; the official split when ``doc`` no longer
    places every row (then a warning says so). Returns (rows per split, the active name)."""
    from indomer.errors import DataError
    from indomer.split import assignment_of

    whole = pd.concat([df for df in splits.values() if len(df)], ignore_index=True)
    whole = whole.sort_values("id", kind="stable").reset_index(drop=True)  # as split writes
    try:
        where = assignment_of(doc, whole, f"{out}/splits/{name}.json")
    except DataError as exc:
        warnings.append(f"{exc}; the active split is 'official' again")
        return dict(splits), OFFICIAL_SPLIT
    return ({s: whole[where == s].reset_index(drop=True) for s in SPLITS if (where == s).any()},
            name)


#: What a release build says about a clip held back for the expert (DESIGN §1).
EXPERT_FIX = "add an expert row (role=expert) for each to the sheets and build again"


def apply_annotations(
    splits: dict[str, pd.DataFrame], sheets: list[Path]
) -> tuple[dict, list, list, list, dict, list[str]]:
    """Replace release labels by the merged annotator sheets where they cover a segment.

    Returns (agreement, rejected, warnings, rule violations, sheet input hashes, unresolved
    ids); the sheets are merged and their bad rows rejected as a raw build's merge does
    (:func:`indomer.tail.merge_sheets`). Segments the sheets do not cover keep the release
    labels; sheet ids unknown to the release are rejected, never silently dropped. A clip
    with a field whose annotators reached no majority and no expert settled is taken out of
    ``splits`` (DESIGN §1: it waits for the expert, as in a raw build), never left with the
    release's label.
    """
    from indomer.merge import contested_ids

    known = {i for df in splits.values() for i in df["id"]}
    result, rejected = merge_sheets(sheets, known, "id not in the release",
                                    "check the id in the sheet")
    for df in splits.values():
        if not len(df):
            continue
        intensity, votes, adjudicated = [], [], []
        for idx, seg_id in enumerate(df["id"]):
            seg = result.segments.get(seg_id)
            if seg is None:
                intensity.append(None)
                votes.append(None)
                adjudicated.append(None)
                continue
            for f in TASKS:
                value = getattr(seg, f)
                if value is not None:
                    df.at[idx, f] = value
            intensity.append(seg.emotion_intensity)
            votes.append([dict(v) for v in seg.votes])
            adjudicated.append(seg.adjudicated)
        df["emotion_intensity"] = intensity
        df["annotations"] = votes
        df["adjudicated"] = adjudicated
    held = sorted(set(contested_ids(result.unresolved)) & known)
    for s, df in list(splits.items()):
        if len(df):
            splits[s] = df[~df["id"].isin(held)].reset_index(drop=True)
    inputs = {f"annotations/{Path(p).name}": v for p, v in result.inputs.items()}
    return (result.agreement, rejected, list(result.warnings), list(result.rule_violations),
            inputs, held)


def build_release(
    spec: str,
    out: Path,
    *,
    media_dir: Path | None = None,
    annotations: list[Path] | None = None,
    strict: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Build the dataset from a release folder or ``github:OWNER/REPO@COMMIT``; return build.json."""
    from indomer.generation import check_target
    from indomer.remote import release_provenance, resolve_release
    from indomer.split import OFFICIAL, leakage_report, split_document

    out = Path(out)
    check_target(out)  # before any download: a wrong --out costs nothing
    release = resolve_release(spec, log=log)
    result = import_release(release, media_dir, strict=strict)
    with contextlib.ExitStack() as stack:
        if hasattr(result, "close"):
            stack.callback(result.close)
        warnings = list(result.warnings)
        agreement = None
        # the release's own split places every source, those of clips held back included
        assignment: dict[str, list[str]] = {}
        for s, df in result.splits.items():
            assignment[s] = (
                sorted(set(df["source_id"]), key=lambda g: (len(g), g)) if len(df) else []
            )
        held: list[str] = []
        if annotations:
            agreement, rej, warn, violations, sheet_inputs, held = apply_annotations(
                result.splits, annotations
            )
            result.rejected.extend(rej)
            warnings.extend(warn)
            result.rule_violations = violations
            result.inputs.update(sheet_inputs)
        whole = pd.concat(
            [df.assign(split=s) for s, df in result.splits.items() if len(df)], ignore_index=True
        )
        report = leakage_report(whole, split_col="split", group_key="source_id")
        official = split_document(
            OFFICIAL_SPLIT, OFFICIAL, "source_id", assignment, report,
            description="the release's own train/val split (val -> validation)",
        )
        source = {
            "kind": "the public IndoMER annotation release",
            "spec": spec if spec.startswith("github:") else Path(spec).name,
            **release_provenance(release),
        }
        provenance = tail.provenance(
            command="build --release",
            source=source,
            config={
                "media_dir": None if media_dir is None else Path(media_dir).name,
                "annotations": [Path(p).name for p in annotations or []],
                "strict": strict,
            },
            inputs=result.inputs,
            versions=library_versions(),
            # rows dropped; a rejected clip file leaves its row (listed under media)
            rejected=sum(1 for r in result.rejected if r.get("stage") != "media"),
            warnings=warnings,
            media=result.media,
            agreement=agreement,
            rule_violations=result.rule_violations,
            repaired_texts=result.repaired_texts,
            # clips kept out of the shards until the expert settles them
            waiting={"unlabelled": [], "unresolved": held},
        )
        kept, active = _user_splits(out)
        figures = _user_figures(out)
        shards, name = dict(result.splits), OFFICIAL_SPLIT
        if active is not None:
            shards, name = _follow(active, kept[active], result.splits, out, warnings)
        # the user's own splits stay beside official; their figures while still fresh
        build = tail.commit_generation(
            out, shards, {OFFICIAL_SPLIT: official, **kept}, result.rejected, provenance,
            active=name,
            files={f"figures/{name}": data for name, data in figures.items()},
        )
    for w in warnings:
        log(f"warning: {w}")
    for line in _figures_lines(figures, out):
        log(line)
    if held:
        from indomer.errors import first_few

        log(f"{len(held)} clip(s) unresolved (no majority and no expert), kept out of the "
            f"shards until adjudicated: {first_few(held)}; {EXPERT_FIX}")
    for r in result.rejected[:10]:
        log(f"rejected: {r['where']}: {r['id']}: {r['reason']}; {r['fix']}")
    if len(result.rejected) > 10:
        log(f"rejected: ... and {len(result.rejected) - 10} more (see {out / 'rejected.jsonl'})")
    if result.media:
        m = result.media
        log(
            f"media: {m['audio']} wav and {m['video']} mp4 embedded; missing {len(m['missing_audio'])} wav "
            f"and {len(m['missing_video'])} mp4 (listed in build.json)"
        )
    return build
