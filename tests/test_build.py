"""``indomer.build`` (``indomer build --release``): what is the release's own beyond the
shared tail: a rebuild keeps the user's split files and the active one, and keeps figures drawn
from the very shards it writes while naming and dropping stale ones."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from indomer.cli import main
from indomer.dataset import available_splits, read_split


def _run(*args):
    return CliRunner().invoke(main, ["split", *map(str, args)])


def test_release_rebuild_keeps_the_users_split_active(built, release_dir, tmp_path):
    """build --release into a dataset holding the user's split keeps that file and keeps it
    active (the shards follow it); 'official' is still there, and --activate returns to it."""
    from indomer.build import build_release
    from indomer.generation import read_build

    out = tmp_path / "release"
    shutil.copytree(built, out, symlinks=True)
    assert _run(out, "--speaker-disjoint", "--seed", 1, "--name", "mine").exit_code == 0
    mine = {s: sorted(read_split(out, s)["id"]) for s in available_splits(out)}
    doc = (out / "splits" / "mine.json").read_bytes()
    warnings: list[str] = []
    build_release(str(release_dir), out, log=warnings.append)
    assert (out / "splits" / "mine.json").read_bytes() == doc
    assert (out / "splits" / "official.json").is_file()
    assert read_build(out)["split"]["name"] == "mine"
    assert {s: sorted(read_split(out, s)["id"]) for s in available_splits(out)} == mine
    assert not [w for w in warnings if "official' again" in w]
    assert _run(out, "--activate", "official").exit_code == 0
    assert read_build(out)["split"]["name"] == "official"
    assert sorted(read_split(out, "validation")["id"]) == sorted(
        read_split(built, "validation")["id"]
    )


def test_release_rebuild_keeps_fresh_figures_and_names_stale_ones(built, release_dir, tmp_path):
    """Figures drawn into the dataset survive a rebuild that writes the same shards (the
    user's active split included); a rebuild whose shards differ drops them, by name."""
    from indomer.build import build_release

    out = tmp_path / "release"
    shutil.copytree(built, out, symlinks=True)
    assert _run(out, "--speaker-disjoint", "--seed", 1, "--name", "mine").exit_code == 0
    res = CliRunner().invoke(main, ["stats", str(out), "--plots", str(out / "figures")])
    assert res.exit_code == 0, res.output
    drawn = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert drawn and all(f"figures/{n}" in (out / "README.md").read_text() for n in drawn)
    pngs = {n: (out / "figures" / n).read_bytes() for n in drawn}
    lines: list[str] = []
    build_release(str(release_dir), out, log=lines.append)
    assert {n: (out / "figures" / n).read_bytes() for n in drawn} == pngs
    assert f"kept {len(drawn)} figure(s) drawn from these same shards: {', '.join(drawn)}" in lines
    assert all(f"figures/{n}" in (out / "README.md").read_text() for n in drawn)
    # other labels, other shards: the figures are stale, dropped and named
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    (sheets / "round1.csv").write_text(
        "id,annotator,role,sentiment_score,emotion,emotion_intensity,text_sentiment,"
        "audio_sentiment,video_sentiment\n"
        "clip_2_Cooking_1,A1,annotator,-0.5,marah,2,negatif,negatif,negatif\n"
        "clip_2_Cooking_1,A2,annotator,-0.6,marah,2,negatif,negatif,negatif\n",
        encoding="utf-8")
    lines.clear()
    build_release(str(release_dir), out, annotations=[sheets], log=lines.append)
    assert not list((out / "figures").glob("*.png"))
    assert "figures/" not in (out / "README.md").read_text().split("## Files", 1)[1]
    (line,) = [ln for ln in lines if "stale figure" in ln]
    assert line.startswith(f"warning: dropped {len(drawn)} stale figure(s) drawn from other "
                           f"shards: {', '.join(drawn)}; draw them again with: indomer stats")
