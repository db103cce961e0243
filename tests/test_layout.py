"""The package's layout, read from the source with `ast` (nothing of clora_lite is imported): the import graph of
its modules has no cycle, every arrow points down the layers listed in clora_lite/__init__.py, no module grows
past 400 lines, and what the modules import from outside the standard library is declared in pyproject.toml.

Every import counts, also one inside a function (it runs the first time the function does): relative ones are
resolved, and `from . import x` / `from .. import x` lead to the submodule x when there is one, else to the
package's __init__.py.
"""
import ast
from pathlib import Path
import sys
import tomllib

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "clora_lite"
MAX_LINES = 400

# Layers, bottom first (clora_lite/__init__.py's docstring). A module may import modules of a strictly lower rank,
# and modules of its own group (acyclically): its folder, or for a top-level module the top-level modules of the same
# rank (env imports errors, __main__ imports cli). The package's own __init__.py sits above everything.
RANKS = {"errors": 0, "env": 0, "notebook": 0, "adapters": 1, "benchmarks": 2, "backbone": 3, "methods": 4,
         "continual": 5, "inside": 6, "comparison": 7, "throughput": 7, "tuning": 7, "cli": 8,
         "__main__": 8}
TOP_RANK = 9


# ---------------------------------------------------------------- reading the graph

def find_modules(package_dir: Path) -> dict:
    """{dotted module name: path} of every .py file under package_dir (a package's __init__.py is the package)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def is_package(name: str, modules: dict) -> bool:
    return modules[name].name == "__init__.py"


def resolve_from(name: str, node: ast.ImportFrom, modules: dict) -> str | None:
    """The dotted module an ImportFrom reads from (relative levels resolved), or None outside the package."""
    if node.level == 0:
        return node.module if node.module and node.module.split(".")[0] == PACKAGE else None
    base = name.split(".") if is_package(name, modules) else name.split(".")[:-1]
    if node.level - 1 > len(base) - 1:
        raise AssertionError(f"{name}: `from {'.' * node.level}{node.module or ''} import ...` climbs out of the package")
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, tree: ast.AST, modules: dict) -> list[tuple[str, int]]:
    """[(imported module, line)] for every import of a package module in `tree`, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    target = alias.name
                    while target not in modules and "." in target:
                        target = target.rsplit(".", 1)[0]
                    found.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            source = resolve_from(name, node, modules)
            if source is None:
                continue
            assert source in modules, f"{name}:{node.lineno} imports from {source}, which is no module of the package"
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((sub if sub in modules else source, node.lineno))
    return found


def import_graph(package_dir: Path) -> tuple[dict, dict]:
    """({module: {imported module: first line}}, {module: path}) for the package in package_dir."""
    modules = find_modules(package_dir)
    graph = {}
    for name, path in modules.items():
        edges = {}
        for target, line in imports_of(name, ast.parse(path.read_text(encoding="utf-8")), modules):
            if target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph, modules


def find_cycle(graph: dict) -> list | None:
    """A cycle [a, b, ..., a] in the directed graph {node: iterable of successors}, or None if it has none."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    for start in graph:
        if colour[start] != WHITE:
            continue
        colour[start], path, stack = GREY, [start], [iter(graph[start])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = BLACK
                stack.pop()
            elif colour.get(nxt, WHITE) == GREY:
                return path[path.index(nxt):] + [nxt]
            elif colour.get(nxt, WHITE) == WHITE:
                colour[nxt] = GREY
                path.append(nxt)
                stack.append(iter(graph.get(nxt, ())))
    return None


def unit(name: str) -> str:
    """The layer a module belongs to: its folder or top-level module ("clora_lite.methods.base" -> "methods")."""
    return "__init__" if name == PACKAGE else name.split(".")[1]


def rank(name: str) -> int:
    return TOP_RANK if name == PACKAGE else RANKS[unit(name)]


def group(name: str, folders: set) -> tuple:
    """A module's group: its folder, or (for a top-level module) its rank among the top-level modules."""
    return ("folder", unit(name)) if unit(name) in folders else ("top", rank(name))


def layering_violations(graph: dict) -> list[str]:
    """Every arrow a -> b that is neither down the layers nor inside one group (the top __init__ may import all)."""
    folders = {unit(m) for m in graph if m.count(".") >= 2}
    bad = []
    for a, edges in graph.items():
        for b, line in edges.items():
            if a == PACKAGE or rank(b) < rank(a) or group(a, folders) == group(b, folders):
                continue
            bad.append(f"{a} (rank {rank(a)}) -> {b} (rank {rank(b)}), line {line}")
    return bad


# ---------------------------------------------------------------- the package

GRAPH, MODULES = import_graph(ROOT / PACKAGE)


def test_the_graph_is_read():
    """A guard against a reader that finds nothing: known arrows, a function-level one and `from .. import x`."""
    assert len(MODULES) > 30 and "clora_lite.methods.base" in MODULES
    assert "clora_lite.adapters" in GRAPH["clora_lite.methods.base"]             # from .. import adapters as ad
    assert "clora_lite.inside.figures" in GRAPH["clora_lite.comparison"]            # inside write_figures()
    assert "clora_lite.inside.analysis" in GRAPH["clora_lite.inside.figures"]    # from . import analysis as an
    assert "clora_lite.backbone.vit" in GRAPH["clora_lite.inside.figures"]       # inside save_inside_figures()
    assert "clora_lite.continual.loop" in GRAPH["clora_lite.cli"]                # inside cmd_run()


def test_every_module_has_a_layer():
    unranked = sorted({unit(m) for m in MODULES if m != PACKAGE and unit(m) not in RANKS})
    assert not unranked, f"modules or folders with no layer in RANKS: {unranked} (add them to the docstring's list)"


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(
        f"{a} (line {GRAPH[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_imports_point_down_the_layers():
    bad = layering_violations(GRAPH)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_same_folder_imports_are_acyclic():
    """Implied by test_no_import_cycle, checked per folder so that a failure names the folder."""
    for folder in sorted({unit(m) for m in MODULES if m.count(".") >= 2}):
        sub = {a: {b: l for b, l in e.items() if unit(b) == folder} for a, e in GRAPH.items() if unit(a) == folder}
        assert find_cycle(sub) is None, f"{folder}/: import cycle {' -> '.join(find_cycle(sub))}"


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


def shadowed_imports(graph_modules: dict) -> list[str]:
    """`from P import n` where n is both a submodule of P and a name P's __init__.py binds to something else (e.g.
    a function re-exported under the module's name): Python hands out the __init__'s binding, not the module."""
    bad = []
    for name, path in graph_modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = resolve_from(name, node, graph_modules)
            if source is None or not is_package(source, graph_modules):
                continue
            init = ast.parse(graph_modules[source].read_text(encoding="utf-8"))
            for alias in node.names:
                if f"{source}.{alias.name}" in graph_modules and alias.name in rebound_names(init):
                    bad.append(f"{name}, line {node.lineno}: `from {'.' * node.level}{node.module or ''} import "
                               f"{alias.name}` gets what {source.replace('.', '/')}/__init__.py binds to {alias.name!r}, "
                               "not the module")
    return bad


def rebound_names(init: ast.Module) -> set:
    """Names a package's __init__.py binds at module level other than by `from . import name`."""
    names = set()
    for node in init.body:
        if isinstance(node, ast.ImportFrom) and not (node.level == 1 and node.module is None):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.asname or a.name.split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_no_import_gets_a_function_where_it_asks_for_a_module():
    bad = shadowed_imports(MODULES)
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- third-party imports are declared

def third_party_imports(tree: ast.Module, module_level_only: bool) -> dict:
    """{top-level name: line} of the non-stdlib, non-package absolute imports in tree; module_level_only skips those
    inside functions, under `if TYPE_CHECKING:` and inside `try:` blocks (optional by construction)."""
    out = {}

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Try)) and module_level_only:
                continue
            if isinstance(node, ast.If) and module_level_only and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top != PACKAGE:
                    out.setdefault(top, node.lineno)
            visit(ast.iter_child_nodes(node))
    visit(tree.body)
    return out


def declared(requirements: list) -> set:
    import re
    return {re.split(r"[<>=!~\[; ]", r, 1)[0].strip().lower().replace("_", "-") for r in requirements}


DISTRIBUTION = {"PIL": "pillow"}   # import name -> distribution name, where they differ
NOTEBOOK_ONLY = {"clora_lite.inside.explorers"}   # needs the notebooks extra (ipywidgets); imported by name only


def test_module_level_imports_are_core_dependencies():
    """What a module imports when it loads must be installed by a plain `pip install clora_lite` (the notebook
    explorers may rely on the notebooks extra). Optional imports belong inside the function that needs them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = declared(project["dependencies"])
    notebooks = core | declared(project["optional-dependencies"]["notebooks"])
    missing = []
    for name, path in MODULES.items():
        allowed = notebooks if name in NOTEBOOK_ONLY else core
        for top, line in third_party_imports(ast.parse(path.read_text(encoding="utf-8")), True).items():
            if DISTRIBUTION.get(top, top).lower().replace("_", "-") not in allowed:
                missing.append(f"{name}, line {line}: import {top}")
    assert not missing, "module-level imports of packages pyproject.toml does not install:\n" + "\n".join(missing)


# ---------------------------------------------------------------- the checks themselves can fail

def test_find_cycle_on_hand_made_graphs():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}) is None    # a diamond is no cycle
    cycle = find_cycle({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a", "d"], "d": []})
    assert cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"} and len(cycle) == 4
    assert find_cycle({"s": ["s"]}) == ["s", "s"]
    assert find_cycle({"a": ["ghost"]}) is None                                       # edges out of the graph


def test_a_hand_made_package_with_a_cycle_and_a_wrong_arrow_fails(tmp_path):
    """Relative, function-level and `from . import x` imports are all read, and a cycle through them is found."""
    pkg = tmp_path / PACKAGE
    files = {
        "__init__.py": "from .methods import thing\n",
        "errors.py": "",
        "env.py": "from . import errors\ndef late():\n    from .methods import base   # function-level, against the layers\n",
        "cli.py": "from . import env\n",
        "methods/__init__.py": "from .base import thing\n",
        "methods/base.py": "from .. import env\nfrom . import extra\nthing = 1\n",
        "methods/extra.py": "def f():\n    from .base import thing\n",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    graph, _ = import_graph(pkg)
    assert set(graph["clora_lite.methods.base"]) == {"clora_lite.env", "clora_lite.methods.extra"}
    assert set(graph["clora_lite.env"]) == {"clora_lite.errors", "clora_lite.methods.base"}
    assert set(graph["clora_lite.methods.extra"]) == {"clora_lite.methods.base"}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) in ({"clora_lite.env", "clora_lite.methods.base"},
                          {"clora_lite.methods.base", "clora_lite.methods.extra"})
    # env -> errors (same rank, both top-level) and cli -> env (down) are allowed; env -> methods is not
    assert layering_violations(graph) == ["clora_lite.env (rank 0) -> clora_lite.methods.base (rank 4), line 3"]
    with pytest.raises(AssertionError, match="import cycle: clora_lite"):
        cyc = find_cycle(graph)
        assert cyc is None, "import cycle: " + " -> ".join(cyc)


def test_the_shadowing_check_and_the_dependency_reader_see_what_they_should(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "bench").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "bench" / "__init__.py").write_text("from .synthetic import synthetic\nfrom . import other\n")
    (pkg / "bench" / "synthetic.py").write_text("def synthetic():\n    pass\n")
    (pkg / "bench" / "other.py").write_text("")
    (pkg / "user.py").write_text("from .bench import synthetic as data\nfrom .bench import other\n")
    modules = find_modules(pkg)
    assert shadowed_imports(modules) == [f"clora_lite.user, line 1: `from .bench import synthetic` gets what "
                                         "clora_lite/bench/__init__.py binds to 'synthetic', not the module"]
    tree = ast.parse("import torch\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import plotly\n"
                     "try:\n    import timm\nexcept ImportError:\n    pass\n"
                     "def f():\n    import nbformat\nfrom PIL import Image\nimport os.path\n")
    assert set(third_party_imports(tree, True)) == {"torch", "PIL"}
    assert set(third_party_imports(tree, False)) == {"torch", "PIL", "plotly", "timm", "nbformat"}
