"""The file tree is the design: no import cycle, the store never imports the parser, and
private helpers live inside their stage's subpackage (read from the imports with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "veo_notebook"


def _module(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of the package imported by ``path`` at any level, TYPE_CHECKING blocks aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                stem = base[: len(base) - node.level + 1]
                target = ".".join(stem + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("veo_notebook"):
                out.add(target)
                out |= {f"{target}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("veo_notebook")}
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p, m) if i in files and i != m} for m, p in files.items()}


def test_no_import_cycle() -> None:
    graph = _graph()

    # a package's __init__ importing its own submodules is how it re-exports: not a cycle
    def edges(m: str) -> set[str]:
        return {t for t in graph[m] if not t.startswith(m + ".")}

    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in edges(m):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, m, t]))
            if t not in state:
                visit(t, [*path, m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])


def test_the_store_never_imports_the_parser() -> None:
    graph = _graph()
    store = [m for m in graph if m == "veo_notebook.store" or m.startswith("veo_notebook.store.")]
    assert len(store) > 1  # the package and its parts
    assert not {i for m in store for i in graph[m] if i.startswith("veo_notebook.frame")}


def test_private_helpers_live_in_their_stage() -> None:
    loose = [p.name for p in PACKAGE.glob("_*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert set(loose) <= {"_version.py"}, loose


def _design_tree() -> str:
    """The module tree of docs/design.md: the fenced block that starts ``veo_notebook/``."""
    text = (PACKAGE.parent / "docs" / "design.md").read_text(encoding="utf-8")
    blocks = text.split("```")[1::2]
    return next(b for b in blocks if b.lstrip().startswith("veo_notebook/"))


def test_every_module_is_in_the_design_tree() -> None:
    # the rule is kept simple so that anyone adding a module can comply: its path under
    # veo_notebook/ or its file name appears in the tree (a package: its folder name)
    tree = _design_tree()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if path.name == "__init__.py" and rel.parent.parts:
            wanted = [f"{rel.parent.name}/"]
        else:
            wanted = [rel.as_posix(), path.name]
        if not any(w in tree for w in wanted):
            missing.append(rel.as_posix())
    assert not missing, f"add these to the tree in docs/design.md: {missing}"
