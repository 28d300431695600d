"""``indomer stats OUT [--json FILE|-] [--plots DIR]``."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import emit_json, guarded, json_option, outputs


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option()
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also draw the figures as PNG files into this folder (needs matplotlib). "
    "OUT/figures draws them into the dataset, as one new generation: the card shows them "
    "and push sends them.",
)
@guarded
def stats(out: Path, json_path: Path | None, plots_dir: Path | None) -> None:
    """Segments, videos, speakers, words, durations, class counts per split, cross-modal
    agreement and, with --plots, the figures; --json writes them all, cross-modal agreement
    included."""
    from indomer.dataset import snapshot

    with snapshot(out) as snap:  # one generation, read once, for the table and the plots
        _stats(snap, out, json_path, plots_dir)


def _stats(snap, out: Path, json_path: Path | None, plots_dir: Path | None) -> None:
    from indomer.errors import UsageError
    from indomer.fsutil import dumps
    from indomer.stats import compute_stats, format_table, load_data

    root = snap
    if not snap.splits():
        raise UsageError(f"{out}: no shards under data/; build the dataset first")
    into_dataset = plots_dir is not None and _inside(plots_dir, out / "figures")
    guard = outputs(out)
    if json_path is not None:
        guard.file(json_path, "--json")
    if (
        plots_dir is not None
        and not into_dataset
        and Path(plots_dir).absolute().resolve().is_relative_to(out.absolute().resolve())
    ):
        raise UsageError(
            f"--plots {plots_dir}: inside the dataset folder; use {out / 'figures'} (drawn "
            "into the dataset, shown on the card) or a folder outside it"
        )
    if into_dataset:
        _plots_into_dataset(out, json_path, guard)
        return
    if plots_dir is not None:
        from indomer.plots import FIGURES

        guard.folder(plots_dir, "--plots", "indomer stats --plots")
        for name in FIGURES:
            guard.file(Path(plots_dir) / f"{name}.png", "--plots")
    data = load_data(root)
    result = compute_stats(root, data)
    if str(json_path) == "-":
        emit_json(json_path, dumps(result), guard=guard)
    else:
        click.echo(format_table(result))
        emit_json(json_path, dumps(result), guard=guard)
    if plots_dir:
        from indomer.plots import write_plots

        files, notes = write_plots(root, plots_dir, data, result)
        for path in files:
            click.echo(f"wrote {path}", err=str(json_path) == "-")
        for note in notes:
            click.echo(f"note: {note}", err=str(json_path) == "-")


def _inside(path: Path, target: Path) -> bool:
    """Whether ``path`` names ``target`` (OUT/figures), spelled any way."""
    return Path(path).absolute().resolve(strict=False) == Path(target).absolute().resolve(
        strict=False
    ) or Path(path).absolute() == Path(target).absolute()


def _plots_into_dataset(out: Path, json_path: Path | None, guard) -> None:
    """Draw the figures into a new generation of ``out`` and commit it with the card."""
    from indomer.fsutil import dumps
    from indomer.generation import read_build, writing
    from indomer.plots import write_plots
    from indomer.stats import compute_stats, format_table, load_data

    with writing(out, base=True, must_exist=True) as gen:
        data = load_data(gen.path)
        result = compute_stats(gen.path, data)
        to_stdout = str(json_path) == "-"
        if not to_stdout:
            click.echo(format_table(result))
        emit_json(json_path, dumps(result), guard=guard)
        build = read_build(gen.path)
        folder = gen.path / "figures"
        for old in folder.iterdir():
            if old.is_file():
                old.unlink()
        files, notes = write_plots(gen.path, folder, data, result)
        gen.write_json(
            "figures/figures.json",
            {
                "build_hash": (build.get("outputs") or {}).get("build_hash"),
                "files": sorted(p.name for p in files),
            },
        )
        gen.commit(build)
    for path in files:
        click.echo(f"wrote {out / 'figures' / path.name}", err=to_stdout)
    for note in notes:
        click.echo(f"note: {note}", err=to_stdout)
    click.echo(
        f"the card {out / 'README.md'} now shows them; indomer push sends them", err=to_stdout
    )
