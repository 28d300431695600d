"""``indomer build``: release mode (``--release``) or raw mode (a build config)."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import default_jobs, guarded
from indomer.commands.options import (
    address_option,
    deprecated_alias,
    engine_option,
    jobs_option,
    quiet_option,
)
from indomer.errors import UsageError
from indomer.pipeline import ENGINES, STAGES


@click.command()
@deprecated_alias("--to", "--until", "stop", type=click.Choice(STAGES))
@click.argument(
    "config",
    required=False,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="[CONFIG.yaml]",
)
@click.option(
    "--release",
    "release",
    default=None,
    metavar="DIR|github:OWNER/REPO@COMMIT",
    help="Release mode: the public IndoMER release, a local folder, or the upstream "
    "repository pinned to a commit (downloaded and checksum-verified). Give either this or "
    "a CONFIG.yaml (raw mode: sources, segments, transcripts, annotator sheets).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output dataset folder (new, empty, or an earlier indomer build).",
)
@click.option(
    "--media-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with <id>.wav / <id>.mp4 clips to embed; missing ones are reported.",
)
@click.option(
    "--annotations",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Annotator sheets (CSV files or folders, repeatable) merged into the labels "
    "(majority of >= 2, else the expert); see annotations/GUIDELINE.md.",
)
@click.option("--strict", is_flag=True, help="Stop at the first bad row instead of rejecting it.")
@jobs_option()
@engine_option(ENGINES)
@address_option()
@click.option("--from", "start", type=click.Choice(STAGES), help="Raw mode: first stage to run.")
@click.option("--until", "stop", type=click.Choice(STAGES), help="Raw mode: last stage to run.")
@click.option("--force", is_flag=True, help="Raw mode: rerun stages even when unchanged.")
@quiet_option()
@guarded
def build(
    config: Path | None,
    release: str | None,
    out: Path,
    media_dir: Path | None,
    annotations: tuple[Path, ...],
    strict: bool,
    jobs: int | None,
    engine: str,
    address: str | None,
    start: str | None,
    stop: str | None,
    force: bool,
    quiet: bool,
) -> None:
    """Build the dataset: from the IndoMER release (--release) or from raw sources (CONFIG).

    Raw mode runs the stages fetch, probe, segment, cut, align, voices, faces, speakers,
    merge, split and shards (--from and --until bound them); each stage keeps a manifest
    under OUT/work/ and is skipped when its inputs and settings are unchanged, and a killed
    build resumes where it stopped. Without annotator sheets (or for the clips they
    do not label) the clips wait for labels: the last line says how to export them
    (indomer annotate export).
    """
    if (config is None) == (release is None):
        raise UsageError(
            "give either CONFIG.yaml (raw mode) or --release DIR (release mode), not "
            + ("both" if config is not None else "neither")
        )
    if release is not None:
        raw_only = [
            name
            for name, used in (
                ("--jobs", jobs is not None),
                ("--engine", engine != "local"),
                ("--address", address),
                ("--from", start),
                ("--until", stop),
                ("--force", force),
            )
            if used
        ]
        if raw_only:
            raise UsageError(f"{', '.join(raw_only)}: raw mode only (give CONFIG.yaml)")
        _build_release(release, out, media_dir, annotations, strict)
        return
    if media_dir is not None or annotations:
        raise UsageError(
            "--media-dir/--annotations: release mode only; name sheets under annotations: "
            "in the config"
        )
    from indomer.pipeline import run_pipeline, summary

    report = run_pipeline(
        config,
        out,
        jobs=jobs if jobs is not None else default_jobs(),
        engine=engine,
        address=address,
        start=start,
        stop=stop,
        force=force,
        strict=strict,
        quiet=quiet,
        log=lambda m: click.echo(m, err=True),
    )
    ran = sum(s["status"] == "ran" for s in report["stages"])
    finished = report["last_stage"] == STAGES[-1]
    listing = Path(out) / ("rejected.jsonl" if finished else "work/rejected.jsonl")
    tail = (
        f"{report['rejected']} rejected (see {listing}); "
        f"{ran} stage(s) ran in {report['seconds']:.1f} s"
    )
    if finished:
        rows = report.get("rows", {})
        split_text = ", ".join(f"{k} {v}" for k, v in rows.items())
        click.echo(f"built {sum(rows.values())} rows ({split_text}) in {out}; {tail}")
    else:
        click.echo(f"stopped after {report['last_stage']} ({report['kept']} kept) in {out}; {tail}")
    for line in summary(report):  # a summary: on stdout, --quiet or not (DESIGN §4)
        click.echo(line)
    from indomer.tail import identity_summary, labels_summary, stage_warnings

    # the declared documents of the stages this run reached (the merge's labels.json, ...)
    for line in labels_summary(report["documents"]):
        click.echo(line)
    ran = {s["name"] for s in report["stages"] if s["status"] != "not run"}
    # said inside the stages, whose output goes to work/log.txt
    warned = stage_warnings(Path(out), report["documents"], ran)
    if finished:
        identity_warned, lines = identity_summary(report["documents"])
        for line in lines:
            click.echo(line)
        warned += identity_warned
    for line in warned:
        click.echo(line, err=True)
    if report.get("waiting"):
        for line in waiting_lines(report["waiting"], out):
            click.echo(line)


def waiting_lines(waiting: dict, out: Path) -> list[str]:
    """The last lines of a build whose clips wait for labels or for the expert: how many,
    and the command that exports them."""
    done = (
        "nothing to split or shard yet"
        if waiting.get("halt")
        else f"{waiting.get('labelled', 0)} labelled clip(s) built"
    )
    lines = []
    if waiting.get("count"):
        how = waiting["next"].format(out=out)
        lines.append(f"{waiting['count']} {waiting['what']} ({done}); export them with: {how}")
    if waiting.get("unresolved"):
        how = waiting["unresolved_next"].format(out=out)
        lines.append(
            f"{waiting['unresolved']} {waiting['unresolved_what']}; export them for an expert "
            f"with: {how}"
        )
    return lines


def _build_release(
    release: str,
    out: Path,
    media_dir: Path | None,
    annotations: tuple[Path, ...],
    strict: bool,
) -> None:
    from indomer.build import build_release

    info = build_release(
        release,
        out,
        media_dir=media_dir,
        annotations=list(annotations),
        strict=strict,
        log=lambda m: click.echo(m, err=True),
    )
    rows = info.get("rows", {})
    summary = ", ".join(f"{k} {v}" for k, v in rows.items())
    media = info.get("media") or {}
    files = len(media.get("rejected_audio", [])) + len(media.get("rejected_video", []))
    # rows dropped and media files refused are two counts: one must not read as the other
    refused = f", {files} media file(s) rejected (their rows kept without them)" if files else ""
    click.echo(
        f"built {sum(rows.values())} rows ({summary}) in {out}; "
        f"{info['rejected']} rows rejected{refused}, {len(info['repaired_texts'])} transcripts "
        "repaired"
    )
    if info.get("agreement"):  # --annotations: the sheets' agreement, as a raw build gives it
        from indomer.tail import agreement_lines

        for line in agreement_lines(info["agreement"]):
            click.echo(line)
