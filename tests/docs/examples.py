"""The code blocks of the README and the documentation site, and what a test does with each.

A fenced ``bash`` or ``python`` block runs in the tests unless the line right above its fence
says otherwise, as an HTML comment (invisible on the site and on GitHub):

* ``<!-- not run: REASON -->``: the block is shown only (a GPU, hours of compute, an install);
* ``<!-- test-with: FLAGS -->``: a ``bash`` block runs with ``FLAGS`` appended to every
  ``metapbt`` command (the cheap form: tiny budgets; click keeps an option's last value);
* ``<!-- slow: REASON -->``: the block runs in the slow job only (with the page's other blocks,
  in order), for an example whose path a default-job test already covers (REASON names it);
* ``<!-- file: NAME -->``: the block (any language) is written to ``NAME`` in the page's
  directory before the page's blocks run, so a later command can use it (a study file).

A page's blocks run in order, in one temporary directory.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_LANGS = ("bash", "python")
_BLOCK = re.compile(
    r"^(?:<!--\s*(?P<directive>[^>]*?)\s*-->\n)?"
    r"```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
    re.M | re.S,
)
_DIRECTIVE = re.compile(r"^(?P<kind>not run|test-with|slow|file):\s*(?P<value>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block."""

    page: str
    line: int
    lang: str
    body: str
    directive: str | None = None
    value: str = ""

    @property
    def runs(self) -> bool:
        return self.lang in RUN_LANGS and self.directive in (None, "test-with", "slow")

    @property
    def slow(self) -> bool:
        """Runs in the slow job only."""
        return self.directive == "slow"

    def command(self) -> str:
        """The block as the test runs it (``bash``: continuations joined, flags appended)."""
        if self.lang != "bash":
            return self.body
        joined = re.sub(r"[ \t]*\\\n\s*", " ", self.body)
        if self.directive != "test-with":
            return joined
        lines = []
        for line in joined.splitlines():
            code, hash_, comment = line.partition("  #")
            if re.match(r"^\s*metapbt\s", code):
                code = f"{code.rstrip()} {self.value}"
            lines.append(code + (hash_ + comment if hash_ else ""))
        return "\n".join(lines)


def pages() -> list[Path]:
    """The README and every page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, with their directives.

    Raises:
        ValueError: For a comment above a fence that is not a known directive, or one without
            its value.
    """
    text = page.read_text()
    found = []
    for match in _BLOCK.finditer(text):
        directive, value = None, ""
        if match["directive"] is not None:
            parsed = _DIRECTIVE.match(match["directive"])
            if parsed is None or not parsed["value"].strip():
                where = f"{_name(page)}:{text.count(chr(10), 0, match.start()) + 1}"
                raise ValueError(f"{where}: unknown or empty directive {match['directive']!r}")
            directive, value = parsed["kind"], parsed["value"].strip()
        line = text.count("\n", 0, match.start("lang")) + 1
        found.append(Block(_name(page), line, match["lang"], match["body"], directive, value))
    return found


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def hooks():
    """The site's MkDocs hooks (``tools/mkdocs_hooks.py``) as a module: it is no package."""
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools/mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
