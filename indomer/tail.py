"""The tail both build modes share (DESIGN §1: merge -> split -> shards), below the stages.

The raw-mode stages (:mod:`indomer.stages.merge`, :mod:`indomer.stages.split`,
:mod:`indomer.stages.shards`) are thin wrappers over this module, and release mode
(:mod:`indomer.build`) hands its rows to the same functions; stages never import each
other, so what they share lives here: the row kinds of the merge manifest, the files
whose bytes the fingerprints and ``build.json`` record, and the build's closing lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from indomer.agreement import shown_coefficients
from indomer.config import BuildConfig, reject

if TYPE_CHECKING:
    import pandas as pd

    from indomer.merge import MergeResult

#: Row kind of a labelled segment in the merge manifest (videos pass through as "video").
EXAMPLE = "example"
#: The merge manifest's kind for a segment that waits for labels (the segment row as cut).
WAITING = "segment"
#: The merge manifest's kind for a labelled segment whose votes settled nothing (no
#: majority, no expert) on some field: it waits for the expert, out of the shards.
UNRESOLVED = "unresolved"
#: What the build prints for the clips that wait (OUT filled in by the build command).
EXPORT_COMMAND = "indomer annotate export {out} --to DIR"
EXPERT_COMMAND = "indomer annotate export {out} --to DIR --only unresolved"
#: The declared documents of the whole-dataset stages (``"stage/file"``, see
#: :class:`indomer.stage.DatasetStage`): the merge's labels record, the speakers' identity
#: record, the split's document.
LABELS = "merge/labels.json"
IDENTITY = "speakers/identity.json"
SPLIT = "split/split.json"


def sheet_paths(cfg: BuildConfig) -> list[Path]:
    from indomer.merge import sheet_files

    return sheet_files(cfg.annotations)[0] if cfg.annotations else []


def input_name(cfg: BuildConfig, path: Path) -> str:
    """A file's name for build.json: relative to the config folder, else its base name."""
    path = Path(path).absolute()
    return path.relative_to(cfg.root).as_posix() if path.is_relative_to(cfg.root) else path.name


def merge_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    """Files whose bytes decide the merge: the transcripts and every annotator sheet."""
    files = {f"annotations/{i:03d}/{p.name}": p for i, p in enumerate(sheet_paths(cfg))}
    if cfg.transcripts is not None:
        files["transcripts"] = cfg.transcripts
    return files


def document_input(
    ref: str, key: str, cfg: BuildConfig, dirs: dict[str, Path]
) -> dict[str, Path]:
    """The declared document ``ref`` (``"stage/file"``) of an earlier stage, hashed into a
    fingerprint under ``key``; nothing when that stage is not in the pipeline. A stage's
    ``inputs`` is ``functools.partial(document_input, ref, key)``."""
    stage, _, file = ref.partition("/")
    d = dirs.get(stage)
    return {key: d / file} if d is not None else {}


def shards_inputs(cfg: BuildConfig, dirs: dict[str, Path]) -> dict[str, Path]:
    """Everything build.json records by hash: the config and every input table and sheet."""
    files = {"config": cfg.path, "sources": cfg.sources}
    if cfg.segments is not None:
        files["segments"] = cfg.segments
    files.update(merge_inputs(cfg, dirs))
    return files


# --------------------------------------------------------------------------- merge


def merge_sheets(
    sheets: Any, known: set[str], unknown_reason: str, unknown_fix: str
) -> tuple[MergeResult, list[dict]]:
    """The annotator sheets merged (:func:`indomer.merge.merge_sheets`; none: nothing
    labelled), and the ``rejected.jsonl`` entries of both build modes: each bad sheet row
    named by ``file:line`` (the base name: outputs never depend on where sheets lie), each
    sheet id that is not in ``known`` with ``unknown_reason`` and ``unknown_fix``."""
    from indomer.merge import merge_rows
    from indomer.merge import merge_sheets as merge

    result = merge(sheets) if sheets else merge_rows([])
    rejected = [
        reject("merge", r.get("id"), r["reason"], r["fix"], f"{Path(r['file']).name}:{r['line']}")
        for r in result.rejected
    ]
    for seg_id in sorted(set(result.segments) - known):
        rejected.append(reject("merge", seg_id, unknown_reason, unknown_fix, "annotator sheets"))
    return result, rejected


# --------------------------------------------------------------------------- shards


def provenance(
    *,
    command: str,
    source: dict,
    config: dict,
    inputs: dict,
    versions: dict,
    rejected: int,
    warnings: list[str],
    media: dict | None,
    agreement: dict | None,
    rule_violations: list,
    repaired_texts: list,
    text_sources: dict | None = None,
    machine_text: list[str] | None = None,
    sources: dict | None = None,
    stages: dict | None = None,
    waiting: dict | None = None,
    speakers: dict | None = None,
) -> dict:
    """The one ``build.json`` provenance of both build modes (what went in, never how long it
    took; :meth:`indomer.generation.Generation.commit` adds the outputs): one shape, the
    fields a mode has nothing for left empty."""
    from indomer import __version__
    from indomer.labels import labels_sha256

    build = {
        "indomer": __version__,
        "command": command,
        "source": source,
        "config": config,
        "inputs": inputs,
        "sources": sources or {},
        "labels_sha256": labels_sha256(),
        "versions": versions,
        "stages": stages or {},
        "text_sources": text_sources or {},
        "machine_text": machine_text or [],
        "rejected": rejected,
        "warnings": warnings,
        "media": media,
        "agreement": agreement,
        # clips kept out of the shards until labelled, or until the expert settles them
        "waiting": waiting or {"unlabelled": [], "unresolved": []},
        "rule_violations": rule_violations,
        "repaired_texts": repaired_texts,
        # the speakers stage's identity record; null where it did not run (a release build)
        "speakers": speakers,
    }
    return build


#: The keys of every shard's ``indomer`` key-value metadata, in both build modes: a shard
#: found alone still says which version, command, source and settings made it (DESIGN §7.6).
SHARD_META_KEYS: tuple[str, ...] = ("indomer", "command", "source", "config")


def shard_meta(build: dict) -> dict:
    """The shards' ``indomer`` metadata: taken from the build's provenance
    (:func:`provenance`), so both modes write the same keys."""
    return {k: build.get(k) for k in SHARD_META_KEYS}


def commit_generation(
    out: Path,
    shards: dict[str, pd.DataFrame],
    split_docs: dict[str, dict],
    rejected: list[dict],
    build: dict,
    *,
    active: str,
    keep_new: bool = False,
    files: dict[str, bytes] | None = None,
) -> dict:
    """Write one dataset generation and switch to it (:mod:`indomer.generation`): the shards
    of each split (:func:`shard_meta` in their key-value metadata), the split documents, one
    ``rejected.jsonl`` line per entry and ``build.json`` with the card and Croissant;
    ``active`` names the split document the shards follow (recorded by name in build.json).
    ``files`` (relative path -> bytes) are carried over from the previous generation, such
    as its figures, which the commit keeps only while they match the new shards.
    Returns the build.json written. Both build modes end here."""
    from indomer.dataset import SPLITS, write_split
    from indomer.generation import active as naming
    from indomer.generation import writing
    from indomer.manifest import rejected_bytes

    meta = shard_meta(build)
    with writing(out, base=False, keep_new=keep_new) as gen:
        for split in SPLITS:
            df = shards.get(split)
            if df is not None and len(df):
                write_split(gen.path, split, df, meta)
        for name, doc in split_docs.items():
            gen.write_json(f"splits/{name}.json", doc)
        gen.write_text("rejected.jsonl", rejected_bytes(rejected).decode("utf-8"))
        for rel, data in (files or {}).items():
            (gen.path / rel).write_bytes(data)
        return gen.commit(naming(build, active))


# --------------------------------------------------------------------------- closing lines


def agreement_lines(agreement: dict) -> list[str]:
    """One line per field of a merge's agreement record (``build.json``'s ``agreement``)."""
    lines = []
    for field_name, a in agreement.items():
        kappa, alpha = shown_coefficients(a)
        lines.append(
            f"agreement {field_name}: Fleiss' kappa {kappa}, Krippendorff's alpha {alpha} "
            f"({a.get('level')}; {a.get('items')} items, {a.get('annotators')} annotators)"
        )
    return lines


def labels_summary(documents: dict[str, Any]) -> list[str]:
    """The build's closing lines about labels, from the merge stage's declared ``labels.json``
    (``documents``: the run report's, ``"stage/file"`` -> JSON): each field's agreement among
    the annotators (Fleiss' kappa, Krippendorff's alpha) and how many clips are unlabelled
    and unresolved. Empty when the run did not reach the merge."""
    labels = documents.get(LABELS)
    if not labels:
        return []
    lines = agreement_lines(labels.get("agreement") or {})
    if "unresolved_clips" in labels:  # the clips held back for the expert
        unresolved = set(labels["unresolved_clips"])
    else:
        unresolved = {u["id"] for u in labels.get("unresolved", []) if u.get("id")}
    unlabelled = [i for i in labels.get("waiting", []) if i not in unresolved]
    lines.append(
        f"{len(unlabelled)} clip(s) unlabelled, {len(unresolved)} unresolved "
        "(annotators reached no majority and no expert decided)"
    )
    return lines


#: At most this many of one stage's warnings among the build's closing lines.
WARNINGS_SHOWN = 10


def stage_warnings(out: Path, documents: dict[str, Any], ran: set[str]) -> list[str]:
    """The stages' own warnings, repeated at the end of the build (for stderr, ``warning:``
    lines): a stage runs with its output sent to ``OUT/work/log.txt``, so what it warned
    about reaches the terminal from what it recorded: the align stage's clips kept without
    word times (by reason, from its manifest, when this run reached it, ``ran``) and the
    merge's warnings (fields without a majority, emotion->sentiment rule breaks, sheet
    problems; its declared ``labels.json`` in ``documents``). The speakers and split
    warnings: :func:`identity_summary`."""
    from indomer.errors import first_few
    from indomer.manifest import read_manifest

    lines: list[str] = []
    align = sorted(Path(out).glob("work/*_align/manifest.jsonl"))
    if "align" in ran and align:
        by_reason: dict[str, list[str]] = {}
        for r in read_manifest(align[-1]):
            reason = (r.get("align") or {}).get("warning") if isinstance(r, dict) else None
            if reason:
                by_reason.setdefault(str(reason), []).append(str(r.get("id")))
        for reason, ids in sorted(by_reason.items()):
            lines.append(f"align: {len(ids)} clip(s) kept without word times: {reason} "
                         f"({first_few(sorted(ids))})")
    said = [str(w) for w in (documents.get(LABELS) or {}).get("warnings") or []]
    lines += [f"merge: {w}" for w in said[:WARNINGS_SHOWN]]
    if len(said) > WARNINGS_SHOWN:
        lines.append(f"merge: ... and {len(said) - WARNINGS_SHOWN} more (all in "
                     f"{Path(out) / 'work'}/*_merge/labels.json)")
    return [f"warning: {line}" for line in lines]


def identity_summary(documents: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The build's closing lines about identity, from the declared documents of the speakers
    and split stages (the run report's ``documents``): (warnings, for stderr: the speakers
    stage's and the split step's, e.g. too few groups; summary lines, for stdout: the split's
    expected people on two sides). Empty when those stages have not run."""
    from indomer.split import linking_line

    warnings: list[str] = []
    lines: list[str] = []
    record = documents.get(IDENTITY)
    if record:
        warnings += [str(w) for w in record.get("warnings") or []]
    info = documents.get(SPLIT)
    if info:
        if info.get("warning"):
            warnings.append(info["warning"])
        doc = info.get("document") or {}
        if doc.get("linking"):
            lines.append(f"split {doc.get('name')}: {linking_line(doc)}")
    return [f"warning: {w}" for w in warnings], lines
