"""Import graph of a package: lines per module, import cycles and imports that point up the layers.

Usage::

    python3 tools/import_graph.py [src/metapbt]

Every ``import`` statement counts, at module level or inside a function (a lazy import is still a
dependency). Importing ``a.b.c`` is an edge to ``a.b.c`` only, not to the packages ``a`` and
``a.b`` whose ``__init__`` Python also runs: those implicit edges would turn every package into a
cycle with its own submodules. ``from a import b`` is an edge to ``a.b`` when ``b`` is a module,
else to ``a``.

The layer order (docs/development.md; an import may point down or sideways, never up)::

    cli > integrations > studies > runs > engine > envs > population > surrogates
        > metadata > analysis

``errors``, ``_atomic`` and ``_registry`` are leaf utilities (below everything); ``toy`` is a
driver over ``Population`` beside the engine; the root ``metapbt/__init__`` re-exports the
population core and sits just above ``population``.

Counting mode::

    python3 tools/import_graph.py --uses RunConfig --calls resolve_context

``--uses NAME`` lists the modules that mention ``NAME`` (an import, a reference or an
annotation: where a value of that type is handled by name), ``--calls NAME`` the call sites of a
function ``NAME`` (``NAME(...)`` or ``x.NAME(...)``) per module. Both may repeat; this mode
prints only the counts and exits 0.

Exit status: 0 when the graph has no cycle and no upward import, 1 otherwise.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

# Higher imports lower. Modules not listed take the layer of their first package component.
LAYERS: dict[str, int] = {
    "__main__": 90,
    "cli": 90,
    "integrations": 80,
    "studies": 70,
    "runs": 65,
    "engine": 60,
    "toy": 60,
    "envs": 50,
    "": 45,  # the root package's __init__: the public population core
    "population": 40,
    "surrogates": 30,
    "metadata": 20,
    "analysis": 10,
    "errors": 0,
    "_atomic": 0,
    "_registry": 0,
    "_slug": 0,
    "_paths": 0,
    "compile_cache": 0,
    "_deferred": 0,
    "_deprecation": 0,
    "_version": 0,
    "stored_programs": 5,  # uses compile_cache and _atomic
}


def module_name(path: Path, root: Path) -> str:
    """Dotted name of the module in ``path`` under the package directory ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package in ``root``, by dotted name."""
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = name.split(".") if is_package else name.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The package-internal modules that the module ``name`` in ``path`` imports."""
    known = set(known)
    found: set[str] = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            target = _absolute(node, name, path.name == "__init__.py")
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif target in known:
                    found.add(target)
    found.discard(name)
    return found


def graph(root: Path) -> tuple[dict[str, Path], dict[str, set[str]]]:
    """The package's modules and, for each, the package modules it imports."""
    mods = modules(root)
    return mods, {name: imports(name, path, mods) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def layer(name: str) -> tuple[str, int]:
    """The layer of a dotted module name: (its name, its rank)."""
    parts = name.split(".")
    key = parts[1] if len(parts) > 1 else ""
    if key not in LAYERS:
        raise SystemExit(f"module {name!r} has no layer: add {key!r} to LAYERS in {__file__}")
    return key or "<root>", LAYERS[key]


def upward(edges: dict[str, set[str]]) -> Iterator[tuple[str, str]]:
    """Every import ``(importer, imported)`` that points up the layer order."""
    for src in sorted(edges):
        for dst in sorted(edges[src]):
            if layer(dst)[1] > layer(src)[1]:
                yield src, dst


def report(root: Path) -> tuple[list[str], bool]:
    """The report's lines, and whether the package is clean (no cycle, no upward import)."""
    mods, edges = graph(root)
    lines = ["# lines per module (lines, module, layer, imports)"]
    for name, path in mods.items():
        n = len(path.read_text().splitlines())
        deps = ", ".join(sorted(edges[name])) or "-"
        lines.append(f"{n:5d}  {name}  [{layer(name)[0]}]  -> {deps}")
    found = cycles(edges)
    lines.append(f"# import cycles: {len(found)}")
    lines += ["  " + " <-> ".join(component) for component in found]
    up = list(upward(edges))
    lines.append(f"# upward imports: {len(up)}")
    lines += [f"  {s} [{layer(s)[0]}] -> {d} [{layer(d)[0]}]" for s, d in up]
    return lines, not found and not up


def _mentions(tree: ast.AST, name: str) -> int:
    """How often ``name`` occurs in ``tree``: names, attributes, imported aliases, strings.

    String annotations (``"RunConfig"``) count too, as a quoted type is still a use.
    """
    found = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found += node.id == name
        elif isinstance(node, ast.Attribute):
            found += node.attr == name
        elif isinstance(node, ast.alias):
            found += name in (node.name.rsplit(".", 1)[-1], node.asname)
        elif isinstance(node, ast.Constant):
            found += node.value == name
    return found


def _calls(tree: ast.AST, name: str) -> int:
    """The call sites of a function ``name`` in ``tree`` (``name(...)``, ``x.name(...)``)."""
    found = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            found += called == name
    return found


def counts(root: Path, uses: list[str], calls: list[str]) -> list[str]:
    """The counting mode's lines: modules using each name, call sites of each function."""
    mods = modules(root)
    trees = {name: ast.parse(path.read_text(), filename=str(path)) for name, path in mods.items()}
    lines = []
    for label, names, count in (("uses", uses, _mentions), ("calls", calls, _calls)):
        for target in names:
            per = {m: n for m, t in trees.items() if (n := count(t, target))}
            total = sum(per.values())
            lines.append(f"# {label} {target}: {len(per)} modules, {total} occurrences")
            lines += [f"  {n:3d}  {m}" for m, n in sorted(per.items())]
    return lines


def _take(argv: list[str], flag: str) -> list[str]:
    """The values of every ``flag VALUE`` pair in ``argv``, removed from it."""
    values = []
    while flag in argv:
        i = argv.index(flag)
        if i + 1 >= len(argv):
            raise SystemExit(f"{flag} needs a name")
        values.append(argv[i + 1])
        del argv[i : i + 2]
    return values


def main(argv: list[str]) -> int:
    """Print the report (or the counts) for the package directory in ``argv``.

    The default package directory is ``src/metapbt``.
    """
    argv = list(argv)
    uses, calls = _take(argv, "--uses"), _take(argv, "--calls")
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "src" / "metapbt"
    if uses or calls:
        print("\n".join(counts(root, uses, calls)))
        return 0
    lines, clean = report(root)
    print("\n".join(lines))
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
