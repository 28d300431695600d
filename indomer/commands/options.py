"""One definition per option name (DESIGN §4): type, default and help, shared by every
command that takes the option, so that a name means one thing everywhere.

sqlite-utils' ``output_options`` is the model. ``tests/commands/test_options.py`` walks every command
and fails when one name has two types, two defaults or two help texts (the few names whose
meaning is one command's own are listed there, each with its reason).

Old spellings stay one release as hidden aliases (:func:`deprecated_alias`): they still work
and print one warning line naming the new option. This module imports only click.
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path

import click
from click.core import ParameterSource

#: The release in which the deprecated spellings stop working.
ALIASES_UNTIL = "0.3"

#: ``--split`` where rows are evaluated or predicted (DESIGN §4); ``export`` uses ``train``.
EVAL_SPLIT = "validation"


# --------------------------------------------------------------------------- data selection


def split_option(default: str = EVAL_SPLIT, *, release_refs: bool = False):
    """``--split NAME``: the split whose rows a command reads.

    ``default`` is ``validation`` wherever rows are evaluated or predicted and ``train`` in
    ``export`` (DESIGN §4). With ``release_refs`` (score, leaderboard) an option left at its
    default reaches the command as None: a release JSON reference names its own split
    (``7_class_test.json`` is test), and a dataset reference then reads ``validation``.
    """

    def keep_unset(ctx: click.Context, param: click.Parameter, value: str | None):
        if ctx.get_parameter_source(param.name or "split") is ParameterSource.DEFAULT:
            return None
        return value

    return click.option(
        "--split",
        default=default,
        show_default=True,
        metavar="SPLIT",
        callback=keep_unset if release_refs else None,
        help="Split of the dataset whose rows are read (a release JSON reference names its "
        "own split, which --split, if given, must match).",
    )


def preds_option(*, multiple: bool = False, dest: str = "preds"):
    """``--preds PREDS.jsonl``: a predictions file, as ``indomer score`` reads it (browse
    takes several, annotate one); ``dest`` names the command's parameter."""
    return click.option(
        "--preds",
        dest,
        multiple=multiple,
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="PREDS.jsonl",
        help="A system's predictions (as for 'indomer score'), shown beside the reference "
        "labels.",
    )


def refs_option():
    """``--refs OUT|FILE`` (score, leaderboard): the references predictions are scored
    against."""
    return click.option(
        "--refs",
        "refs",
        multiple=True,
        required=True,
        type=click.Path(path_type=Path),
        help="References: a built dataset directory, or a release split file "
        "(7_class_*.json: emotion + sentiment; 3_class_*.json: sentiment + text/audio/video "
        "sentiment). Repeat to combine files of the same split.",
    )


# --------------------------------------------------------------------------- outputs


def json_option():
    """``--json FILE``, where ``-`` means standard output (the same in every command); what
    the JSON holds belongs in the command's docstring, the help is one text everywhere."""
    return click.option(
        "--json",
        "json_path",
        type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
        default=None,
        metavar="FILE|-",
        help="Also write the result as JSON to FILE; with -, to standard output instead of "
        "the table.",
    )


def to_option():
    """``--to DIR``: the folder an export writes into (export, annotate export)."""
    return click.option(
        "--to",
        "to",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        metavar="DIR",
        help="Folder the export writes into; it owns only the files its manifest lists, so "
        "other files there are left alone.",
    )


# --------------------------------------------------------------------------- running


def seed_option():
    """``--seed N`` with N >= 0 (numpy's generators refuse negative seeds)."""
    return click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed of the one random generator (the split's shuffle, the bootstrap's "
        "resamples); same inputs and seed, same output.",
    )


def quiet_option():
    """``--quiet``: no progress bars (and no per-stage progress lines); summaries and
    warnings are printed all the same."""
    return click.option(
        "--quiet",
        is_flag=True,
        help="Hide the progress bars; summaries and warnings are still printed.",
    )


def jobs_option():
    """``--jobs N`` (build, demo): processes for the per-video stages; None means the CPUs
    this process may use (:func:`indomer.commands.default_jobs`)."""
    return click.option(
        "--jobs",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Processes for the per-video stages (with --engine ray and no --address: the "
        "CPUs of the local Ray it starts). Default: the CPUs this process may use.",
    )


def engine_option(engines: tuple[str, ...]):
    """``--engine local|ray`` (build, demo)."""
    return click.option(
        "--engine",
        type=click.Choice(engines),
        default="local",
        show_default=True,
        help="What runs the per-video stages: this machine (--jobs processes) or a Ray "
        "cluster (pip install 'indomer[ray]'). The output is the same bytes either way.",
    )


def address_option():
    """``--address auto|HOST:PORT`` (build, demo)."""
    return click.option(
        "--address",
        default=None,
        metavar="auto|HOST:PORT",
        help="With --engine ray: the cluster to join ('ray start --head' prints it; auto: the "
        "one this machine runs). Without it a local Ray starts and stops with the run.",
    )


def dry_run_option():
    """``--dry-run`` (predict, push): show what would be sent, send nothing."""
    return click.option(
        "--dry-run",
        is_flag=True,
        help="Show what would be sent (predict: the first request, media and key not shown; "
        "push: new, changed and unchanged files with their bytes) and send nothing.",
    )


# --------------------------------------------------------------------------- scoring


def allow_missing_option():
    """``--allow-missing``: reference ids without a prediction count as wrong (score,
    leaderboard)."""
    return click.option(
        "--allow-missing",
        is_flag=True,
        help="Count reference ids without a prediction as wrong instead of failing.",
    )


def bootstrap_option():
    """``--bootstrap N``: resamples of the seeded percentile bootstrap (score, leaderboard)."""
    return click.option(
        "--bootstrap",
        "n_resamples",
        type=int,
        default=1000,
        show_default=True,
        metavar="N",
        help="Bootstrap resamples for the 95% intervals and p-values (shared by all systems); "
        "in score, 0 skips the intervals.",
    )


def bootstrap_unit_option():
    """``--bootstrap-unit speaker|segment``: what the bootstrap resamples (DESIGN §5)."""
    return click.option(
        "--bootstrap-unit",
        "unit",
        default="speaker",
        show_default=True,
        metavar="speaker|segment",
        help=(
            "Resampling unit: speaker (source video when speaker ids are absent, as in the "
            "release) or segment (naive per-clip interval)."
        ),
    )


def scoring_options():
    """The options score and leaderboard share, in this order: ``--allow-missing``,
    ``--bootstrap``, ``--seed``, ``--bootstrap-unit`` (one list, so the two commands take
    and show them alike)."""
    options = (allow_missing_option(), bootstrap_option(), seed_option(), bootstrap_unit_option())

    def decorate(fn):
        for option in reversed(options):  # the first one listed shows first in --help
            fn = option(fn)
        return fn

    return decorate


# --------------------------------------------------------------------------- old spellings


def deprecated_alias(old: str, new: str, dest: str, **attrs: typing.Any):
    """Keep the old spelling ``old`` of the option ``new`` (whose parameter is ``dest``)
    working one more release: hidden from ``--help``, it fills ``dest`` when ``new`` is not
    given, with one warning line on stderr; giving both is a usage error (exit 2).

    Put it above the command's own options (below ``@click.command``)."""
    hidden_name = f"deprecated_{dest}"

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args: typing.Any, **kwargs: typing.Any):
            value = kwargs.pop(hidden_name, None)
            if value is not None and value != ():
                ctx = click.get_current_context()
                if ctx.get_parameter_source(dest) is not ParameterSource.DEFAULT:
                    raise click.UsageError(f"{old} is the old spelling of {new}; give {new} only")
                click.echo(
                    f"warning: {old} is deprecated and stops working in indomer "
                    f"{ALIASES_UNTIL}; use {new}",
                    err=True,
                )
                kwargs[dest] = value
            return fn(*args, **kwargs)

        return click.option(old, hidden_name, hidden=True, default=None, **attrs)(wrapper)

    return decorate
