"""``indomer baseline``: a thin wrapper over :mod:`indomer.baseline`."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded
from indomer.commands.options import quiet_option, split_option


@click.command("baseline")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--method",
    default="tfidf-lr",
    show_default=True,
    metavar="majority|tfidf-lr",
    help=(
        "majority: the most frequent train label; tfidf-lr: class-balanced TF-IDF word "
        "1-2-grams + logistic regression (C=4) on the transcripts."
    ),
)
@click.option(
    "--task",
    default="emotion",
    show_default=True,
    metavar="TASK",
    help="emotion | sentiment | text_sentiment | audio_sentiment | video_sentiment.",
)
@split_option()
@click.option(
    "--train-split",
    default="train",
    show_default=True,
    help="The split to learn from (never the one predicted).",
)
@click.option(
    "--out",
    "preds",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Predictions file to write (preds.jsonl); method and settings go to FILE.meta.json.",
)
@quiet_option()
@guarded
def baseline(
    out: Path, method: str, task: str, split: str, train_split: str, preds: Path, quiet: bool
) -> None:
    """Predict --split of the dataset at OUT with a reference baseline trained on --train-split.

    Same dataset, same bytes. Score the file with 'indomer score' or compare systems with
    'indomer leaderboard'.
    """
    from indomer import baseline as lib

    guard = lib.check_outputs(out, preds)
    result = lib.run_baseline(out, method, task, split, train_split)
    path, side = lib.write_baseline(result, preds, guard)
    del quiet  # no progress bars to hide; the summary is printed all the same (DESIGN §4)
    meta = result.meta
    click.echo(
        f"wrote {meta['n_predicted']} {task} predictions for '{split}' ({method}, trained "
        f"on {meta['n_train']} '{train_split}' rows) to {path}; settings in {side}"
    )
