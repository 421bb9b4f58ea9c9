"""Test helpers for datasets as older versions of rig saved them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def drop_arrays(path: Path, names: Sequence[str]) -> None:
    """Rewrite the dataset at ``path`` without the arrays ``names``, as a version before them saved it."""
    with np.load(path) as archive:
        kept = {name: archive[name] for name in archive.files if name not in names}
    np.savez(path, **kept)
