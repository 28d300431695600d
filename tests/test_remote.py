"""``--release github:OWNER/REPO@COMMIT``: download, verify, cache, against a local HTTP server."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from quiet_server import QuietHTTPServer

from indomer import remote
from indomer.errors import DataError, UsageError
from indomer.remote import release_provenance, resolve_release

FULL = "49204672b9387223ebfec19de07e75e81549d477"
UNKNOWN = "deadbeef0"
OWNER, REPO = "yanxm01", "INDOMER"
FILES = sorted(remote.load_checksums()["files"])
FAST = {"retries": 2, "backoff": 0.0, "timeout": 5.0}


class Server:
    """A raw.githubusercontent.com stand-in with knobs for the failures we must survive."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: Counter[str] = Counter()
        self.fail_once: set[str] = set()  # answer 500 the first time
        self.fail_always: set[str] = set()  # answer 500 every time
        self.truncate: set[str] = set()  # send half the body, then close the connection
        self.truncate_once: set[str] = set()
        self.no_length: set[str] = set()  # omit Content-Length (with truncate: EOF looks normal)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                rel = self.path.lstrip("/")
                server.requests[rel] += 1
                name = rel.split("/", 3)[-1]
                if name in server.fail_always or (
                    name in server.fail_once and server.requests[rel] == 1
                ):
                    self.send_error(500)
                    return
                path = (server.root / rel).resolve()
                if server.root not in path.parents or not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                cut = name in server.truncate or (
                    name in server.truncate_once and server.requests[rel] == 1
                )
                self.send_response(200)
                if name not in server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def file(self, ref: str, rel: str) -> Path:
        return self.root / OWNER / REPO / ref / rel

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(release_dir: Path, tmp_path: Path, monkeypatch):
    root = (tmp_path / "served").resolve()
    for ref in (FULL, "4920467", UNKNOWN):
        for rel in FILES:
            dst = root / OWNER / REPO / ref / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(release_dir / rel, dst)
    srv = Server(root)
    monkeypatch.setenv("INDOMER_GITHUB_RAW_URL", srv.url)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    yield srv
    srv.close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _leftovers(folder: Path) -> list[str]:
    """Everything in the cache folder (temp files included)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksum_table_matches_shared_release_and_importer_layout(release_dir: Path) -> None:
    from indomer.release import CSV_NAME, JSON_FILES

    table = remote.load_checksums()
    layout = {CSV_NAME, *(f for pair in JSON_FILES for f in pair)}
    assert set(table["files"]) == layout
    for rel, pinned in table["files"].items():
        assert pinned == {
            "sha256": _sha(release_dir / rel),
            "size": (release_dir / rel).stat().st_size,
        }
    assert table["recommended_commit"] == FULL


def test_download_verify_and_reuse_without_network(server: Server, cache: Path, release_dir: Path):
    messages: list[str] = []
    folder = resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, log=messages.append, **FAST)
    assert folder == cache / "releases" / f"{OWNER}__{REPO}__{FULL}"
    for rel in FILES:
        assert (folder / rel).read_bytes() == (release_dir / rel).read_bytes()
    assert server.total == len(FILES)
    assert _leftovers(folder) == sorted([*FILES, remote.MARKER])
    assert any("downloading Annotations.csv" in m for m in messages)

    again = resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    assert again == folder
    assert server.total == len(FILES)  # no request the second time

    prov = release_provenance(folder)
    assert prov["spec"] == f"github:{OWNER}/{REPO}@{FULL}"
    assert prov["url_base"] == server.url
    assert prov["repository"] == f"{OWNER}/{REPO}"
    assert prov["commit"] == FULL
    assert prov["verified"] is True
    assert prov["files"] == remote.load_checksums()["files"]


def test_short_hash_and_upper_case_are_accepted(server: Server, cache: Path) -> None:
    folder = resolve_release(f"github:{OWNER}/{REPO}@4920467", cache, **FAST)
    assert folder.name == f"{OWNER}__{REPO}__4920467"
    assert release_provenance(folder)["verified"] is True
    assert remote.parse_spec(f"github:{OWNER}/{REPO}@{FULL.upper()}").ref == FULL
    assert remote.is_known_commit("bd1d410") and remote.is_known_commit(FULL[:12])
    assert not remote.is_known_commit("4920468")


def test_tampered_file_is_refused_and_nothing_is_cached(server: Server, cache: Path) -> None:
    rel = "7_Class/7_class_val.json"
    target = server.file(FULL, rel)
    target.write_bytes(target.read_bytes().replace(b"kebahagiaan", b"kesedihan", 1))
    with pytest.raises(DataError) as err:
        resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    msg = str(err.value)
    assert rel in msg
    assert remote.load_checksums()["files"][rel]["sha256"] in msg
    assert _sha(target) in msg
    folder = cache / "releases" / f"{OWNER}__{REPO}__{FULL}"
    assert rel not in _leftovers(folder)
    assert not any(p.endswith(".part") for p in _leftovers(folder))
    assert remote.MARKER not in _leftovers(folder)
    assert server.requests[f"{OWNER}/{REPO}/{FULL}/{rel}"] == 1  # a mismatch is not retried


def test_corrupted_cached_file_is_downloaded_again(server: Server, cache: Path) -> None:
    folder = resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    (folder / "Annotations.csv").write_bytes(b"video_name\n")
    with pytest.raises(DataError, match="changed since it was downloaded"):
        release_provenance(folder)
    resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    assert server.total == len(FILES) + 1
    assert release_provenance(folder)["verified"] is True


def test_404_names_the_file_and_is_not_retried(server: Server, cache: Path) -> None:
    rel = "3_Class/3_class_train.json"
    server.file(FULL, rel).unlink()
    with pytest.raises(DataError) as err:
        resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    msg = str(err.value)
    assert rel in msg and "404" in msg and "check that commit" in msg
    assert server.requests[f"{OWNER}/{REPO}/{FULL}/{rel}"] == 1


def test_500_once_is_retried(server: Server, cache: Path) -> None:
    server.fail_once.add("Annotations.csv")
    messages: list[str] = []
    folder = resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, log=messages.append, **FAST)
    assert server.requests[f"{OWNER}/{REPO}/{FULL}/Annotations.csv"] == 2
    assert (folder / "Annotations.csv").is_file()
    assert any("HTTP 500" in m and "retrying" in m for m in messages)


def test_500_forever_gives_up_after_retries(server: Server, cache: Path) -> None:
    server.fail_always.add("Annotations.csv")
    with pytest.raises(DataError, match=r"Annotations\.csv .* after 3 tries \(HTTP 500\)"):
        resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    assert server.requests[f"{OWNER}/{REPO}/{FULL}/Annotations.csv"] == 3


def test_interrupted_download_leaves_no_complete_looking_file(server: Server, cache: Path) -> None:
    rel = "3_Class/3_class_train.json"
    server.truncate.add(rel)
    with pytest.raises(DataError, match="connection closed after|connection lost after"):
        resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    folder = cache / "releases" / f"{OWNER}__{REPO}__{FULL}"
    left = _leftovers(folder)
    assert rel not in left and remote.MARKER not in left
    assert not any(p.endswith(".part") for p in left)
    assert server.requests[f"{OWNER}/{REPO}/{FULL}/{rel}"] == 3


def test_interruption_once_is_retried(server: Server, cache: Path) -> None:
    server.truncate_once.add("Annotations.csv")
    folder = resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    assert release_provenance(folder)["verified"] is True
    assert server.requests[f"{OWNER}/{REPO}/{FULL}/Annotations.csv"] == 2


def test_interruption_without_length_is_caught_by_the_checksum(server: Server, cache: Path) -> None:
    rel = "7_Class/7_class_train.json"
    server.truncate.add(rel)
    server.no_length.add(rel)
    with pytest.raises(DataError, match="failed its checksum"):
        resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    left = _leftovers(cache / "releases" / f"{OWNER}__{REPO}__{FULL}")
    assert rel not in left and not any(p.endswith(".part") for p in left)


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("github:../x@4920467", "OWNER and REPO"),
        ("github:a/..@4920467", "OWNER and REPO"),
        ("github:a/b..c@4920467", "OWNER and REPO"),
        ("github:a/.b@4920467", "OWNER and REPO"),
        ("github:a@4920467", "OWNER and REPO"),
        ("github:a/b/c@4920467", "OWNER and REPO"),
        ("github:/b@4920467", "OWNER and REPO"),
        ("github:a/b@main", "is not a commit hash"),
        ("github:a/b@4920467/../x", "is not a commit hash"),
        ("github:a/b@492046", "is not a commit hash"),
        ("github:a/b@", "is not a commit hash"),
        ("github:a/b", "no @COMMIT"),
    ],
)
def test_bad_specs_are_usage_errors(spec: str, needle: str, server: Server, cache: Path) -> None:
    with pytest.raises(UsageError, match=needle) as err:
        resolve_release(spec, cache, **FAST)
    assert f"github:{OWNER}/{REPO}@{FULL}" in str(err.value)  # shows the correct form
    assert server.total == 0
    assert not cache.exists()


def test_branch_message_says_to_pin_a_commit() -> None:
    with pytest.raises(UsageError, match="pin a 7-40 character commit hash"):
        remote.parse_spec("github:yanxm01/INDOMER@main")


def test_unknown_commit_needs_allow_unverified(server: Server, cache: Path) -> None:
    spec = f"github:{OWNER}/{REPO}@{UNKNOWN}"
    with pytest.raises(UsageError, match="no pinned checksums"):
        resolve_release(spec, cache, **FAST)
    assert server.total == 0

    messages: list[str] = []
    folder = resolve_release(spec, cache, allow_unverified=True, log=messages.append, **FAST)
    prov = release_provenance(folder)
    assert prov["verified"] is False and prov["commit"] == UNKNOWN
    assert prov["files"] == remote.load_checksums()["files"]  # same bytes as served
    assert any("warning" in m for m in messages)

    resolve_release(spec, cache, allow_unverified=True, **FAST)
    assert server.total == len(FILES)  # reused, checked against the recorded hashes
    with pytest.raises(UsageError):
        resolve_release(spec, cache, **FAST)  # the cache does not lift the refusal

    (folder / "Annotations.csv").write_bytes(b"changed")
    resolve_release(spec, cache, allow_unverified=True, **FAST)
    assert server.total == len(FILES) + 1
    assert release_provenance(folder)["files"]["Annotations.csv"]["size"] > 7


def test_base_url_with_credentials_is_refused(server: Server, cache: Path, monkeypatch) -> None:
    monkeypatch.setenv("INDOMER_GITHUB_RAW_URL", "https://user:s3cret@mirror.example")
    with pytest.raises(UsageError, match="credentials") as err:
        resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)
    assert "s3cret" not in str(err.value)
    monkeypatch.setenv("INDOMER_GITHUB_RAW_URL", "file:///etc")
    with pytest.raises(UsageError, match="plain http"):
        resolve_release(f"github:{OWNER}/{REPO}@{FULL}", cache, **FAST)


def test_default_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INDOMER_CACHE", str(tmp_path / "c"))
    assert remote.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("INDOMER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert remote.default_cache_dir() == tmp_path / "xdg" / "indomer"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # invalid per the XDG spec: ignored
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert remote.default_cache_dir() == tmp_path / "home" / ".cache" / "indomer"


def test_default_cache_is_used_without_cache_dir(server: Server, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("INDOMER_CACHE", str(tmp_path / "env-cache"))
    folder = resolve_release(f"github:{OWNER}/{REPO}@{FULL}", **FAST)
    assert folder == tmp_path / "env-cache" / "releases" / f"{OWNER}__{REPO}__{FULL}"


def test_local_path_is_returned_as_is(release_dir: Path, tmp_path: Path) -> None:
    assert resolve_release(str(release_dir)) == release_dir
    prov = release_provenance(release_dir)
    assert prov == {"files": remote.load_checksums()["files"], "verified": True}
    assert "spec" not in prov  # the importer records the folder name, never an absolute path
    with pytest.raises(UsageError, match="no such folder"):
        resolve_release(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no Annotations.csv"):
        resolve_release(str(tmp_path / "empty"))


def test_local_copy_that_differs_is_not_verified(release_copy: Path) -> None:
    (release_copy / "3_Class" / "3_class_val.json").unlink()
    prov = release_provenance(release_copy)
    assert prov["verified"] is False
    assert "3_Class/3_class_val.json" not in prov["files"]
