"""Atomic file writes: a file is either the old version or the complete new one, never half.

Every file rig writes goes through here, except the logs that libraries append to as they go: TensorBoard
event files (torch and stable-baselines3 write those).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from rig.errors import STORAGE_PROBLEMS


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    target = Path(path)
    with _naming(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o644)  # mkstemp makes files private; results are meant to be shared
    try:
        with _naming(target):
            yield tmp
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def _naming(target: Path) -> Iterator[None]:
    """A write the storage refuses (full, read-only) names the file meant, not its temporary name."""
    try:
        yield
    except OSError as error:
        if error.errno not in STORAGE_PROBLEMS:
            raise
        raise OSError(error.errno, error.strerror, str(target)) from error


def write_with(path: str | os.PathLike[str], write: Callable[[io.BufferedWriter], object]) -> None:
    """Atomically write what ``write(binary_file)`` writes, e.g. ``write_with(path, model.save)``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def _write_with(path: str | os.PathLike[str], mode: str, write: Callable[[IO[Any]], object]) -> None:
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_text(path: str | os.PathLike[str], text: str) -> None:
    _write_with(path, "w", lambda f: f.write(text))


def write_csv(
    path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], fields: Sequence[str] = ()
) -> None:
    """Rows as CSV with a header: ``fields``, else every key in the order it first appears in ``rows``."""
    columns = list(fields) or list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    write_with(path, lambda f: torch.save(obj, f))


def savez_compressed(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> None:
    write_with(path, lambda f: np.savez_compressed(f, allow_pickle=False, **arrays))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
