"""tools/import_graph.py: no import cycle and no upward import in the package."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "import_graph.py"


def graph(package: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), str(package)], capture_output=True, text=True, check=False
    )


def test_the_package_has_no_cycle_and_no_upward_import():
    result = graph(ROOT / "src" / "metapbt")
    assert "metapbt.runs.run  [runs]" in result.stdout  # the layer above the engine
    assert "metapbt.engine.trainer  [engine]" in result.stdout
    assert result.returncode == 0, result.stdout


def test_cycles_and_upward_imports_are_reported(tmp_path):
    package = tmp_path / "metapbt"
    for name, text in {
        "__init__.py": "",
        "engine/__init__.py": "",
        "engine/a.py": "from metapbt.engine import b\n",
        "engine/b.py": "def f():\n    from . import a\n",  # a function-level import
        "population/__init__.py": "",
        "population/p.py": "import metapbt.engine.a\nfrom metapbt.errors import E\n",
        "errors.py": "class E(Exception): ...\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    result = graph(package)
    assert result.returncode == 1
    assert "metapbt.engine.a <-> metapbt.engine.b" in result.stdout
    assert "metapbt.population.p [population] -> metapbt.engine.a [engine]" in result.stdout
    assert "metapbt.errors" not in result.stdout.split("# upward imports")[1]


def test_the_counting_mode_counts_uses_and_call_sites(tmp_path):
    package = tmp_path / "metapbt"
    package.mkdir()
    (package / "a.py").write_text(
        "from x import Config, resolve\n"
        "def f(c: Config) -> 'Config':\n    return resolve(c) or m.resolve(c)\n"
    )
    (package / "b.py").write_text("resolve = None\n")
    result = subprocess.run(
        [sys.executable, str(TOOL), str(package), "--uses", "Config", "--calls", "resolve"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert "# uses Config: 1 modules, 3 occurrences" in lines  # import, annotation, quoted
    assert "# calls resolve: 1 modules, 2 occurrences" in lines  # b.py only names it
