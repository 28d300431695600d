"""Dataset generations: every write into OUT is all-or-nothing, under one lock (DESIGN §1).

A dataset folder looks like DESIGN §3 to its readers (``README.md``, ``data/``, ``splits/``,
``build.json``, ...), but each of those names is a relative symbolic link into
``.indomer/current``, which itself links to one complete generation under ``.indomer/gen/``::

    OUT/README.md -> .indomer/current/README.md        (the same for every managed name)
    OUT/.indomer/current -> gen/000007                 (switched by one rename: the commit)
    OUT/.indomer/gen/000007/{README.md,build.json,croissant.json,rejected.jsonl,data,splits,figures}
    OUT/.indomer/lock                                  (held by the one writer, flock)

A writer assembles the next generation in ``.indomer/staging-*`` (hard links of the files it
keeps from the current one, new files for the rest), finalizes it here (shard manifest,
statistics, card, Croissant: DESIGN §7.12), fsyncs it, renames it under ``gen/`` and switches
``current`` with one atomic rename. A SIGKILL at any instant therefore leaves the old complete
dataset or the new complete one; the next writer removes the leftovers. Why links rather than
moving files: a rename replaces one name atomically, and a dataset is seven names.

Only folders indomer made are written (``.indomer/FORMAT`` marks them), and nothing is
written or deleted through a link that leads elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shlex
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from indomer.dataset import current_generation
from indomer.errors import DataError, IndomerError, UsageError
from indomer.faults import fault
from indomer.fsutil import dumps, write_bytes_atomic, write_json_atomic, write_text_atomic

STATE_DIR = ".indomer"
FORMAT_FILE = "FORMAT"
#: ``layout`` 2: word times count from the clip's start (DESIGN §3); 1: from the source's.
FORMAT = {"format": "indomer-dataset", "layout": 2}
#: What each older layout means, for the one-line message that names it.
OLD_LAYOUTS = {1: "word times in seconds of the source video, not of the clip"}
#: The names a generation holds; each is a link ``OUT/NAME -> .indomer/current/NAME``.
MANAGED: tuple[str, ...] = (
    "README.md",
    "build.json",
    "croissant.json",
    "rejected.jsonl",
    "data",
    "splits",
    "figures",
)
MANAGED_DIRS: tuple[str, ...] = ("data", "splits", "figures")
#: Working folders of raw builds: ours, but outside the generations.
WORK_DIRS: tuple[str, ...] = ("work", "clips")


class LockedError(IndomerError):
    """Another indomer command is writing into the same dataset folder."""

    exit_code = 1


# --------------------------------------------------------------------------- ownership


def state_dir(out: Path) -> Path:
    return Path(out) / STATE_DIR


def is_generational(out: Path) -> bool:
    """Whether ``out`` is a dataset folder in this layout (made by indomer)."""
    marker = state_dir(out) / FORMAT_FILE
    if state_dir(out).is_symlink() or not marker.is_file() or marker.is_symlink():
        return False
    try:
        doc = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT["format"]


def layout_of(out: Path) -> int | None:
    """The layout number in ``OUT/.indomer/FORMAT`` (None when the folder is not ours)."""
    if not is_generational(out):
        return None
    doc = json.loads((state_dir(out) / FORMAT_FILE).read_text(encoding="utf-8"))
    layout = doc.get("layout")
    return layout if isinstance(layout, int) else 0


def layout_problem(out: Path) -> str | None:
    """One line naming an older layout of ``out`` and how to migrate it, else None."""
    layout = layout_of(out)
    if layout is None or layout >= FORMAT["layout"]:
        return None
    what = OLD_LAYOUTS.get(layout, "an older indomer")
    return (
        f"{state_dir(out) / FORMAT_FILE}: dataset layout {layout} ({what}); migrate it by "
        f"running its build again into the same folder ('indomer build CONFIG.yaml --out "
        f"{out}' or 'indomer build --release ... --out {out}')"
    )


def check_layout(out: Path) -> None:
    """Refuse a dataset of an older layout (readers of word times, writers that keep shards)."""
    problem = layout_problem(out)
    if problem is not None:
        raise DataError(problem)


def mark_layout(out: Path) -> None:
    """Record the current layout (after a whole new generation, or migrated work)."""
    marker = state_dir(out) / FORMAT_FILE
    if layout_of(out) != FORMAT["layout"]:
        write_text_atomic(marker, dumps(FORMAT))


def check_target(out: Path, option: str = "--out") -> bool:
    """Refuse an ``out`` that indomer may not write; return whether it exists already.

    Allowed: a new folder, an empty one, or one indomer made (``.indomer/FORMAT``).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder; choose another {option}")
    if not out.exists():
        if out.is_symlink():
            raise UsageError(f"{out}: a broken symbolic link; choose another {option}")
        return False
    if is_generational(out):
        check_links(out)
        return True
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return True
    if (out / "build.json").is_file() or (out / WORK_DIRS[0] / "pipeline.json").is_file():
        raise UsageError(
            f"{out}: made by an older indomer (no {STATE_DIR}/ generations) or by another "
            f"tool; build into a new {option} folder, or move this one away"
        )
    raise UsageError(
        f"{out}: not empty ({', '.join(entries[:3])}{' ...' if len(entries) > 3 else ''}) and "
        f"not an indomer dataset; choose an empty or new {option} folder"
    )


def _link_target(name: str) -> str:
    return f"{STATE_DIR}/current/{name}"


def check_links(out: Path) -> None:
    """Every managed name is absent or indomer's own link, and the working folders stay inside.

    A ``data/`` that is a real folder or a link elsewhere is refused, never emptied.
    """
    out = Path(out)
    state = state_dir(out)
    for sub in (state, state / "gen"):
        if sub.is_symlink():
            raise UsageError(f"{sub}: a symbolic link, not indomer's folder; move it away")
    for name in MANAGED:
        p = out / name
        if not p.is_symlink():
            if p.exists():
                raise UsageError(
                    f"{p}: expected indomer's link to {_link_target(name)}, found a "
                    f"{'folder' if p.is_dir() else 'file'}; move it out of {out} and re-run"
                )
            continue
        target = os.readlink(p)
        if target != _link_target(name):
            raise UsageError(
                f"{p}: a symbolic link to {target}, not indomer's ({_link_target(name)}); "
                f"nothing is written through it; remove the link and re-run"
            )
    current = state / "current"
    if current.is_symlink():
        target = os.readlink(current)
        if not (target.startswith("gen/") and "/" not in target[4:] and target[4:].isdigit()):
            raise UsageError(f"{current}: points to {target}, not a generation; remove it")
    elif current.exists():
        raise UsageError(f"{current}: expected a link to a generation; remove it and re-run")
    check_work_dirs(out)


def check_work_dirs(out: Path) -> None:
    """``work/`` and ``clips/`` must not lead outside OUT (a raw build writes into them)."""
    root = Path(out).resolve()
    for name in WORK_DIRS:
        p = Path(out) / name
        if p.is_symlink() and not p.resolve().is_relative_to(root):
            raise UsageError(
                f"{p}: a symbolic link leading outside {out} ({os.readlink(p)}); nothing is "
                "written through it; remove the link and re-run"
            )


# --------------------------------------------------------------------------- the lock


_HELD: dict[Path, DatasetLock] = {}


def command_line() -> str:
    """This process's command line, for the lock owner's record (no secrets: arguments only)."""
    argv = list(sys.argv)
    if argv:
        argv[0] = Path(argv[0]).name
    return shlex.join(argv)[:500]


class DatasetLock:
    """One writer per dataset folder: ``OUT/.indomer/lock``, an flock the OS drops when its
    process dies (so a stale lock is simply taken over), re-entrant within one process.

    The file names the holder (pid, command); it is removed while still locked on release,
    and a taker re-checks that the file it locked is still the one at the path.
    """

    def __init__(self, out: Path, command: str | None = None) -> None:
        self.out = Path(out)
        self.path = state_dir(self.out) / "lock"
        self.command = command or command_line()
        self._fh = None
        self._key = None
        self._depth = 0
        self._shared: DatasetLock | None = None

    def __enter__(self) -> Self:
        key = self.out.resolve()
        held = _HELD.get(key)
        if held is not None and held is not self:
            held._depth += 1
            self._key, self._shared = key, held
            return self
        self._shared = None
        self._acquire()
        self._key = key
        _HELD[key] = self
        self._depth = 1
        return self

    def _acquire(self) -> None:
        import fcntl

        state_dir(self.out).mkdir(parents=True, exist_ok=True)
        marker = state_dir(self.out) / FORMAT_FILE
        for _ in range(20):
            fh = _open_lock(self.path)
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read(2000).decode("utf-8", "replace").strip()
                fh.close()
                try:
                    doc = json.loads(holder)
                    who = f"pid {doc['pid']} running '{doc['command']}'"
                except (json.JSONDecodeError, KeyError, TypeError):
                    who = "another indomer command"
                raise LockedError(
                    f"{self.path}: locked by {who}; wait for it to finish (a lock whose "
                    "process has died is taken over by the next command)"
                ) from None
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed it between our open and our flock
                fh.close()
                continue
            fh.seek(0)
            fh.truncate()
            fh.write(
                json.dumps({"pid": os.getpid(), "command": self.command}).encode("utf-8") + b"\n"
            )
            fh.flush()
            self._fh = fh
            break
        else:  # pragma: no cover - needs twenty lost races in a row
            raise LockedError(f"{self.path}: could not take the lock; try again")
        if not marker.is_file():
            write_text_atomic(marker, dumps(FORMAT))

    def __exit__(self, *exc) -> None:
        if self._shared is not None:
            self._shared._depth -= 1
            return
        import fcntl

        _HELD.pop(self._key, None)
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()


def _open_lock(path: Path):
    """Open the lock file for reading and appending, never through a link: a planted
    ``.indomer/lock -> elsewhere`` would have the holder's JSON written over that file."""
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise UsageError(
                f"{path}: is a symbolic link, not indomer's lock file; remove the link"
            ) from None
        raise
    if not _regular(fd):
        os.close(fd)
        raise UsageError(f"{path}: is not a regular file, not indomer's lock file; remove it")
    return os.fdopen(fd, "a+b")


def _regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


def held(out: Path) -> bool:
    """Whether this process holds the lock of ``out``."""
    return Path(out).resolve() in _HELD


# --------------------------------------------------------------------------- generations


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _gen_numbers(out: Path) -> list[int]:
    gen = state_dir(out) / "gen"
    if not gen.is_dir():
        return []
    return sorted(int(p.name) for p in gen.iterdir() if p.name.isdigit())


def collect_garbage(out: Path) -> None:
    """Remove staging folders and generations other than the current one (under the lock)."""
    state = state_dir(out)
    if not state.is_dir():
        return
    current = current_generation(out)
    for p in state.iterdir():
        if p.name.startswith("staging-") and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.name.startswith(".current.") and p.is_symlink():
            p.unlink()
    gen = state / "gen"
    if gen.is_dir():
        for p in gen.iterdir():
            if current is None or p.name != current.name:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, dst)


class Generation:
    """The next generation of a dataset, being assembled in a staging folder.

    ``path`` is where the shards and split files go (``path/data``, ``path/splits``); with
    ``base=True`` it starts as hard links of the current generation, so a command that
    changes one thing (figures, a split) keeps the rest byte for byte.
    """

    def __init__(self, out: Path, *, base: bool) -> None:
        self.out = Path(out)
        self.base = base
        state = state_dir(self.out)
        self.path = state / f"staging-{os.getpid()}"
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.committed = False
        current = current_generation(self.out)
        if base and current is not None:
            for dirpath, _dirs, files in os.walk(current):
                rel = Path(dirpath).relative_to(current)
                (self.path / rel).mkdir(parents=True, exist_ok=True)
                for name in files:
                    _link_or_copy(Path(dirpath) / name, self.path / rel / name)
        for name in MANAGED_DIRS:
            (self.path / name).mkdir(exist_ok=True)

    def write_json(self, rel: str, obj) -> Path:
        path = self.path / rel
        write_json_atomic(path, obj)
        return path

    def write_text(self, rel: str, text: str) -> Path:
        path = self.path / rel
        write_text_atomic(path, text)
        return path

    def commit(self, build: dict, *, log=None) -> dict:
        """Finalize (manifest, card, Croissant, build.json) and switch to this generation.

        Returns the build.json written. ``build`` is the provenance: what went in, never how
        long it took.
        """
        build = finalize(self.path, build)
        if not (self.path / "rejected.jsonl").is_file():
            write_bytes_atomic(self.path / "rejected.jsonl", b"")
        _fsync_tree(self.path)
        fault("staged")
        state = state_dir(self.out)
        gens = state / "gen"
        gens.mkdir(exist_ok=True)
        number = max(_gen_numbers(self.out), default=0) + 1
        final = gens / f"{number:06d}"
        os.rename(self.path, final)
        _fsync_dir(gens)
        fault("renamed")
        self._ensure_links()
        tmp = state / f".current.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"gen/{final.name}", tmp)
        os.replace(tmp, state / "current")  # the commit point
        _fsync_dir(state)
        self.committed = True
        if not self.base:  # every row written anew: the dataset is in the current layout
            mark_layout(self.out)
        fault("switched")
        collect_garbage(self.out)
        return build

    def _ensure_links(self) -> None:
        """Create the top-level links once (dangling until the first switch: no dataset yet)."""
        for name in MANAGED:
            p = self.out / name
            if p.is_symlink():
                continue
            os.symlink(_link_target(name), p)
        _fsync_dir(self.out)

    def discard(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def writing(
    out: Path,
    *,
    base: bool,
    command: str | None = None,
    must_exist: bool = False,
    keep_new: bool = False,
) -> Iterator[Generation]:
    """Lock ``out``, yield a staging :class:`Generation`, remove it unless committed.

    ``must_exist``: the command changes an existing dataset (split, stats --plots).
    ``keep_new``: keep a newly created folder even when nothing was committed (a raw build
    keeps its work/ to resume); otherwise a folder this call created is removed again.
    """
    out = Path(out)
    if must_exist:
        require_dataset(out)
    existed = check_target(out)
    try:
        with DatasetLock(out, command):
            check_links(out)
            collect_garbage(out)
            gen = Generation(out, base=base)
            try:
                yield gen
            finally:
                if not gen.committed:
                    gen.discard()
    except BaseException:
        if not existed and not keep_new and not (state_dir(out) / "current").is_symlink():
            shutil.rmtree(out, ignore_errors=True)
        raise


def require_dataset(out: Path) -> None:
    """A finished dataset must be at ``out`` (for commands that change one)."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"{out}: no such folder; build the dataset first")
    if not is_generational(out):
        older = (out / "build.json").is_file() and not (out / "build.json").is_symlink()
        raise UsageError(
            f"{out}: "
            + (
                f"made by an older indomer (no {STATE_DIR}/ generations); rebuild it"
                if older
                else f"not a dataset built by indomer (no {STATE_DIR}/); build it first"
            )
            + " with 'indomer build ... --out DIR'"
        )
    check_links(out)
    if current_generation(out) is None:
        raise DataError(f"{out}: no finished build yet (nothing committed); run the build again")
    check_layout(out)


# --------------------------------------------------------------------------- finalize


def read_build(root: Path) -> dict:
    """``build.json`` of a generation as an object (one-line DataError otherwise)."""
    path = Path(root) / "build.json"
    if not path.is_file():
        return {}
    from indomer.readjson import read_json

    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(doc).__name__}; rebuild")
    return doc


def shard_manifest(out: Path) -> dict:
    """Per-split shard files with sha256, bytes and rows, and one hash over them all.

    ``bytes`` is the file size (what a download costs); ``data_bytes`` the uncompressed size
    Parquet records for its row groups, which is what the Hub's ``num_bytes`` means.
    """

    import pyarrow.parquet as pq

    from indomer.dataset import available_splits, shard_paths
    from indomer.fsutil import sha256_file

    splits = {}
    lines = []
    for split in available_splits(out):
        files = []
        for p in shard_paths(out, split):
            rel = p.relative_to(out).as_posix()
            digest = sha256_file(p)
            meta = pq.ParquetFile(p).metadata
            data_bytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            files.append(
                {
                    "path": rel,
                    "sha256": digest,
                    "bytes": p.stat().st_size,
                    "data_bytes": data_bytes,
                    "rows": meta.num_rows,
                }
            )
            lines.append(f"{rel} {digest}")
        splits[split] = {
            "files": files,
            "rows": sum(f["rows"] for f in files),
            "bytes": sum(f["bytes"] for f in files),
            "data_bytes": sum(f["data_bytes"] for f in files),
        }
    return {"splits": splits, "build_hash": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


def _placement(doc, df) -> list | None:
    """The split each row of ``df`` falls in under the split document ``doc`` (None for a
    row whose group it does not place); None when ``doc`` is not a split document or groups
    by a column the rows lack."""
    from indomer.groups import GROUP_KEY, group_column, with_groups

    try:
        key = doc["group_key"]
        where = {str(g): s for s, groups in doc["assignment"].items() for g in groups}
    except (KeyError, TypeError, AttributeError):
        return None
    if key == GROUP_KEY:
        members = (doc.get("linking") or {}).get("members") or {}
        groups = group_column(with_groups(df, {"groups": members}))[1].astype("string")
    elif key not in df.columns:
        return None
    else:
        groups = (
            group_column(df)[1].astype("string")
            if key == "speaker_id"
            else df[key].astype("string")
        )
    return [where.get(g) for g in groups]


def _split_docs(out: Path) -> list[tuple[Path, dict]]:
    """Every readable ``splits/*.json`` document, by file name."""
    from indomer.readjson import read_json

    folder = Path(out) / "splits"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = read_json(path)
        except IndomerError:
            continue
        found.append((path, doc))
    return found


def active(build: dict, name: str) -> dict:
    """``build`` naming ``splits/NAME.json`` as its active split: what a command that writes
    shards hands to the commit, so the active split is recorded by name, never guessed."""
    return {**build, "split": {"name": name, "file": f"splits/{name}.json"}}


def current_split_file(out: Path, df, build: dict | None = None) -> str | None:
    """The active split's file: the one ``build`` names (:func:`active`; two files may hold
    one assignment, so content alone cannot tell which one the command made active), which
    must place the shards' rows where they lie. A ``build`` naming none (a dataset from
    before names were recorded, :func:`write_dataset`): the first file by name whose
    assignment matches the shards now on disk."""
    split = (build or {}).get("split")
    name = split.get("name") if isinstance(split, dict) else None
    if isinstance(name, str):
        for path, doc in _split_docs(out):
            if path.stem == name:
                placed = _placement(doc, df)
                if placed is not None and placed == list(df["split"]):
                    return path.relative_to(out).as_posix()
                break
        raise DataError(
            f"{Path(out) / 'splits' / f'{name}.json'}: the active split does not place the "
            "shards' rows where they lie (or is missing); nothing was committed; make it active "
            f"again with 'indomer split OUT --activate {name}'"
        )
    for path, doc in _split_docs(out):
        placed = _placement(doc, df)
        if placed is not None and placed == list(df["split"]):
            return path.relative_to(out).as_posix()
    return None


def split_catalogue(out: Path, df, active: str | None) -> list[dict]:
    """Every split of the dataset for the card: its name, whether the shards follow it, the
    rows it puts on each side of these shards (None where it does not place every clip:
    it was made for other clips), the sha256 of its assignment, how it was made and its
    expected people on two sides."""
    from indomer.dataset import assignment_sha256

    rows = []
    for path, doc in _split_docs(out):
        if not isinstance(doc, dict) or "assignment" not in doc:
            continue
        placed = _placement(doc, df) or [None] * len(df)
        counts = None
        if all(p is not None for p in placed):
            counts = {s: placed.count(s) for s in doc["assignment"]}
        rows.append({
            "name": doc.get("name", path.stem),
            "file": path.relative_to(out).as_posix(),
            "active": path.relative_to(out).as_posix() == active,
            "rows": counts,
            "placed": sum(p is not None for p in placed),
            "total": len(df),
            "sha256": assignment_sha256(doc["assignment"]),
            "method": doc.get("method"),
            "seed": doc.get("seed"),
            "ratios": doc.get("ratios"),
            "stratify": doc.get("stratify"),
            "expected_people_on_two_sides": doc.get("expected_people_on_two_sides"),
        })
    return rows


def finalize(root: Path, build: dict) -> dict:
    """Compute everything derived from the shards under ``root`` and write it there.

    The one place that assembles build.json's outputs, the card and Croissant (DESIGN §7.12):
    the card renders what it is given. Figures drawn from other shards are dropped.
    """
    from indomer import card
    from indomer.croissant import write_croissant
    from indomer.dataset import available_splits
    from indomer.stats import compute_stats, load_data

    root = Path(root)
    if not available_splits(root):
        raise DataError(f"{root}: no shards under data/; nothing to commit")
    build = dict(build)
    manifest = shard_manifest(root)
    data = load_data(root)
    stats = compute_stats(root, data, build)
    split_file = current_split_file(root, data.df, build)
    split_doc = None
    if split_file:
        from indomer.readjson import read_json

        split_doc = read_json(root / split_file)
        build["split"] = {"name": split_doc.get("name"), "file": split_file}
    else:
        build.pop("split", None)
    build["outputs"] = manifest
    build["rows"] = {k: v["rows"] for k, v in manifest["splits"].items()}
    figures = card.fresh_figures(root, manifest["build_hash"])
    if not figures:
        for p in (root / "figures").iterdir():
            if p.is_file():
                p.unlink()
    write_json_atomic(root / "build.json", build)
    catalogue = split_catalogue(root, data.df, split_file)
    write_text_atomic(
        root / "README.md",
        card.render_card(build, stats, manifest, split_doc, figures, splits=catalogue),
    )
    write_croissant(root, card.croissant_for(build, stats, manifest))
    return build


def write_dataset(
    out: Path,
    splits: dict,
    build: dict | None = None,
    *,
    meta: dict | None = None,
    extra: dict[str, object] | None = None,
) -> dict:
    """Write a whole dataset (``{split: DataFrame}``) as one committed generation.

    For callers that already hold every row (tests, small tools); ``extra`` maps relative
    paths (``splits/NAME.json``) to JSON documents written beside the shards.
    """
    from indomer.dataset import write_split

    with writing(out, base=False) as gen:
        for split, df in splits.items():
            write_split(gen.path, split, df, meta)
        for rel, doc in (extra or {}).items():
            gen.write_json(rel, doc)
        return gen.commit(build or {"command": "write_dataset"})


__all__ = [
    "DatasetLock",
    "Generation",
    "LockedError",
    "check_layout",
    "check_target",
    "current_generation",
    "finalize",
    "is_generational",
    "write_dataset",
    "writing",
]
