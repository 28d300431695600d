"""``indomer annotate export|import``: the annotation round trip (Label Studio or CSV sheets)."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded
from indomer.commands.options import deprecated_alias, preds_option, to_option
from indomer.errors import DataError


@click.group()
def annotate() -> None:
    """Hand the cut clips to annotators (export, push) and their answers back as sheets
    (import, pull).

    The loop: indomer build CONFIG --out OUT (no sheets needed), annotate push OUT
    --labelstudio URL (or export OUT --to DIR and import by hand), label in Label Studio,
    annotate pull --labelstudio URL --project NAME --out SHEETS (or import EXPORT.json), then
    add 'annotations: [SHEETS]' to the config and build again (only merge, split, shards
    rerun).
    """


def task_options(fn):
    """The options that choose and shape the tasks (export and push)."""
    for option in reversed(
        [
            click.option(
                "--only",
                type=click.Choice(["unlabelled", "unresolved", "all"]),
                default="unlabelled",
                show_default=True,
                help="Clips waiting for labels, clips whose annotators reached no majority "
                "(for the expert, with their votes), or every clip.",
            ),
            preds_option(dest="predictions"),
            click.option(
                "--model",
                default=None,
                metavar="NAME",
                help="Model name shown with the --preds answers (Label Studio's "
                "model_version); default: the predictions file name.",
            ),
            click.option(
                "--media-url",
                default=None,
                metavar="PREFIX",
                help="Serve the clips from PREFIX/<path in OUT> instead of Label Studio's "
                "local files.",
            ),
            click.option(
                "--document-root",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                default=None,
                help="Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (default: OUT); "
                "clip paths are given relative to it.",
            ),
        ]
    ):
        fn = option(fn)
    return deprecated_alias(
        "--predictions", "--preds", "predictions", type=click.Path(dir_okay=False, path_type=Path)
    )(fn)


def server_options(fn):
    """The Label Studio server and its token (push and pull)."""
    from indomer.labelstudio import DEFAULT_TOKEN_ENV

    fn = click.option(
        "--token-env",
        default=DEFAULT_TOKEN_ENV,
        show_default=True,
        metavar="VAR",
        help="The environment variable holding the Label Studio API token (a legacy token "
        "or a personal access token); the token itself never goes on the command line.",
    )(fn)
    return click.option(
        "--labelstudio",
        "url",
        required=True,
        metavar="URL",
        help="The Label Studio server, e.g. http://localhost:8080.",
    )(fn)


def sheet_options(fn):
    """How annotations become sheets (import and pull)."""
    for option in reversed(
        [
            click.option(
                "--out",
                "out",
                required=True,
                type=click.Path(file_okay=False, path_type=Path),
                help="Folder for the annotator sheets (one CSV per annotator) and "
                "import-rejections.jsonl.",
            ),
            click.option(
                "--experts",
                default="",
                metavar="a@x,b@y",
                help="The experts (adjudicators), by Label Studio e-mail or user id; they "
                "become E1, E2...",
            ),
            click.option(
                "--annotator-map",
                "annotator_map",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="map.csv with columns who,annotator: who is a Label Studio e-mail or "
                "user id, annotator the code written in the sheets (default: A1, A2... by "
                "user id).",
            ),
            click.option(
                "--build",
                "build",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                help="The build OUT: tasks whose clip id it does not have are rejected here.",
            ),
        ]
    ):
        fn = option(fn)
    # --annotators names the sheet codes in 'annotate export'; the map file got its own name
    return deprecated_alias(
        "--annotators",
        "--annotator-map",
        "annotator_map",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )(fn)


@annotate.command("export")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@to_option()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["labelstudio", "csv"]),
    default="labelstudio",
    show_default=True,
    help="labelstudio: Label Studio tasks and labelling config; csv: one pre-filled sheet per "
    "annotator in the format of annotations/template.csv.",
)
@task_options
@click.option(
    "--annotators",
    default="A1,A2,A3",
    show_default=True,
    metavar="A1,A2,...",
    help="csv: one sheet per annotator code (with --only unresolved: one expert sheet, E1).",
)
@guarded
def export_cmd(
    out: Path,
    to: Path,
    fmt: str,
    only: str,
    predictions: Path | None,
    model: str | None,
    media_url: str | None,
    document_root: Path | None,
    annotators: str,
) -> None:
    """Write the clips of the build OUT as annotation tasks into DIR: tasks.json,
    label_config.xml and labelstudio.json (or the CSV sheets); with --preds a model's answers
    become Label Studio pre-annotations."""
    from indomer.annotate import export

    info = export(
        out,
        to,
        fmt=fmt,
        only=only,
        predictions=predictions,
        model=model,
        media_url=media_url,
        document_root=document_root,
        annotators=tuple(a.strip() for a in annotators.split(",") if a.strip()),
    )
    if fmt == "labelstudio":
        extra = f", {info['predictions']} with pre-annotations" if predictions else ""
        media = (
            f"media under {media_url}"
            if media_url
            else "media via local files (LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true, "
            f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={info['document_root']})"
        )
        click.echo(f"exported {info['tasks']} task(s) ({only}{extra}) to {to}; {media}")
    else:
        click.echo(
            f"exported {info['tasks']} clip(s) ({only}) to {len(info['files'])} sheet(s) in {to}"
        )


@annotate.command("import")
@click.argument(
    "export_file", metavar="EXPORT.json", type=click.Path(dir_okay=False, path_type=Path)
)
@sheet_options
@guarded
def import_cmd(
    export_file: Path,
    out: Path,
    experts: str,
    annotator_map: Path | None,
    build: Path | None,
) -> None:
    """Read Label Studio's JSON (or JSON_MIN) export into annotator sheets."""
    from indomer.annotate import import_export, read_clips

    known = {c.id for c in read_clips(build)} if build is not None else None
    result = import_export(
        export_file,
        out,
        experts=[e for e in experts.split(",") if e.strip()],
        annotator_map=annotator_map,
        known=known,
    )
    _report(result, out, str(export_file))


def _report(result, out: Path, source: str) -> None:
    """The import's problems on stderr, its summary line on stdout (import and pull)."""
    from indomer.annotate import REJECTIONS

    for line in result.lines():
        click.echo(line, err=True)
    rows = sum(result.sheets.values())
    if not rows:
        raise DataError(
            f"{source}: nothing imported ({len(result.rejected)} rejected, "
            f"{result.cancelled} cancelled); see {Path(out) / REJECTIONS}"
        )
    click.echo(
        f"imported {rows} annotation(s) into {len(result.sheets)} sheet(s) in {out}; "
        f"{result.cancelled} cancelled or skipped, {len(result.superseded)} replaced by a later "
        f"one, {len(result.rejected)} rejected (see {Path(out) / REJECTIONS})"
    )


@annotate.command("push")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@server_options
@click.option(
    "--project",
    default=None,
    metavar="NAME",
    help="The project's title: created when absent, updated when present "
    "(default: 'indomer OUTNAME').",
)
@task_options
@guarded
def push_cmd(
    out: Path,
    url: str,
    token_env: str,
    project: str | None,
    only: str,
    predictions: Path | None,
    model: str | None,
    media_url: str | None,
    document_root: Path | None,
) -> None:
    """Create or update a Label Studio project with the clips of the build OUT: the project,
    its label config, its local-files storage and the tasks (through label-studio-sdk)."""
    from indomer.labelstudio import push

    result = push(
        out,
        url,
        project=project,
        token_env=token_env,
        only=only,
        predictions=predictions,
        model=model,
        media_url=media_url,
        document_root=document_root,
    )
    click.echo(result.line(url))


@annotate.command("pull")
@server_options
@click.option(
    "--project",
    required=True,
    metavar="NAME",
    help="The project's title, as 'annotate push' printed it.",
)
@sheet_options
@guarded
def pull_cmd(
    url: str,
    token_env: str,
    project: str,
    out: Path,
    experts: str,
    annotator_map: Path | None,
    build: Path | None,
) -> None:
    """Fetch a Label Studio project's export and import it into annotator sheets (as
    'annotate import' does with a downloaded export)."""
    from indomer.annotate import read_clips
    from indomer.labelstudio import pull

    known = {c.id for c in read_clips(build)} if build is not None else None
    result = pull(
        url,
        project,
        out,
        token_env=token_env,
        experts=[e for e in experts.split(",") if e.strip()],
        annotator_map=annotator_map,
        known=known,
    )
    _report(result, out, f"{url} project '{project}'")


annotate.add_command(export_cmd, "export")
annotate.add_command(import_cmd, "import")
annotate.add_command(push_cmd, "push")
annotate.add_command(pull_cmd, "pull")
