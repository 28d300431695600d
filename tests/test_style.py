"""The house style is enforced by the suite: ``ruff check`` must be clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff not installed (it is in the test extra)")
    res = subprocess.run([ruff, "check", str(ROOT)], check=False, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


# --------------------------------------------------------------------------- import cycles


def module_imports(root: Path, package: str = "indomer") -> dict[str, set[str]]:
    """Every module of ``package`` under ``root`` and the package modules it imports, lazy
    imports (inside functions) included: a cycle through a lazy import still ties the two
    modules together."""
    import ast

    mods: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    deps.add(full if full in mods else module)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))
    return cycles


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path):
    pkg = tmp_path / "indomer"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from indomer.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (pkg / "c.py").write_text("def g():\n    import indomer.a\n")
    (pkg / "d.py").write_text("from indomer import a\n")
    assert import_cycles(module_imports(tmp_path)) == [["indomer.a", "indomer.c", "indomer.sub.b"]]


def test_indomer_has_no_import_cycle():
    """DESIGN §7.13: no import cycles, lazy imports included."""
    assert import_cycles(module_imports(ROOT)) == []


# --------------------------------------------------------------------------- mirror test files


def holds_code(init: Path) -> bool:
    """Whether a package's ``__init__.py`` holds code beyond re-exports: anything but its
    docstring, imports, ``__all__`` and other dunder assignments (``__version__``)."""
    import ast

    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else None)
        if targets and all(isinstance(t, ast.Name) and t.id.startswith("__") for t in targets):
            continue
        return True
    return False


def missing_mirrors(root: Path, package: str = "indomer") -> list[tuple[str, str]]:
    """(module, expected test file) for each module of ``package`` under ``root`` without its
    mirror test file.

    The mirror rule: module ``indomer/P/M.py`` is mirrored by ``tests/P/test_M.py``, a
    top-level module ``indomer/M.py`` by ``tests/test_M.py``. A package's ``__init__.py`` is
    exempt unless it holds code beyond re-exports (:func:`holds_code`); then the package is
    the module: ``indomer/P/__init__.py`` is mirrored by ``tests/test_P.py`` (and
    ``indomer/A/P/__init__.py`` by ``tests/A/test_P.py``). The top package's own
    ``__init__.py`` is mirrored by ``tests/test_<package>.py``. Test subfolders are packages
    (an ``__init__.py`` each), so two folders may hold a test file of one name.
    """
    base = root / package
    missing = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base)
        if rel.parts[0] in ("schemas", "data") or "__pycache__" in rel.parts:
            continue
        if path.name == "__init__.py":
            if not holds_code(path):
                continue
            parts = rel.parts[:-1] or (package,)  # the package itself is the module
            expected = Path("tests", *parts[:-1], f"test_{parts[-1]}.py")
        else:
            expected = Path("tests", *rel.parts[:-1], f"test_{path.name}")
        if not (root / expected).is_file():
            missing.append((f"{package}/{rel.as_posix()}", expected.as_posix()))
    return missing


def test_the_mirror_rule_names_each_missing_file(tmp_path):
    for rel in ("indomer/__init__.py", "indomer/a.py", "indomer/b.py", "indomer/sub/__init__.py",
                "indomer/sub/c.py", "indomer/pkg/__init__.py", "tests/test_a.py",
                "tests/sub/test_c.py", "tests/pkg/test_x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text('"""doc."""\n\nfrom x import y\n\n__all__ = ["y"]\n')
    (tmp_path / "indomer" / "pkg" / "__init__.py").write_text("def run():\n    pass\n")
    assert missing_mirrors(tmp_path) == [
        ("indomer/b.py", "tests/test_b.py"),
        ("indomer/pkg/__init__.py", "tests/test_pkg.py"),
    ]
    (tmp_path / "indomer" / "__init__.py").write_text("LEVEL = 1\n")
    (tmp_path / "tests" / "test_b.py").write_text("")
    (tmp_path / "tests" / "test_pkg.py").write_text("")
    assert missing_mirrors(tmp_path) == [("indomer/__init__.py", "tests/test_indomer.py")]


def test_every_module_has_its_mirror_test_file():
    """Issue 22: each module of indomer/ has its own test file, where its tests are found."""
    missing = missing_mirrors(ROOT)
    assert not missing, "modules without their mirror test file:\n" + "\n".join(
        f"  {module}: expected {expected}" for module, expected in missing
    )
