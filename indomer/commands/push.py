"""``indomer push OUT REPO_ID``: publish a built dataset to the Hugging Face Hub."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indomer.commands import guarded
from indomer.commands.options import dry_run_option


@click.command("push")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo private (if it does not exist yet).")
@click.option(
    "--revision",
    default=None,
    help="Branch to push to, created from the default branch if missing; or refs/pr/N to add "
    "to an open pull request.  [default: main]",
)
@click.option(
    "--create-pr",
    is_flag=True,
    help="Open a pull request against --revision instead of committing.",
)
@dry_run_option()
@click.option(
    "--results",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="LEADERBOARD.json",
    help="'indomer leaderboard --json' output computed on OUT: the pushed card gets it as its "
    "Results section (the split and indomer version with it). Repeat for more tasks.",
)
@guarded
def push(
    out: Path,
    repo_id: str,
    private: bool,
    revision: str | None,
    create_pr: bool,
    dry_run: bool,
    results: tuple[Path, ...],
) -> None:
    """Upload the dataset at OUT to the dataset repo REPO_ID (NAMESPACE/NAME) on the Hub.

    Only files that differ from the Hub are sent, in bounded commits whose message carries the
    build hash; an interrupted push, run again, resumes. The token comes from HF_TOKEN or
    'hf auth login'; HF_ENDPOINT selects another Hub.
    """
    from huggingface_hub.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    from indomer import push as lib

    # Byte progress bars help on a terminal; in a log they are noise around the one-line error.
    quiet = not sys.stderr.isatty() and not are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        result = lib.push(
            out,
            repo_id,
            private=private,
            revision=revision,
            create_pr=create_pr,
            dry_run=dry_run,
            results=results,
            log=lambda m: click.echo(m, err=True),
            warn=lambda m: click.echo(f"warning: {m}", err=True),
        )
    finally:
        if quiet:
            enable_progress_bars()
    if dry_run:
        click.echo(lib.format_plan(result.plan))
    click.echo(lib.summary(result))
