"""The one metrics path of training: SB3's ``Logger``, writing CSV files and TensorBoard events.

Pretraining's epochs (``pretrain/progress.csv``), and the agent's updates, its periodic real-goal
evaluations (``eval/*``) and an online VAE's updates (``online/*``) (``agent/logs/progress.csv``) are all
recorded through it; the learning curve ``agent/eval_curve.csv`` is one of its outputs, made from the
``eval/*`` records.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat, filter_excluded_keys

from rig import io
from rig.evaluate import CURVE_BOOKKEEPING, EvalPoint, read_eval_curve, write_eval_curve

EVAL_PREFIX = "eval/"
"""The records of the periodic real-goal evaluation, whose dumps make the learning curve."""


class ProgressCSV(KVWriter):
    """The logged metrics as a CSV file, one row per dump, rewritten atomically.

    Each row holds its step in the column ``step_key``: the dump's step, unless the records hold that
    column themselves (pretraining records its ``epoch``). Resuming from step ``resume_from`` keeps the
    rows up to that step, so the file continues the interrupted run's instead of restarting or repeating
    steps.
    """

    def __init__(self, path: Path, resume_from: int | None = None, step_key: str = "step") -> None:
        self.path, self.step_key = path, step_key
        self.rows: list[dict[str, Any]] = []
        if resume_from is not None and path.is_file():
            with open(path, newline="") as handle:
                self.rows = [row for row in csv.DictReader(handle) if self._row_step(row) <= resume_from]

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        values = filter_excluded_keys(key_values, key_excluded, "csv")
        scalars = {
            key: value for key, value in values.items() if isinstance(value, (int, float, str, np.number))
        }
        self.rows.append(scalars if self.step_key in scalars else {self.step_key: step, **scalars})
        io.write_csv(self.path, self.rows)

    def close(self) -> None:
        pass

    def _row_step(self, row: dict[str, str]) -> float:
        try:
            return float(row.get(self.step_key) or 0)
        except ValueError:
            return 0.0


class EvalCurveCSV(KVWriter):
    """The learning curve (``rig.evaluate.EvalPoint`` rows) from the ``eval/*`` records of each dump that
    has them, rewritten atomically; resuming from step ``resume_from`` keeps the points up to that step."""

    def __init__(self, path: Path, resume_from: int | None = None) -> None:
        self.path = path
        self.points = (
            [] if resume_from is None else [p for p in read_eval_curve(path) if p.steps <= resume_from]
        )

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        records = {
            key.removeprefix(EVAL_PREFIX): value
            for key, value in key_values.items()
            if key.startswith(EVAL_PREFIX)
        }
        if not all(name in records for name in ("success_rate", "episodes")):
            return
        values = {name: float(value) for name, value in records.items() if name not in CURVE_BOOKKEEPING}
        self.points.append(EvalPoint(step, values, float(records["success_rate"]), int(records["episodes"])))
        write_eval_curve(self.path, self.points)

    def close(self) -> None:
        pass


class PrefixedTensorBoard(TensorBoardOutputFormat):
    """TensorBoard events whose tags put ``prefix`` (pretraining's ``pretrain/``) before the record's key."""

    def __init__(self, folder: str, prefix: str) -> None:
        super().__init__(folder)
        self.prefix = prefix

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        values = {self.prefix + key: value for key, value in key_values.items()}
        excluded = {self.prefix + key: value for key, value in key_excluded.items()}
        super().write(values, excluded, step)


def make_logger(tensorboard: Path, *writers: KVWriter, tensorboard_prefix: str = "") -> Logger:
    """SB3's logger writing to ``writers`` (CSV files) and TensorBoard events into the folder
    ``tensorboard``, their tags prefixed with ``tensorboard_prefix``."""
    tensorboard.mkdir(parents=True, exist_ok=True)
    return Logger(str(tensorboard), [*writers, PrefixedTensorBoard(str(tensorboard), tensorboard_prefix)])
