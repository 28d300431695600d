"""``indomer split``: re-split a built dataset so that no speaker is in two splits."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded, seed_option
from indomer.errors import UsageError


@click.command("split")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--speaker-disjoint",
    is_flag=True,
    help="Put every speaker (or source video, lacking speaker ids) wholly in one split. "
    "Required: it is the only mode.",
)
@click.option(
    "--ratios",
    default="0.8,0.1,0.1",
    show_default=True,
    help="train,validation[,test] fractions of rows; each > 0, summing to 1.",
)
@seed_option()
@click.option(
    "--stratify",
    type=click.Choice(["emotion", "sentiment", "none"]),
    default="emotion",
    show_default=True,
    help="Label whose class proportions every split keeps close to the whole.",
)
@click.option(
    "--name",
    default=None,
    help="Name of the written splits/NAME.json; splits of other names stay beside it  "
    "[default: speaker-disjoint]",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace an existing splits/NAME.json that holds another assignment (refused "
    "without it: predictions made against the old one would no longer score).",
)
@click.option(
    "--activate",
    default=None,
    metavar="NAME",
    help="Make the existing splits/NAME.json the active split (the shards follow it; every "
    "split file, official included, stays); instead of --speaker-disjoint.",
)
@guarded
def split(
    out: Path,
    speaker_disjoint: bool,
    ratios: str,
    seed: int,
    stratify: str,
    name: str | None,
    replace: bool,
    activate: str | None,
) -> None:
    """Re-split the dataset at OUT, rewrite its shards and write OUT/splits/NAME.json.

    Reads every split, assigns each group to one split (stratified by --stratify), checks the
    result for leaks independently and refuses to write one that leaks.
    """
    from indomer import split as lib

    if activate is not None:
        if speaker_disjoint:
            raise UsageError("--activate switches to an existing split; drop --speaker-disjoint")
        doc = lib.activate(out, activate)
        click.echo(f"active split of {out}: {doc.get('name', activate)} (splits/{activate}.json)")
        return
    if not speaker_disjoint:
        raise UsageError(
            "choose a split mode: --speaker-disjoint (the only mode for now), or --activate NAME"
        )
    parsed = lib.parse_ratios(ratios)
    doc = lib.resplit(
        out,
        parsed,
        seed,
        stratify,
        name,
        warn=lambda message: click.echo(f"warning: {message}", err=True),
        force=replace,
        replaced=lambda old, new: click.echo(
            f"warning: replaced splits/{name or lib.DEFAULT_NAME}.json: assignment sha256 "
            f"{old[:12]} -> {new[:12]}; 'indomer score' refuses predictions made against "
            f"{old[:12]}",
            err=True,
        ),
    )
    click.echo(lib.summary_table(doc))
    from indomer.dataset import assignment_sha256

    click.echo(
        f"wrote {Path(out) / 'splits' / (doc['name'] + '.json')} (active; assignment sha256 "
        f"{assignment_sha256(doc['assignment'])[:12]})"
    )
