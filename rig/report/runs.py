"""Reading run directories for the report: what each holds and lacks, grouped by method, with the
numbers over a group's seeds."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rig.config import Config, ConfigError, flat_settings, load_config
from rig.errors import CorruptFileError
from rig.evaluate import EvalPoint, read_eval_curve
from rig.rundir import RunDir

SEED_ONLY_KEYS = ("seed", "run_dir", "device", "torch_threads")
"""Config keys that may differ between runs of one method (the last three do not change results)."""


REPRESENTATION_NAMES = {
    "beta_vae": "RIG (beta-VAE)",
    "cc_vae": "CC-RIG (CC-VAE)",
    "supervised": "Supervised (state from frames)",
    "state": "Oracle (state)",
}


GRIDS = (
    ("reconstructions", "Reconstructions: each row of held-out frames above its reconstructions."),
    (
        "prior_samples",
        "Prior samples: decoded z ~ N(0, I) (CC-VAE: one context frame, then its samples).",
    ),
    ("traversals", "Traversals: one row per latent dim, from -3 to +3 prior std, the others fixed."),
    ("heldout_reconstructions", "Held-out colours: frames above their reconstructions."),
    ("heldout_prior_samples", "Held-out colours: a context frame, then prior samples under it."),
)
"""The VAE grids (``PretrainDir`` properties) with their captions, in the order the report shows them."""


REQUIRED_GRIDS = GRIDS[:3]


class CurveBand(NamedTuple):
    """A metric against env steps, averaged over the seeds that reached each step."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    seeds: np.ndarray


@dataclass
class RunRecord:
    """What one run directory holds; ``None`` or empty for each product it lacks."""

    path: Path
    label: str
    config: Config
    stages: dict[str, Any] | None
    pretrain_metrics: dict[str, Any] | None
    curve: list[EvalPoint]
    final: dict[str, Any] | None
    random_baseline: dict[str, Any] | None
    checkpoint_steps: int | None
    gifs: list[Path]
    problems: list[str] = field(default_factory=list)
    """files that exist but could not be read"""
    archived: bool = False
    """the directory is an archived record (``scripts/archive_runs.py``): no images or GIFs are expected"""

    @property
    def is_oracle(self) -> bool:
        return self.config.vae.is_oracle

    @property
    def layout(self) -> RunDir:
        return RunDir(self.path)

    def grids(self) -> list[tuple[Path, str]]:
        pretrain = self.layout.pretrain_dir
        found = [(getattr(pretrain, name), caption) for name, caption in GRIDS]
        return [(path, caption) for path, caption in found if path.is_file()]

    @property
    def goal_metrics(self) -> dict[str, str]:
        """The env's goal metrics (name: unit, the headline first), as its evaluations recorded them."""
        for summary in (self.final, self.random_baseline):
            declared = None if summary is None else summary.get("goal_metrics")
            if isinstance(declared, list):
                return {str(name): str(unit) for name, unit in declared}
            if isinstance(declared, dict):  # the form of the first Door records, in the order written
                return {str(name): str(unit) for name, unit in declared.items()}
        if self.curve:
            return dict.fromkeys(self.curve[-1].metric_names, "")
        return dict(PUSHER_METRICS)

    def trained_steps(self) -> int | None:
        """Env steps the evaluated agent was trained for, from the newest record that says."""
        if self.final is not None and integer(self.final.get("steps")) is not None:
            return integer(self.final["steps"])
        if self.checkpoint_steps is not None:
            return self.checkpoint_steps
        return self.curve[-1].steps if self.curve else None


@dataclass
class MethodGroup:
    """Runs of one method that differ only by seed."""

    label: str
    runs: list[RunRecord]


def unique_paths(run_dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    seen: dict[Path, Path] = {}
    for run_dir in run_dirs:
        seen.setdefault(Path(run_dir).resolve(), Path(run_dir))
    return list(seen.values())


def matching_run_dirs(patterns: Sequence[str], root: Path) -> list[Path]:
    """The directories ``patterns`` name below ``root`` (an absolute pattern stands alone), each glob in the
    last part expanded in sorted order, as a shell would from ``root``."""
    found: list[Path] = []
    for pattern in patterns:
        base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
        matches = sorted(base.parent.glob(base.name)) if any(c in base.name for c in "*?[") else [base]
        found += [path for path in matches if path.is_dir()]
    return found


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Short names for runs: the directory name for one run, else the path below the common parent."""
    if len(paths) == 1:
        return [paths[0].resolve().name]
    resolved = [p.resolve() for p in paths]
    parent = Path(os.path.commonpath(resolved))
    labels = [p.relative_to(parent).as_posix() for p in resolved]
    return [label if label != "." else p.name for label, p in zip(labels, resolved, strict=True)]


def read_run(path: str | os.PathLike[str], label: str | None = None) -> RunRecord:
    """Everything the report uses from a run directory; only ``config.yaml`` is required."""
    run = RunDir(path)
    run.require_run()
    try:
        config = load_config(run.config)
    except ConfigError as error:
        raise CorruptFileError(f"{run.root}: config.yaml does not fit the config schema: {error}") from error
    problems: list[str] = []
    checkpoint = _read_json(run, run.agent.checkpoint, problems) or {}
    return RunRecord(
        path=run.root,
        label=label or run.root.resolve().name,
        config=config,
        stages=_read_json(run, run.stages, problems),
        pretrain_metrics=_read_json(run, run.pretrain_metrics, problems),
        curve=_read_curve(run, problems),
        final=_read_json(run, run.eval, problems),
        random_baseline=_read_json(run, run.random_baseline, problems),
        checkpoint_steps=integer(checkpoint.get("steps")),
        gifs=run.eval_gifs(),
        problems=problems,
        archived=run.is_archived(),
    )


def product_name(run: RunDir, path: Path) -> str:
    """``path`` as the report names it: relative to its run directory."""
    return path.relative_to(run.root).as_posix()


def _read_json(run: RunDir, path: Path, problems: list[str]) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` when absent, and a note in ``problems`` when unreadable."""
    name = product_name(run, path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(f"`{name}` could not be read ({error})")
        return None
    if not isinstance(data, dict):
        problems.append(f"`{name}` does not hold a JSON object")
        return None
    return data


def _read_curve(run: RunDir, problems: list[str]) -> list[EvalPoint]:
    try:
        return read_eval_curve(run.agent.eval_curve)
    except (OSError, UnicodeDecodeError, KeyError, ValueError, TypeError) as error:
        problems.append(f"`{product_name(run, run.agent.eval_curve)}` could not be read ({error!r})")
        return []


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (JSON may hold anything)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return None


def integer(value: Any) -> int | None:
    number = finite(value)
    return None if number is None else int(number)


def missing_products(run: RunRecord) -> list[str]:
    """What a finished run would hold that this one lacks, one phrase each."""
    missing = (
        [] if run.stages is not None else [f"`{product_name(run.layout, run.layout.stages)}` (stage times)"]
    )
    missing += _missing_representation(run)
    missing += _missing_agent(run)
    return missing + run.problems


def _missing_representation(run: RunRecord) -> list[str]:
    if run.is_oracle:
        return []
    layout = run.layout
    metrics = f"`{product_name(layout, layout.pretrain_metrics)}` (VAE diagnostics)"
    missing = [] if run.pretrain_metrics is not None else [metrics]
    if run.archived or not run.config.vae.decodes_images:
        return missing
    required = [getattr(layout.pretrain_dir, name) for name, _ in REQUIRED_GRIDS]
    grids = [grid for grid in required if not grid.is_file()]
    if grids:
        missing.append("the VAE grids " + ", ".join(f"`{product_name(layout, grid)}`" for grid in grids))
    return missing


def _missing_agent(run: RunRecord) -> list[str]:
    layout = run.layout
    expected = [
        (bool(run.curve), f"`{product_name(layout, layout.agent.eval_curve)}` (learning curves)"),
        (run.final is not None, f"`{product_name(layout, layout.eval)}` (final evaluation)"),
        (
            run.random_baseline is not None,
            f"`{product_name(layout, layout.random_baseline)}` (random baseline)",
        ),
        (
            bool(run.gifs) or run.config.eval.gifs == 0 or run.archived,
            f"`{product_name(layout, layout.gifs)}/eval_*.gif` (rollout GIFs)",
        ),
    ]
    return [what for present, what in expected if not present]


def method_label(config: Config) -> str:
    representation = REPRESENTATION_NAMES.get(config.vae.kind, config.vae.kind)
    if config.online.enabled:
        alpha = config.online.skew_alpha
        representation = f"Skew-Fit (alpha {alpha:g})" if alpha < 0 else "online RIG (alpha 0)"
    return f"{representation}, {config.agent.algo.upper()}, {config.env.id}"


def group_runs(runs: Sequence[RunRecord]) -> list[MethodGroup]:
    """Runs whose configs match except for ``SEED_ONLY_KEYS``, in the order they were given.

    Groups of the same method label that differ in other settings are told apart by those settings.
    """
    by_key: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_key.setdefault(_method_key(run.config), []).append(run)
    members = list(by_key.values())
    labels = [method_label(group[0].config) for group in members]
    for label in set(labels):
        clashing = [i for i, other in enumerate(labels) if other == label]
        if len(clashing) > 1:
            for index, suffix in zip(clashing, _distinguishing(members, clashing), strict=True):
                labels[index] = f"{label} [{suffix}]"
    return [MethodGroup(label, group) for label, group in zip(labels, members, strict=True)]


def _method_key(config: Config) -> str:
    flat = flat_settings(config)
    return json.dumps({k: v for k, v in flat.items() if k not in SEED_ONLY_KEYS}, sort_keys=True)


def _distinguishing(members: list[list[RunRecord]], indices: list[int]) -> list[str]:
    flats = [flat_settings(members[i][0].config) for i in indices]
    keys = sorted(k for k in flats[0] if k not in SEED_ONLY_KEYS and len({repr(f[k]) for f in flats}) > 1)
    return [", ".join(f"{k}={flat[k]}" for k in keys) for flat in flats]


def aggregate_curve(curves: Sequence[Sequence[EvalPoint]], metric: str) -> CurveBand:
    """Mean and std over the curves at every evaluated step; a step counts the curves that reached it (and
    that have the metric: curves of another env may not)."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for curve in curves:
        for point in curve:
            if metric == "success_rate" or metric in point.values:
                by_step[point.steps].append(float(getattr(point, metric)))
    steps = np.array(sorted(by_step), dtype=np.int64)
    values = [np.array(by_step[int(s)]) for s in steps]
    return CurveBand(
        steps=steps,
        mean=np.array([v.mean() for v in values]),
        std=np.array([v.std() for v in values]),
        seeds=np.array([len(v) for v in values], dtype=np.int64),
    )


def summaries_mean(summaries: Sequence[dict[str, Any]], key: str) -> tuple[float, float, int]:
    found = [finite(s.get(key)) for s in summaries]
    values = np.array([value for value in found if value is not None])
    if len(values) == 0:
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std()), len(values)


PUSHER_METRICS = {"puck_distance": "m", "hand_distance": "m"}
"""the goal metrics of records made before evaluations recorded them: all were made on the pushers"""


def evaluation_goals(run: RunRecord) -> tuple[object, ...]:
    """What fixes the goals a run was evaluated on: two runs with equal tuples saw the same seeded goals
    (eval seed and episodes, env id and keyword arguments, palette, horizon)."""
    cfg = run.config
    env = cfg.env
    kwargs = tuple(sorted((str(key), repr(value)) for key, value in env.kwargs.items()))
    return (cfg.eval.seed, cfg.eval.episodes, env.id, kwargs, env.eval_palette, env.max_episode_steps)


def goal_metrics(runs: Sequence[RunRecord]) -> dict[str, str]:
    """Every goal metric of the runs (name: unit), each run's headline first, in the runs' order."""
    metrics: dict[str, str] = {}
    for run in runs:
        for name, unit in run.goal_metrics.items():
            metrics.setdefault(name, unit)
    return metrics or dict(PUSHER_METRICS)


def metric_title(name: str, unit: str) -> str:
    """``final puck distance (m)`` for ``puck_distance`` in m."""
    label = name.replace("_", " ")
    return f"final {label} ({unit})" if unit else f"final {label}"


def random_baselines(runs: Sequence[RunRecord]) -> dict[str, list[dict[str, Any]]]:
    """The runs' random-policy results by env id (a random policy's result depends on the env only)."""
    by_env: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if run.random_baseline is not None:
            by_env[run.config.env.id].append(run.random_baseline)
    return dict(by_env)
