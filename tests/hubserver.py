"""A Hugging Face Hub stand-in on 127.0.0.1 that speaks the routes ``huggingface_hub`` uses.

Tests point ``HF_ENDPOINT`` at :attr:`FakeHub.url` and drive the real client against it, so
what is checked is the wire protocol, not a mock of our own calls. Covered (dataset repos):

- ``GET /api/whoami-v2``; ``POST /api/repos/create``; ``POST /api/validate-yaml``
- ``GET /api/datasets/{id}[/revision/{rev}]``, ``GET .../refs``, ``POST .../branch/{name}``
- ``GET .../tree/{rev}[/{path}]`` (recursive, paginated by ``Link: rel="next"``),
  ``POST .../paths-info/{rev}`` (form-encoded, as the client sends it)
- ``POST .../preupload/{rev}`` (decides regular vs LFS), ``POST .../commit/{rev}`` (NDJSON,
  ``create_pr=1``, ``parentCommit``)
- ``POST /datasets/{id}.git/info/lfs/objects/batch`` answering only the ``basic`` transfer (so
  the client never takes the Xet path), ``PUT`` upload, ``POST`` verify
- ``HEAD``/``GET /datasets/{id}/resolve/{rev}/{path}`` with ``Range``, for ``hf_hub_download``
  and ``datasets.load_dataset``

Everything received is kept on disk, content-addressed by sha256 under ``root/objects``, so a
test can compare bytes. Faults (HTTP 500, a cut connection, a held upload) can be injected on
the Nth upload or commit to test resuming.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from quiet_server import QuietHTTPServer

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
#: The Hub's default .gitattributes makes these LFS whatever their size.
LFS_PATTERNS = re.compile(
    r".*\.(parquet|arrow|bin|h5|npy|npz|pt|pth|safetensors|zip|gz|tar|wav|mp4|mp3)\Z"
)
LFS_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = "".join(
    f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
    for ext in ("parquet", "arrow", "bin", "wav", "mp4", "mp3", "zip", "gz", "tar")
)
CHUNK = 1 << 20


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob: sha1 of ``blob {size}\\0`` + content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One file in a commit's tree; the content lives at ``objects/{sha256}``."""

    size: int
    sha256: str
    blob_oid: str  # git oid of the content (regular) or of the LFS pointer (lfs)
    lfs: bool

    def pointer(self) -> bytes:
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {self.size}\n"
        ).encode()


@dataclass
class Commit:
    oid: str
    parent: str | None
    tree: dict[str, Entry]
    summary: str
    description: str
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    refs: dict[str, str] = field(default_factory=dict)  # "main", "dev", "refs/pr/1" -> oid
    commits: dict[str, Commit] = field(default_factory=dict)
    n_discussions: int = 0


class HubError(Exception):
    """Raised inside a handler: becomes an HTTP error response shaped like the Hub's."""

    def __init__(
        self, status: int, message: str, code: str | None = None, extra: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.extra = extra or {}


class Cut(Exception):
    """Close the connection without answering (an injected network failure)."""


class FakeHub:
    """The server and its state. Use as a context manager, or call start()/stop()."""

    def __init__(
        self, root: Path, tokens: dict[str, tuple[str, str]] | None = None, page_size: int = 1000
    ) -> None:
        #: token -> (user name, role "write" | "read")
        self.tokens = dict(tokens or {"hf_test_write_token_0123456789": ("alice", "write")})
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        self.page_size = page_size
        self.repos: dict[str, Repo] = {}
        self.lock = threading.RLock()
        #: Every request: (method, unquoted path, query dict, user or None).
        self.requests: list[tuple[str, str, dict, str | None]] = []
        #: Completed LFS PUTs: {"oid", "size"}; a test counts what was sent here.
        self.uploads: list[dict] = []
        #: Every commit accepted: {"repo", "revision", "create_pr", "summary", ...}.
        self.commits: list[dict] = []
        #: Every LFS batch request: {"transfers" offered, "transfer" chosen, "ref"}.
        self.lfs_batches: list[dict] = []
        self.attempts = {"upload": 0, "commit": 0}
        self._faults: dict[tuple[str, int], str] = {}
        self.held = threading.Event()
        self.release = threading.Event()
        self._server: QuietHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test helpers ----------------------------------------------------------------------

    def inject(self, kind: str, nth: int, mode: str) -> None:
        """Fail the ``nth`` (1-based, counted from now) ``upload`` or ``commit`` attempt.

        ``mode``: ``"500"`` answers HTTP 500; ``"cut"`` closes the connection without an
        answer (after reading half the body of an upload); ``"cut-after"`` (commits) applies
        the commit, then cuts, so the client never learns it succeeded; ``"race"`` (commits)
        lets another writer commit to the branch first; ``"hold"`` (uploads)
        sets :attr:`held` and waits for :attr:`release`, then cuts.
        """
        with self.lock:
            self._faults[(kind, self.attempts[kind] + nth)] = mode

    def tree(self, repo_id: str, revision: str = "main") -> dict[str, Entry]:
        with self.lock:
            repo = self.repos[repo_id]
            return dict(repo.commits[self._resolve(repo, revision)].tree)

    def head(self, repo_id: str, revision: str = "main") -> str:
        with self.lock:
            repo = self.repos[repo_id]
            return self._resolve(repo, revision)

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256

    def file_bytes(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        return self.object_path(self.tree(repo_id, revision)[path].sha256).read_bytes()

    def calls(self, method: str, pattern: str) -> list[tuple[str, str, dict, str | None]]:
        """Requests whose method matches and whose path matches the regex ``pattern``."""
        rx = re.compile(pattern)
        return [r for r in self.requests if r[0] == method and rx.fullmatch(r[1])]

    def add_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self.lock:
            repo = Repo(repo_id, private)
            content = GITATTRIBUTES.encode()
            entry = self._store_bytes(content, lfs=False)
            oid = self._new_commit(repo, None, {".gitattributes": entry}, "initial commit", "")
            repo.refs["main"] = oid
            self.repos[repo_id] = repo
            return repo

    # -- state -----------------------------------------------------------------------------

    def _resolve(self, repo: Repo, revision: str) -> str:
        if revision in repo.refs:
            return repo.refs[revision]
        if revision in repo.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _new_commit(
        self, repo: Repo, parent: str | None, tree: dict[str, Entry], summary: str, description: str
    ) -> str:
        body = json.dumps(
            [
                parent,
                summary,
                description,
                sorted((p, e.sha256) for p, e in tree.items()),
                time.time_ns(),
            ]
        ).encode()
        oid = hashlib.sha1(body).hexdigest()
        date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        repo.commits[oid] = Commit(oid, parent, tree, summary, description, date)
        return oid

    def _store_bytes(self, data: bytes, lfs: bool) -> Entry:
        sha = hashlib.sha256(data).hexdigest()
        target = self.object_path(sha)
        if not target.exists():
            tmp = target.with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        entry = Entry(len(data), sha, git_blob_oid(data), lfs)
        if lfs:
            entry = Entry(len(data), sha, git_blob_oid(entry.pointer()), True)
        return entry

    def _lfs_entry(self, sha: str) -> Entry:
        size = self.object_path(sha).stat().st_size
        stub = Entry(size, sha, "", True)
        return Entry(size, sha, git_blob_oid(stub.pointer()), True)


def _dirs(tree: dict[str, Entry]) -> set[str]:
    out = set()
    for path in tree:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return out


def _file_json(path: str, e: Entry, commit: Commit | None) -> dict:
    item = {"type": "file", "oid": e.blob_oid, "size": e.size, "path": path}
    if e.lfs:
        item["lfs"] = {"oid": e.sha256, "size": e.size, "pointerSize": len(e.pointer())}
    if commit is not None:
        item["lastCommit"] = {"id": commit.oid, "title": commit.summary, "date": commit.date}
    return item


def _dir_json(path: str, commit: Commit | None) -> dict:
    item = {
        "type": "directory",
        "oid": hashlib.sha1(path.encode()).hexdigest(),
        "size": 0,
        "path": path,
    }
    if commit is not None:
        item["lastCommit"] = {"id": commit.oid, "title": commit.summary, "date": commit.date}
    return item


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub

    def log_message(self, format: str, *args) -> None:
        pass

    # -- plumbing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def _body_chunks(self):
        """Yield the request body (Content-Length or chunked) without holding it whole."""
        if self._consumed:
            return
        self._consumed = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from self._blocks(size)
                self.rfile.readline()
        else:
            yield from self._blocks(int(self.headers.get("Content-Length") or 0))

    def _blocks(self, left: int):
        """The next ``left`` bytes of the body, a block at a time (a short read: a cut)."""
        while left:
            block = self.rfile.read(min(CHUNK, left))
            if not block:
                raise Cut()
            left -= len(block)
            yield block

    def _body(self) -> bytes:
        return b"".join(self._body_chunks())

    def _send(
        self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None
    ) -> None:
        if body is None:
            body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _cut(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _user(self) -> tuple[str | None, str | None]:
        auth = self.headers.get("Authorization")
        if not auth:
            return None, None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.hub.tokens:
            raise HubError(401, INVALID_CREDENTIALS)
        return self.hub.tokens[token]

    def _dispatch(self, method: str) -> None:
        self._consumed = False
        parts = urlsplit(self.path)
        raw_segments = parts.path.split("/")[1:]
        segments = [unquote(s) for s in raw_segments]
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        user = role = None
        try:
            try:
                user, role = self._user()
            finally:
                with self.hub.lock:
                    self.hub.requests.append((method, unquote(parts.path), query, user))
            self._route(method, segments, query, user, role)
        except HubError as exc:
            headers = {"X-Error-Message": exc.message}
            if exc.code:
                headers["X-Error-Code"] = exc.code
            self._drain()
            self._send(exc.status, {"error": exc.message, **exc.extra}, headers)
        except Cut:
            self._cut()

    def _drain(self) -> None:
        try:
            for _ in self._body_chunks():
                pass
        except (Cut, ValueError, OSError):
            self.close_connection = True

    # -- routing ---------------------------------------------------------------------------

    def _route(
        self, method: str, seg: list[str], query: dict, user: str | None, role: str | None
    ) -> None:
        if seg[:2] == ["api", "whoami-v2"] and method == "GET":
            if user is None:
                raise HubError(401, INVALID_CREDENTIALS)
            return self._send(
                200,
                {
                    "type": "user",
                    "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                    "name": user,
                    "fullname": user,
                    "orgs": [],
                    "auth": {
                        "type": "access_token",
                        "accessToken": {"displayName": "test", "role": role},
                    },
                },
            )
        if seg[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(user, role)
        if seg[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if seg[:2] == ["api", "datasets"] and len(seg) >= 4:
            repo_id = f"{seg[2]}/{seg[3]}"
            rest = seg[4:]
            return self._api_dataset(method, repo_id, rest, query, user, role)
        if seg[0] == "datasets" and len(seg) >= 4 and seg[2].endswith(".git"):
            repo_id = f"{seg[1]}/{seg[2][:-4]}"
            if seg[3:] == ["info", "lfs", "objects", "batch"] and method == "POST":
                return self._lfs_batch(repo_id, user, role)
            if seg[3:] == ["info", "lfs", "objects", "verify"] and method == "POST":
                return self._lfs_verify(repo_id, user, role)
        if (
            seg[0] == "datasets"
            and len(seg) >= 6
            and seg[3] == "resolve"
            and method in ("GET", "HEAD")
        ):
            repo_id = f"{seg[1]}/{seg[2]}"
            return self._resolve_file(repo_id, seg[4], "/".join(seg[5:]), user)
        if seg[0] == "lfs-upload" and method == "PUT":
            return self._lfs_put(seg[1])
        raise HubError(404, f"fake hub: no route for {method} /{'/'.join(seg)}")

    def _repo(
        self, repo_id: str, user: str | None, write: bool = False, role: str | None = None
    ) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and user != repo_id.split("/")[0]):
            # The Hub answers 401 + RepoNotFound for missing and for private-but-not-yours.
            raise HubError(401, "Repository not found", "RepoNotFound")
        if write:
            self._check_write(repo_id, user, role)
        return repo

    def _check_write(self, repo_id: str, user: str | None, role: str | None) -> None:
        if user is None:
            raise HubError(401, "You must be authenticated to write")
        if role != "write":
            raise HubError(403, "This token does not have write access")
        if repo_id.split("/")[0] != user:
            raise HubError(403, f"You don't have the rights to write to {repo_id}")

    def _create_repo(self, user: str | None, role: str | None) -> None:
        payload = json.loads(self._body() or b"{}")
        name, org = payload.get("name"), payload.get("organization")
        if payload.get("type") != "dataset":
            raise HubError(400, "fake hub only hosts datasets")
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        repo_id = f"{org or user}/{name}"
        self._check_write(repo_id, user, role)
        url = f"{self.hub.url}/datasets/{repo_id}"
        with self.hub.lock:
            if repo_id in self.hub.repos:
                # The Hub's 409 carries the url; create_repo(exist_ok=True) reads it.
                raise HubError(409, "You already created this dataset repo", extra={"url": url})
            self.hub.add_repo(repo_id, private=bool(payload.get("private")))
        self._send(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        payload = json.loads(self._body())
        content = payload.get("content", "")
        m = re.match(r"\A---\n(.*?)\n---\n", content, re.DOTALL)
        errors = []
        if m:
            try:
                meta = yaml.safe_load(m.group(1))
                if not isinstance(meta, dict):
                    errors.append({"message": "metadata is not a mapping"})
            except yaml.YAMLError as exc:
                errors.append({"message": f"invalid YAML: {exc}"})
        status = 400 if errors else 200
        self._send(status, {"errors": errors, "warnings": []})

    # -- /api/datasets/{id}/... ------------------------------------------------------------

    def _api_dataset(
        self,
        method: str,
        repo_id: str,
        rest: list[str],
        query: dict,
        user: str | None,
        role: str | None,
    ) -> None:
        hub = self.hub
        with hub.lock:
            repo = self._repo(repo_id, user)
        if method == "GET" and (not rest or rest[0] == "revision"):
            rev = rest[1] if len(rest) > 1 else "main"
            return self._info(repo, rev)
        if method == "GET" and rest == ["refs"]:
            with hub.lock:
                refs = dict(repo.refs)
            branches = [
                {"name": n, "ref": f"refs/heads/{n}", "targetCommit": o}
                for n, o in sorted(refs.items())
                if not n.startswith("refs/")
            ]
            out = {"branches": branches, "converts": [], "tags": []}
            if query.get("include_prs"):
                out["pullRequests"] = [
                    {"name": n, "ref": n, "targetCommit": o}
                    for n, o in sorted(refs.items())
                    if n.startswith("refs/pr/")
                ]
            return self._send(200, out)
        if method == "POST" and rest[:1] == ["branch"] and len(rest) == 2:
            return self._create_branch(repo, rest[1], user, role)
        if method == "GET" and rest[:1] == ["tree"] and len(rest) >= 2:
            return self._tree(repo, rest[1], "/".join(rest[2:]), query)
        if method == "POST" and rest[:1] == ["paths-info"] and len(rest) == 2:
            return self._paths_info(repo, rest[1])
        if method == "POST" and rest[:1] == ["preupload"] and len(rest) == 2:
            self._check_write(repo_id, user, role)
            return self._preupload(repo, rest[1])
        if method == "POST" and rest[:1] == ["commit"] and len(rest) == 2:
            self._check_write(repo_id, user, role)
            return self._commit(repo, rest[1], query)
        raise HubError(
            404, f"fake hub: no route for {method} /api/datasets/{repo_id}/" + "/".join(rest)
        )

    def _info(self, repo: Repo, rev: str) -> None:
        with self.hub.lock:
            oid = self.hub._resolve(repo, rev)
            commit = repo.commits[oid]
        card = None
        if "README.md" in commit.tree:
            text = self.hub.object_path(commit.tree["README.md"].sha256).read_text("utf-8")
            m = re.match(r"\A---\n(.*?)\n---\n", text, re.DOTALL)
            card = yaml.safe_load(m.group(1)) if m else None
        ns = repo.repo_id.split("/")[0]
        self._send(
            200,
            {
                "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "author": ns,
                "sha": oid,
                "lastModified": commit.date,
                "createdAt": commit.date,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "xetEnabled": False,
                "cardData": card,
                "siblings": [{"rfilename": p} for p in sorted(commit.tree)],
            },
        )

    def _create_branch(self, repo: Repo, branch: str, user: str | None, role: str | None) -> None:
        self._check_write(repo.repo_id, user, role)
        payload = json.loads(self._body() or b"{}")
        with self.hub.lock:
            if branch in repo.refs:
                raise HubError(409, "Reference already exists")
            start = self.hub._resolve(repo, payload.get("startingPoint") or "main")
            repo.refs[branch] = start
        self._send(200, {})

    def _tree(self, repo: Repo, rev: str, path: str, query: dict) -> None:
        with self.hub.lock:
            commit = repo.commits[self.hub._resolve(repo, rev)]
        tree = commit.tree
        recursive = query.get("recursive", "False").lower() == "true"
        expand = query.get("expand", "False").lower() == "true"
        dirs = _dirs(tree)
        prefix = f"{path}/" if path else ""
        if path and path not in dirs:
            if path in tree:
                raise HubError(400, f"{path} is a file, not a folder")
            raise HubError(404, f"{path} does not exist", "EntryNotFound")
        items = []
        last = commit if expand else None
        for d in sorted(dirs):
            if d.startswith(prefix) and (recursive or "/" not in d[len(prefix) :]):
                items.append(_dir_json(d, last))
        for p in sorted(tree):
            if p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :]):
                items.append(_file_json(p, tree[p], last))
        items.sort(key=lambda i: i["path"])
        start = int(query.get("cursor", 0))
        page = items[start : start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(items):
            q = f"recursive={recursive}&expand={expand}&cursor={start + self.hub.page_size}"
            headers["Link"] = f'<{self.hub.url}{urlsplit(self.path).path}?{q}>; rel="next"'
        self._send(200, page, headers)

    def _paths_info(self, repo: Repo, rev: str) -> None:
        body = self._body().decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(body)
            paths, expand = form.get("paths", []), bool(form.get("expand"))
        else:
            form = parse_qs(body)
            paths = form.get("paths", [])
            expand = form.get("expand", ["False"])[-1].lower() == "true"
        with self.hub.lock:
            commit = repo.commits[self.hub._resolve(repo, rev)]
        dirs = _dirs(commit.tree)
        last = commit if expand else None
        out = []
        for p in paths:
            p = p.strip("/")
            if p in commit.tree:
                out.append(_file_json(p, commit.tree[p], last))
            elif p in dirs:
                out.append(_dir_json(p, last))
        self._send(200, out)

    def _preupload(self, repo: Repo, rev: str) -> None:
        payload = json.loads(self._body())
        with self.hub.lock:
            tree = repo.commits[self.hub._resolve(repo, rev)].tree
        files = []
        for f in payload["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = bool(LFS_PATTERNS.match(f["path"])) or f["size"] >= LFS_SIZE or b"\0" in sample
            old = tree.get(f["path"])
            oid = None if old is None else (old.sha256 if old.lfs else old.blob_oid)
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._send(200, {"files": files})

    def _commit(self, repo: Repo, rev: str, query: dict) -> None:
        hub = self.hub
        with hub.lock:
            hub.attempts["commit"] += 1
            fault = hub._faults.pop(("commit", hub.attempts["commit"]), None)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if fault == "500":
            raise HubError(500, "Internal Error - injected by the fake hub")
        if fault in ("cut", "hold"):
            raise Cut()
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        create_pr = query.get("create_pr") == "1"
        with hub.lock:
            if rev not in repo.refs:
                raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            if fault == "race":  # another writer commits first
                tree = dict(repo.commits[repo.refs[rev]].tree)
                tree["NOTES.md"] = hub._store_bytes(b"someone else was here\n", lfs=False)
                repo.refs[rev] = hub._new_commit(repo, repo.refs[rev], tree, "other writer", "")
            head = repo.refs[rev]
            parent = header.get("parentCommit")
            if parent is not None and parent not in repo.commits:
                raise HubError(400, f"parentCommit {parent} does not exist")
            if parent is not None and not create_pr and parent != head:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            base = parent if (create_pr and parent) else head
            tree = dict(repo.commits[base].tree)
            ops = []
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    data = base64.b64decode(value["content"])
                    tree[path] = hub._store_bytes(data, lfs=False)
                elif key == "lfsFile":
                    if not hub.object_path(value["oid"]).exists():
                        raise HubError(
                            422, f"LFS object {value['oid']} for {path} was not uploaded"
                        )
                    tree[path] = hub._lfs_entry(value["oid"])
                elif key == "deletedFile":
                    if path not in tree:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del tree[path]
                elif key == "deletedFolder":
                    for p in [p for p in tree if p.startswith(path.rstrip("/") + "/")]:
                        del tree[p]
                else:
                    raise HubError(400, f"unknown commit operation {key}")
                ops.append((key, path))
            oid = hub._new_commit(
                repo, base, tree, header.get("summary", ""), header.get("description", "")
            )
            pr_url = None
            target = rev
            if create_pr:
                repo.n_discussions += 1
                target = f"refs/pr/{repo.n_discussions}"
                pr_url = f"{hub.url}/datasets/{repo.repo_id}/discussions/{repo.n_discussions}"
            repo.refs[target] = oid
            hub.commits.append(
                {
                    "repo": repo.repo_id,
                    "revision": rev,
                    "target": target,
                    "create_pr": create_pr,
                    "summary": header.get("summary"),
                    "description": header.get("description"),
                    "parent": parent,
                    "oid": oid,
                    "ops": ops,
                }
            )
        if fault == "cut-after":
            raise Cut()  # committed, but the client never hears so
        self._send(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{hub.url}/datasets/{repo.repo_id}/commit/{oid}",
                "commitMessage": header.get("summary"),
                "pullRequestUrl": pr_url,
            },
        )

    # -- LFS ---------------------------------------------------------------------------------

    def _lfs_batch(self, repo_id: str, user: str | None, role: str | None) -> None:
        hub = self.hub
        with hub.lock:
            self._repo(repo_id, user, write=True, role=role)
        payload = json.loads(self._body())
        if payload.get("operation") != "upload":
            raise HubError(400, "fake hub: only uploads go through the batch API")
        offered = payload.get("transfers") or ["basic"]
        if "basic" not in offered:
            raise HubError(400, "fake hub speaks only the basic transfer")
        with hub.lock:
            hub.lfs_batches.append(
                {"transfers": offered, "transfer": "basic", "ref": payload.get("ref")}
            )
        objects = []
        for obj in payload["objects"]:
            oid, size = obj["oid"], obj["size"]
            item = {"oid": oid, "size": size, "authenticated": True}
            if not hub.object_path(oid).exists():
                item["actions"] = {
                    "upload": {
                        "href": f"{hub.url}/lfs-upload/{oid}?size={size}",
                        "header": {"X-Fake-Upload": "1"},
                    },
                    "verify": {
                        "href": f"{hub.url}/datasets/{repo_id}.git/info/lfs/objects/verify",
                        "header": {},
                    },
                }
            objects.append(item)
        self._send(
            200,
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, oid: str) -> None:
        hub = self.hub
        with hub.lock:
            hub.attempts["upload"] += 1
            fault = hub._faults.pop(("upload", hub.attempts["upload"]), None)
        expected = int(urlsplit(self.path).query.removeprefix("size=") or -1)
        if fault == "500":
            self._drain()
            raise HubError(500, "Internal Error - injected by the fake hub")
        fd, tmp = tempfile.mkstemp(dir=hub.root / "objects", suffix=".part")
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for block in self._body_chunks():
                    h.update(block)
                    fh.write(block)
                    size += len(block)
                    if fault and size >= expected // 2:
                        if fault == "hold":
                            hub.held.set()
                            hub.release.wait(60)
                        raise Cut()
            if h.hexdigest() != oid or size != expected:
                raise HubError(400, f"upload of {oid}: got {size} bytes with another sha256")
            os.replace(tmp, hub.object_path(oid))
        finally:
            Path(tmp).unlink(missing_ok=True)
        with hub.lock:
            hub.uploads.append({"oid": oid, "size": size})
        self._send(200, {})

    def _lfs_verify(self, repo_id: str, user: str | None, role: str | None) -> None:
        with self.hub.lock:
            self._repo(repo_id, user, write=True, role=role)
        payload = json.loads(self._body())
        path = self.hub.object_path(payload["oid"])
        if not path.exists() or path.stat().st_size != payload["size"]:
            raise HubError(404, f"object {payload['oid']} not found")
        self._send(200, {})

    # -- downloads ---------------------------------------------------------------------------

    def _resolve_file(self, repo_id: str, rev: str, path: str, user: str | None) -> None:
        hub = self.hub
        with hub.lock:
            repo = self._repo(repo_id, user)
            oid = hub._resolve(repo, rev)
            entry = repo.commits[oid].tree.get(path)
        if entry is None:
            raise HubError(404, f"{path} does not exist at {rev}", "EntryNotFound")
        etag = f'"{entry.sha256 if entry.lfs else entry.blob_oid}"'
        headers = {
            "X-Repo-Commit": oid,
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = etag
            headers["X-Linked-Size"] = str(entry.size)
        start, end = 0, entry.size - 1
        status = 200
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng or "")
        if m and entry.size:
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), end) if m.group(2) else end
            else:
                start = max(entry.size - int(m.group(2)), 0)
            if start > end:
                raise HubError(416, "Requested range not satisfiable")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        length = end - start + 1 if entry.size else 0
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(hub.object_path(entry.sha256), "rb") as fh:
            fh.seek(start)
            left = length
            while left:
                block = fh.read(min(CHUNK, left))
                self.wfile.write(block)
                left -= len(block)
