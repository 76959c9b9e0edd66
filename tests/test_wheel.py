"""The package as users install it: a wheel built from this tree, installed in a fresh virtual
environment (no system site-packages, so the editable install here cannot answer for it) with its
dependencies from the package index, and its ``metapbt`` command run outside the repository.

144 s on the 2-core machine, one minute of it installing the dependencies (269 s beside other
work).
"""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import metapbt

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "metapbt"
WHERE = "import metapbt, importlib.metadata as m; print(metapbt.__file__, m.version('metapbt'))"

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[str, str]:
    """Run ``args`` to exit status 0; its stdout and stderr."""
    done = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout, done.stderr


def _build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    """Build from a copy of the tree: setuptools builds in place, and a ``build/`` left in the
    repository would put modules deleted since into the next wheel."""
    tree = tmp / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    # Build isolation: the pinned setuptools>=68 and wheel come from the index (this
    # interpreter's setuptools may be older, and --no-build-isolation needs `wheel` installed).
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp / "dist")]
    _run([*pip_wheel, str(tree)], tmp, env, timeout=600)
    (wheel,) = (tmp / "dist").glob("metapbt-*.whl")
    return wheel


def test_the_built_wheel_installs_alone_and_its_command_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env |= {
        "PYTHONNOUSERSITE": "1",
        "METAPBT_COMPILE_CACHE": str(tmp_path / "jax-cache"),
        "COLUMNS": "1000",  # log lines unwrapped, so a path in them can be found
    }
    wheel = _build_wheel(tmp_path, env)
    assert wheel.name == f"metapbt-{metapbt.__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "metapbt/py.typed" in names
    assert "metapbt/_version.py" in names
    bundled = {f"metapbt/{p.relative_to(SRC).as_posix()}" for p in SRC.glob("data/**/*.parquet")}
    assert len(bundled) > 100
    assert bundled <= names

    venv = tmp_path / "venv"
    try:
        _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, timeout=300)
        python, command = venv / "bin" / "python", venv / "bin" / "metapbt"
        _run([str(python), "-m", "pip", "install", str(wheel)], tmp_path, env, timeout=900)

        work = tmp_path / "work"  # outside the repository: nothing found from the cwd
        work.mkdir()
        file, version = _run([str(python), "-c", WHERE], work, env, timeout=120)[0].split()
        (site,) = venv.glob("lib/python*/site-packages")
        assert Path(file) == site / "metapbt" / "__init__.py"
        assert version == metapbt.__version__ == importlib.metadata.version("metapbt")
        shown, _ = _run([str(command), "--version"], work, env, timeout=120)
        assert shown == f"metapbt {metapbt.__version__}\n"

        tiny = ["--budget", "4000", "--interval", "2000", "--population", "2"]
        args = [str(command), "run", "--method", "meta-prior", *tiny, "--out", "run"]
        output = "".join(_run(args, work, env, timeout=600))
        summary = json.loads((work / "run" / "summary.json").read_text())
        assert summary["method"] == "meta-prior"
        assert summary["env"] == "cart_pole"
        assert summary["versions"]["metapbt"] == metapbt.__version__
        # The run read the installed meta-data: its warning (stored runs of a longer protocol
        # than this tiny run's) names the store.
        assert str(site / "metapbt" / "data" / "meta" / "cart_pole") in output
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # 1.3 GB; pytest keeps its last 3 tmp dirs
