"""The house rules of docs/architecture.md that a test can check: no import circles among the
project's modules (function-level and TYPE_CHECKING imports included), no private names
imported across modules, and the engine core knows nothing of its front ends."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("codeswift", "datastore", "lsp", "service")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import in the file."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[:len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            found.append((target, names, node.lineno))
            # `from pkg import mod` imports the module pkg.mod
            found += [(f"{target}.{n}", [], node.lineno) for n in names if f"{target}.{n}" in MODULES]
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for target, _names, _line in _imports(name, path):
            while target and target not in MODULES:     # a name inside a module: the module
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_names_imported_across_modules():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {n} from {target}"
           for name, path in MODULES.items() for target, names, line in _imports(name, path)
           if target in MODULES for n in names
           if n.startswith("_") and not n.startswith("__") and f"{target}.{n}" not in MODULES]
    assert bad == []


def test_the_engine_core_imports_no_front_end():
    """codeswift/ (engine, loop, drafting, backends, bench) never imports lsp/ or service/; the
    datastore imports neither, nor the engine (its CLI plugin, datastore/cli.py, may resolve a
    model's tokenizer through codeswift.models)."""
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith("codeswift"):
            assert not {d for d in deps if d.split(".")[0] in ("lsp", "service")}, name
        if name.startswith("datastore") and name != "datastore.cli":
            assert not {d for d in deps if d.split(".")[0] in ("lsp", "service", "codeswift")}, name
