"""The build's split stage (:mod:`indomer.stages.split`): a build always ends with a
dataset, even when identity leaves too few groups; ``--strict`` refuses."""

from __future__ import annotations

import pytest

from indomer.config import SplitConfig
from indomer.errors import DataError
from indomer.stage import Inputs
from indomer.stages import split
from indomer.tail import EXAMPLE, IDENTITY, SPLIT, identity_summary


def _record(groups: dict[str, list[str]]) -> dict:
    """A speakers stage identity record with these split groups."""
    return {"operating_point": {"calibration": {"source": "test", "slope": 11.0}},
            "groups": groups, "pairs": []}


def _inputs(groups: list[str], record: dict | None = None) -> Inputs:
    rows = []
    for k, g in enumerate(groups):
        for j in range(3):
            rows.append({"kind": EXAMPLE, "id": f"clip_{k}_T_{j + 1}", "source_id": str(k),
                         "speaker_id": f"spk_{k}", "speaker_group": g,
                         "emotion": "neutral", "sentiment": "neutral"})
    if record is None:
        record = _record({"grp_all": [f"spk_{k}" for k in range(4)]})
    return Inputs({"merge": rows}, {IDENTITY: record})


def test_the_stage_declares_what_it_reads_and_writes():
    assert split.STAGE.needs == (IDENTITY,) and split.STAGE.outputs == ("split.json",)


def test_pins_that_join_everyone_leave_one_split_with_a_warning():
    inputs = _inputs(["grp_all"] * 4)
    got = split.STAGE.process(inputs, split.State(SplitConfig(), strict=False))
    rows = got.rows
    assert {r["split"] for r in rows} == {"train"} and len(rows) == 12 and got.rejected == []
    info = got.documents["split.json"]
    assert "validation, test stay empty" in info["warning"]
    assert info["document"]["report"]["leak_free"]
    # the build's closing lines, from the documents the run report holds: the warning
    # (stderr) and the stated risk (stdout)
    warned, lines = identity_summary({IDENTITY: inputs.documents[IDENTITY], SPLIT: info})
    assert warned == ["warning: " + info["warning"]]
    assert warned[0].startswith("warning: only 1 split group(s) for 3 splits")
    want = (f"split {info['document']['name']}: 4 speakers in 1 groups; expected people on "
            "two sides: 0.00 (probabilities calibrated on test)")
    assert lines == [want]


def test_strict_refuses_instead():
    with pytest.raises(DataError, match=r"split: only 1 split group.*\(stopped by --strict\)"):
        split.STAGE.process(_inputs(["grp_all"] * 4), split.State(SplitConfig(), strict=True))


def test_enough_groups_split_normally():
    groups = [f"grp_{k}" for k in range(8)]
    record = _record({g: [f"spk_{k}"] for k, g in enumerate(groups)})
    got = split.STAGE.process(_inputs(groups, record), split.State(SplitConfig(), strict=True))
    assert {r["split"] for r in got.rows} == {"train", "validation", "test"}
