"""CI runs exactly the README's test command."""

import re

from tests.docs.examples import ROOT


def test_ci_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^(python3 -m pip install -e \"\.\[test\]\" && .*)$", readme, re.M)
    assert command, "the README's Quickstart names no test command"
    ci = (ROOT / ".ci/run").read_text().strip().splitlines()[-1]
    assert ci == command.group(1)
    assert "mypy" in ci and "ruff check" in ci and "pytest" in ci
