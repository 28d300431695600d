"""``indomer push --dry-run`` lists what would be sent, with the sizes of the dataset's files,
and sends nothing; here the Hub is a local port that refuses connections (nothing leaves the
machine). Pushing to a Hub: tests/test_push.py, against a local fake Hub."""

from __future__ import annotations

import re

from click.testing import CliRunner

from indomer.cli import main


def refusing_hub(monkeypatch) -> str:
    """Point the Hub client at a local port nobody listens on, online (the suite runs with
    HF_HUB_OFFLINE=1), as huggingface_hub would have read it at import."""
    import socket

    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    reset_sessions()
    return url


def test_dry_run_lists_every_file_with_its_size(built, monkeypatch):
    url = refusing_hub(monkeypatch)
    r = CliRunner().invoke(main, ["push", str(built), "user/name", "--dry-run"])
    assert r.exit_code == 0, r.output
    listed = {m.group(2): int(m.group(1).replace(",", ""))
              for m in re.finditer(r"^\s+unknown\s+([\d,]+)\s+(\S+)$", r.output, re.MULTILINE)}
    files = {p.relative_to(built).as_posix(): p.stat().st_size
             for p in built.rglob("*") if p.is_file() and not p.is_symlink()
             and not p.relative_to(built).parts[0].startswith(".")}
    for rel in ("README.md", "build.json", "croissant.json"):
        assert listed[rel] == (built / rel).stat().st_size
    assert all(rel.startswith(("data/", "splits/")) or rel in listed for rel in files)
    shards = sorted(p.name for p in (built / "data").glob("*.parquet"))
    assert sorted(rel.split("/")[1] for rel in listed if rel.startswith("data/")) == shards
    total = sum(listed.values())
    assert f"{len(listed)} files ({total:,} bytes) in 1 commit at most; nothing was sent" in (
        r.output)
    assert f"cannot reach {url}" in r.output


def test_a_bad_repo_id_is_a_usage_error(built):
    r = CliRunner().invoke(main, ["push", str(built), "no-namespace", "--dry-run"])
    assert r.exit_code == 2, r.output
    assert "no-namespace" in r.output
