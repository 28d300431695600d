"""``indomer push`` against a Hub stand-in on 127.0.0.1 (tests/hubserver.py), driven through
the real ``huggingface_hub`` client: bytes arrive whole, nothing unchanged is re-sent, an
interrupted push resumes, the token never leaks, and ``datasets`` can read the result back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hubserver import FakeHub

from indomer.cli import main
from indomer.errors import DataError, IndomerError, UsageError
from indomer.labels import label_set
from indomer.push import push

TOKEN = "hf_test_write_token_0123456789"
READ_TOKEN = "hf_test_read_only_token_987654321"
BAD_TOKEN = "hf_this_token_is_revoked_42424242"
REPO = "alice/indomer"
SCRUB = ("HF_", "HUGGING_FACE_", "TRANSFORMERS_OFFLINE")  # the last also turns the hub offline


@pytest.fixture
def hub(tmp_path: Path):
    with FakeHub(
        tmp_path / "hub", tokens={TOKEN: ("alice", "write"), READ_TOKEN: ("alice", "read")}
    ) as h:
        yield h


@pytest.fixture
def hf_env(hub: FakeHub, tmp_path: Path, monkeypatch) -> dict:
    """Point the client at the fake, in this process and for subprocesses; no real token file."""
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB)}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_TOKEN=TOKEN,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    for key in list(os.environ):
        if key.startswith(SCRUB):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # What huggingface_hub computes from HF_ENDPOINT at import, as if started with it set.
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        hub.url + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    reset_sessions()
    return env


@pytest.fixture
def out(built: Path, tmp_path: Path) -> Path:
    """A writable copy of the built release, with things that must never be pushed."""
    dst = tmp_path / "indomer"
    shutil.copytree(built, dst, symlinks=True)
    (dst / "work" / "01_fetch").mkdir(parents=True)
    (dst / "work" / "01_fetch" / "manifest.jsonl").write_text("{}\n")
    (dst / "data" / ".tmp").mkdir()
    (dst / "data" / ".tmp" / "train-00000-of-00001.parquet").write_bytes(b"half a shard")
    (dst / ".build.lock").write_text("1234\n")
    if not (dst / "croissant.json").exists():
        (dst / "croissant.json").write_text('{"@type": "sc:Dataset", "name": "IndoMER"}\n')
    return dst


def cli(*args: str):
    return CliRunner().invoke(main, ["push", *args])


def local_tree(out: Path) -> dict[str, bytes]:
    names = ["README.md", "croissant.json", "build.json", "rejected.jsonl"]
    files = {n: (out / n).read_bytes() for n in names if (out / n).is_file()}
    for p in sorted((out / "splits").glob("*.json")) + sorted((out / "data").glob("*.parquet")):
        files[p.relative_to(out).as_posix()] = p.read_bytes()
    return files


def remote_tree(hub: FakeHub, revision: str = "main", repo: str = REPO) -> dict[str, bytes]:
    return {
        p: hub.file_bytes(repo, p, revision)
        for p in hub.tree(repo, revision)
        if p != ".gitattributes"
    }


def build_hash(out: Path) -> str:
    return json.loads((out / "build.json").read_text())["outputs"]["build_hash"]


def one_error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def resplit(out: Path, *args: str) -> None:
    res = CliRunner().invoke(main, ["split", str(out), "--speaker-disjoint", *args])
    assert res.exit_code == 0, res.output


def test_push_sends_every_file_byte_for_byte_and_nothing_else(hf_env, hub, out, monkeypatch):
    from huggingface_hub.utils._runtime import is_xet_available

    if is_xet_available():  # installed: the client offers Xet, and must not end up using it
        import hf_xet

        def no_xet(*a, **k):
            raise AssertionError("hf_xet must not be used against a basic-only LFS server")

        monkeypatch.setattr(hf_xet, "upload_files", no_xet)
        monkeypatch.setattr(hf_xet, "upload_bytes", no_xet)

    res = cli(str(out), REPO)
    assert res.exit_code == 0, res.output
    assert "pushed build" in res.stdout and "1 commit" in res.stdout

    local = local_tree(out)
    assert remote_tree(hub) == local  # same paths, same bytes: no work/, lock or temp file
    assert "croissant.json" in local and "splits/official.json" in local
    shards = sorted(p for p in local if p.startswith("data/"))
    assert sorted(u["size"] for u in hub.uploads) == sorted(len(local[p]) for p in shards)
    # The shards went through LFS, the small files inline; only the basic transfer was used.
    tree = hub.tree(REPO)
    assert all(tree[p].lfs for p in shards) and not tree["README.md"].lfs
    assert hub.lfs_batches and {b["transfer"] for b in hub.lfs_batches} == {"basic"}
    if is_xet_available():
        assert "xet" in hub.lfs_batches[0]["transfers"]  # offered by the client, declined here
    assert not [r for r in hub.requests if "xet" in r[1]]
    # One commit, its message carrying the build hash; the card is written last.
    (commit,) = hub.commits
    assert build_hash(out) in commit["summary"] and build_hash(out) in commit["description"]
    assert commit["ops"][-1] == ("file", "README.md")
    assert [p for k, p in commit["ops"] if k == "lfsFile"] == shards
    # The token is nowhere in what was received.
    for obj in (hub.root / "objects").iterdir():
        assert TOKEN.encode() not in obj.read_bytes()
    assert TOKEN not in res.output


def test_second_push_of_unchanged_dataset_sends_nothing(hf_env, hub, out):
    assert cli(str(out), REPO).exit_code == 0
    n_requests = len(hub.requests)
    res = cli(str(out), REPO)
    assert res.exit_code == 0, res.output
    assert "nothing to send" in res.stdout
    assert len(hub.uploads) == 2 and len(hub.commits) == 1
    later = hub.requests[n_requests:]
    assert [r for r in later if r[0] in ("POST", "PUT") and "paths-info" not in r[1]] == []


def test_resplit_sends_only_what_changed_and_deletes_stale_shards(hf_env, hub, out):
    assert cli(str(out), REPO).exit_code == 0
    resplit(out, "--seed", "3")  # train/validation rewritten, test added, card redone
    res = cli(str(out), REPO)
    assert res.exit_code == 0, res.output
    assert remote_tree(hub) == local_tree(out)
    sent = [p for _, p in hub.commits[-1]["ops"]]
    assert "splits/official.json" not in sent and "rejected.jsonl" not in sent
    assert "data/test-00000-of-00001.parquet" in sent and "README.md" in sent

    resplit(out, "--seed", "3", "--ratios", "0.9,0.1", "--replace")  # no test split any more
    assert not (out / "data" / "test-00000-of-00001.parquet").exists()
    res = cli(str(out), REPO)
    assert res.exit_code == 0, res.output
    assert "1 deleted" in res.stdout
    assert remote_tree(hub) == local_tree(out)
    assert ("deletedFile", "data/test-00000-of-00001.parquet") in hub.commits[-1]["ops"]


@pytest.mark.parametrize("mode", ["500", "cut", "cut-after"])
def test_interrupted_commit_resumes_and_ends_identical(hf_env, hub, out, mode):
    # One file per commit: train shard, validation shard, splits, ... README.
    hub.inject("commit", 2, mode)
    with pytest.raises(IndomerError) as err:
        push(out, REPO, max_commit_files=1)
    message = str(err.value)
    assert "\n" not in message and "run the same command again" in message
    assert ("HTTP 500" in message) if mode == "500" else ("cannot reach" in message)
    assert len(hub.commits) == (2 if mode == "cut-after" else 1)

    result = push(out, REPO, max_commit_files=1)
    assert remote_tree(hub) == local_tree(out)
    # The train shard's commit was kept: the retry starts after it. Each LFS object crossed the
    # wire once, even the one whose commit failed (the Hub kept the object).
    assert "data/train-00000-of-00001.parquet" not in [
        f.path for f in result.plan.files if f.status != "unchanged"
    ]
    assert len(hub.uploads) == 2 == len({u["oid"] for u in hub.uploads})
    assert all(c["summary"].startswith(f"indomer: build {build_hash(out)} (") for c in hub.commits)


def test_concurrent_writer_is_detected_not_overwritten(hf_env, hub, out):
    """Each commit names its parent: if someone commits meanwhile, stop instead of racing."""
    hub.inject("commit", 2, "race")
    with pytest.raises(IndomerError, match="changed on the Hub while sending commit 2/"):
        push(out, REPO, max_commit_files=1)
    push(out, REPO, max_commit_files=1)
    assert hub.file_bytes(REPO, "NOTES.md") == b"someone else was here\n"
    assert {p: b for p, b in remote_tree(hub).items() if p != "NOTES.md"} == local_tree(out)


def test_connection_cut_mid_upload_is_retried_by_the_client(hf_env, hub, out):
    hub.inject("upload", 1, "cut")
    res = cli(str(out), REPO)
    assert res.exit_code == 0, res.output
    assert hub.attempts["upload"] == 3 and len(hub.uploads) == 2
    assert remote_tree(hub) == local_tree(out)


def test_killed_push_resumes_without_resending(hf_env, hub, out):
    """SIGKILL the CLI while a shard is on the wire; the rerun finishes the job."""
    hub.inject("upload", 2, "hold")
    cmd = [sys.executable, "-c", "from indomer.cli import main; main()", "push", str(out), REPO]
    proc = subprocess.Popen(cmd, env=hf_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert hub.held.wait(60), "the push never reached its second upload"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        hub.release.set()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert hub.commits == []  # killed before the commit

    res = subprocess.run(cmd, check=False, env=hf_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert remote_tree(hub) == local_tree(out)
    oids = [u["oid"] for u in hub.uploads]
    assert len(oids) == len(set(oids)) == 2  # nothing that arrived whole was sent again


def test_bad_token_is_one_line_and_never_echoed(hf_env, hub, out, tmp_path):
    env = {**hf_env, "HF_TOKEN": BAD_TOKEN, "HF_HUB_VERBOSITY": "debug"}
    cmd = [sys.executable, "-c", "from indomer.cli import main; main()", "push", str(out), REPO]
    res = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "rejected the token in HF_TOKEN" in line
    assert "HTTP 401" in line and "hf auth login" in line
    assert "Traceback" not in res.stderr
    assert BAD_TOKEN not in res.stdout + res.stderr
    assert REPO not in hub.repos and hub.uploads == []
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert BAD_TOKEN.encode() not in path.read_bytes(), path


def test_missing_and_read_only_tokens_are_usage_errors(hf_env, hub, out, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    res = cli(str(out), REPO)
    assert res.exit_code == 2
    assert "no Hugging Face token found" in one_error_line(res)

    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    res = cli(str(out), REPO)
    assert res.exit_code == 2
    assert "read-only" in one_error_line(res) and READ_TOKEN not in res.output
    assert REPO not in hub.repos


def test_dry_run_lists_and_sends_nothing(hf_env, hub, out):
    res = cli(str(out), REPO, "--dry-run")
    assert res.exit_code == 0, res.output
    assert REPO not in hub.repos
    lines = res.stdout.splitlines()
    size = (out / "data" / "train-00000-of-00001.parquet").stat().st_size
    assert any(
        line.split() == ["new", f"{size:,}", "data/train-00000-of-00001.parquet"] for line in lines
    )
    assert "nothing was sent" in lines[-1]

    assert cli(str(out), REPO).exit_code == 0
    resplit(out, "--seed", "3")
    n_requests = len(hub.requests)
    res = cli(str(out), REPO, "--dry-run")
    assert res.exit_code == 0, res.output
    status = {line.split()[-1]: line.split()[0] for line in res.stdout.splitlines()[:-1]}
    assert status["splits/official.json"] == "unchanged"
    assert status["data/test-00000-of-00001.parquet"] == "new"
    assert status["data/train-00000-of-00001.parquet"] == "changed"
    assert status["README.md"] == "changed"
    writes = [r for r in hub.requests[n_requests:] if r[0] in ("PUT", "POST")]
    assert writes == [] and len(hub.commits) == 1 and len(hub.uploads) == 2


def test_revision_creates_the_branch_and_commits_there(hf_env, hub, out):
    res = cli(str(out), REPO, "--revision", "v1.0-draft")
    assert res.exit_code == 0, res.output
    assert hub.calls("POST", f"/api/datasets/{REPO}/branch/v1.0-draft")
    assert hub.calls("POST", f"/api/datasets/{REPO}/commit/v1.0-draft")
    assert remote_tree(hub, "v1.0-draft") == local_tree(out)
    assert remote_tree(hub, "main") == {}  # main keeps only the Hub's .gitattributes
    assert hub.lfs_batches[0]["ref"] == {"name": "v1.0-draft"}
    # The branch exists now: a second push neither re-creates it nor re-sends anything.
    assert cli(str(out), REPO, "--revision", "v1.0-draft").exit_code == 0
    assert len(hub.calls("POST", f"/api/datasets/{REPO}/branch/v1.0-draft")) == 1


def test_create_pr_opens_a_pull_request_and_leaves_main(hf_env, hub, out):
    assert cli(str(out), REPO).exit_code == 0
    main_before = remote_tree(hub)
    resplit(out, "--seed", "3")
    res = cli(str(out), REPO, "--create-pr")
    assert res.exit_code == 0, res.output
    assert f"{hub.url}/datasets/{REPO}/discussions/1" in res.stdout and "refs/pr/1" in res.stdout
    (commit_call,) = hub.calls("POST", f"/api/datasets/{REPO}/commit/main")[-1:]
    assert commit_call[2] == {"create_pr": "1"}
    assert hub.calls("POST", f"/api/datasets/{REPO}/preupload/main")[-1][2] == {"create_pr": "1"}
    assert remote_tree(hub) == main_before
    assert remote_tree(hub, "refs/pr/1") == local_tree(out)


def test_create_pr_in_several_commits_and_its_resume_hint(hf_env, hub, out):
    assert cli(str(out), REPO).exit_code == 0
    resplit(out, "--seed", "3")
    hub.inject("commit", 2, "500")
    with pytest.raises(IndomerError, match=r"--revision refs/pr/1 \(without --create-pr\)"):
        push(out, REPO, create_pr=True, max_commit_files=1)
    push(out, REPO, revision="refs/pr/1", max_commit_files=1)
    assert remote_tree(hub, "refs/pr/1") == local_tree(out)
    pr_commits = [c for c in hub.commits if c["target"] == "refs/pr/1"]
    assert pr_commits[0]["create_pr"] and not any(c["create_pr"] for c in pr_commits[1:])
    assert {c["revision"] for c in pr_commits[1:]} == {"refs/pr/1"}
    with pytest.raises(UsageError, match="drop --create-pr"):
        push(out, REPO, revision="refs/pr/1", create_pr=True)
    with pytest.raises(UsageError, match="no pull request refs/pr/9"):
        push(out, REPO, revision="refs/pr/9")


def test_private_creates_a_private_repo_and_warns_when_it_cannot(hf_env, hub, out):
    assert cli(str(out), REPO, "--private").exit_code == 0
    assert hub.repos[REPO].private
    assert cli(str(out), "alice/public").exit_code == 0
    res = cli(str(out), "alice/public", "--private")
    assert res.exit_code == 0 and "exists and is public" in res.stderr


def test_repo_id_without_namespace_goes_to_the_token_owner(hf_env, hub, out):
    res = cli(str(out), "indomer")
    assert res.exit_code == 0, res.output
    assert REPO in hub.repos


@pytest.mark.parametrize("repo_id", ["alice/in--domer", "a/b/c", "alice/" + "x" * 100, "al ice/x"])
def test_invalid_repo_id_fails_before_any_request(hf_env, hub, out, repo_id):
    res = cli(str(out), repo_id)
    assert res.exit_code == 2
    assert "invalid REPO_ID" in one_error_line(res)
    assert hub.requests == []


def test_not_a_built_dataset(hf_env, hub, out, tmp_path):
    res = cli(str(tmp_path / "empty"), REPO)
    assert res.exit_code == 1 and "no such folder" in one_error_line(res)
    (tmp_path / "empty").mkdir()
    res = cli(str(tmp_path / "empty"), REPO)
    assert res.exit_code == 1 and "not a built dataset" in one_error_line(res)
    with (out / "data" / "train-00000-of-00001.parquet").open("ab") as fh:
        fh.write(b"\0")  # a shard changed after the card was written
    with pytest.raises(DataError, match="not a valid dataset.*sha256 differs"):
        push(out, REPO)
    assert hub.requests == []


def test_network_failure_is_one_line(hf_env, out, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    res = cli(str(out), REPO)
    assert res.exit_code == 1
    line = one_error_line(res)
    assert f"cannot reach http://127.0.0.1:{port}" in line and "HF_ENDPOINT" in line


def test_offline_mode_is_named(hf_env, out, monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    reset_sessions()
    try:
        res = cli(str(out), REPO)
    finally:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        reset_sessions()
    assert res.exit_code == 2 and "HF_HUB_OFFLINE" in one_error_line(res)


def _dead_endpoint(monkeypatch) -> str:
    import socket

    from huggingface_hub import constants

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setattr(constants, "ENDPOINT", url)
    return url


def test_dry_run_offline_lists_files_sizes_and_commit_message(hf_env, out, monkeypatch):
    url = _dead_endpoint(monkeypatch)
    res = cli(str(out), REPO, "--dry-run")
    assert res.exit_code == 0, res.output
    local = local_tree(out)
    rows = [line.split() for line in res.stdout.splitlines() if line.startswith("  unknown ")]
    assert {r[2]: int(r[1].replace(",", "")) for r in rows} == {p: len(b) for p, b in local.items()}
    total = sum(len(b) for b in local.values())
    commit = (
        f'  commit 1/1: "indomer: build {build_hash(out)}" ({len(local)} files, {total:,} bytes)'
    )
    assert commit in res.stdout.splitlines()
    last = res.stdout.splitlines()[-1]
    assert "the remote difference is unknown" in last and f"cannot reach {url}" in last
    assert "nothing was sent" in last
    assert res.stderr.startswith(f"warning: cannot reach {url} (ConnectionError); listing")


def test_dry_run_offline_plans_the_commits_a_push_makes(hf_env, hub, out, monkeypatch):
    from huggingface_hub import constants

    online = constants.ENDPOINT
    _dead_endpoint(monkeypatch)
    offline = push(out, REPO, dry_run=True, max_commit_files=4)
    assert offline.plan.unknown_remote and not offline.commits
    messages = [c[0] for c in offline.plan.commits]
    n = len(messages)
    assert n > 1 and messages[-1] == f"indomer: build {build_hash(out)} ({n}/{n})"
    assert [c[1] for c in offline.plan.commits][:-1] == [4] * (n - 1)
    monkeypatch.setattr(constants, "ENDPOINT", online)
    push(out, REPO, max_commit_files=4)
    assert [c["summary"] for c in hub.commits] == messages  # into an empty repo: the same
    # online, a dry run compares with the Hub: everything is there now
    again = push(out, REPO, dry_run=True, max_commit_files=4)
    assert again.plan.unknown_remote is None and again.plan.commits == ()
    assert {f.status for f in again.plan.files} == {"unchanged"}


def test_dry_run_in_offline_mode_still_lists(hf_env, out, monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    reset_sessions()
    try:
        res = cli(str(out), REPO, "--dry-run")
    finally:
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        reset_sessions()
    assert res.exit_code == 0, res.output
    assert "(HF_HUB_OFFLINE is set); " in res.stdout.splitlines()[-1]
    assert "  unknown " in res.stdout


def test_load_dataset_reads_back_what_was_pushed(hf_env, hub, out, tmp_path):
    assert cli(str(out), REPO).exit_code == 0
    code = f"""
import json, datasets
from huggingface_hub import hf_hub_download
d = datasets.load_dataset({REPO!r})
build = hf_hub_download({REPO!r}, "build.json", repo_type="dataset")
print(json.dumps({{
    "splits": {{s: list(d[s]["id"]) for s in d}},
    "emotion": {{s: d[s].features["emotion"].int2str(list(d[s]["emotion"])) for s in d}},
    "build": open(build, encoding="utf-8").read(),
}}))
"""
    env = {**hf_env, "HF_DATASETS_CACHE": str(tmp_path / "ds_cache")}
    res = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["build"] == (out / "build.json").read_text(encoding="utf-8")
    names = json.loads((out / "build.json").read_text())["outputs"]["splits"]
    assert sorted(got["splits"]) == sorted(names)
    for split in names:
        table = pq.read_table(out / "data" / f"{split}-00000-of-00001.parquet")
        assert got["splits"][split] == table.column("id").to_pylist()
        emotions = label_set("emotion").names
        assert got["emotion"][split] == [emotions[i] for i in table.column("emotion").to_pylist()]
    assert hub.calls("GET", f"/datasets/{REPO}/resolve/.*/data/train-00000-of-00001.parquet")
