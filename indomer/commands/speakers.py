"""``indomer speakers``: a group of speaker-identity tools; ``calibrate`` wraps
:func:`indomer.calibrate.calibrate`.

Add a subcommand with ``@speakers.command("NAME")``; the group needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import emit_json, guarded, json_option, outputs


@click.group("speakers")
def speakers() -> None:
    """Speaker identity across videos: calibrate the probabilities, review the pairs."""


@speakers.command("calibrate")
@click.argument("inputs", nargs=-1, required=True, metavar="RTTM_AND_WAVS...",
                type=click.Path(path_type=Path))
@click.option(
    "--embedding",
    "embeddings",
    multiple=True,
    metavar="MODEL",
    help=("Voice embedding model: resemblyzer (the default), or a pyannote embedding model "
          "(a local folder or checkpoint, or a cached hub id). Repeat to compare models."),
)
@click.option(
    "--min-solo",
    type=click.FloatRange(min=0, min_open=True),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Least solo speech (no one else talking) of a speaker in a recording to embed it.",
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.05,
    show_default=True,
    metavar="COSINE",
    help="Split-safe threshold = smallest same-person cosine minus this margin.",
)
@click.option(
    "--source",
    default=None,
    metavar="TEXT",
    help="Where the labelled speech comes from, recorded in the JSON.",
)
@json_option()
@guarded
def calibrate(inputs: tuple[Path, ...], embeddings: tuple[str, ...], min_solo: float,
              margin: float, source: str | None, json_path: Path | None) -> None:
    """Measure voice similarity on speaker-labelled recordings and derive linking thresholds.

    RTTM_AND_WAVS are RTTM files (SPEAKER lines), optional UEM files, 16 kHz WAV files named
    after the RTTM uris, or folders holding them. Each speaker's solo speech in each recording
    is embedded; one speaker in two recordings gives a same-person pair, two speakers in two
    recordings a different-people pair. Prints both distributions, the equal-error rate, the
    thresholds at miss rates 0, 0.01, 0.05 and 0.1, and the split-safe threshold (no
    same-person pair missed, minus --margin) with its false merges.
    """
    from indomer.calibrate import calibrate as run
    from indomer.calibrate import render
    from indomer.fsutil import dumps

    guard = outputs(folders_read=tuple(inputs))
    if json_path is not None:
        guard.file(json_path, "--json")
    report = run(inputs, embeddings=embeddings or ("resemblyzer",), min_solo=min_solo,
                 margin=margin, source=source,
                 log=lambda line: click.echo(f"warning: {line}", err=True))
    if json_path is None or str(json_path) != "-":
        click.echo(render(report), nl=False)
    emit_json(json_path, dumps(report), guard=guard)


@speakers.command("review")
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Pairs to list, the largest expected reduction of people on two sides first.",
)
@json_option()
@guarded
def review(out: Path, limit: int, json_path: Path | None) -> None:
    """Rank source pairs by how much an answer lowers the expected people on two sides.

    Each entry: the probability that the two sources are one person, its expected reduction
    under the active split, the evidence (voice cosine and normalised score, face cosine,
    seconds of speech of each) and the speakers.csv line for either answer (same: A,,B,;
    different: A,,,B); --json writes the identity record and the whole ranked queue. Works
    on every build with voices, also one that wrote no dataset.
    Settle pairs in speakers.csv and rebuild.
    """
    from indomer.fsutil import dumps
    from indomer.speakers import format_review, review_record

    guard = outputs(out)
    if json_path is not None:
        guard.file(json_path, "--json")
    from indomer.pipeline import finished_output

    record = review_record(out, finished_output(out, "speakers", "identity.json"))
    if json_path is None or str(json_path) != "-":
        click.echo(format_review(record, limit))
    emit_json(json_path, dumps(record), guard=guard)
