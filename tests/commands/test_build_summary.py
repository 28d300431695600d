"""The last lines of a raw-mode build: each field's agreement (Fleiss' kappa, Krippendorff's
alpha) and the counts of unlabelled and unresolved clips, on stdout."""

from __future__ import annotations

import json

import test_pipeline as tp
from click.testing import CliRunner

from indomer import pipeline
from indomer.cli import main
from indomer.pipeline import STAGES


def test_build_ends_with_agreement_and_waiting_clips(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "default_stages", tp.fake_stages)
    cfg = tp.make_project(tmp_path / "p")
    sheet = tmp_path / "p" / "sheets" / "labels.csv"
    lines = sheet.read_text().splitlines()
    kept = [line for line in lines if not line.startswith("clip_1_Cooking_1,")]  # unlabelled
    # clip_2_Cooking_1 is anger for both; budi now says sadness (also negative): a 1-1 tie on
    # emotion with no expert, while every other field still agrees
    tie = kept.index(next(line for line in kept if line.startswith("clip_2_Cooking_1,budi,")))
    fields = kept[tie].split(",")
    assert fields[4] == "anger"
    kept[tie] = ",".join([*fields[:4], "sadness", *fields[5:]])
    sheet.write_text("\n".join(kept) + "\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    stdout = res.stdout.splitlines()
    assert stdout[0].startswith("built ")
    # the stage table is a summary: on stdout, --quiet or not (DESIGN §4)
    table = [line.split()[0] for line in stdout[1:13]]
    assert table == ["stage", *STAGES]
    assert "status" not in res.stderr
    # two annotators agree on every sentiment of the 11 labelled clips: kappa = alpha = 1
    assert (
        "agreement sentiment: Fleiss' kappa 1.000, Krippendorff's alpha 1.000 "
        "(nominal; 11 items, 2 annotators)"
    ) in stdout
    # emotion by hand: 22 votes, anger 5, sadness 7, happiness 6, neutral 4, one 1-1 tie.
    # Fleiss: P = 10/11, Pe = 126/484, kappa = (440 - 126) / (484 - 126) = 0.877;
    # Krippendorff (nominal): Do = 2/22, De = (484 - 126) / (22 * 21), alpha = 1 - 924/7876
    assert (
        "agreement emotion: Fleiss' kappa 0.877, Krippendorff's alpha 0.883 "
        "(nominal; 11 items, 2 annotators)"
    ) in stdout
    agreement = json.loads((out / "build.json").read_text())["agreement"]["emotion"]
    assert round(agreement["fleiss_kappa"], 6) == round(314 / 358, 6)
    assert (
        "1 clip(s) unlabelled, 1 unresolved (annotators reached no majority and no expert decided)"
    ) in stdout
    assert "agreement emotion" not in res.stderr
    # a run that stops before the merge says nothing about labels
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet", "--until", "cut"])
    assert res.exit_code == 0, res.output
    assert "agreement emotion" not in res.stdout and "unlabelled" not in res.stdout


def _align_with_a_failure(item, state):
    """The align stage as a stand-in: clip_3_Cooking_2 could not be aligned (a warning on
    its row, as the real stage records one), said inside the stage as stages do."""
    import dataclasses
    import sys

    from indomer.rows import Segment

    rows = [item.video]
    for seg in item.segments:
        if isinstance(seg, Segment) and seg.id == "clip_3_Cooking_2":
            print("aligner noise from a library", file=sys.stderr)
            seg = dataclasses.replace(
                seg, align={"mean_score": None, "aligned_share": 0.0,
                            "warning": "no speech found in the clip"})
        rows.append(seg)
    return rows


def test_stage_warnings_reach_the_end_of_the_build(tmp_path, monkeypatch):
    """What a stage warned about inside the stage (whose output goes to work/log.txt) is
    repeated on stderr at the end of the build, once, after the stage table: the align
    stage's clip without word times and the merge's field without a majority."""
    from indomer.stage import ItemStage

    def stages():
        return tuple(ItemStage("align", _align_with_a_failure) if s.name == "align" else s
                     for s in tp.fake_stages())

    monkeypatch.setattr(pipeline, "default_stages", stages)
    cfg = tp.make_project(tmp_path / "p")
    sheet = tmp_path / "p" / "sheets" / "labels.csv"
    lines = sheet.read_text().splitlines()
    tie = lines.index(next(line for line in lines if line.startswith("clip_2_Cooking_1,budi,")))
    fields = lines[tie].split(",")
    lines[tie] = ",".join([*fields[:4], "sadness", *fields[5:]])
    sheet.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    err = res.stderr.splitlines()
    align = ("warning: align: 1 clip(s) kept without word times: no speech found in the clip "
             "(clip_3_Cooking_2)")
    assert err.count(align) == 1
    merge = [ln for ln in err if ln.startswith("warning: merge: clip_2_Cooking_1: emotion "
                                               "unresolved: no majority")]
    assert len(merge) == 1
    # the closing lines of stderr: after every stage has run and said what it does
    closing = err[max(i for i, ln in enumerate(err) if ln.startswith("shards")) + 1:]
    assert align in closing and merge[0] in closing, err
    assert "aligner noise from a library" not in res.output  # third-party talk: the log only
    assert "aligner noise from a library" in (out / "work" / "log.txt").read_text()
    # a rerun that stops before align repeats none of it
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--to", "cut"])
    assert res.exit_code == 0, res.output
    assert "warning: align:" not in res.stderr and "warning: merge:" not in res.stderr
