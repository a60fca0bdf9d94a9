"""Write the command-line reference of the course website, one Markdown page per sub-command.

The pages are generated from the argparse parsers themselves (``tinyproj.cli.build_parser()``),
so they always say what ``tinyproj COMMAND --help`` says::

    python docs/gen_cli.py OUT_FOLDER        # OUT_FOLDER/index.md and OUT_FOLDER/<command>.md
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _subcommands(parser: argparse.ArgumentParser) -> dict:
    """``{name: (sub-parser, one-line help)}`` in the order the CLI declares them."""
    for action in parser._actions:                      # argparse keeps them only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            return {name: (p, helps.get(name) or "") for name, p in action.choices.items()}
    return {}


def _flags(action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    meta = ""
    if action.nargs != 0:
        meta = " " + (action.metavar or (f"{{{','.join(map(str, action.choices))}}}"
                                         if action.choices else action.dest.upper()))
    return ", ".join(f"`{flag}{meta}`" for flag in action.option_strings)


def _cell(text) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def command_page(name: str, parser: argparse.ArgumentParser, summary: str) -> str:
    """The Markdown page of one sub-command: what it does, usage, every option, --help."""
    env = dict(os.environ, COLUMNS="80")
    os.environ.update(env)                              # argparse wraps at $COLUMNS
    lines = [f"# tinyproj {name}", "", _cell(summary) + ("." if summary else ""), ""]
    if parser.description:
        lines += [parser.description.strip(), ""]
    lines += ["## Usage", "", "```", parser.format_usage().strip(), "```", "",
              "## Options", "", "| option | default | what it does |", "| --- | --- | --- |"]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) else f"`{default}`"
        if action.required:
            shown = "required"
        lines.append(f"| {_flags(action)} | {shown} | {_cell(action.help)} |")
    lines += ["", "## `--help` as printed", "", "```", parser.format_help().strip(), "```", ""]
    return "\n".join(lines)


def write_cli_reference(out) -> list:
    """Write ``out/index.md`` and one ``out/<command>.md`` per sub-command; returns the paths."""
    from tinyproj.cli import build_parser
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parser = build_parser()
    commands = _subcommands(parser)
    index = ["# Command-line reference", "",
             "Generated from the parsers of `tinyproj` (`tinyproj.cli.build_parser()`): each "
             "page is what `tinyproj COMMAND --help` prints, laid out as a table. Add `--debug` "
             "to any command to see the full traceback of an error.", "",
             "| command | what it does |", "| --- | --- |"]
    written = []
    for name, (sub, summary) in commands.items():
        path = out / f"{name}.md"
        path.write_text(command_page(name, sub, summary), encoding="utf-8")
        written.append(path)
        index.append(f"| [`tinyproj {name}`]({name}.md) | {_cell(summary)} |")
    (out / "index.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    return [out / "index.md", *written]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/gen_cli.py OUT_FOLDER")
    for p in write_cli_reference(sys.argv[1]):
        print(p)
