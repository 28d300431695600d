"""The build's split step (:func:`indomer.stages.merge_labels.split_run`): a build always
ends with a dataset, even when identity leaves too few groups; ``--strict`` refuses."""

from __future__ import annotations

import json

import pytest

from indomer.config import SplitConfig
from indomer.errors import DataError
from indomer.stage import Context
from indomer.stages.merge_labels import EXAMPLE, identity_summary, split_run


def _inputs(groups: list[str]) -> dict[str, list[dict]]:
    rows = []
    for k, g in enumerate(groups):
        for j in range(3):
            rows.append({"kind": EXAMPLE, "id": f"clip_{k}_T_{j + 1}", "source_id": str(k),
                         "speaker_id": f"spk_{k}", "speaker_group": g,
                         "emotion": "neutral", "sentiment": "neutral"})
    return {"merge": rows}


def _ctx(tmp_path, strict: bool) -> Context:
    work = tmp_path / "work"
    (work / "09_speakers").mkdir(parents=True, exist_ok=True)
    (work / "11_split").mkdir(parents=True, exist_ok=True)
    record = {"operating_point": {"calibration": {"source": "test", "slope": 11.0}},
              "groups": {"grp_all": [f"spk_{k}" for k in range(4)]}, "pairs": []}
    (work / "09_speakers" / "identity.json").write_text(json.dumps(record))
    return Context("split", tmp_path, work / "11_split", None,
                   {"speakers": work / "09_speakers", "split": work / "11_split"}, strict)


def test_pins_that_join_everyone_leave_one_split_with_a_warning(tmp_path):
    rows, rejected = split_run(_inputs(["grp_all"] * 4), SplitConfig(), _ctx(tmp_path, False))
    assert {r["split"] for r in rows} == {"train"} and len(rows) == 12 and rejected == []
    info = json.loads((tmp_path / "work" / "11_split" / "split.json").read_text())
    assert "validation, test stay empty" in info["warning"]
    assert info["document"]["report"]["leak_free"]
    # the build's closing lines: the warning (stderr) and the stated risk (stdout)
    warned, lines = identity_summary(tmp_path)
    assert warned == ["warning: " + info["warning"]]
    assert warned[0].startswith("warning: only 1 split group(s) for 3 splits")
    want = (f"split {info['document']['name']}: 4 speakers in 1 groups; expected people on "
            "two sides: 0.00 (probabilities calibrated on test)")
    assert lines == [want]


def test_strict_refuses_instead(tmp_path):
    with pytest.raises(DataError, match=r"split: only 1 split group.*\(stopped by --strict\)"):
        split_run(_inputs(["grp_all"] * 4), SplitConfig(), _ctx(tmp_path, True))


def test_enough_groups_split_normally(tmp_path):
    groups = [f"grp_{k}" for k in range(8)]
    ctx = _ctx(tmp_path, True)
    (tmp_path / "work" / "09_speakers" / "identity.json").write_text(json.dumps(
        {"operating_point": {"calibration": {"source": "test", "slope": 11.0}},
         "groups": {g: [f"spk_{k}"] for k, g in enumerate(groups)}, "pairs": []}))
    rows, _ = split_run(_inputs(groups), SplitConfig(), ctx)
    assert {r["split"] for r in rows} == {"train", "validation", "test"}
