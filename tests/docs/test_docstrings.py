"""The docstrings are the Markdown mkdocstrings renders, not reStructuredText.

The API reference (docs/reference/api.md) is generated from them; reST in a docstring shows on
the site as literal text (``:class:`X```), nested quotes (a ``>>>`` line) or one run-together
paragraph (a ``=====  =====`` table). Cross-references are ``[`Name`][metapbt.full.path.Name]``
(the strict site build checks they resolve), other names plain code; examples are fenced code
blocks; tables are Markdown tables. Pure text: no import of the package, no site build.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tests.docs.examples import ROOT

PACKAGE = ROOT / "src" / "metapbt"
WIDTH = 80  # a code block's columns on the site at 1280 px (tests/docs/test_code_width.py)
_ROLE = re.compile(r":(class|meth|mod|func|data|attr|obj|exc):`")
_TABLE_RULE = re.compile(r"^\s*=+( +=+)+\s*$")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def docstrings(source: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every docstring in ``source``: module, class, function, attribute."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield node.value.lineno, node.value.value


def dedented(text: str) -> list[str]:
    """The docstring's lines without its indentation (that of its lines after the first)."""
    lines = text.split("\n")
    indents = [len(line) - len(line.lstrip(" ")) for line in lines[1:] if line.strip()]
    cut = min(indents, default=0)
    return [lines[0], *(line[cut:] for line in lines[1:])]


def problems(text: str, where: str, first_line: int) -> list[str]:
    """``where:line: what`` for each reST leftover of one docstring, ``first_line`` its start."""
    found, fence = [], None
    for number, line in enumerate(dedented(text), first_line):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening[1].startswith(fence) and not line.strip(" `~"):
                fence = None
            elif len(line.rstrip()) > WIDTH:
                found.append(f"{where}:{number}: code line of {len(line.rstrip())} > {WIDTH}")
        elif opening:
            fence = opening[1]
        elif line.lstrip().startswith(">>>"):
            found.append(f"{where}:{number}: '>>>' example outside a fenced code block")
        elif _TABLE_RULE.match(line):
            found.append(f"{where}:{number}: reST table rule (write a Markdown table)")
        elif line.rstrip().endswith("::"):
            found.append(f"{where}:{number}: reST literal block '::' (write a fenced block)")
        if role := _ROLE.search(line):
            found.append(f"{where}:{number}: reST role {role[0]} (a [link][path] or `code`)")
    if fence is not None:
        found.append(f"{where}:{first_line}: a code fence is not closed")
    return found


def test_the_checker_finds_each_kind_of_rest_and_only_that():
    text = (
        "Summary with :class:`X` and a [`Y`][metapbt.y.Y] link.\n\n"
        "    >>> f(1)\n"
        "    ===== =====\n"
        "    Example::\n\n"
        "    ```python\n"
        "    >>> g(2)\n"
        f"    {'x' * 80}\n"  # 80 wide once the docstring's indentation is off
        f"    {'z' * 81}\n"
        "    ```\n"
        "    ``>>>`` in prose, a = b ==== c, a | table |\n"
    )
    assert problems(text, "m.py", 10) == [
        "m.py:10: reST role :class:` (a [link][path] or `code`)",
        "m.py:12: '>>>' example outside a fenced code block",
        "m.py:13: reST table rule (write a Markdown table)",
        "m.py:14: reST literal block '::' (write a fenced block)",
        "m.py:19: code line of 81 > 80",
    ]
    assert problems("Open:\n\n```python\nx = 1\n", "m.py", 1) == [
        "m.py:1: a code fence is not closed"
    ]


def test_the_docstrings_are_markdown():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for line, text in docstrings(path.read_text()):
            found += problems(text, where, line)
    assert not found, "\n".join(found)


def test_the_scan_sees_the_package():
    count = sum(1 for path in PACKAGE.rglob("*.py") for _ in docstrings(path.read_text()))
    assert count > 500, count  # every module, class and function with a docstring
