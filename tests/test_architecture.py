"""The package's shape, checked from its source: layers, no import cycles, small modules and functions.

Each top-level module or subpackage of ``tlearn`` sits in a layer; a module may import from its own
layer or below, never from above, and no two modules may import each other, directly or round a
loop. Imports inside functions count too: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tlearn"
# Lowest first. A name is a top-level module (``errors``) or subpackage (``data``) of tlearn.
LAYERS = [
    {"errors", "paths", "fileio", "runtime", "messages"},
    {"config"},
    {"data"},
    {"models"},
    {"runs"},
    {"inference"},
    {"training"},
    {"hub", "serve"},
    {"cli", "__init__", "__main__"},
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The tlearn modules ``name`` imports (a ``from x import sub`` of a submodule counts as ``x.sub``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:  # a submodule imported by name, else a name from the module itself
                targets.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source)
    return {t for t in targets if t in modules and t != name}


def _graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(package)
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_module_has_a_layer():
    for module in _modules():
        assert _layer(module) >= 0, module


def test_no_import_reaches_up_a_layer():
    upward = [(a, b) for a, targets in _graph().items() for b in targets if _layer(b) > _layer(a)]
    assert not upward, upward


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_modules_and_functions_stay_small():
    too_long = []
    for name, path in _modules().items():
        source = path.read_text()
        if source.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, too_long


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path):
    """The graph is real: a planted cycle (through a lazy import) and an upward import are found."""
    fake = tmp_path / "tlearn"
    (fake / "data").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "data" / "__init__.py").write_text("")
    (fake / "data" / "a.py").write_text("from . import b\nfrom ..training import x\n")
    (fake / "data" / "b.py").write_text("def f():\n    from .a import g\n")
    (fake / "training.py").write_text("")
    graph = _graph(fake)
    assert graph["tlearn.data.a"] == {"tlearn.data.b", "tlearn.training"}
    assert graph["tlearn.data.b"] == {"tlearn.data.a"}
    assert _layer("tlearn.training") > _layer("tlearn.data.a")
