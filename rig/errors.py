"""The errors a user can fix: a bad setting, a missing or corrupt file, a run directory in use.

Every one of them is a ``UserError``. The ``rig`` command prints such an error as one line and exits with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message says what and how."""


class MissingFileError(UserError, FileNotFoundError):
    """A file a command reads is not there, e.g. a stage that has not run yet."""


class CorruptFileError(UserError, ValueError):
    """A file that exists but cannot be read as what it should be."""
