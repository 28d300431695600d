"""Resolve ``--release``: a local folder, or ``github:OWNER/REPO@COMMIT`` downloaded and verified.

Only a commit hash is accepted upstream: a branch or tag can move, and a build from a moving
target cannot be reproduced. Every downloaded file is checked against the sha256 pinned in
``indomer/data/release_checksums.json`` *before* it is renamed into the cache, so the cache never
holds a file that looks whole but is not; a cached folder whose files verify is reused offline.

A commit without pinned checksums is refused unless the caller passes ``allow_unverified=True``;
its files are then only checked for completeness (Content-Length), and the hashes computed at
download time are recorded in the cache marker and in the provenance (``"verified": false``), so
a later reuse of the cache detects a changed file and build.json says what was actually used.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit
from urllib.request import Request, urlopen

from indomer import __version__
from indomer.errors import DataError, UsageError
from indomer.fsutil import file_digest, write_json_atomic

GITHUB_PREFIX = "github:"
RAW_URL_ENV = "INDOMER_GITHUB_RAW_URL"
DEFAULT_RAW_URL = "https://raw.githubusercontent.com"
CACHE_ENV = "INDOMER_CACHE"
#: Written last into a downloaded release folder; its presence means "all files verified".
MARKER = ".indomer-release.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
REF_RE = re.compile(r"^[0-9A-Fa-f]{7,40}\Z")
#: GitHub's own limits; longer names cannot exist, so refusing them costs nothing.
MAX_OWNER, MAX_REPO = 39, 100
#: Ceiling for a file without a pinned size (the real files are all under 1 MB).
MAX_UNVERIFIED_BYTES = 64 << 20
CHUNK = 1 << 16

Log = Callable[[str], None]


def _no_log(message: str) -> None:
    """Default sink: the library prints nothing by itself."""


@dataclass(frozen=True)
class GithubSpec:
    """A validated ``github:OWNER/REPO@COMMIT``; only built by :func:`parse_spec`."""

    owner: str
    repo: str
    ref: str

    @property
    def spec(self) -> str:
        return f"{GITHUB_PREFIX}{self.owner}/{self.repo}@{self.ref}"

    @property
    def folder(self) -> str:
        """The cache folder name; safe because every part passed the regexes."""
        return f"{self.owner}__{self.repo}__{self.ref}"


def load_checksums() -> dict:
    """The pinned release table shipped as package data (files -> sha256/size, known commits)."""
    text = resources.files("indomer").joinpath("data", "release_checksums.json").read_text("utf-8")
    return json.loads(text)


def _example() -> str:
    table = load_checksums()
    return f"{GITHUB_PREFIX}{table['repository']}@{table['recommended_commit']}"


def parse_spec(spec: str) -> GithubSpec | None:
    """Validate a ``github:`` spec strictly (before any path or URL is built); None if local."""
    if not spec.startswith(GITHUB_PREFIX):
        return None
    body = spec[len(GITHUB_PREFIX) :]
    form = f"expected {GITHUB_PREFIX}OWNER/REPO@COMMIT, e.g. --release {_example()}"
    repo_part, at, ref = body.partition("@")
    if not at:
        raise UsageError(f"--release {spec!r}: no @COMMIT; pin the commit to download: {form}")
    owner, slash, repo = repo_part.partition("/")
    for name, limit in ((owner, MAX_OWNER), (repo, MAX_REPO)):
        if not slash or not NAME_RE.match(name) or ".." in name or len(name) > limit:
            raise UsageError(
                f"--release {spec!r}: OWNER and REPO must each be letters, digits, '-', '_' or '.',"
                f" starting with a letter or digit and without '..'; {form}"
            )
    if not REF_RE.match(ref):
        raise UsageError(
            f"--release {spec!r}: {ref!r} is not a commit hash; a branch or tag can move, so a "
            f"build from it cannot be reproduced: pin a 7-40 character commit hash, {form}"
        )
    return GithubSpec(owner, repo, ref.lower())


def is_known_commit(ref: str, table: dict | None = None) -> bool:
    """True if ``ref`` names a commit whose files are pinned (either hash is a prefix of the other)."""
    table = table or load_checksums()
    ref = ref.lower()
    return any(ref.startswith(k.lower()) or k.lower().startswith(ref) for k in table["commits"])


def default_cache_dir() -> Path:
    """``$INDOMER_CACHE``, else ``$XDG_CACHE_HOME/indomer``, else ``~/.cache/indomer``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "indomer"


def raw_base_url() -> str:
    """The raw-file base URL (``INDOMER_GITHUB_RAW_URL`` overrides it, e.g. for a mirror or tests).

    URLs with credentials are refused rather than stripped: the base is recorded in build.json,
    and a secret must never reach a file that gets published.
    """
    base = os.environ.get(RAW_URL_ENV) or DEFAULT_RAW_URL
    parts = urlsplit(base)
    if "@" in parts.netloc:
        raise UsageError(
            f"{RAW_URL_ENV} contains credentials (user@host); indomer does not send credentials: "
            "use a plain http(s) base URL such as https://raw.githubusercontent.com"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise UsageError(
            f"{RAW_URL_ENV}={base!r}: expected a plain http(s) base URL without query or fragment,"
            " such as https://raw.githubusercontent.com"
        )
    return base.rstrip("/")


def _read_marker(folder: Path, gh: GithubSpec | None = None) -> dict | None:
    """The marker of a downloaded folder, or None if absent, unreadable or for another spec."""
    try:
        marker = json.loads((folder / MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or not isinstance(marker.get("files"), dict):
        return None
    if gh is not None and marker.get("spec") != gh.spec:
        return None
    return marker


class _Retryable(Exception):
    """A transient failure (connection, timeout, truncated body, 5xx/429): worth another try."""


def _fetch_once(url: str, dest: Path, limit: int, timeout: float) -> tuple[str, dict]:
    """Stream ``url`` into a temp file beside ``dest``; return (temp path, hash) or raise.

    The caller renames the temp file only after checking the hash; on any error here the temp
    file is removed, so an interrupted download leaves nothing behind.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        h = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as fh:
            request = Request(url, headers={"User-Agent": f"indomer/{__version__}"})
            try:
                resp = urlopen(request, timeout=timeout)
            except HTTPError as exc:
                exc.close()
                if exc.code >= 500 or exc.code == 429:
                    raise _Retryable(f"HTTP {exc.code}") from exc
                raise
            except (URLError, http.client.HTTPException, OSError) as exc:
                raise _Retryable(str(getattr(exc, "reason", exc)) or type(exc).__name__) from exc
            with resp:
                try:
                    length = int(resp.headers.get("Content-Length", ""))
                except ValueError:
                    length = None
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except (http.client.HTTPException, OSError) as exc:
                        raise _Retryable(
                            f"connection lost after {size} bytes ({type(exc).__name__})"
                        ) from exc
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > limit:
                        raise DataError(
                            f"{url}: more than {limit} bytes, larger than the release file can be;"
                            " check the commit and INDOMER_GITHUB_RAW_URL"
                        )
                    h.update(chunk)
                    fh.write(chunk)
            if length is not None and size != length:
                raise _Retryable(f"connection closed after {size} of {length} bytes")
            fh.flush()
            os.fsync(fh.fileno())
        return tmp, {"sha256": h.hexdigest(), "size": size}
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(
    gh: GithubSpec,
    base: str,
    rel: str,
    dest: Path,
    expected: dict | None,
    *,
    retries: int,
    backoff: float,
    timeout: float,
    log: Log,
) -> dict:
    """Download one release file to ``dest`` atomically, verified against ``expected`` if given."""
    url = "/".join([base, quote(gh.owner), quote(gh.repo), gh.ref, quote(rel)])
    dest.parent.mkdir(parents=True, exist_ok=True)
    limit = expected["size"] if expected else MAX_UNVERIFIED_BYTES
    attempt = 0
    while True:
        try:
            tmp, got = _fetch_once(url, dest, limit, timeout)
            break
        except _Retryable as exc:
            attempt += 1
            if attempt > retries:
                raise DataError(
                    f"{gh.spec}: could not download {rel} from {url} after {attempt} tries ({exc});"
                    " check the network (or INDOMER_GITHUB_RAW_URL), or pass a local release folder"
                ) from exc
            delay = backoff * 2 ** (attempt - 1)
            log(f"{rel}: {exc}; retrying in {delay:.1f} s ({attempt}/{retries})")
            time.sleep(delay)
        except HTTPError as exc:
            hint = (
                f"check that commit {gh.ref} exists in {gh.owner}/{gh.repo} and holds the IndoMER"
                f" release layout (known good: {_example()})"
                if exc.code == 404
                else "check the spec and INDOMER_GITHUB_RAW_URL"
            )
            raise DataError(
                f"{gh.spec}: {rel} not downloadable (HTTP {exc.code} at {url}); {hint}"
            ) from exc
    if expected and got["sha256"] != expected["sha256"]:
        Path(tmp).unlink(missing_ok=True)
        raise DataError(
            f"{gh.spec}: {rel} failed its checksum: expected sha256 {expected['sha256']} "
            f"({expected['size']} bytes), got {got['sha256']} ({got['size']} bytes); it is not the"
            f" published release file or was altered in transit, and nothing was cached; check the"
            f" commit or use {_example()}"
        )
    os.replace(tmp, dest)
    return got


def _resolve_github(
    gh: GithubSpec,
    cache_dir: Path | None,
    *,
    allow_unverified: bool,
    log: Log,
    retries: int,
    backoff: float,
    timeout: float,
) -> Path:
    table = load_checksums()
    known = is_known_commit(gh.ref, table)
    if not known and not allow_unverified:
        raise UsageError(
            f"--release {gh.spec!r}: commit {gh.ref} has no pinned checksums in indomer (known: "
            f"{', '.join(sorted(table['commits']))}); use --release {_example()}, or allow an "
            "unverified download (allow_unverified=True / --allow-unverified), whose hashes are"
            " recorded in build.json"
        )
    base = raw_base_url()
    root = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "releases"
    folder = root / gh.folder
    marker = _read_marker(folder, gh)
    if known:
        pinned: dict[str, dict | None] = dict(table["files"])
    else:
        recorded = marker["files"] if marker else {}
        pinned = {rel: recorded.get(rel) for rel in table["files"]}

    files: dict[str, dict] = {}
    downloaded = 0
    for i, rel in enumerate(sorted(pinned), 1):
        target = folder / rel
        expected = pinned[rel]
        if target.is_file():
            got = file_digest(target)
            if expected is not None and got == expected:
                files[rel] = got
                continue
            log(f"{rel}: cached copy does not match; downloading it again")
            target.unlink()
        log(f"downloading {rel} ({i}/{len(pinned)}) from {base}/{gh.owner}/{gh.repo}/{gh.ref}")
        files[rel] = _download(
            gh,
            base,
            rel,
            target,
            expected,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            log=log,
        )
        downloaded += 1

    if downloaded or marker is None or marker.get("files") != files:
        write_json_atomic(
            folder / MARKER,
            {
                "spec": gh.spec,
                "url_base": base if downloaded or marker is None else marker.get("url_base", base),
                "repository": f"{gh.owner}/{gh.repo}",
                "commit": gh.ref,
                "verified": known,
                "files": files,
            },
        )
    if not downloaded:
        log(f"using the cached release {gh.spec} at {folder}")
    elif not known:
        log(
            f"warning: {gh.spec} has no pinned checksums; recorded the downloaded hashes unverified"
        )
    return folder


def resolve_release(
    spec: str,
    cache_dir: Path | None = None,
    *,
    allow_unverified: bool = False,
    log: Log | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 60.0,
) -> Path:
    """Turn ``--release SPEC`` into a local folder with the release layout.

    ``SPEC`` is a folder (returned as is after a presence check) or ``github:OWNER/REPO@COMMIT``
    (downloaded into ``cache_dir/releases/OWNER__REPO__COMMIT/``, verified, reused offline when
    the cached files still verify). ``retries``/``backoff`` govern transient network failures
    (never a 404 or a checksum mismatch, which another try cannot fix).
    """
    log = log or _no_log
    gh = parse_spec(spec)
    if gh is not None:
        return _resolve_github(
            gh,
            cache_dir,
            allow_unverified=allow_unverified,
            log=log,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
        )
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise UsageError(
            f"--release {spec!r}: no such folder; pass the folder holding Annotations.csv, 7_Class/"
            f" and 3_Class/, or download the upstream release with --release {_example()}"
        )
    if not (path / "Annotations.csv").is_file():
        raise UsageError(
            f"{path}: no Annotations.csv; expected the IndoMER release layout (Annotations.csv,"
            f" 7_Class/, 3_Class/): point --release at that folder or use --release {_example()}"
        )
    return path


def release_provenance(release: Path) -> dict:
    """What build.json records about the release: per-file sha256/size, and its origin if downloaded.

    For a folder made by :func:`resolve_release` from ``github:``: ``spec``, ``url_base`` (never
    with credentials), ``repository``, ``commit``, ``verified`` and ``files``. For a local folder
    only ``files`` and ``verified`` (all five files byte-identical to the pinned release), and no
    ``spec``, so that no absolute local path lands in build.json.
    """
    release = Path(release)
    table = load_checksums()
    files = {
        rel: file_digest(release / rel)
        for rel in sorted(table["files"])
        if (release / rel).is_file()
    }
    marker = _read_marker(release)
    if marker is None:
        return {"files": files, "verified": files == table["files"]}
    if marker["files"] != files:
        changed = sorted(
            r for r in set(files) | set(marker["files"]) if files.get(r) != marker["files"].get(r)
        )
        raise DataError(
            f"{release / changed[0]}: changed since it was downloaded ({len(changed)} file(s));"
            f" delete {release} and run again to download a fresh copy"
        )
    keys = ("spec", "url_base", "repository", "commit", "verified")
    return {**{k: marker.get(k) for k in keys}, "files": files}
