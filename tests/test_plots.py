"""``indomer stats --plots``: byte-identical PNGs whose drawn numbers are the statistics."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner
from demo_build import demo_dataset

from indomer.cli import main
from indomer.stats import compute_stats, load_data

pytest.importorskip("matplotlib")

RELEASE_FIGURES = [
    "classes_per_split.png",
    "emotion_long_tail.png",
    "modality_sentiment.png",
    "topics.png",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_dataset(tmp_path_factory)


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    return fig


def test_plots_are_written_once_and_byte_identical(built, tmp_path):
    from PIL import Image

    stale = tmp_path / "a" / "durations.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    outputs = {}
    for name in ("a", "b"):
        res = CliRunner().invoke(main, ["stats", str(built), "--plots", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert "note: durations.png not drawn: no segment has a duration" in res.output
        assert f"wrote {tmp_path / name / 'topics.png'}" in res.output
        outputs[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())}
    assert sorted(outputs["a"]) == RELEASE_FIGURES  # the stale durations.png is gone
    assert outputs["a"] == outputs["b"]
    for data in outputs["a"].values():
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and b"Software" not in data
    with Image.open(tmp_path / "a" / "modality_sentiment.png") as im:
        assert im.size == (1300, 500)
    with Image.open(tmp_path / "a" / "classes_per_split.png") as im:
        assert im.size == (900, 750)


def test_modality_panels_show_the_confusion_counts(built):
    from indomer.plots import modality_sentiment

    stats = compute_stats(built)
    fig = _figure()
    modality_sentiment(fig, stats)
    text_ax = fig.axes[0]
    cells = [t.get_text() for t in text_ax.texts]
    # overall negative (row 0) against text sentiment: 150 / 131 / 22 of 303 (hand count in
    # test_stats), row shares in percent
    assert cells[:3] == ["150\n49.5%", "131\n43.2%", "22\n7.3%"]
    assert text_ax.get_title() == "Text sentiment: agrees 68.2%\n(1326 of 1944)"
    assert [t.get_text() for t in fig.axes[2].get_xticklabels()] == [
        "negative",
        "neutral",
        "positive",
    ]
    assert fig.axes[0].get_ylabel() == "Overall sentiment label"


def test_bar_charts_draw_the_counts(built):
    from indomer.plots import classes_per_split, emotion_long_tail, topics

    stats = compute_stats(built)
    fig = _figure()
    emotion_long_tail(fig, stats)
    ax = fig.axes[0]
    assert [round(p.get_width()) for p in ax.patches] == [1316, 317, 174, 82, 38, 9, 8]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == [
        "neutral (netral)",
        "happiness (kebahagiaan)",
    ]
    assert ax.texts[-1].get_text() == "8 (0.4%)"
    fig = _figure()
    topics(fig, stats)
    widths = [round(p.get_width()) for p in fig.axes[0].patches]
    assert widths == sorted(stats["topics"].values(), reverse=True) and sum(widths) == 1944
    fig = _figure()
    classes_per_split(fig, stats)
    emo_ax, sent_ax = fig.axes[:2]
    heights = [round(p.get_height()) for p in emo_ax.patches]
    assert heights == [69, 33, 5, 278, 1054, 142, 7, 13, 5, 4, 39, 262, 32, 1]  # train, then val
    assert [round(p.get_height()) for p in sent_ax.patches] == [249, 1054, 285, 54, 262, 40]


def test_demo_durations_histogram(demo, tmp_path):
    from indomer.plots import durations

    res = CliRunner().invoke(main, ["stats", str(demo), "--plots", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "durations.png").is_file() and "note:" not in res.output
    data = load_data(demo)
    stats = compute_stats(demo, data)
    fig = _figure()
    durations(fig, stats, data)
    ax = fig.axes[0]
    assert sum(round(p.get_height()) for p in ax.patches) == 19
    assert ax.lines[0].get_xdata()[0] == stats["overall"]["duration"]["mean_seconds"]
    assert "19 segments" in ax.texts[0].get_text()


def test_missing_matplotlib_names_the_extra(built, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = CliRunner().invoke(main, ["stats", str(built), "--plots", str(tmp_path / "p")])
    assert res.exit_code == 2
    assert "error: matplotlib is not installed; install it with: pip install 'indomer[plots]'" in (
        res.output
    )


def test_figures_in_the_dataset_folder_are_linked_from_the_card_and_pushed_while_fresh(
    built, tmp_path
):
    """``--plots OUT/figures`` publishes the figures; a re-split makes them stale (unlinked)."""
    import json
    import shutil

    from indomer.card import fresh_figures
    from indomer.push import local_files

    out = tmp_path / "ds"
    shutil.copytree(built, out, symlinks=True)
    res = CliRunner().invoke(main, ["stats", str(out), "--plots", str(out / "figures")])
    assert res.exit_code == 0, res.output
    build = json.loads((out / "build.json").read_text())
    index = json.loads((out / "figures" / "figures.json").read_text())
    assert index == {"build_hash": build["outputs"]["build_hash"], "files": RELEASE_FIGURES}
    card = (out / "README.md").read_text()
    assert "## Figures" in card
    for name in RELEASE_FIGURES:
        assert f"](figures/{name})" in card
    pushed = {f.path for f in local_files(out, build)}
    assert {f"figures/{n}" for n in RELEASE_FIGURES} | {"figures/figures.json"} <= pushed

    # a re-split changes the shards: the old figures no longer describe them
    res = CliRunner().invoke(
        main, ["split", str(out), "--speaker-disjoint", "--ratios", "0.8,0.2", "--seed", "3"]
    )
    assert res.exit_code == 0, res.output
    build = json.loads((out / "build.json").read_text())
    assert fresh_figures(out, build["outputs"]["build_hash"]) == []
    assert "## Figures" not in (out / "README.md").read_text()
    assert not any(f.path.startswith("figures/") for f in local_files(out, build))
