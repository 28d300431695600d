"""The one output guard (DESIGN §1, §7.14): every file or folder a command writes goes here.

A command names its inputs once, then asks for each output. The guard refuses, in one line
with exit 2 (:class:`~indomer.errors.UsageError`):

- a target inside an indomer dataset (a folder with ``.indomer/FORMAT`` above it), since a
  dataset is written only by its own commands, one generation at a time;
- a target that is the same file as one of the command's inputs (device and inode, so links
  and ``..`` do not fool it): the user would lose the very file the output came from;
- a target that is a symbolic link leading out of its folder (or, inside a folder output, a
  path whose folders do);
- two outputs of one command that are the same file.

Files are written atomically (temp file and rename). A folder output (``export``, ``annotate
export``, ``annotate import``) owns only the files its manifest, :data:`MANIFEST` inside the
folder, lists: a rerun replaces those and removes those it no longer writes, leaves every
other file where it is, and refuses to write over a file it did not make.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from indomer.errors import UsageError
from indomer.fsutil import dumps, write_bytes_atomic

#: The manifest of a folder output: ``{"tool": ..., "files": [relative paths]}``.
MANIFEST = ".indomer-output.json"
#: Where a dataset folder keeps its state; ``FORMAT`` inside marks a dataset.
_STATE, _FORMAT = ".indomer", "FORMAT"


def _stdout(path: Path | str | None) -> bool:
    return path is not None and str(path) == "-"


def dataset_above(path: Path) -> Path | None:
    """The indomer dataset folder holding ``path`` (or being it), spelled as given or with
    every link resolved; None when there is none."""
    path = Path(os.path.abspath(path))
    seen: list[Path] = [path]
    with contextlib.suppress(OSError, RuntimeError):
        seen.append(path.resolve(strict=False))
    for p in seen:
        for folder in (p, *p.parents):
            marker = folder / _STATE / _FORMAT
            with contextlib.suppress(OSError):
                if marker.is_file():
                    return folder
    return None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _through_link(target: Path, shown: Path, option: str, what: str) -> Path:
    """Where ``target`` leads: itself, or the file its link names inside the same folder; a
    link that leaves its folder is refused (it could point into a dataset or a system file)."""
    if not target.is_symlink():
        return target
    real = target.resolve(strict=False)
    if real.parent != target.parent.resolve(strict=False):
        raise UsageError(f"{option} {shown}: a symbolic link to {real}, outside its folder; "
                         f"remove the link or choose another {what}")
    return real


class Outputs:
    """The outputs of one command run, checked against its inputs and against each other.

    ``inputs``: the files and folders the command reads (None and ``-`` are ignored).
    ``owner``: the dataset this command writes as its writer (build, split), if any.
    """

    def __init__(self, inputs: Iterable[Path | str | None] = (), *, owner: Path | None = None):
        self._inputs: dict[tuple[int, int], Path] = {}
        self._owner = Path(os.path.abspath(owner)).resolve() if owner is not None else None
        self._taken: dict[object, tuple[str, Path]] = {}
        self._checked: dict[tuple[str, str], Path] = {}
        for p in inputs:
            self.add_input(p)

    def add_input(self, path: Path | str | None, *, files_inside: bool = False) -> None:
        """Also count ``path`` as an input; with ``files_inside``, every file under a folder
        ``path`` too (a command that reads the files it finds there)."""
        if path is None or _stdout(path):
            return
        ident = _identity(Path(path))
        if ident is not None:
            self._inputs.setdefault(ident, Path(path))
        if files_inside and Path(path).is_dir():
            for p in sorted(Path(path).rglob("*")):
                if p.is_file():
                    self.add_input(p)

    # ------------------------------------------------------------------ checks

    def _check_dataset(self, path: Path, option: str) -> None:
        ds = dataset_above(path)
        if ds is None:
            return
        if self._owner is not None and ds.resolve() == self._owner:
            return
        raise UsageError(
            f"{option} {path}: inside the indomer dataset {ds}, which only its own commands "
            "(build, split, stats --plots DIR/figures) write; choose a path outside it"
        )

    def _check_input(self, path: Path, option: str, shown: Path) -> None:
        ident = _identity(path)
        if ident is not None and ident in self._inputs:
            raise UsageError(
                f"{option} {shown}: is the same file as the input {self._inputs[ident]}; "
                "choose another file, or the input would be lost"
            )

    def _claim(self, path: Path, option: str, shown: Path) -> None:
        """Two outputs of one command may not be one file."""
        keys: list[object] = [str(Path(os.path.abspath(path)).resolve(strict=False))]
        ident = _identity(path)
        if ident is not None:
            keys.append(ident)
        for key in keys:
            if key in self._taken and self._taken[key] != (option, shown):
                other_opt, other = self._taken[key]
                raise UsageError(
                    f"{option} {shown}: is the same file as {other_opt} {other}; "
                    "give each output its own file"
                )
        for key in keys:
            self._taken[key] = (option, shown)

    def file(self, path: Path | str, option: str) -> Path:
        """Check one file output; return the path to write (``-`` stays ``-``). Checking
        the same option and path again returns the first answer."""
        if _stdout(path):
            return Path("-")
        key = (option, os.path.abspath(path))
        if key in self._checked:
            return self._checked[key]
        shown = Path(path)
        target = Path(os.path.abspath(shown))
        self._check_dataset(target, option)  # first: the clearest reason
        target = _through_link(target, shown, option, "file")
        if target.is_dir():
            raise UsageError(f"{option} {shown}: is a folder; name a file")
        self._check_dataset(target, option)
        self._check_input(target, option, shown)
        self._claim(target, option, shown)
        self._checked[key] = target
        return target

    def folder(self, path: Path | str, option: str, tool: str) -> FolderOutput:
        """Check a folder output; return it, ready to write files into."""
        shown = Path(path)
        target = Path(os.path.abspath(shown))
        self._check_dataset(target, option)  # first: the clearest reason
        target = _through_link(target, shown, option, "folder")
        if target.exists() and not target.is_dir():
            raise UsageError(f"{option} {shown}: a file, not a folder; choose a folder")
        self._check_dataset(target, option)
        self._check_input(target, option, shown)
        self._claim(target, option, shown)
        return FolderOutput(self, target, option, tool, shown)

    # ------------------------------------------------------------------ writing

    def write_text(self, path: Path | str, text: str, option: str) -> Path:
        """Check ``path`` (unless already checked) and write ``text`` atomically; ``-`` is
        standard output."""
        if _stdout(path):
            import click

            click.echo(text, nl=not text.endswith("\n"))
            return Path("-")
        return self.write_bytes(path, text.encode("utf-8"), option)

    def write_bytes(self, path: Path | str, data: bytes, option: str) -> Path:
        target = self.file(path, option)
        write_bytes_atomic(target, data)
        return target


class FolderOutput:
    """A folder one command writes several files into; it owns only what :data:`MANIFEST`
    lists (see the module docstring)."""

    def __init__(self, guard: Outputs, path: Path, option: str, tool: str, shown: Path):
        self.guard, self.path, self.option, self.tool, self.shown = (
            guard, path, option, tool, shown
        )

    def owned(self, legacy: set[str] | None = None) -> set[str]:
        """The files a previous run of ``tool`` wrote here (refuses another tool's folder);
        ``legacy``: what the tool owns in a folder it wrote before manifests existed."""
        from indomer.readjson import read_json

        manifest = self.path / MANIFEST
        if not manifest.is_file() or manifest.is_symlink():
            return set(legacy or ())
        doc = read_json(manifest)
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UsageError(
                f"{manifest}: not an indomer output manifest; remove it or choose another "
                f"{self.option}"
            )
        if doc.get("tool") != self.tool:
            raise UsageError(
                f"{self.option} {self.shown}: holds the output of '{doc.get('tool')}', not of "
                f"'{self.tool}'; choose another folder"
            )
        return {f for f in files if self._safe_rel(f)}

    def _safe_rel(self, rel: str) -> bool:
        p = Path(rel)
        return bool(rel) and not p.is_absolute() and ".." not in p.parts and rel != MANIFEST

    def check(self, names: Iterable[str], owned: set[str]) -> None:
        """Refuse before anything is written: a name over a file this tool did not write,
        over an input, through a link leaving the folder, or twice."""
        root = self.path.resolve(strict=False)
        for rel in names:
            if not self._safe_rel(rel):
                raise UsageError(f"{self.option} {self.shown}: cannot write {rel!r} there")
            target = self.path / rel
            shown = self.shown / rel
            # every folder on the way, and the file itself, must stay inside the folder
            probe = self.path
            for part in Path(rel).parts:
                probe = probe / part
                if probe.is_symlink() and not probe.resolve(strict=False).is_relative_to(root):
                    raise UsageError(
                        f"{self.option} {shown}: {probe} is a symbolic link leading out of "
                        f"{self.shown}; remove the link"
                    )
            self.guard._check_input(target, self.option, shown)
            if (target.exists() or target.is_symlink()) and rel not in owned:
                raise UsageError(
                    f"{self.option} {shown}: exists and was not written by {self.tool}; move "
                    "it away or choose another folder (files indomer did not write are never "
                    "replaced)"
                )
            if target.is_dir() and not target.is_symlink():
                raise UsageError(f"{self.option} {shown}: is a folder; move it away")
            self.guard._claim(target, self.option, shown)

    def _write_manifest(self, files: Iterable[str]) -> None:
        write_bytes_atomic(
            self.path / MANIFEST,
            dumps({"files": sorted(set(files)), "tool": self.tool}).encode("utf-8"),
        )

    def _finish(self, old: set[str], new: set[str]) -> None:
        for rel in sorted(old - new):
            p = self.path / rel
            if p.is_file() or p.is_symlink():
                p.unlink()
            parent = p.parent
            while parent != self.path and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        self._write_manifest(new)

    def write_files(self, files: Mapping[str, bytes]) -> list[Path]:
        """Write ``files`` (relative path -> bytes), each atomically; the manifest lists the
        old and the new names while they change, so a kill never orphans a file."""
        old = self.owned()
        self.check(files, old)
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_manifest(old | set(files))
        written = []
        for rel in sorted(files):
            write_bytes_atomic(self.path / rel, files[rel])
            written.append(self.path / rel)
        self._finish(old, set(files))
        return written

    def publish(self, staged: Path, *, legacy: set[str] | None = None) -> list[str]:
        """Move every file of the folder ``staged`` (same filesystem) into place, by rename."""
        names = sorted(
            p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()
        )
        old = self.owned(legacy)
        self.check(names, old)
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_manifest(old | set(names))
        for rel in names:
            (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / rel, self.path / rel)
        self._finish(old, set(names))
        return names


def refuse_same(paths: Mapping[str, Path | None]) -> None:
    """Refuse two named outputs (option -> path) that are one file, before either is written."""
    guard = Outputs()
    for option, path in paths.items():
        if path is not None and not _stdout(path):
            guard.file(path, option)


