"""The import contract: no circles, the engine apart from the registry and the estimators, no plugin in the core.

The static checks read every module's import statements (those run at import
time, and those inside functions); the slow one imports every module first
in an interpreter where nothing of the project is loaded yet.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGINS = {"grafx_dsp": ROOT / "plugins" / "grafx-dsp", "grafx_pedalboard": ROOT / "plugins" / "grafx-pedalboard",
           "grafx_lv2": ROOT / "plugins" / "grafx-lv2"}
ENGINE = ("grafx_core.graph", "grafx_core.schedule", "grafx_core.plan", "grafx_core.render")


def modules(root: pathlib.Path, package: str) -> dict[str, pathlib.Path]:
    """Every module of ``package`` under ``root``, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(tree: ast.Module, everywhere: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements run when the module is imported (or anywhere in it, with ``everywhere``)."""
    def visit(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node
            elif isinstance(node, ast.If):
                test = node.test
                if "TYPE_CHECKING" in ast.dump(test):
                    continue  # never run
                yield from visit(node.body)
                yield from visit(node.orelse)
            elif isinstance(node, (ast.Try, ast.With)):
                yield from visit(node.body)
                for handler in getattr(node, "handlers", []):
                    yield from visit(handler.body)
            elif everywhere and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from (n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    yield from visit(tree.body)


def import_graph(root: pathlib.Path, package: str, everywhere: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (a ``from a import b`` names ``a.b`` where that is a
    module, else ``a``); a package's own parents, imported implicitly first, are left out."""
    found = modules(root, package)
    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in _imports(ast.parse(path.read_text(encoding="utf-8")), everywhere):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = here[:len(here) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in found else module
                           for alias in node.names]
            parents = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
            graph[name] |= {t for t in targets if t in found and t != name and t not in parents}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in graph[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


@pytest.mark.parametrize("everywhere", [False, True], ids=["at import", "anywhere"])
def test_no_module_imports_itself_through_others(everywhere):
    for root, package in [(ROOT, "grafx_core"), *((path, name) for name, path in PLUGINS.items())]:
        assert cycles(import_graph(root, package, everywhere)) == [], f"import circle in {package}"


def test_the_engine_never_imports_the_registry_or_the_estimators():
    graph = import_graph(ROOT, "grafx_core", everywhere=True)
    for module in ENGINE:
        bad = sorted(m for m in reachable(graph, module) if m.startswith(("grafx_core.registry",
                                                                          "grafx_core.estimators")))
        assert not bad, f"{module} imports {bad}"


def test_the_core_never_imports_a_plugin_nor_its_own_facade_from_inside():
    for name, path in modules(ROOT, "grafx_core").items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                targets = [node.module or ""]
            else:
                continue
            for target in targets:
                assert target.split(".")[0] not in PLUGINS, f"{name} imports the plugin {target}"
                assert target != "grafx_core" or name == "grafx_core", f"{name} imports the grafx_core facade"


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter():
    names = [n for package in ("grafx_core", *PLUGINS) for n in modules(
        ROOT if package == "grafx_core" else PLUGINS[package], package) if not n.endswith("__main__")]
    # One interpreter with the third-party libraries loaded, forked once per module: each child imports its
    # module before anything else of the project, as a user's first import would.
    script = """
import importlib, os, sys, traceback
import numpy, scipy, torch, pluggy
failed = []
for name in sys.argv[1:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            code = 0
        except BaseException:
            os.write(write, traceback.format_exc(limit=3).encode())
            code = 1
        os._exit(code)
    os.close(write)
    message = os.read(read, 65536).decode()
    os.close(read)
    if os.waitpid(pid, 0)[1] != 0:
        failed.append(name + ": " + message.strip().splitlines()[-1] if message else name)
print("\\n".join(failed))
"""
    done = subprocess.run([sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"modules that fail when imported first:\n{done.stdout}"
