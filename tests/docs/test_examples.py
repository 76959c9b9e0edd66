"""Every bash and python block of the README and the site runs, or says why it does not."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.docs.examples import ROOT, blocks, pages

PAGES = [p for p in pages() if any(b.runs for b in blocks(p))]
SEEN: set[str] = set()  # a block repeated on two pages (README and site) runs once


def test_every_block_runs_or_says_why_not():
    for page in pages():
        for block in blocks(page):
            if block.lang in ("bash", "python") and block.directive == "not run":
                assert len(block.value) > 10, f"{block.page}:{block.line}: give the reason"
            if block.directive == "test-with":
                assert block.lang == "bash", f"{block.page}:{block.line}: test-with is for bash"


def test_a_test_with_block_gets_its_flags_on_every_command(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "<!-- test-with: --budget 4000 -->\n```bash\nmetapbt run --env a \\\n    --out x  # c\n"
        "echo metapbt run\n```\n\n```text\nnot code\n```\n"
    )
    block, text = blocks(page)
    assert block.command() == "metapbt run --env a --out x --budget 4000  # c\necho metapbt run"
    assert not text.runs and text.lang == "text"
    page.write_text("<!-- slow: covered -->\n```python\nprint(1)\n```\n")
    (slow,) = blocks(page)
    assert slow.runs and slow.slow and slow.value == "covered"
    page.write_text("<!-- run it -->\n```bash\nls\n```\n")
    with pytest.raises(ValueError, match="unknown or empty directive"):
        blocks(page)


#: Guides whose examples take 15-60 s each: run in the slow job (the README's and the getting-
#: started page's, which cover the same commands on the defaults, run in the default job; the
#: agents' and own-env guides' paths are tested in tests/engine/test_dqn.py and test_any_env.py).
SLOW_PAGES = {
    "docs/guides/run.md",
    "docs/guides/search-spaces.md",
    "docs/guides/studies.md",
    "docs/guides/agents.md",
    "docs/guides/own-env.md",
}


def _params():
    """A page's default-job blocks, and (slow job) all its blocks where some are slow."""
    for page in PAGES:
        name = str(page.relative_to(ROOT))
        if name in SLOW_PAGES:
            yield pytest.param(page, True, id=name, marks=pytest.mark.slow)
            continue
        runs = [b for b in blocks(page) if b.runs]
        if any(not b.slow for b in runs):
            yield pytest.param(page, False, id=name)
        if any(b.slow for b in runs):
            yield pytest.param(page, True, id=f"{name}-slow", marks=pytest.mark.slow)


@pytest.mark.parametrize(("page", "with_slow"), list(_params()))
def test_the_pages_examples_run(page, with_slow, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    found = blocks(page)
    for block in found:
        if block.directive == "file":
            (tmp_path / block.value).write_text(block.body)
    seen = SEEN if not with_slow else set()
    for block in found:
        if not block.runs or block.body in seen or (block.slow and not with_slow):
            continue
        seen.add(block.body)
        if block.lang == "python":
            (tmp_path / "example.py").write_text(block.body)
            args = [sys.executable, "example.py"]
        else:
            args = ["bash", "-euo", "pipefail", "-c", block.command()]
        done = subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (
            f"{block.page}:{block.line} failed ({done.returncode}):\n"
            f"{block.command()}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n"
            f"{done.stderr[-3000:]}"
        )
