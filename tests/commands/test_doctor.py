"""``indomer doctor CONFIG``: the config is checked by the same validation as ``build``, and a
bad one is reported in the checks with its one line (file:line and key)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from indomer.cli import main


def config(tmp_path, text: str):
    (tmp_path / "s.csv").write_text("source_id,url_or_path,topic,license\n")
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def checks(path) -> tuple[dict, dict]:
    r = CliRunner().invoke(main, ["doctor", str(path), "--json", "-"])
    doc = json.loads(r.stdout)
    return doc, {c["what"]: c for c in doc["checks"]}


def test_a_good_config_passes_its_check(tmp_path):
    path = config(tmp_path, "sources: s.csv\n")
    doc, by_what = checks(path)
    assert doc["config"] == str(path)
    assert by_what["config"] == {"detail": str(path), "fix": None, "needed": True,
                                 "status": "ok", "what": "config"}
    assert by_what["python"]["status"] == "ok"


def test_a_bad_config_is_reported_with_its_line_and_key(tmp_path):
    path = config(tmp_path, "sources: s.csv\nsplit:\n  seed: -1\n")
    doc, by_what = checks(path)
    assert doc["ok"] is False
    assert by_what["config"]["status"] == "missing"
    assert by_what["config"]["detail"] == (
        f"{path}:3: split.seed: -1 is less than the minimum of 0; fix the value")
