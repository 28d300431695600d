"""``indomer annotate export|import`` (issue 11) on a fast build of fake stages: the tasks and
label config, pre-annotations, CSV sheets, Label Studio's full JSON and JSON_MIN exports back
into pseudonymised sheets, bad input one line each, and the rebuild with the sheets."""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET

import pytest
import test_pipeline as tp
import truth
from click.testing import CliRunner

from indomer import pipeline
from indomer.annotate import LOCAL_FILES_PREFIX, label_config
from indomer.cli import main
from indomer.dataset import read_split

EMAIL = re.compile(rb"[\w.+-]+@[\w-]+\.[\w.-]+")
CLIPS = [f"clip_{s}_Cooking_{k}" for s in range(1, 5) for k in range(1, 4)]


@pytest.fixture
def waiting_build(tmp_path, monkeypatch):
    """A build of the fake pipeline without sheets: 12 clips wait for labels."""
    monkeypatch.setattr(pipeline, "default_stages", tp.fake_stages)
    cfg = tp.make_project(tmp_path / "p")
    doc = json.loads(cfg.read_text())
    del doc["annotations"]
    cfg.write_text(json.dumps(doc))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return cfg, out, doc


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_export_writes_tasks_config_and_pre_annotations(waiting_build, tmp_path):
    _, out, _ = waiting_build
    preds = tmp_path / "omni.jsonl"
    preds.write_text(
        json.dumps(
            {
                "id": "clip_1_Cooking_1",
                "emotion": "The speaker sounds happy.",
                "sentiment": "positive",
                "audio_sentiment": "netral",
            }
        )
        + "\n"
    )
    res = _invoke(
        "annotate",
        "export",
        out,
        "--to",
        tmp_path / "ls",
        "--preds",
        preds,
        "--model",
        "OmniMER-7B",
    )
    assert res.exit_code == 0, res.output
    assert "exported 12 task(s) (unlabelled, 1 with pre-annotations)" in res.output
    # the old spelling, --predictions, still works one release, with one warning line
    old = _invoke("annotate", "export", out, "--to", tmp_path / "old", "--predictions", preds,
                  "--model", "OmniMER-7B")  # fmt: skip
    assert old.exit_code == 0, old.output
    assert old.stderr == (
        "warning: --predictions is deprecated and stops working in indomer 0.3; use --preds\n"
    )
    assert (tmp_path / "old/tasks.json").read_bytes() == (tmp_path / "ls/tasks.json").read_bytes()
    tasks = json.loads((tmp_path / "ls/tasks.json").read_text())
    assert [t["data"]["clip_id"] for t in tasks] == CLIPS
    one = tasks[0]["data"]
    assert one["video"] == LOCAL_FILES_PREFIX + "work/04_cut/clips/clip_1_Cooking_1.mp4"
    assert one["audio"].endswith("clip_1_Cooking_1.wav")
    assert (one["source_id"], one["topic"], one["segment_index"]) == ("1", "Cooking", 1)
    assert one["transcript"] == "Transkrip manual 1."
    pred = tasks[0]["predictions"][0]
    assert pred["model_version"] == "OmniMER-7B"
    got = {r["from_name"]: r["value"] for r in pred["result"]}
    assert got == {
        "emotion": {"choices": ["kebahagiaan"]},
        "audio_sentiment": {"choices": ["netral"]},
        "sentiment_score": {"number": 0.5},
    }
    assert "predictions" not in tasks[1]
    # the label config is XML with every field of the template, Indonesian names shown
    root = ET.fromstring((tmp_path / "ls/label_config.xml").read_text())
    names = {e.get("name") for e in root.iter() if e.get("name")}
    assert names >= {
        "emotion",
        "intensity",
        "sentiment_score",
        "text_sentiment",
        "audio_sentiment",
        "video_sentiment",
        "note",
        "video",
        "audio",
    }
    emo = [c.get("value") for c in root.iter("Choice")][:7]
    assert tuple(emo) == truth.EMOTIONS_RELEASE
    number = next(root.iter("Number"))
    assert (number.get("min"), number.get("max")) == ("-1", "1")
    serving = json.loads((tmp_path / "ls/labelstudio.json").read_text())
    assert serving["environment"]["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"] == str(out)
    # --media-url, --only all, csv sheets
    res = _invoke(
        "annotate",
        "export",
        out,
        "--to",
        tmp_path / "web",
        "--media-url",
        "https://media.example/ds/",
    )
    assert json.loads((tmp_path / "web/tasks.json").read_text())[0]["data"]["video"] == (
        "https://media.example/ds/work/04_cut/clips/clip_1_Cooking_1.mp4"
    )
    res = _invoke("annotate", "export", out, "--to", tmp_path / "csv", "--format", "csv")
    assert res.exit_code == 0, res.output
    with open(tmp_path / "csv/A2.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == CLIPS and {r["annotator"] for r in rows} == {"A2"}
    header = (tp.Path(__file__).parent.parent / "annotations/template.csv").read_text()
    # the template's columns, then what the annotator reads: transcript, media, votes
    assert (tmp_path / "csv/A1.csv").read_text().splitlines()[0] == (
        header.splitlines()[0] + ",transcript,video,audio,votes"
    )
    assert rows[0]["transcript"] == "Transkrip manual 1."
    assert rows[0]["video"] == str(out / "work/04_cut/clips/clip_1_Cooking_1.mp4")
    assert tp.Path(rows[0]["video"]).is_file() and tp.Path(rows[0]["audio"]).is_file()
    assert rows[0]["votes"] == ""
    assert label_config() == (tmp_path / "ls/label_config.xml").read_text()


def _result(emotion, score, intensity="2", sent="positif", note=None):
    res = [
        {
            "from_name": "emotion",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": [emotion]},
        },
        {
            "from_name": "sentiment_score",
            "to_name": "video",
            "type": "number",
            "value": {"number": score},
        },
        {
            "from_name": "intensity",
            "to_name": "video",
            "type": "choices",
            "value": {"choices": [intensity]},
        },
        *(
            {"from_name": f, "to_name": "video", "type": "choices", "value": {"choices": [sent]}}
            for f in ("text_sentiment", "audio_sentiment", "video_sentiment")
        ),
    ]
    if note:
        res.append(
            {"from_name": "note", "to_name": "video", "type": "textarea", "value": {"text": [note]}}
        )
    return res


USERS = {1: "ani@example.org", 2: "budi@example.org", 3: "cici@example.org", 9: "ahli@example.org"}


def _ann(aid, user, result, when, cancelled=False, as_object=True):
    who = {"id": user, "email": USERS[user], "first_name": "", "last_name": ""}
    return {
        "id": aid,
        "completed_by": who if as_object else user,
        "result": result,
        "was_cancelled": cancelled,
        "created_at": when,
        "updated_at": when,
    }


def full_export() -> list[dict]:
    """Every clip labelled happiness by three annotators, except: clip_1_Cooking_2 where they
    disagree and the expert says sadness; bad tasks; a cancelled and a repeated annotation."""
    tasks = []
    for n, clip in enumerate(CLIPS, start=1):
        anns = []
        if clip == "clip_1_Cooking_2":
            votes = [("marah", -0.6), ("sedih", -0.5), ("netral", 0.0)]
        else:
            votes = [("kebahagiaan", 0.6)] * 3
        for (emo, score), user in zip(votes, (1, 2, 3)):
            sent = "positif" if score > 0 else "negatif" if score < 0 else "netral"
            anns.append(
                _ann(
                    100 * n + user,
                    user,
                    _result(emo, score, sent=sent),
                    "2025-01-02T10:00:00Z",
                    as_object=user != 3,
                )
            )
        if clip == "clip_1_Cooking_2":
            anns.append(
                _ann(
                    100 * n + 9,
                    9,
                    _result("kesedihan", -0.4, sent="negatif", note="tanya budi@example.org"),
                    "2025-01-03T10:00:00Z",
                )
            )
        if clip == "clip_2_Cooking_1":  # ani first said neutral, then corrected herself
            anns.append(
                _ann(100 * n + 50, 1, _result("netral", 0.0, "0", "netral"), "2025-01-01T09:00:00Z")
            )
            anns.append(_ann(100 * n + 51, 2, [], "2025-01-01T09:00:00Z", cancelled=True))
        tasks.append({"id": n, "data": {"clip_id": clip}, "annotations": anns})
    bad = [
        ("unknown", _result("kebahagiaan", 0.5), "clip_9_Cooking_1"),
        ("path", _result("kebahagiaan", 0.5), "../../etc/passwd"),
        ("choice", _result("bosan", 0.5), "clip_1_Cooking_1"),
        ("score", _result("kebahagiaan", 1.5), "clip_1_Cooking_1"),
        ("intensity", _result("kebahagiaan", 0.5, intensity="7"), "clip_1_Cooking_1"),
        (
            "config",
            [
                {
                    "from_name": "sentiment",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["Positive"]},
                }
            ],
            "clip_1_Cooking_1",
        ),
    ]
    for n, (_, result, clip) in enumerate(bad, start=100):
        tasks.append(
            {
                "id": n,
                "data": {"clip_id": clip},
                "annotations": [_ann(9000 + n, 1, result, "2025-01-05T00:00:00Z")],
            }
        )
    return tasks


def test_import_full_export_then_rebuild(waiting_build, tmp_path):
    cfg, out, doc = waiting_build
    export = tmp_path / "project-1.json"
    export.write_text(json.dumps(full_export()))
    sheets = tmp_path / "sheets_ls"
    res = _invoke(
        "annotate",
        "import",
        export,
        "--out",
        sheets,
        "--experts",
        "ahli@example.org",
        "--build",
        out,
    )
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "1 cancelled or skipped, 1 replaced by a later one, 6 rejected" in lines[-1]
    for task, fld in [
        (100, "clip_id"),
        (101, "clip_id"),
        (102, "emotion"),
        (103, "sentiment_score"),
        (104, "intensity"),
        (105, "sentiment"),
    ]:
        assert any(ln.startswith(f"task {task}: {fld}: ") for ln in lines), (task, lines)
    assert sorted(p.name for p in sheets.iterdir()) == [
        ".indomer-output.json",  # the output guard's list of the files this import owns
        "A1.csv",
        "A2.csv",
        "A3.csv",
        "E1.csv",
        "import-rejections.jsonl",
    ]
    rej = [json.loads(x) for x in (sheets / "import-rejections.jsonl").read_text().splitlines()]
    assert sum(r["kind"] == "rejected" for r in rej) == 6
    with open(sheets / "A1.csv", newline="") as fh:
        a1 = {r["id"]: r for r in csv.DictReader(fh)}
    assert a1["clip_2_Cooking_1"]["emotion"] == "happiness"  # the latest counts
    with open(sheets / "E1.csv", newline="") as fh:
        e1 = list(csv.DictReader(fh))
    assert [(r["id"], r["role"], r["emotion"]) for r in e1] == [
        ("clip_1_Cooking_2", "expert", "sadness")
    ]
    assert "[e-mail removed]" in e1[0]["note"]
    # rebuild with the sheets: only merge, split, shards rerun
    doc["annotations"] = [str(sheets)]
    cfg.write_text(json.dumps(doc))
    report = pipeline.run_pipeline(cfg, out, quiet=True)
    ran = {s["name"] for s in report["stages"] if s["status"] == "ran"}
    assert ran == {"merge", "split", "shards"} and report["waiting"] is None
    rows = {}
    for split in report["rows"]:
        df = read_split(out, split)
        rows.update({r["id"]: r for r in df.to_dict("records")})
    assert sorted(rows) == CLIPS
    two = rows["clip_1_Cooking_2"]
    assert (two["emotion"], bool(two["adjudicated"])) == ("sadness", True)
    assert (rows["clip_2_Cooking_1"]["emotion"], rows["clip_2_Cooking_1"]["adjudicated"]) == (
        "happiness",
        False,
    )
    build = json.loads((out / "build.json").read_text())
    assert build["agreement"]["emotion"]["items"] == 12
    assert build["agreement"]["emotion"]["annotators"] == 3
    for p in [*sheets.rglob("*"), *[q for q in out.rglob("*") if "work" not in q.parts]]:
        if p.is_file():
            # no e-mail address anywhere ('@' alone occurs: the card's BibTeX @misc{...})
            assert not EMAIL.search(p.read_bytes()), p


def test_import_json_min_and_a_map(waiting_build, tmp_path):
    records = []
    for n, clip in enumerate(CLIPS[:2], start=1):
        for user in (1, 2):
            records.append(
                {
                    "id": n,
                    "clip_id": clip,
                    "video": "/data/local-files/?d=x.mp4",
                    "emotion": "kesedihan",
                    "sentiment_score": [{"number": -0.5}],
                    "intensity": "1",
                    "text_sentiment": "negatif",
                    "annotator": USERS[user],
                    "annotation_id": 10 * n + user,
                    "created_at": "2025-01-01",
                    "updated_at": "2025-01-01",
                    "lead_time": 3.2,
                }
            )
    export = tmp_path / "min.json"
    export.write_text(json.dumps(records))
    amap = tmp_path / "map.csv"
    amap.write_text("who,annotator\nani@example.org,ANI\nbudi@example.org,BUDI\n")
    res = _invoke("annotate", "import", export, "--out", tmp_path / "s", "--annotator-map", amap)
    assert res.exit_code == 0, res.output
    # the old spelling, --annotators map.csv, still works one release, with one warning line
    old = _invoke("annotate", "import", export, "--out", tmp_path / "old", "--annotators", amap)
    assert old.exit_code == 0, old.output
    assert old.stderr.splitlines()[0] == (
        "warning: --annotators is deprecated and stops working in indomer 0.3; use "
        "--annotator-map"
    )
    assert (tmp_path / "old/ANI.csv").read_bytes() == (tmp_path / "s/ANI.csv").read_bytes()
    with open(tmp_path / "s/ANI.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [
        (
            r["id"],
            r["emotion"],
            r["sentiment_score"],
            r["emotion_intensity"],
            r["text_sentiment"],
            r["audio_sentiment"],
        )
        for r in rows
    ] == [
        (CLIPS[0], "sadness", "-0.5", "1", "negative", ""),
        (CLIPS[1], "sadness", "-0.5", "1", "negative", ""),
    ]
    # an empty export: one line, exit 1, nothing written but the rejections file
    (tmp_path / "empty.json").write_text("[]")
    res = _invoke("annotate", "import", tmp_path / "empty.json", "--out", tmp_path / "e")
    assert res.exit_code == 1
    assert "task -: annotations: the export holds no annotations" in res.output
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == [
        ".indomer-output.json",
        "import-rejections.jsonl",
    ]


def test_export_needs_a_build(tmp_path):
    res = _invoke("annotate", "export", tmp_path, "--to", tmp_path / "x")
    assert res.exit_code == 2 and "no finished merge stage" in res.output


def _mark_unresolved(out, clip: str) -> None:
    """As if the annotators of ``clip`` had split 1-1 on its emotion (merge's labels.json)."""
    (labels,) = (out / "work").glob("[0-9][0-9]_merge/labels.json")
    doc = json.loads(labels.read_text())
    doc["unresolved"] = [
        {
            "id": clip,
            "field": "emotion",
            "reason": "no majority",
            "fix": "add an expert row",
            "votes": {"anger": 1, "sadness": 1},
        }
    ]
    labels.write_text(json.dumps(doc))


def test_expert_tasks_and_sheets_show_the_votes(waiting_build, tmp_path):
    """--only unresolved: the expert sees what the annotators said, in Label Studio and CSV;
    the merge reads such a sheet without a warning about its extra columns."""
    _, out, _ = waiting_build
    _mark_unresolved(out, "clip_2_Cooking_3")
    res = _invoke("annotate", "export", out, "--to", tmp_path / "ls", "--only", "unresolved")
    assert res.exit_code == 0, res.output
    (task,) = json.loads((tmp_path / "ls/tasks.json").read_text())
    assert task["data"]["clip_id"] == "clip_2_Cooking_3"
    assert task["data"]["votes"] == (
        "Suara anotator (votes): emotion: anger (kemarahan) 1, sadness (kesedihan) 1"
    )
    root = ET.fromstring((tmp_path / "ls/label_config.xml").read_text())
    assert {e.get("value") for e in root.iter("Text")} >= {"$votes", "$transcript"}
    res = _invoke(
        "annotate", "export", out, "--to", tmp_path / "csv", "--format", "csv", "--only",
        "unresolved",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    with open(tmp_path / "csv/E1.csv", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["votes"] == "emotion: anger (kemarahan) 1, sadness (kesedihan) 1"
    assert row["role"] == "expert" and row["transcript"]
    # every task names $votes (Label Studio refuses a task without a field the config uses)
    res = _invoke("annotate", "export", out, "--to", tmp_path / "all", "--only", "all")
    tasks = json.loads((tmp_path / "all/tasks.json").read_text())
    assert all("votes" in t["data"] for t in tasks)
    assert [t["data"]["votes"] != "" for t in tasks].count(True) == 1
    # the merge ignores the context columns quietly
    from indomer.merge import merge_sheets

    row.update(emotion="anger", sentiment_score="-0.5")
    sheet = tmp_path / "sheets" / "E1.csv"
    sheet.parent.mkdir()
    with open(sheet, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    result = merge_sheets([sheet.parent])
    assert not [w for w in result.warnings if "ignored column" in w], result.warnings


def test_push_and_pull_errors_are_one_line(waiting_build, tmp_path, monkeypatch):
    """No token, a bad URL, a server that is not there: one line each, nothing written."""
    _, out, _ = waiting_build
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    res = _invoke("annotate", "push", out, "--labelstudio", "http://127.0.0.1:9")
    assert res.exit_code == 2
    assert "the environment variable LABEL_STUDIO_API_KEY is not set" in res.output
    assert res.output.count("\n") == 1
    monkeypatch.setenv("MY_LS_TOKEN", "x" * 40)
    res = _invoke("annotate", "push", out, "--labelstudio", "localhost:8080", "--token-env",
                  "MY_LS_TOKEN")  # fmt: skip
    assert res.exit_code == 2 and "expected an http:// or https:// URL" in res.output
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = _invoke("annotate", "pull", "--labelstudio", f"http://127.0.0.1:{port}", "--project",
                  "p", "--out", tmp_path / "sheets", "--token-env", "MY_LS_TOKEN")  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "cannot reach Label Studio" in res.output and res.output.count("\n") == 1
    assert "x" * 40 not in res.output  # the token is never printed
    assert not (tmp_path / "sheets").exists()
