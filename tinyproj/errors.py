"""The one kind of error a user can fix: :class:`UserError`.

Anything that is the user's to fix (a bad flag value, a missing or corrupt file, a
folder that holds something else, a setting that conflicts with a saved run) is
raised as a ``UserError`` whose message says what was wrong, what was expected
and what to do. The command line prints such errors as one line, ``error: ...``,
and exits with status 2, with no traceback (``--debug`` shows it). Everything else
is a bug in tinyproj and keeps its traceback.

``UserError`` is a ``ValueError``, so code and tests that catch ``ValueError``
keep working.

    raise UserError("--batch-size must be >= 1, got -5", flag="--batch-size")
"""
from __future__ import annotations

__all__ = ["UserError", "USER_ERRORS"]


class UserError(ValueError):
    """A mistake the user can fix. ``flag`` names the flag or file it is about (optional)."""

    def __init__(self, message: str, flag: str | None = None):
        super().__init__(message)
        self.flag = flag


USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
               IsADirectoryError, PermissionError)
"""Exception types the command line reports as user errors (one line, exit status 2).

ValueError covers UserError and the argument checks of the lower floors (unknown
projection names, wrong shapes), which already speak to the user. A full disk
(``OSError`` with ENOSPC) is handled separately by the command line."""
