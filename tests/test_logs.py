"""Third-party output of the stages lands in OUT/work/log.txt, not the terminal: a logger with
its own console handler (whisperx, Lightning), one made inside a stage, warnings and prints;
and the process is as it was afterwards."""

from __future__ import annotations

import logging
import sys
import warnings

import test_pipeline as tp
from click.testing import CliRunner

from indomer import pipeline
from indomer.cli import main
from indomer.logs import log_path, stage_output
from indomer.stage import ItemStage


def _library_logger(name: str, stream) -> logging.Logger:
    """A logger set up as whisperx's setup_logging does: its own console handler, no
    propagation."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.StreamHandler(stream))
    logger.propagate = False
    return logger


def test_logs_warnings_and_prints_go_to_the_file_and_come_back(tmp_path, capfd):
    vad = _library_logger("fake_whisperx", sys.stdout)
    lightning = _library_logger("fake_lightning", sys.stderr)
    before = {name: list(logging.getLogger(name).handlers) for name in ("fake_whisperx", "")}
    path = log_path(tmp_path / "out")
    assert path == tmp_path / "out" / "work" / "log.txt"
    with stage_output(path):
        vad.info("Performing voice activity detection")
        lightning.info("Lightning automatically upgraded your loaded checkpoint")
        logging.getLogger("some.lib").warning("a library warning")
        warnings.warn("torchaudio backend is deprecated", UserWarning, stacklevel=1)
        print("a stray print")
        sys.stderr.write("a stray bar\r")
        # a library that sets its logging up inside the stage (whisperx on import)
        made = _library_logger("fake_made_inside", sys.stdout)
        made.info("made inside the stage")
        # one that propagates too (Lightning's, when the root has no handler of its own)
        both = logging.getLogger("fake_propagating")
        both.handlers.clear()
        both.setLevel(logging.INFO)
        both.addHandler(logging.StreamHandler(sys.stderr))
        both.propagate = True
        both.info("checkpoint upgraded")
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    text = path.read_text(encoding="utf-8")
    for needle in (
        "Performing voice activity detection",
        "Lightning automatically upgraded",
        "WARNING some.lib: a library warning",
        "UserWarning: torchaudio backend is deprecated",
        "a stray print",
        "a stray bar",
        "made inside the stage",
    ):
        assert needle in text, needle
    assert text.count("Performing voice activity detection") == 1
    assert text.count("checkpoint upgraded") == 1
    # afterwards: the handlers as they were, and the one made inside on the real stdout
    assert {n: list(logging.getLogger(n).handlers) for n in before} == before
    assert logging.getLogger("fake_made_inside").handlers[0].stream is sys.stdout
    vad.info("outside a stage")
    assert "outside a stage" in capfd.readouterr().out
    assert "outside a stage" not in path.read_text(encoding="utf-8")


def test_no_path_changes_nothing(capfd):
    with stage_output(None):
        print("shown")
    assert capfd.readouterr().out == "shown\n"


def _noisy_cut(item, state):
    logging.getLogger("fake_whisperx").info("Performing voice activity detection")
    warnings.warn("a model warning", UserWarning, stacklevel=1)
    print("INFO - noise on stdout")
    return tp.fake_cut(item, state)


def test_a_build_keeps_the_terminal_to_indomer(tmp_path, monkeypatch):
    _library_logger("fake_whisperx", sys.stdout)
    stages = tuple(
        ItemStage("cut", _noisy_cut, settings=tp.fake_settings, setup=tp.fake_cut_setup)
        if s.name == "cut"
        else s
        for s in tp.fake_stages()
    )
    monkeypatch.setattr(pipeline, "default_stages", lambda: stages)
    cfg = tp.make_project(tmp_path / "p")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    for stream in (res.stdout, res.stderr):
        assert "voice activity" not in stream and "noise on stdout" not in stream
        assert "a model warning" not in stream
    text = (out / "work" / "log.txt").read_text(encoding="utf-8")
    assert text.count("Performing voice activity detection") == 4  # one per source video
    assert text.count("INFO - noise on stdout") == 4 and "UserWarning: a model warning" in text
    assert not (out / "log.txt").exists() and "log.txt" not in {p.name for p in out.glob("*")}
