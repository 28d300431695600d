"""Annotation merge: known-truth sheets of 3-4 annotators and an expert over 6 segments."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from indomer.errors import DataError
from indomer.merge import (
    ROW_COLUMNS,
    SHEET_COLUMNS,
    _validator,
    decide,
    median_half_up,
    merge_sheets,
    read_sheet,
    score_to_sentiment,
)

HEADER = ",".join(SHEET_COLUMNS)

# id, score, emotion, intensity, text, audio, video  (per annotator)
A1 = [
    "clip_1_Cooking_1,A1,annotator,0.6,happiness,2,positive,positive,neutral",
    "clip_1_Cooking_2,A1,annotator,-0.3,anger,1,negative,negative,negative",
    "clip_2_Travel_1,A1,annotator,0.0,neutral,0,neutral,neutral,neutral",
    "clip_2_Travel_2,A1,annotator,0.5,happiness,1,positive,positive,positive",
    "clip_3_Opinion_1,A1,annotator,0.4,marah,2,negatif,negatif,netral",
    "clip_3_Opinion_2,A1,annotator,0.7,happiness,2,positive,positive,positive",
]
# Written with a BOM and CRLF line ends, in Indonesian release strings and aliases.
A2 = [
    "clip_1_Cooking_1,A2,annotator,0.8,senang,3,positif,positif,netral",
    "clip_1_Cooking_2,A2,annotator,-0.6,marah,2,negatif,negatif,negatif",
    "clip_2_Travel_1,A2,annotator,0.5,kaget,2,positif,positif,positif",
    "clip_2_Travel_2,A2,annotator,0.3,surprise,2,positif,positif,positif",
    "clip_3_Opinion_1,A2,annotator,0.5,Marah,3,negatif,negatif,netral",
    "clip_3_Opinion_2,A2,annotator,0.6,bahagia,2,positif,positif,positif",
]
# A3 has the bad rows (lines 6, 8-12 of a3.csv).
A3 = [
    "clip_1_Cooking_1,A3,annotator,-0.5,sedih,1,negative,negative,negative",  # line 2
    "clip_1_Cooking_2,A3,annotator,-0.2,sadness,2,negative,negative,neutral",  # line 3
    "clip_2_Travel_1,A3,annotator,-0.7,takut,2,negative,negative,negative",  # line 4
    "clip_2_Travel_2,A3,annotator,0.05,neutral,0,neutral,positive,positive",  # line 5
    "clip_3_Opinion_2,A3,annotator,0.2,gembira-ish,2,positive,positive,positive",  # 6 bad label
    "clip_3_Opinion_1,A3,annotator,-0.6,kesedihan,1,netral,negatif,negatif",  # line 7
    "clip_4_Sport_1,A3,annotator,1.5,happiness,2,positive,positive,positive",  # 8 score > 1
    "clip_4_Sport_2,A3,annotator,0.5,happiness,5,positive,positive,positive",  # 9 intensity 5
    "../etc/passwd,A3,annotator,0.5,happiness,2,positive,positive,positive",  # 10 traversal
    ",A3,annotator,0.5,happiness,2,positive,positive,positive",  # 11 missing id
    "clip_1_Cooking_1,A3,annotator,-0.5,sedih,1,negative,negative,negative",  # 12 identical dup
]
A4 = ["clip_1_Cooking_2,A4,annotator,-0.4,sedih,3,negative,negative,neutral"]
EXPERT = [
    "clip_1_Cooking_1,EX,expert,0.9,marah,3,positive,positive,positive",
    "clip_1_Cooking_2,EX,expert,-0.5,sadness,1,negative,negative,negative",
    "clip_2_Travel_1,EX,expert,0.4,surprise,1,positive,positive,neutral",
]


def write(
    path: Path, rows: list[str], *, bom: bool = False, crlf: bool = False, header: str = HEADER
) -> Path:
    nl = "\r\n" if crlf else "\n"
    text = nl.join([header, *rows]) + nl
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


@pytest.fixture
def sheets(tmp_path: Path) -> Path:
    d = tmp_path / "sheets"
    d.mkdir()
    write(d / "a1.csv", A1)
    write(d / "a2.csv", A2, bom=True, crlf=True)
    write(d / "a3.csv", A3)
    write(d / "a4.csv", A4)
    write(d / "expert.csv", EXPERT)
    write(d / "template.csv", ["clip_9_X_1,T,annotator,0.5,happiness,2,positive,positive,positive"])
    return d


@pytest.fixture
def merged(sheets: Path):
    return merge_sheets([sheets])


# (emotion, sentiment, text, audio, video, intensity, adjudicated)
EXPECTED = {
    # clear majority; the expert's different emotion is ignored; intensity median(2, 3) -> 3
    "clip_1_Cooking_1": ("happiness", "positive", "positive", "positive", "neutral", 3, False),
    # 2-2 tie on emotion and on video -> expert; intensity of the sadness voters (2, 3) -> 3
    "clip_1_Cooking_2": ("sadness", "negative", "negative", "negative", "negative", 3, True),
    # all different -> expert; intensity from the one annotator who chose surprise (2)
    "clip_2_Travel_1": ("surprise", "positive", "positive", "positive", "neutral", 2, True),
    # no majority, no expert -> emotion unresolved; 0.05 is neutral (dead zone)
    "clip_2_Travel_2": (None, "positive", "positive", "positive", "positive", None, False),
    # Indonesian aliases; breaks the emotion->sentiment rule (anger but positive)
    "clip_3_Opinion_1": ("anger", "positive", "negative", "negative", "neutral", 3, False),
    # A3's row is rejected, the two good ones still make a majority
    "clip_3_Opinion_2": ("happiness", "positive", "positive", "positive", "positive", 2, False),
}


def test_final_labels_match_known_truth(merged) -> None:
    assert list(merged.segments) == sorted(EXPECTED)
    for seg_id, want in EXPECTED.items():
        s = merged.segments[seg_id]
        got = (
            s.emotion,
            s.sentiment,
            s.text_sentiment,
            s.audio_sentiment,
            s.video_sentiment,
            s.emotion_intensity,
            s.adjudicated,
        )
        assert got == want, seg_id


def test_bad_rows_rejected_with_file_line_and_good_rows_kept(merged, sheets: Path) -> None:
    rej = {(Path(r["file"]).name, r["line"]): r for r in merged.rejected}
    assert sorted(rej) == [("a3.csv", n) for n in (6, 8, 9, 10, 11, 12)]
    assert "unknown emotion label 'gembira-ish'" in rej[("a3.csv", 6)]["reason"]
    assert "sentiment_score '1.5'" in rej[("a3.csv", 8)]["reason"]
    assert "emotion_intensity '5'" in rej[("a3.csv", 9)]["reason"]
    assert "unsafe segment id '../etc/passwd'" in rej[("a3.csv", 10)]["reason"]
    assert rej[("a3.csv", 10)]["id"] == "../etc/passwd"
    assert rej[("a3.csv", 11)]["reason"] == "missing id"
    assert "duplicate row" in rej[("a3.csv", 12)]["reason"]
    assert "a3.csv:2" in rej[("a3.csv", 12)]["reason"]
    for r in merged.rejected:
        assert r["stage"] == "merge" and r["where"] == f"{r['file']}:{r['line']}" and r["fix"]
        assert r["message"].startswith(r["where"]) and "\n" not in r["message"]
    # the rejected-only ids never appear; the good rows of a3.csv still count
    assert "clip_4_Sport_1" not in merged.segments and "clip_4_Sport_2" not in merged.segments
    assert any(v["annotator"] == "A3" for v in merged.segments["clip_1_Cooking_1"].votes)


def test_unresolved_field_is_listed_not_dropped(merged) -> None:
    assert [(u["id"], u["field"]) for u in merged.unresolved] == [("clip_2_Travel_2", "emotion")]
    u = merged.unresolved[0]
    assert u["votes"] == {"happiness": 1, "neutral": 1, "surprise": 1}
    assert "no expert vote" in u["reason"]
    assert any(w.startswith("clip_2_Travel_2: emotion unresolved") for w in merged.warnings)


def test_rule_violation_is_a_warning(merged) -> None:
    assert merged.rule_violations == [
        {
            "id": "clip_3_Opinion_1",
            "emotion": "anger",
            "sentiment": "positive",
            "expected_sentiment": "negative",
        }
    ]
    assert any(
        "clip_3_Opinion_1: final emotion anger implies sentiment negative" in w
        for w in merged.warnings
    )


def test_template_in_folder_is_skipped_with_a_warning(merged) -> None:
    assert "clip_9_X_1" not in merged.segments
    assert any("template.csv: skipped" in w for w in merged.warnings)
    assert sorted(Path(p).name for p in merged.inputs) == [
        "a1.csv",
        "a2.csv",
        "a3.csv",
        "a4.csv",
        "expert.csv",
    ]


def test_votes_keep_score_class_role_and_expert(merged) -> None:
    votes = merged.segments["clip_2_Travel_2"].votes
    a3 = {v["field"]: v["value"] for v in votes if v["annotator"] == "A3"}
    assert a3 == {
        "role": "annotator",
        "sentiment_score": "0.05",
        "sentiment": "neutral",
        "emotion": "neutral",
        "emotion_intensity": "0",
        "text_sentiment": "neutral",
        "audio_sentiment": "positive",
        "video_sentiment": "positive",
    }
    ex = {
        v["field"]: v["value"]
        for v in merged.segments["clip_1_Cooking_1"].votes
        if v["annotator"] == "EX"
    }
    assert ex["role"] == "expert" and ex["emotion"] == "anger"
    assert list(votes) == sorted(votes, key=lambda v: (v["annotator"], v["field"], v["value"]))
    # the BOM+CRLF sheet (A2) was read, aliases resolved
    a2 = {
        v["field"]: v["value"]
        for v in merged.segments["clip_1_Cooking_1"].votes
        if v["annotator"] == "A2"
    }
    assert a2["emotion"] == "happiness" and a2["video_sentiment"] == "neutral"


def test_rows_for_the_dataset(merged) -> None:
    rows = merged.rows()
    assert [r["id"] for r in rows] == sorted(EXPECTED)
    for r in rows:
        assert set(r) == {"id", *ROW_COLUMNS}
        assert isinstance(r["adjudicated"], bool)
        for v in r["annotations"]:
            assert list(v) == ["annotator", "field", "value"]
            assert all(isinstance(x, str) for x in v.values())
    json.dumps(rows, allow_nan=False)


def test_agreement_excludes_expert_and_is_json(merged) -> None:
    import krippendorff

    ag = merged.agreement
    assert set(ag) == {
        "emotion",
        "emotion_intensity",
        "sentiment",
        "sentiment_score",
        "text_sentiment",
        "audio_sentiment",
        "video_sentiment",
    }
    json.dumps(ag, allow_nan=False)
    assert ag["emotion"]["annotators"] == 4 and ag["emotion"]["items"] == 6
    assert ag["sentiment_score"]["fleiss_kappa"] is None
    assert ag["sentiment_score"]["level"] == "interval"
    assert ag["emotion_intensity"]["level"] == "ordinal"
    # alpha of the score equals the reference on the regular annotators' matrix (accepted rows)
    raters = ["A1", "A2", "A3", "A4"]
    ids = sorted(EXPECTED)
    data = np.full((4, 6), np.nan)
    for j, seg_id in enumerate(ids):
        for v in merged.segments[seg_id].votes:
            if v["field"] == "sentiment_score" and v["annotator"] in raters:
                data[raters.index(v["annotator"]), j] = float(v["value"])
    want = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
    assert ag["sentiment_score"]["krippendorff_alpha"] == pytest.approx(want, abs=1e-9)


def test_same_sheets_same_result(sheets: Path, tmp_path: Path) -> None:
    files = sorted(sheets.glob("[ae]*.csv"))
    a = merge_sheets(files)
    b = merge_sheets(list(reversed(files)) + [sheets / "a1.csv"])
    assert a == b
    # rows shuffled inside a sheet: same labels, votes and agreement
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    rng = random.Random(0)
    for f, rows in (("a1.csv", A1), ("a2.csv", A2), ("a4.csv", A4), ("expert.csv", EXPERT)):
        rows = list(rows)
        rng.shuffle(rows)
        write(shuffled / f, rows)
    write(shuffled / "a3.csv", [r for r in A3 if not r.startswith(("../", ","))][::-1])
    c = merge_sheets([shuffled])
    assert c.segments == a.segments
    assert c.agreement == a.agreement


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    header = HEADER.replace(",emotion_intensity", "")
    f = write(
        tmp_path / "bad.csv", ["clip_1_A_1,A1,annotator,0.5,happy,pos,pos,pos"], header=header
    )
    with pytest.raises(DataError, match=r"bad\.csv:1: missing column\(s\) emotion_intensity;"):
        merge_sheets([f])


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (b"", r"empty\.csv: empty file"),
        (b"\xef\xbb\xbf\r\n", r"empty\.csv: empty file"),
        ((HEADER + "\n").encode(), r"empty\.csv: header only"),
        (
            HEADER.encode() + b"\nclip_1_A_1,A1,annotator,0.5,happy\xe9,2,pos,pos,pos\n",
            r"empty\.csv: not UTF-8",
        ),
        ((HEADER + ",id\n").encode(), r"empty\.csv:1: column\(s\) id appear twice"),
    ],
)
def test_unreadable_sheets_raise(tmp_path: Path, content: bytes, pattern: str) -> None:
    f = tmp_path / "empty.csv"
    f.write_bytes(content)
    with pytest.raises(DataError, match=pattern):
        read_sheet(f)


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path, delimiter: str) -> None:
    """Excel's "CSV UTF-8" starts with a BOM (and uses ; in an Indonesian locale); the first
    column is ``id``, which a kept BOM would turn into an unknown ``\\ufeffid``."""
    rows = [r.replace(",", delimiter) for r in A1[:2]]
    header = HEADER.replace(",", delimiter)
    f = write(tmp_path / "bom.csv", rows, bom=True, crlf=True, header=header)
    accepted, rejected, warnings, digest = read_sheet(f)
    assert [(r.id, r.annotator, r.line) for r in accepted] == [
        ("clip_1_Cooking_1", "A1", 2),
        ("clip_1_Cooking_2", "A1", 3),
    ]
    assert rejected == [] and warnings == []
    assert digest["size"] == f.stat().st_size  # the digest is of the bytes, BOM included


def test_paths_that_are_not_sheets(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        merge_sheets([tmp_path / "nope.csv"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no"):
        merge_sheets([tmp_path / "empty"])


def test_conflicting_duplicates_are_all_rejected(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.csv",
        [
            "x1,A1,annotator,0.5,happy,2,pos,pos,pos",
            "x1,A2,annotator,0.5,happy,2,pos,pos,pos",
            "x1,A1,annotator,-0.5,sad,2,neg,neg,neg",
        ],
    )
    r = merge_sheets([f])
    assert [x["line"] for x in r.rejected] == [2, 4]
    assert all("voted 2 times with different votes" in x["reason"] for x in r.rejected)
    # only A2 is left: one vote is not a majority, no expert -> every field unresolved
    assert r.segments["x1"].emotion is None
    assert {u["field"] for u in r.unresolved} == {
        "emotion",
        "sentiment",
        "text_sentiment",
        "audio_sentiment",
        "video_sentiment",
    }


def test_semicolon_sheet_decimal_comma_extra_column_and_short_row(tmp_path: Path) -> None:
    header = HEADER.replace(",", ";") + ";note;timestamp"
    f = write(
        tmp_path / "id.csv",
        [
            "x1;A1;Annotator;0,5;Bahagia;2;positif;positif;positif;catatan;t",
            "x1;A2;annotator;0,45;senang;1;positif;positif;positif;;t",
            "x1;A3;annotator;0,5;senang",
        ],
        header=header,
    )
    r = merge_sheets([f])
    s = r.segments["x1"]
    assert (s.emotion, s.sentiment, s.emotion_intensity) == ("happiness", "positive", 2)
    assert [x["line"] for x in r.rejected] == [4]
    assert "5 cells but the header has 11" in r.rejected[0]["reason"]
    assert any("ignored column(s) 'timestamp'" in w for w in r.warnings)


def test_blank_cell_is_an_abstention_and_intensity_falls_back_to_expert(tmp_path: Path) -> None:
    f = write(
        tmp_path / "s.csv",
        [
            "x1,A1,annotator,0.5,happy,,pos,pos,",
            "x1,A2,annotator,0.5,happy,,pos,pos,",
            "x1,A3,annotator,0.5,sad,1,pos,pos,",
            "x1,EX,expert,,happy,3,,,pos",
            "x2,A1,annotator,,,,,,",
        ],
    )
    r = merge_sheets([f])
    s = r.segments["x1"]
    assert (s.emotion, s.emotion_intensity, s.video_sentiment, s.adjudicated) == (
        "happiness",
        3,
        "positive",
        True,
    )
    assert [x["line"] for x in r.rejected] == [6]
    assert "no judgement" in r.rejected[0]["reason"]


def test_experts_who_disagree_leave_the_field_unresolved() -> None:
    assert decide(["a", "b"], ["a", "b"]) == (
        None,
        "unresolved",
        "no majority (votes: a 1, b 1) and the experts disagree (a, b)",
    )
    assert decide(["a", "a", "b"], ["b"])[:2] == ("a", "majority")
    assert decide(["a", "a", "b", "b"], ["b"])[:2] == ("b", "expert")
    assert decide(["a"], [])[:2] == (None, "unresolved")
    assert decide(["a", None, None], ["a", "a"])[:2] == ("a", "expert")


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (-1.0, "negative"),
        (-0.1001, "negative"),
        (-0.1, "neutral"),
        (0.0, "neutral"),
        (0.1, "neutral"),
        (0.1001, "positive"),
        (1.0, "positive"),
    ],
)
def test_score_dead_zone(score: float, label: str) -> None:
    assert score_to_sentiment(score) == label


@pytest.mark.parametrize(
    ("values", "want"),
    [([1], 1), ([1, 2], 2), ([0, 1, 3], 1), ([0, 3], 2), ([2, 2, 3, 3], 3), ([0, 0, 1, 3], 1)],
)
def test_median_half_up(values: list[int], want: int) -> None:
    assert median_half_up(values) == want


def test_schema_is_valid_2020_12() -> None:
    schema = _validator().schema  # the shipped file, as merge loads it (checked there too)
    Draft202012Validator.check_schema(schema)
    assert tuple(schema["required"]) == SHEET_COLUMNS


def test_shipped_template_reads_cleanly() -> None:
    root = Path(__file__).resolve().parents[1]
    rows, rejected, warnings, _ = read_sheet(root / "annotations" / "template.csv")
    assert len(rows) == 2 and not rejected and not warnings
