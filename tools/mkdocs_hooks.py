"""MkDocs hooks (``mkdocs.yml``: ``hooks``): pages generated from the code, figures from the repo.

* ``reference/cli.md`` is written from the ``metapbt`` command itself (every command, its help,
  usage and options with their defaults), so the reference cannot drift from the CLI;
* the figures in :data:`FIGURES` are copied from where the studies write them, so a page shows
  the committed result, not a copy of it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
FIGURES = {
    "assets/meta-pb2-ranks.png": "studies/results/classic_control_repro_report/ranks.png",
    "assets/meta-pb2-intervals.png": "studies/results/classic_control_repro_report/intervals.png",
}
"""Site path -> repository path of the figures the results pages embed."""


def cli_reference() -> str:
    """Markdown for every ``metapbt`` command: help, usage and a table of its options."""
    import typer

    from metapbt.cli import app

    root = typer.main.get_command(app)
    out = [
        "# Command reference",
        "",
        "Generated from the `metapbt` command when the site is built; `metapbt COMMAND --help` "
        "shows the same.",
        "",
    ]
    out += _command(root, root.context_class(root, info_name="metapbt"), depth=2)
    return "\n".join(out) + "\n"


def _command(command: Any, ctx: Any, depth: int) -> list[str]:
    """A command's section, then its sub-commands' (duck-typed: typer vendors its click)."""
    lines = [f"{'#' * depth} `{ctx.command_path}`", ""]
    if command.help:
        lines += [_plain(command.help).strip(), ""]
    lines += ["```text", command.get_usage(ctx).strip(), "```", ""]
    params = command.get_params(ctx)
    rows = [_option_row(p, ctx) for p in params if p.param_type_name == "option" and not p.hidden]
    arguments = [p for p in params if p.param_type_name == "argument"]
    if arguments:
        for argument in arguments:
            text = _plain(getattr(argument, "help", None) or "")
            lines += [f"Argument `{argument.name.upper()}`: {text}", ""]
    if rows:
        lines += ["| option | default | what it does |", "|---|---|---|", *rows, ""]
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                child = sub.context_class(sub, info_name=name, parent=ctx)
                lines += _command(sub, child, depth + 1 if depth < 3 else depth)
    return lines


_HELP_DEFAULT = re.compile(r"\s*\[default: (?P<value>.*)\]\s*$")
"""Typer's form, which our options write into their help when the value is resolved later."""
_PAREN_DEFAULT = re.compile(r"\s*\((?P<before>[^()]*?)(?:;\s*)?default: (?P<value>[^()]*)\)")
"""``(...; default: VALUE)`` inside a help text."""


def _option_row(option: Any, ctx: Any) -> str:
    """One table row: the option's names, its default and its help (without the default)."""
    names = " / ".join(f"`{n}`" for n in [*option.opts, *option.secondary_opts])
    text = _plain(option.help or "").replace("\n", " ")
    default, text = _default(option, ctx, text)
    return f"| {names} | {_cell(default)} | {_cell(text)} |"


def _default(option: Any, ctx: Any, text: str) -> tuple[str, str]:
    """The default as the Default column shows it, and the help text without it.

    Options whose value is resolved later (from the config or the preset) have ``None`` as
    their parameter default and say the real one in their help: ``[default: VALUE]`` at the
    end, or ``(...; default: VALUE)`` in words; that text moves to the column. Flags show
    ``on``/``off`` (a pair of other names: the name in force); eager flags (``--help``,
    ``--version``) act at once and have none.
    """
    if option.is_flag and option.is_eager:
        return "", text
    value: Any = option.get_default(ctx, call=False)
    if isinstance(option.show_default, str):
        value = option.show_default
    if value is None or callable(value):
        found = _HELP_DEFAULT.search(text)
        if found is None and (found := _PAREN_DEFAULT.search(text)) is not None:
            before = found["before"].strip()
            text = text[: found.start()] + (f" ({before})" if before else "") + text[found.end() :]
            return found["value"].strip(), text  # words, not a value to type
        if found is None:
            return "", text
        value, text = found["value"].strip(), text[: found.start()] + text[found.end() :]
    if option.is_flag or isinstance(value, bool):
        on = value in (True, "True")
        if option.secondary_opts and option.secondary_opts[0] != f"--no-{option.opts[0][2:]}":
            return f"`{option.opts[0] if on else option.secondary_opts[0]}`", text
        return ("on" if on else "off"), text
    values = value if isinstance(value, list | tuple) else [value]
    values = [str(getattr(v, "value", v)) for v in values]  # an enum's value, not its repr
    if any(" " in v for v in values):
        return ", ".join(values), text  # words, as "the preset's; classic: 600,000"
    return ", ".join(f"`{v}`" for v in values), text


def _cell(text: str) -> str:
    """``text`` safe in a Markdown table cell."""
    return text.replace("|", "\\|")


def _plain(text: str) -> str:
    """Help text without rich's markup escapes, safe in Markdown (``<context>`` is no tag)."""
    return text.replace("\\[", "[").replace("<", "&lt;").replace(">", "&gt;")


def on_files(files: Files, config: Any) -> Files:
    """Add the generated CLI reference and the repository's figures to the site."""
    files.append(File.generated(config, "reference/cli.md", content=cli_reference()))
    for site_path, repo_path in FIGURES.items():
        files.append(File.generated(config, site_path, abs_src_path=str(ROOT / repo_path)))
    return files
