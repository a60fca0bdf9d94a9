"""Command-line flags generated from :class:`~tinyproj.runs.config.TrainConfig`.

One flag per field, its type and help taken from the field's metadata
(``runs.config.setting``): ``train_subset`` becomes ``--train-subset`` parsed as an
integer, a bool field becomes ``--bn`` / ``--no-bn``. Every flag defaults to None,
meaning "not given", so a resume can tell the flags typed from the defaults.
"""
from __future__ import annotations

import argparse
import dataclasses

from ..runs.config import TrainConfig, flag_name

__all__ = ["add_config_flags", "config_overrides", "cli_fields"]


def cli_fields(exclude=()):
    """The TrainConfig fields that have a flag (``setting(..., cli=True)``)."""
    return [f for f in dataclasses.fields(TrainConfig)
            if f.metadata.get("cli", True) and f.name not in exclude]


def _default(f):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def add_config_flags(parser, exclude=()) -> None:
    """Add one flag per TrainConfig field to ``parser`` (all default to None: not given)."""
    for f in cli_fields(exclude):
        default = _default(f)
        help_text = f.metadata.get("help", "")
        if default is not None and "default" not in help_text:  # said once, when it says something
            help_text += f" (default {default!r})"
        if isinstance(default, bool):
            parser.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
            continue
        parse = f.metadata.get("parse")
        if parse is None:
            if default is None or isinstance(default, (list, dict)):
                raise TypeError(f"TrainConfig.{f.name}: give its setting() a parse= (the type "
                                "of a None, list or dict default cannot be guessed)")
            parse = type(default)
        parser.add_argument(flag_name(f.name), type=_explained(parse), default=None,
                            help=help_text, metavar=f.name.upper())


_EXPECTS = {int: "an integer", float: "a number"}
"""What the plain types read; the parsers of runs/config.py say it themselves (``.expects``)."""


def _explained(parse):
    """``parse``, with its failure reported as what the flag expects (argparse would print
    "invalid parse_clip value: 'abc'", naming a Python function)."""
    expects = getattr(parse, "expects", None) or _EXPECTS.get(parse)
    if expects is None:
        return parse

    def read(text):
        try:
            return parse(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expects}") from None
    read.__name__ = getattr(parse, "__name__", "value")
    return read


def config_overrides(args, exclude=()) -> dict:
    """``{field: value}`` for the config flags given on the command line."""
    return {f.name: getattr(args, f.name) for f in cli_fields(exclude)
            if getattr(args, f.name, None) is not None}
