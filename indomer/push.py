"""``indomer push``: publish a built dataset to the Hugging Face Hub, sending only what changed.

The local files are hashed (streamed, never held in memory) and compared with the remote tree
(LFS sha256 for shards, the git blob id for small text files), so an unchanged file is never
sent again. What changed goes out in commits of bounded size, shards first and the card last;
each commit is kept by the Hub, so an interrupted push, run again, resumes after the last
committed batch (and LFS objects already received are not re-sent either). Shards that exist
remotely but no longer locally (a re-split renames them) are deleted in the same final commit
as the new card. Every commit message carries the build hash from ``build.json``.

The token comes from where ``huggingface_hub`` looks (``HF_TOKEN``, the token file); it is
never printed: every message that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from indomer import __version__
from indomer.dataset import available_splits, shard_paths
from indomer.errors import DataError, IndomerError, UsageError
from indomer.readjson import read_json

#: Top-level files of a built dataset that are published when present (README.md and
#: build.json are required). Never the work/ folder, locks or temporary files.
TOP_FILES = ("README.md", "croissant.json", "build.json", "rejected.jsonl")
#: Bounds of one commit: the Hub handles commits of tens of files well, and a small commit
#: is what an interrupted push loses at most.
MAX_COMMIT_FILES = 50
MAX_COMMIT_BYTES = 2 << 30
BLOCK = 1 << 20
#: Metadata goes out after the shards, the card last, so a reader who sees the new card
#: sees the shards it describes.
META_ORDER = (
    "splits/", "figures/", "rejected.jsonl", "croissant.json", "build.json", "README.md"
)
TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{8,}")

Log = Callable[[str], None]
_F = TypeVar("_F", "LocalFile", "PlannedFile")


def _no_log(message: str) -> None:
    """Default sink: the library prints nothing by itself."""


@dataclass(frozen=True)
class LocalFile:
    """One file to publish: its path in the repo, on disk, its size and sha256.

    ``op`` is the client's upload operation, built (and the file hashed, streaming) once at
    scan time: its sha256 is the one compared with the Hub's, so no file is read twice.
    """

    path: str
    local: Path
    size: int
    sha256: str
    op: object = field(compare=False, repr=False)
    #: The bytes to send when they are not the file's (the card with ``--results``).
    data: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PlannedFile:
    """A local file and how it compares with the remote: ``new``, ``changed``, ``unchanged``."""

    path: str
    size: int
    status: str


@dataclass(frozen=True)
class PushPlan:
    """What a push would do; ``base`` is the remote commit compared against (None: empty)."""

    repo_id: str
    revision: str
    endpoint: str
    build_hash: str
    repo_exists: bool
    revision_exists: bool
    base: str | None
    files: tuple[PlannedFile, ...]
    deletions: tuple[str, ...]
    #: The commits the push would make: (message, files, bytes, deletions) each.
    commits: tuple[tuple[str, int, int, int], ...] = ()
    #: Why the Hub was not compared with (a dry run that cannot reach it), or None. Then
    #: every file is listed as ``unknown``: it would be sent unless the Hub holds it already.
    unknown_remote: str | None = None

    @property
    def to_send(self) -> list[PlannedFile]:
        return [f for f in self.files if f.status != "unchanged"]


@dataclass(frozen=True)
class PushResult:
    """What a push did: the plan, the commits made (oids) and the pull request, if any."""

    plan: PushPlan
    commits: tuple[str, ...]
    pr_url: str | None
    pr_revision: str | None
    dry_run: bool

    @property
    def url(self) -> str:
        return f"{self.plan.endpoint}/datasets/{self.plan.repo_id}"


# -- local side -----------------------------------------------------------------------------


def _git_blob_oid(path: Path | bytes) -> str:
    """The git object id the Hub reports for a regular (non-LFS) file (or these bytes)."""
    h = hashlib.sha1(usedforsecurity=False)
    if isinstance(path, bytes):
        h.update(b"blob %d\0" % len(path) + path)
        return h.hexdigest()
    h.update(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _local_file(path: Path, rel: str) -> LocalFile:
    from huggingface_hub import CommitOperationAdd

    op = CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path))
    info = op.upload_info
    return LocalFile(rel, path, info.size, info.sha256.hex(), op)


def read_build(out: Path) -> dict:
    """``OUT/build.json``, checked to be a finished build (one that has a shard manifest)."""
    out = Path(out)
    hint = f"build it first with 'indomer build ... --out {out}'"
    if not out.is_dir():
        raise DataError(f"{out}: no such folder; {hint}")
    path = out / "build.json"
    if not path.is_file():
        raise DataError(f"{out}: not a built dataset (no build.json); {hint}")
    try:
        build = read_json(path)
        build_hash = build["outputs"]["build_hash"]
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: no outputs.build_hash (unreadable or unfinished build: {exc!r}); {hint}"
        ) from exc
    if not isinstance(build_hash, str) or not re.fullmatch(r"[0-9a-f]{64}", build_hash):
        raise DataError(f"{path}: outputs.build_hash is not a sha256; {hint}")
    if not (out / "README.md").is_file():
        raise DataError(f"{out}: no README.md (the dataset card); {hint}")
    if not available_splits(out):
        raise DataError(f"{out}: no shards under data/; {hint}")
    return build


def local_files(out: Path, build: dict) -> list[LocalFile]:
    """The files to publish, hashed, after checking the shards are those build.json lists.

    A shard changed after the card was written would publish numbers the files do not
    support, so a mismatch is refused.
    """
    out = Path(out)
    paths: list[Path] = [out / name for name in TOP_FILES if (out / name).is_file()]
    splits = out / "splits"
    if splits.is_dir():
        paths += sorted(p for p in splits.glob("*.json") if p.is_file())
    from indomer.card import FIGURES_DIR, fresh_figures

    figures = fresh_figures(out, build.get("outputs", {}).get("build_hash"))
    if figures:
        paths += [out / FIGURES_DIR / n for n in figures] + [out / FIGURES_DIR / "figures.json"]
    shards = [p for s in available_splits(out) for p in shard_paths(out, s)]
    paths += shards
    files = [_local_file(p, p.relative_to(out).as_posix()) for p in paths]
    listed = {
        f["path"]: f["sha256"]
        for split in build["outputs"].get("splits", {}).values()
        for f in split.get("files", [])
    }
    have = {f.path: f.sha256 for f in files if f.path.startswith("data/")}
    if have != listed:
        odd = sorted(p for p in have.keys() | listed.keys() if have.get(p) != listed.get(p))
        raise DataError(
            f"{out / 'build.json'}: its shard list does not match data/ ({', '.join(odd[:3])}"
            f"{' ...' if len(odd) > 3 else ''} differ); rebuild, or re-run 'indomer split', so "
            "that README.md and build.json describe the shards on disk"
        )
    return files


def card_with_results(out: Path, build: dict, results: Sequence[str | Path]) -> bytes:
    """OUT's card with a ``## Results`` section holding the leaderboards in ``results``.

    Each file must be ``indomer leaderboard --json`` output computed on this very build
    (its ``refs_build_hash``) and a split the dataset has; one table per task and split.
    The dataset's own README.md is left as it is: only the pushed copy carries the section.
    """
    from indomer.card import with_results
    from indomer.leaderboard import read_leaderboard

    build_hash = build["outputs"]["build_hash"]
    splits = available_splits(out)
    boards, seen = [], {}
    for path in results:
        board = read_leaderboard(path)
        if board["refs_build_hash"] != build_hash:
            computed = board["refs_build_hash"] or "release JSON files, not a built dataset"
            raise DataError(
                f"{path}: computed against {computed}, not this build ({build_hash[:12]}); "
                f"rerun 'indomer leaderboard --refs {out} ...' so the table describes it"
            )
        if board["split"] not in splits:
            raise DataError(
                f"{path}: ranks the '{board['split']}' split, which {out} does not have "
                f"({', '.join(splits)}); rerun the leaderboard on one of those"
            )
        key = (board["task"], board["split"])
        if key in seen:
            raise UsageError(
                f"{path}: a second {key[0]} table for the '{key[1]}' split (the first is "
                f"{seen[key]}); pass one --results file per task and split"
            )
        seen[key] = path
        boards.append(board)
    card = (Path(out) / "README.md").read_text(encoding="utf-8")
    return with_results(card, boards).encode("utf-8")


def _memory_file(rel: str, local: Path, data: bytes) -> LocalFile:
    from huggingface_hub import CommitOperationAdd

    op = CommitOperationAdd(path_in_repo=rel, path_or_fileobj=data)
    info = op.upload_info
    return LocalFile(rel, local, info.size, info.sha256.hex(), op, data)


# -- errors -------------------------------------------------------------------------------


def _scrub(text: str, token: str | None) -> str:
    if token:
        text = text.replace(token, "***")
    return TOKEN_RE.sub("hf_***", text)


def _server_message(exc) -> str:
    response = getattr(exc, "response", None)
    message = getattr(exc, "server_message", None)
    if not message and response is not None:
        message = response.headers.get("X-Error-Message")
    if not message and response is not None:
        try:
            message = response.json().get("error")
        except ValueError:
            message = None
    message = " ".join(str(message or "").split())
    return message[:200]


def _token_source() -> str:
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "the token in HF_TOKEN"
    return "the saved token (hf auth login)"


def _explain(exc: BaseException, ctx: dict) -> IndomerError:
    """Turn what the client raised into one line: what failed, why, how to go on."""
    import requests
    from huggingface_hub.errors import (
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint, repo_id, stage = ctx["endpoint"], ctx["repo_id"], ctx["stage"]
    resume = "run the same command again: it sends only what the Hub does not have yet"
    if ctx.get("pr_revision"):
        resume = (
            f"the pull request {ctx['pr_url']} holds what was sent: finish it with "
            f"--revision {ctx['pr_revision']} (without --create-pr)"
        )
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    http = next((e for e in chain if isinstance(e, requests.HTTPError)), None)
    net = next(
        (
            e
            for e in chain
            if isinstance(e, (requests.ConnectionError, requests.Timeout, ConnectionError))
            and not isinstance(e, requests.HTTPError)
        ),
        None,
    )
    if any(isinstance(e, OfflineModeIsEnabled) for e in chain):
        return UsageError(
            f"HF_HUB_OFFLINE is set, so {endpoint} cannot be reached; unset it to push"
        )
    if http is not None and http.response is not None:
        status = http.response.status_code
        server = _server_message(http)
        said = f": {server}" if server else ""
        if isinstance(http, RevisionNotFoundError):
            return UsageError(
                f"{repo_id}: revision {ctx['revision']!r} not found while {stage}; "
                "for a pull request use --revision refs/pr/N with an open PR's number"
            )
        if status == 401 and (stage == "checking the token" or "credentials" in server.lower()):
            return UsageError(
                f"{endpoint} rejected {_token_source()} (HTTP 401{said}); set HF_TOKEN to a "
                "valid token with write access, or run 'hf auth login'"
            )
        if isinstance(http, RepositoryNotFoundError) or (status in (401, 404) and "repo" in stage):
            return UsageError(
                f"{repo_id}: not found or not writable with {_token_source()} while {stage} "
                f"(HTTP {status}{said}); check REPO_ID and that the token may write there"
            )
        if status == 403:
            return UsageError(
                f"{endpoint} refused {stage} for {repo_id} with {_token_source()} "
                f"(HTTP 403{said}); use a token with write access to that namespace"
            )
        if status == 412:
            return IndomerError(
                f"{repo_id}@{ctx['revision']} changed on the Hub while {stage} (someone else "
                f"committed); {resume}"
            )
        paren = f" ({server})" if server else ""
        return IndomerError(f"{endpoint} answered HTTP {status}{paren} while {stage}; {resume}")
    if net is not None:
        return IndomerError(
            f"cannot reach {endpoint} while {stage} ({type(net).__name__}); check the network "
            f"and HF_ENDPOINT, then {resume}"
        )
    detail = " ".join(str(exc).split())[:200]
    return IndomerError(f"push to {repo_id} failed while {stage}: {detail}; {resume}")


@contextmanager
def _hub_errors(ctx: dict, token: str | None) -> Iterator[dict]:
    """Translate client failures into one scrubbed IndomerError line (no traceback)."""
    import requests
    from huggingface_hub.errors import HfHubHTTPError

    try:
        yield ctx
    except IndomerError as exc:
        exc.args = (_scrub(str(exc), token),)
        raise
    except (HfHubHTTPError, requests.RequestException, OSError, RuntimeError, ValueError) as exc:
        err = _explain(exc, ctx)
        raise type(err)(_scrub(str(err), token)) from None


# -- plan and push ------------------------------------------------------------------------


def endpoint_url() -> str:
    """The Hub the client talks to: ``HF_ENDPOINT`` as ``huggingface_hub`` read it at import.

    The client parses its own URLs against this value, so reading the environment again here
    could only disagree with it.
    """
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def check_repo_id(repo_id: str) -> None:
    """Validate with the client's own rules, so a bad name fails before any network call."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        why = " ".join(str(exc).split())[:240].rstrip(".")
        raise UsageError(
            f"invalid REPO_ID {repo_id!r}: {why}; expected NAMESPACE/NAME, e.g. alice/indomer"
        ) from None


def _status(local: LocalFile, remote) -> str:
    if remote is None:
        return "new"
    if remote.size != local.size:
        return "changed"
    if remote.lfs is not None:
        return "unchanged" if remote.lfs.sha256 == local.sha256 else "changed"
    blob = _git_blob_oid(local.data if local.data is not None else local.local)
    return "unchanged" if remote.blob_id == blob else "changed"


def _meta_rank(path: str) -> int:
    for i, prefix in enumerate(META_ORDER):
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return i
    return -1


def _batches(
    adds: Sequence[_F], deletions: list[str], max_files: int, max_bytes: int
) -> list[tuple[list[_F], list[str]]]:
    """Shards, then deletions, then metadata (card last), cut into bounded commits.

    ``adds`` are files to send (:class:`LocalFile` to push, :class:`PlannedFile` to plan):
    only their ``path`` and ``size`` are read, so a dry run plans the very same commits.
    """
    data = [f for f in adds if f.path.startswith("data/")]
    meta = sorted(
        (f for f in adds if not f.path.startswith("data/")), key=lambda f: _meta_rank(f.path)
    )
    items: list[_F | str] = [*data, *deletions, *meta]
    out: list[tuple[list[_F], list[str]]] = []
    cur_add: list[_F] = []
    cur_del: list[str] = []
    size = 0
    for item in items:
        n = len(cur_add) + len(cur_del)
        extra = 0 if isinstance(item, str) else item.size
        if n and (n >= max_files or size + extra > max_bytes):
            out.append((cur_add, cur_del))
            cur_add, cur_del, size = [], [], 0
        if isinstance(item, str):
            cur_del.append(item)
        else:
            cur_add.append(item)
            size += item.size
    if cur_add or cur_del:
        out.append((cur_add, cur_del))
    return out


def _commit_message(build_hash: str, i: int, n: int) -> str:
    """The summary line of commit ``i`` of ``n``: it carries the build hash."""
    return f"indomer: build {build_hash}" + (f" ({i}/{n})" if n > 1 else "")


def _planned_commits(
    build_hash: str, send: Sequence[PlannedFile], deletions: Sequence[str], max_files: int,
    max_bytes: int,
) -> tuple[tuple[str, int, int, int], ...]:
    batches = _batches(send, list(deletions), max_files, max_bytes)
    return tuple(
        (_commit_message(build_hash, i, len(batches)), len(b), sum(f.size for f in b), len(d))
        for i, (b, d) in enumerate(batches, 1)
    )


def _unreachable(exc: BaseException) -> str | None:
    """Why the Hub could not be reached (offline mode, no connection, a timeout), or None
    when it answered (an HTTP error is an answer)."""
    import requests
    from huggingface_hub.errors import OfflineModeIsEnabled

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, OfflineModeIsEnabled):
            return "HF_HUB_OFFLINE is set"
        if isinstance(seen, requests.HTTPError):
            return None
        if isinstance(seen, (requests.ConnectionError, requests.Timeout, ConnectionError)):
            return type(seen).__name__
        seen = seen.__cause__ or seen.__context__
    return None


def _remote_state(api, repo_id: str, revision: str, token) -> tuple[bool, bool, str | None, bool]:
    """(repo exists, revision exists, sha to compare against, repo is private)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    try:
        info = api.dataset_info(repo_id, revision=revision, token=token)
        return True, True, info.sha, bool(info.private)
    except RevisionNotFoundError:
        info = api.dataset_info(repo_id, token=token)
        return True, False, info.sha, bool(info.private)
    except RepositoryNotFoundError:
        return False, False, None, False


def _remote_files(api, repo_id: str, sha: str | None, token) -> dict:
    from huggingface_hub.hf_api import RepoFile

    if sha is None:
        return {}
    return {
        item.path: item
        for item in api.list_repo_tree(
            repo_id, recursive=True, revision=sha, repo_type="dataset", token=token
        )
        if isinstance(item, RepoFile)
    }


def _compare(
    api, ctx: dict, token: str | None, files: Sequence[LocalFile], build_hash: str, *,
    private: bool, is_pr_ref: bool, dry_run: bool, warn: Log,
) -> PushPlan:
    """Check the token, resolve REPO_ID, read the remote tree: the plan (``ctx`` follows the
    stage, for the error line, and the resolved repo id)."""
    repo_id, revision, endpoint = ctx["repo_id"], ctx["revision"], ctx["endpoint"]
    user = None
    if token is not None:
        ctx["stage"] = "checking the token"
        who = api.whoami(token=token)
        user = who.get("name")
        role = ((who.get("auth") or {}).get("accessToken") or {}).get("role")
        if role == "read" and not dry_run:
            raise UsageError(
                f"{_token_source()} is read-only (user {user}); create a token with write "
                "access at https://huggingface.co/settings/tokens and set HF_TOKEN"
            )
    if "/" not in repo_id:
        if user is None:
            raise UsageError(f"give REPO_ID as NAMESPACE/NAME (e.g. alice/{repo_id})")
        repo_id = f"{user}/{repo_id}"
        check_repo_id(repo_id)
        ctx["repo_id"] = repo_id

    ctx["stage"] = "reading the repo"
    exists, rev_exists, base, is_private = _remote_state(api, repo_id, revision, token)
    if is_pr_ref and not rev_exists:
        raise UsageError(
            f"{repo_id}: no pull request {revision}; open one with --create-pr, or name an "
            "open one"
        )
    if exists and private and not is_private:
        warn(
            f"{repo_id} exists and is public; --private applies only when the repo is "
            "created (change its visibility in the repo settings)"
        )
    ctx["stage"] = "listing the remote files"
    remote = _remote_files(api, repo_id, base, token)
    planned = tuple(PlannedFile(f.path, f.size, _status(f, remote.get(f.path))) for f in files)
    local_paths = {f.path for f in files}
    deletions = tuple(
        sorted(
            p
            for p in remote
            if p not in local_paths
            and (
                (p.startswith("data/") and p.endswith(".parquet"))
                or p.startswith("figures/")  # drawn from other shards: stale now
            )
        )
    )
    return PushPlan(
        repo_id, revision, endpoint, build_hash, exists, rev_exists, base, planned, deletions
    )


def push(
    out: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    dry_run: bool = False,
    results: Sequence[str | Path] = (),
    max_commit_files: int = MAX_COMMIT_FILES,
    max_commit_bytes: int = MAX_COMMIT_BYTES,
    log: Log = _no_log,
    warn: Log = _no_log,
) -> PushResult:
    """Publish the dataset at ``out`` to the dataset repo ``repo_id`` (see the module doc).

    ``revision`` is the target branch (created from the default branch if missing) or an open
    pull request's ``refs/pr/N``; ``create_pr`` opens a pull request against it instead of
    committing to it. ``dry_run`` compares with the Hub and changes nothing there; when the Hub
    cannot be reached (no connection, ``HF_HUB_OFFLINE``) it plans without it: every file
    ``unknown``, the commits as an empty repo would get them, ``plan.unknown_remote`` saying why.
    ``results`` are ``indomer leaderboard --json`` files of this build: the pushed card gets
    them as its ``## Results`` section (:func:`card_with_results`).
    """
    import requests
    from huggingface_hub import CommitOperationDelete, HfApi
    from huggingface_hub.utils import get_token

    out = Path(out)
    if max_commit_files < 1 or max_commit_bytes < 1:
        raise UsageError("commit bounds must be positive")
    revision = revision or "main"
    is_pr_ref = re.fullmatch(r"refs/pr/\d+", revision) is not None
    if create_pr and is_pr_ref:
        raise UsageError(
            f"--create-pr opens a new pull request, but --revision {revision} is one already; "
            "drop --create-pr to add to it"
        )
    check_repo_id(repo_id)
    from indomer.dataset import snapshot
    from indomer.validate import validate

    build = read_build(out)
    # One committed generation, pinned (its shards held open) and read as a whole even if
    # a writer switches meanwhile; its own build.json, should a commit come in between.
    snap = snapshot(out)
    root = snap.root
    if snap.build.get("outputs") != build.get("outputs"):
        build = read_build(root)
    problems, _ = validate(out)
    if problems:
        raise DataError(
            f"{out}: not a valid dataset ({len(problems)} problem(s); first: {problems[0]}); "
            f"run 'indomer validate {out}' and rebuild before pushing"
        )
    build_hash = build["outputs"]["build_hash"]
    files = local_files(root, build)
    if results:
        card = card_with_results(root, build, results)
        files = [_memory_file(f.path, f.local, card) if f.path == "README.md" else f for f in files]

    endpoint = endpoint_url()
    token = get_token()
    ctx = {"endpoint": endpoint, "repo_id": repo_id, "revision": revision, "stage": "starting"}
    api = HfApi(endpoint=endpoint, library_name="indomer", library_version=__version__)
    with _hub_errors(ctx, token):
        if token is None and not dry_run:
            raise UsageError(
                "no Hugging Face token found; set HF_TOKEN to a token with write access, or "
                "run 'hf auth login'"
            )
        try:
            plan = _compare(api, ctx, token, files, build_hash, private=private,
                            is_pr_ref=is_pr_ref, dry_run=dry_run, warn=warn)
        except (requests.RequestException, OSError) as exc:
            why = _unreachable(exc) if dry_run else None
            if why is None:
                raise
            unknown = f"cannot reach {endpoint} ({why})"
            warn(
                f"{unknown}; listing every file as it would be sent, without knowing what the "
                "Hub holds already"
            )
            planned = tuple(PlannedFile(f.path, f.size, "unknown") for f in files)
            plan = PushPlan(ctx["repo_id"], revision, endpoint, build_hash, False, False, None,
                            planned, (), unknown_remote=unknown)
        plan = dataclasses.replace(plan, commits=_planned_commits(
            build_hash, plan.to_send, plan.deletions, max_commit_files, max_commit_bytes))
        repo_id, exists, rev_exists, base = (
            plan.repo_id, plan.repo_exists, plan.revision_exists, plan.base)
        deletions = plan.deletions
        if dry_run:
            return PushResult(plan, (), None, None, True)

        if not exists:
            ctx["stage"] = "creating the repo"
            api.create_repo(
                repo_id, repo_type="dataset", private=private, exist_ok=True, token=token
            )
            log(f"created dataset repo {repo_id}{' (private)' if private else ''}")
        if not rev_exists and not is_pr_ref:
            ctx["stage"] = f"creating branch {revision}"
            if revision != "main":
                api.create_branch(
                    repo_id, branch=revision, repo_type="dataset", exist_ok=True, token=token
                )
                log(f"created branch {revision}")
        if not exists or not rev_exists:
            ctx["stage"] = "reading the repo"
            base = api.dataset_info(repo_id, revision=revision, token=token).sha

        by_path = {f.path: f for f in files}
        adds = [by_path[f.path] for f in plan.to_send]
        batches = _batches(adds, list(deletions), max_commit_files, max_commit_bytes)
        commits: list[str] = []
        target, parent = revision, base
        pr_url = pr_revision = None
        for i, (batch, dels) in enumerate(batches, 1):
            n = len(batches)
            ctx["stage"] = f"sending commit {i}/{n}"
            ops = [f.op for f in batch]
            ops += [CommitOperationDelete(path_in_repo=p) for p in dels]
            summary = _commit_message(build_hash, i, n)
            description = (
                f"Pushed by indomer {__version__}.\n\nbuild_hash: {build_hash}\n"
                f"files: {len(batch)} added or changed, {len(dels)} deleted\n"
            )
            info = api.create_commit(
                repo_id,
                ops,
                commit_message=summary,
                commit_description=description,
                repo_type="dataset",
                revision=target,
                create_pr=create_pr and pr_url is None,
                parent_commit=parent,
                token=token,
            )
            if create_pr and pr_url is None:
                pr_url, pr_revision = info.pr_url, info.pr_revision
                target = pr_revision or target
                ctx.update(pr_url=pr_url, pr_revision=pr_revision)
            parent = info.oid
            commits.append(info.oid)
            sent = sum(f.size for f in batch)
            log(
                f"commit {i}/{n}: {len(batch)} files ({sent:,} bytes) sent, {len(dels)} deleted "
                f"-> {info.oid[:12]}"
            )
    return PushResult(plan, tuple(commits), pr_url, pr_revision, False)


def format_plan(plan: PushPlan) -> str:
    """One line per file: status, bytes, path; deletions; then the commits, message first."""
    width = max((len(f"{f.size:,}") for f in plan.files), default=1)
    lines = [f"  {f.status:<9}  {f.size:>{width},}  {f.path}" for f in plan.files]
    lines += [f"  {'delete':<9}  {'':>{width}}  {p}" for p in plan.deletions]
    n = len(plan.commits)
    for i, (message, n_files, n_bytes, n_dels) in enumerate(plan.commits, 1):
        dels = f", {n_dels} deleted" if n_dels else ""
        lines.append(
            f"  commit {i}/{n}: \"{message}\" ({n_files} files, {n_bytes:,} bytes{dels})"
        )
    return "\n".join(lines)


def summary(result: PushResult) -> str:
    """The closing line: what was sent where, or that nothing needed sending."""
    plan = result.plan
    send = plan.to_send
    n_send, n_bytes = len(send), sum(f.size for f in send)
    n_same = len(plan.files) - n_send
    where = f"{result.url} (revision {plan.revision})"
    counts = (
        f"{n_send} files to send ({n_bytes:,} bytes), {n_same} unchanged, "
        f"{len(plan.deletions)} to delete"
    )
    if result.dry_run and plan.unknown_remote:
        return (
            f"dry run for build {plan.build_hash[:12]} -> {where}: the remote difference is "
            f"unknown, {plan.unknown_remote}; {n_send} files ({n_bytes:,} bytes) in "
            f"{len(plan.commits)} commit{'s' if len(plan.commits) != 1 else ''} at most; "
            "nothing was sent"
        )
    if result.dry_run:
        return f"dry run for build {plan.build_hash[:12]} -> {where}: {counts}; nothing was sent"
    if not result.commits:
        return f"{where} already holds build {plan.build_hash[:12]}; nothing to send"
    pr = f"; pull request {result.pr_url} ({result.pr_revision})" if result.pr_url else ""
    return (
        f"pushed build {plan.build_hash[:12]} to {where}: {n_send} files sent ({n_bytes:,} "
        f"bytes), {n_same} unchanged, {len(plan.deletions)} deleted in "
        f"{len(result.commits)} commit{'s' if len(result.commits) != 1 else ''}{pr}"
    )
