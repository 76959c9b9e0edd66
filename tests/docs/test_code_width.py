"""Every line of every code block on the site fits its block: a longer one is cut off.

The limit was measured, not guessed: the built site in headless Chromium, 1280 px wide (both
sidebars shown), gives a code block 656 px inside its padding, and mkdocs-material's code font
(Roboto Mono, or DejaVu Sans Mono where it falls back, 13.6 px) is 8.16 to 8.18 px a character:
80 characters fit, the 81st is under the scroll bar. A block indented (in a list) loses at least
its indent.
"""

from __future__ import annotations

import re

import pytest

from tests.docs.examples import ROOT

WIDTH = 80
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})")


def long_lines(text: str, name: str) -> list[str]:
    """``name:line (length)`` of every fenced line of ``text`` longer than its block allows."""
    found, fence, indent = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        opening = _FENCE.match(line)
        if fence is None:
            if opening:
                fence, indent = opening["fence"], len(opening["indent"])
        elif opening and opening["fence"].startswith(fence) and not line.strip(" \t`~"):
            fence = None
        elif len(line[indent:].rstrip()) > WIDTH - indent:
            found.append(f"{name}:{number} ({len(line[indent:].rstrip())} > {WIDTH - indent})")
    return found


def test_the_checker_finds_a_long_line_and_only_inside_a_fence():
    long = "x" * (WIDTH + 1)
    text = f"{long}\n```bash\nok\n{long}\n```\n{long}\n- item\n\n"
    text += f"    ```text\n    {'y' * 78}\n    ```\n"
    assert long_lines(text, "p.md") == ["p.md:4 (81 > 80)", "p.md:10 (78 > 76)"]


def test_every_code_block_line_of_the_site_fits_its_block():
    too_long = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        too_long += long_lines(page.read_text(), str(page.relative_to(ROOT)))
    assert not too_long, "wrap with ` \\` or shorten:\n" + "\n".join(too_long)


def test_every_code_block_line_of_the_command_reference_fits_its_block():
    pytest.importorskip("mkdocs", reason="the hooks need the docs extra: pip install -e '.[docs]'")
    from tests.docs.examples import hooks

    too_long = long_lines(hooks().cli_reference(), "reference/cli.md (generated)")
    assert not too_long, "\n".join(too_long)
