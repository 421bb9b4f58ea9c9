"""The one metrics path of training: SB3's ``Logger``, writing ``progress.csv`` and TensorBoard events.

The agent's updates, its periodic real-goal evaluations (``eval/*``) and an online VAE's updates
(``online/*``) are all recorded through it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat, filter_excluded_keys

from rig import io


class ProgressCSV(KVWriter):
    """SB3's metrics as ``progress.csv``, one row per dump with its env ``step``, rewritten atomically.

    Resuming from a checkpoint at step ``resume_from`` keeps the rows up to that step, so the file
    continues the interrupted run's instead of restarting or repeating steps.
    """

    def __init__(self, path: Path, resume_from: int | None = None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if resume_from is not None and path.is_file():
            with open(path, newline="") as handle:
                self.rows = [row for row in csv.DictReader(handle) if _row_step(row) <= resume_from]

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        values = filter_excluded_keys(key_values, key_excluded, "csv")
        scalars = {
            key: value for key, value in values.items() if isinstance(value, (int, float, str, np.number))
        }
        self.rows.append({"step": step, **scalars})
        io.write_csv(self.path, self.rows)

    def close(self) -> None:
        pass


def _row_step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0


def make_logger(progress: Path, tensorboard: Path, resume_from: int | None) -> Logger:
    """SB3 logger writing ``progress`` (a CSV, continued when resuming) and TensorBoard events into
    the folder ``tensorboard``."""
    tensorboard.mkdir(parents=True, exist_ok=True)
    csv_format = ProgressCSV(progress, resume_from)
    return Logger(str(tensorboard), [csv_format, TensorBoardOutputFormat(str(tensorboard))])
