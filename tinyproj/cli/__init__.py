"""The ``tinyproj`` command line: one sub-command family per module.

    tinyproj train --preset tr-sign-c --width 0.25 --epochs 1 --out runs/sign
    tinyproj train --out runs/sign --resume         continue a run with its own settings
    tinyproj demo                 Tr-None-NC vs Tr-Sign-C, briefly, side by side
    tinyproj sweep RUN_DIR --distortion addnorm,multunif,power [--per-layer] [--shard i/n]
    tinyproj walk --model mlp_tfc --dataset mnist --out runs/wn     Walking Noise
    tinyproj report RUN_DIR... --out DIR      Table 2, the paper's figures, report.md
    tinyproj reproduce table2 --out DIR   the six networks, their sweeps and the report, resumable
    tinyproj prepare-imagenet SRC --out DIR   ImageNet rescaled to 256 once (a faster decoder)
    tinyproj bench                speed and memory against PyTorch (conv layers, full steps)
    tinyproj info                 versions, backend, kernels, where data is looked for
    tinyproj lessons [--quick]    run the lessons in lessons/ one after another

Each module here (train.py, misc.py, ...) has ``add_parsers(subparsers)``; a new
sub-command is a new module listed in ``COMMAND_MODULES``. The modules parse, call the
library and print; :func:`main` is the one place that turns errors into messages:
a user's mistake (:class:`~tinyproj.errors.UserError` and friends) is one line
``error: ...`` and exit status 2, with the traceback only under ``--debug``.
"""
from __future__ import annotations

import argparse
import difflib
import errno
import importlib
import signal
import sys

COMMAND_MODULES = ["train", "sweep", "walk", "misc", "report", "bench", "reproduce", "prepare"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (``error: tinyproj train: ...``) that names
    where the flags are listed and, for a mistyped flag, the flag meant — not the whole
    usage block first. The sub-commands' parsers are of this class too (argparse makes them
    with the parent's class)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"error: {self.prog}: {message}{self.did_you_mean(message)} "
                              f"(the flags: `{self.prog} --help`)\n")

    def did_you_mean(self, message: str) -> str:
        """``; did you mean --preset?`` for each unknown flag close to one of this parser's."""
        if not message.startswith("unrecognized arguments:"):
            return ""
        known = [o for action in self._actions for o in action.option_strings]
        meant = []
        for word in message.split(":", 1)[1].split():
            if word.startswith("--"):
                close = difflib.get_close_matches(word.split("=")[0], known, n=1, cutoff=0.6)
                meant += [f"{close[0]} for {word}"] if close else []
        return f"; did you mean {', '.join(meant)}?" if meant else ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tinyproj",
        description="tinyproj: train networks with projected weights (Merolla et al. 2016), "
                    "test them under weight distortions, and walk activation noise through "
                    "them (Walking Noise). `tinyproj COMMAND --help` lists a command's flags.",
        epilog="Add --debug to any command to see the full traceback of an error.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").add_parsers(sub)
    parser.commands = sub.choices            # name -> its parser (main's unknown-flag errors)
    return parser


def _parse(argv) -> argparse.Namespace:
    """The parsed command line. A flag no parser knows is reported by the sub-command's
    parser (argparse leaves it to the top one, whose message would name `tinyproj` only)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _note(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on the command line read as one note, without a source line."""
    print(f"note: {message}", file=sys.stderr)


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt        # a cluster's time limit stops a command like Ctrl-C


def main(argv=None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failed, 2 user error, 130 stopped)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    args = _parse(argv)
    import warnings
    with warnings.catch_warnings():          # restored when the command returns
        if not debug:
            warnings.showwarning = _note
        return _run(args, debug)


def _run(args, debug: bool) -> int:
    from ..errors import USER_ERRORS
    from ..runs.training import TrainingInterrupted
    if hasattr(signal, "SIGTERM") and _is_main_thread():
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return args.func(args) or EXIT_OK
    except TrainingInterrupted as err:
        print(err, file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("\ninterrupted: what was finished is saved (files are written atomically); run "
              "the same command again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FloatingPointError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"error: {user_message(err)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        if debug:
            raise
        if err.errno == errno.ENOSPC:
            print(f"error: the disk is full (writing {err.filename or 'a file'}); free some "
                  "space and run the command again — files already there are intact "
                  "(written atomically)", file=sys.stderr)
        else:
            print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as err:          # a bug in tinyproj, not the user's mistake
        if debug:
            raise
        print(f"internal error: {type(err).__name__}: {err}\nThis is a bug in tinyproj; run "
              "the command again with --debug for the traceback and report it.", file=sys.stderr)
        return EXIT_FAILED


def user_message(err: BaseException) -> str:
    """The message of a user error, led by the flag it is about when the text does not
    name it: ``--levels: addnorm: level 'a' is not a number`` (``UserError.flag``)."""
    text = str(err)
    flag = getattr(err, "flag", None)
    if isinstance(flag, str) and flag.startswith("-") and flag not in text:
        return f"{flag}: {text}"
    return text


def _is_main_thread() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
