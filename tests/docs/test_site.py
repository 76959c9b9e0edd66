"""The documentation site builds strictly: no broken link, no missing page, no bad docstring."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from tests.docs.examples import ROOT, hooks

pytest.importorskip("mkdocs", reason="the site needs the docs extra: pip install -e '.[docs]'")


def test_the_cli_reference_covers_every_command_and_option():
    from metapbt.cli import app

    text = hooks().cli_reference()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        subs = getattr(command, "commands", {name: command})
        for sub_name, sub in subs.items():
            path = f"metapbt {name}" + (f" {sub_name}" if sub is not command else "")
            assert f"`{path}`" in text, path
            for param in sub.params:
                if param.param_type_name == "option" and not param.hidden:
                    assert f"`{param.opts[0]}`" in text, (path, param.opts[0])
    assert "`--budget`" in text and "\\[" not in text  # rich's escapes are gone


def test_the_cli_reference_shows_each_default_in_its_column_not_in_the_text():
    rows, command = {}, ""
    for line in hooks().cli_reference().splitlines():
        if line.startswith("#"):
            command = line.strip("# `")
        elif line.startswith("| `-"):
            names, default, text = (c.strip() for c in line.strip("|").split(" | ", 2))
            rows[command, names] = (default, text)
    run = {names: row for (cmd, names), row in rows.items() if cmd == "metapbt run"}
    # in the help only (the parameter's own default is None: the preset decides)
    assert run["`--budget`"] == ("the preset's; classic: 600,000", "Environment steps per member.")
    assert run["`--quantile`"][0] == "`0.25`"  # "[default: 0.25]" in the help
    assert run["`--metadata`"] == ("bundled", "Meta-data directory (meta methods).")
    assert run["`--out`"][0] == "`runs/demo`"  # the parameter's default
    assert run["`--resume` / `--no-resume`"][0] == "off"
    assert run["`--watchdog` / `--no-watchdog`"][0] == "on"
    assert run["`--help`"][0] == "" and run["`--save-meta`"][0] == ""
    assert rows["metapbt toy", "`--method`"][0] == "`random`, `pb2-star`"  # a list
    assert rows["metapbt study run", "`--mix-contexts` / `--one-context`"][0] == "`--mix-contexts`"
    assert not [row for row in rows.values() if "default:" in row[1]]


def test_the_site_builds_strictly(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert (tmp_path / "reference/cli/index.html").exists()
    assert (tmp_path / "assets/meta-pb2-ranks.png").exists()
    api = (tmp_path / "reference/api/index.html").read_text()
    assert "Population" in api and "MetaPB2" in api


def test_every_image_of_the_readme_and_the_site_exists():
    # mkdocs's strict build checks links, not images: a missing figure would pass it.
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    missing = []
    for page in pages:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            if "://" not in target and not (page.parent / target).resolve().exists():
                missing.append(f"{page.relative_to(ROOT)}: {target}")
    assert not missing, missing
