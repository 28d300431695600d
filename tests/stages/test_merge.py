"""The merge stage (:mod:`indomer.stages.merge`) through its contract: labelled segments
become examples, the rest wait, and ``labels.json`` is its one declared document."""

from __future__ import annotations

from types import SimpleNamespace

from indomer.merge import SHEET_COLUMNS
from indomer.stage import Inputs
from indomer.stages import merge
from indomer.tail import EXAMPLE, WAITING


def _seg(n: int) -> dict:
    return {"kind": "segment", "id": f"clip_1_A_{n}", "source_id": "1", "segment_index": n,
            "topic": "A", "start": float(n), "end": n + 1.0, "text": f"t{n}"}


def test_labelled_segments_become_examples_and_the_others_wait(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("\n".join([
        ",".join(SHEET_COLUMNS),
        "clip_1_A_1,A1,annotator,0.6,happiness,2,positive,positive,neutral",
        "clip_1_A_1,A2,annotator,0.8,senang,3,positif,positif,netral",
        "clip_7_A_1,A1,annotator,0.6,happiness,2,positive,positive,neutral",
    ]) + "\n", encoding="utf-8")
    cfg = SimpleNamespace(annotations=[sheet], transcripts=None, root=tmp_path)
    video = {"kind": "video", "source_id": "1", "topic": "A"}
    got = merge.STAGE.process(Inputs({"faces": [video, _seg(1), _seg(2)]}), cfg)
    kinds = {r.get("id", r["source_id"]): r["kind"] for r in got.rows}
    assert kinds == {"1": "video", "clip_1_A_1": EXAMPLE, "clip_1_A_2": WAITING}
    [example] = [r for r in got.rows if r["kind"] == EXAMPLE]
    assert example["emotion"] == "happiness" and example["text"] == "t1"
    assert [r["id"] for r in got.rejected] == ["clip_7_A_1"]  # labels a segment not built
    assert set(got.documents) == set(merge.STAGE.outputs) == {"labels.json"}
    assert got.documents["labels.json"]["waiting"] == ["clip_1_A_2"]
    assert merge.merge_waiting(got.rows)["count"] == 1


def test_no_sheets_yet_every_segment_waits_and_the_build_halts():
    cfg = SimpleNamespace(annotations=None, transcripts=None, root=None)
    got = merge.STAGE.process(Inputs({"faces": [_seg(1)]}), cfg)
    assert [r["kind"] for r in got.rows] == [WAITING] and got.rejected == []
    assert merge.merge_waiting(got.rows)["halt"] is True
