"""The errors a user can fix: a bad setting, a missing or corrupt file, a run directory in use.

Every one of them is a ``UserError``. The ``rig`` command prints such an error as one line and exits with
status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class UserError(Exception):
    """Something the user can fix; the message says what and how."""


class MissingFileError(UserError, FileNotFoundError):
    """A file a command reads is not there, e.g. a stage that has not run yet."""


class CorruptFileError(UserError, ValueError):
    """A file that exists but cannot be read as what it should be."""


class StorageError(UserError, OSError):
    """A file rig must write cannot be: no permission, a read-only file system, or no space left."""


STORAGE_PROBLEMS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
}
"""The ``OSError`` numbers that mean the user's storage, not rig, is at fault."""


def storage_error(error: OSError) -> StorageError | None:
    """The one-line ``StorageError`` for a write that the storage refused, or None for any other OSError.

    Files are written to a temporary name and renamed into place, so the previous version of the file is
    still there and an interrupted stage resumes once the storage takes writes again.
    """
    problem = STORAGE_PROBLEMS.get(error.errno or 0)
    if problem is None:
        return None
    where = error.filename if error.filename is not None else "a file of the run"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        way_out = "free some space and run the same command again: what is finished is kept"
    else:
        way_out = "make it writable, or choose another run_dir"
    return StorageError(f"{where}: {problem}; {way_out}")


def first_line(error: BaseException, limit: int = 120) -> str:
    """``Type: first line of the message``, at most ``limit`` characters: libraries' messages run long."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


UNREADABLE_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    EOFError,
    pickle.UnpicklingError,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ImportError,
    RuntimeError,
    AssertionError,
    OverflowError,
)
"""What unpickling or unzipping a damaged file raises (torch, SB3 and pickle each pick their own)."""


def unreadable(path: str | Path, what: str, error: BaseException) -> CorruptFileError:
    """``path`` is damaged: it cannot be read as ``what`` (``error`` in one line)."""
    return CorruptFileError(f"{path} is damaged: it cannot be read as {what} ({first_line(error)})")


@contextmanager
def way_out(advice: str) -> Iterator[None]:
    """A ``CorruptFileError`` raised inside gains ``advice``: what to do that keeps the intact products."""
    try:
        yield
    except CorruptFileError as error:
        raise CorruptFileError(f"{error}; {advice}") from error
