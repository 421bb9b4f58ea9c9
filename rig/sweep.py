"""Sweeps: every combination of grid values and seeds, each trial a normal ``rig run``, on Ray Tune.

    rig sweep debug vae.beta=0.5,1,4 'agent.net_arch=[64,64]' --seeds 0,1,2

``key=v1,v2`` is a grid axis; ``key=value`` (one value) applies to every trial. Commas inside brackets or
quotes belong to the value, so ``agent.net_arch=[64,64]`` is one value. Every trial's config is loaded and
validated before Ray starts, so a typo fails at once. The trials run on a local Ray instance, or on an
existing cluster given by ``address`` (rig must be installed on its nodes, and for a combined report the
run directories must be on storage that the driver sees).

Sweep directory::

    <trial>/      one run directory per trial, named from its grid values and seed: vae.beta=4_seed=1
    ray/          Ray Tune's own records (params, results, error.txt of failed trials)
    sweep.json    every trial's overrides, seed, run_dir, status, error and final evaluation
    report.md     one report over the trials that succeeded (seeds of one setting averaged)

A trial that raises is recorded as failed with its error; the others run on. Finished stages of each
run are cached, so running the same sweep again only redoes what failed or was interrupted.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from rig import io  # importing rig also picks headless GL, before Ray copies this environment
from rig.config import Config, ConfigError, from_dict, load_config, resolve_config_path, to_dict
from rig.errors import UserError
from rig.rundir import RunDir

SWEEP_FILE = "sweep.json"
RAY_DIR = "ray"
"""Ray Tune's storage, inside the sweep directory rather than ~/ray_results."""
RESERVED_KEYS = {
    "seed": "give seeds with --seeds, e.g. --seeds 0,1,2",
    "run_dir": "each trial's run_dir is set under the sweep directory; choose that with --out",
}
DEFAULT_OVERRIDES = ("torch_threads=1",)
"""Applied unless the grid sets the key or the config file moves it off the schema default: trials share
the cores."""
MAX_NAME_LENGTH = 100
INSTALL_HINT = 'rig sweep needs Ray: pip install "rig[ray]" (in a checkout: pip install -e ".[ray]")'
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")

logger = logging.getLogger(__name__)


class SweepError(UserError, ValueError):
    """A sweep that cannot start (bad grid or seeds, Ray missing), or whose trials all failed."""


class TrialStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class Grid:
    """Parsed grid arguments: the axes to combine, and the overrides every trial gets."""

    axes: dict[str, list[str]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)

    def given_keys(self) -> set[str]:
        return set(self.axes) | {item.split("=", 1)[0] for item in self.overrides}


@dataclass(frozen=True)
class Trial:
    """One run of the sweep: the grid values it takes, its seed and its run directory."""

    name: str
    seed: int
    point: tuple[tuple[str, str], ...]
    """this trial's value of each grid axis, as (key, value)"""
    overrides: tuple[str, ...]
    """everything passed to ``load_config`` after the config file, seed included"""
    run_dir: Path


class TrialReport(NamedTuple):
    """What Ray hands back for one trial."""

    metrics: dict[str, Any]
    error: BaseException | None
    ray_path: str


@dataclass
class TrialOutcome:
    trial: Trial
    status: TrialStatus
    metrics: dict[str, Any]
    """the final evaluation (``eval.json``) of a trial that succeeded"""
    error: str | None = None
    """the last line of the error of a trial that failed"""
    traceback: str | None = None
    ray_path: str | None = None
    """the trial's folder in Ray's records (``error.txt`` of a failed trial is there)"""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.trial.name,
            "seed": self.trial.seed,
            "grid": dict(self.trial.point),
            "overrides": list(self.trial.overrides),
            "run_dir": str(self.trial.run_dir),
            "status": self.status.value,
            "error": self.error,
            "traceback": self.traceback,
            "ray_path": self.ray_path,
            "metrics": self.metrics,
        }


@dataclass
class SweepResult:
    sweep_dir: Path
    outcomes: list[TrialOutcome]
    summary: Path
    """``sweep.json``"""
    report: Path | None
    """the combined ``report.md``; ``None`` when no trial succeeded"""

    @property
    def succeeded(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status is TrialStatus.SUCCEEDED]

    @property
    def failed(self) -> list[TrialOutcome]:
        return [o for o in self.outcomes if o.status is TrialStatus.FAILED]


# ------------------------------------------------------------------------------ the grid and the trials
def split_values(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``1,[64,64]`` is ``['1', '[64,64]']``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quote: str | None = None
    for char in text:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    if depth != 0 or quote is not None:
        raise SweepError(f"unbalanced brackets or quotes in {text!r}")
    return parts


def parse_grid(items: Sequence[str]) -> Grid:
    """``key=v1,v2`` becomes an axis, ``key=value`` an override for every trial."""
    grid = Grid()
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"grid item {item!r} must look like key=value or key=v1,v2")
        if key in grid.given_keys():
            raise SweepError(f"grid key {key!r} is given twice")
        if key in RESERVED_KEYS:
            raise SweepError(f"{key!r} cannot be part of a sweep's grid: {RESERVED_KEYS[key]}")
        values = split_values(text)
        if len(values) == 1:
            grid.overrides.append(f"{key}={text}")
        else:
            grid.axes[key] = _distinct(values, f"grid axis {key!r}")
    return grid


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise SweepError(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    return _distinct(seeds, "--seeds")


def _distinct(values: list[Any], what: str) -> list[Any]:
    if any(isinstance(v, str) and not v.strip() for v in values):
        raise SweepError(f"{what} has an empty value")
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise SweepError(f"{what} repeats {', '.join(repeated)}")
    return values


def trial_name(point: Sequence[tuple[str, str]], seed: int) -> str:
    """A directory name from a trial's grid values and seed, e.g. ``agent.net_arch=64-64_seed=0``."""
    parts = [f"{_safe(key)}={_safe(value) or 'empty'}" for key, value in point]
    name = "_".join([*parts, f"seed={seed}"])
    if len(name) > MAX_NAME_LENGTH:
        name = f"{name[: MAX_NAME_LENGTH - 9]}-{_short_hash(name)}"
    return name


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-")


def make_trials(
    grid: Grid, seeds: Sequence[int], sweep_dir: Path, defaults: Sequence[str] = ()
) -> list[Trial]:
    """The cartesian product of the grid's axes and the seeds, in a stable order."""
    axes = list(grid.axes.items())
    trials = []
    for values in itertools.product(*(axis_values for _, axis_values in axes)):
        point = tuple((key, value) for (key, _), value in zip(axes, values, strict=True))
        for seed in seeds:
            overrides = (*defaults, *grid.overrides, *(f"{k}={v}" for k, v in point), f"seed={seed}")
            name = trial_name(point, seed)
            trials.append(Trial(name, seed, point, overrides, sweep_dir / name))
    return _unique_names(trials)


def _unique_names(trials: list[Trial]) -> list[Trial]:
    """Values that differ only in unsafe characters can give one name: tell those apart by a hash."""
    names = [t.name for t in trials]
    unique = []
    for trial in trials:
        if names.count(trial.name) > 1:
            name = f"{trial.name}-{_short_hash(' '.join(trial.overrides))}"
            trial = replace(trial, name=name, run_dir=trial.run_dir.parent / name)
        unique.append(trial)
    return unique


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def default_overrides(config: str | Path, grid: Grid) -> list[str]:
    """The ``DEFAULT_OVERRIDES`` whose key the grid does not set and the config file leaves at its default."""
    base = to_dict(load_config(config))
    fresh = to_dict(Config())
    return [
        item
        for item in DEFAULT_OVERRIDES
        if (key := item.split("=", 1)[0]) not in grid.given_keys() and base.get(key) == fresh.get(key)
    ]


def plan_sweep(
    config: str | Path, grid_items: Sequence[str], seeds: Sequence[int], sweep_dir: Path
) -> list[tuple[Trial, Config]]:
    """Every trial with its loaded config; raises ``ConfigError`` for the first trial that does not load."""
    if not seeds:
        raise SweepError("a sweep needs at least one seed")
    grid = parse_grid(grid_items)
    trials = make_trials(grid, seeds, sweep_dir.resolve(), default_overrides(config, grid))
    planned = []
    for trial in trials:
        try:
            cfg = load_config(config, trial.overrides)
        except ConfigError as error:
            raise ConfigError(f"trial {trial.name}: {error}") from None
        planned.append((trial, replace(cfg, run_dir=str(trial.run_dir))))
    return planned


# ------------------------------------------------------------------------------ outcomes
def error_summary(error: BaseException) -> tuple[str, str]:
    """The last line of an error (Ray's text ends with the trial's own exception) and its full text."""
    text = _ANSI.sub("", str(error)).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1], text


def collect_outcomes(trials: Sequence[Trial], reports: Mapping[str, TrialReport]) -> list[TrialOutcome]:
    """Each trial's outcome from Ray's report of it; a trial without a final evaluation counts as failed."""
    return [_outcome(trial, reports.get(trial.name)) for trial in trials]


def _outcome(trial: Trial, report: TrialReport | None) -> TrialOutcome:
    if report is None:
        return TrialOutcome(trial, TrialStatus.FAILED, {}, error="Ray returned no result for this trial")
    if report.error is not None:
        message, text = error_summary(report.error)
        return TrialOutcome(trial, TrialStatus.FAILED, {}, message, text, report.ray_path)
    if not report.metrics:  # stopped before the end, e.g. the sweep was interrupted
        return TrialOutcome(
            trial, TrialStatus.FAILED, {}, "stopped before its final evaluation", None, report.ray_path
        )
    return TrialOutcome(trial, TrialStatus.SUCCEEDED, report.metrics, ray_path=report.ray_path)


def _headline(outcomes: Sequence[TrialOutcome]) -> tuple[str, str]:
    """The sweep's headline goal metric and its unit, from its trials' eval.json (the pushers' puck
    distance for records made before evaluations named their metrics)."""
    for outcome in outcomes:
        declared = outcome.metrics.get("goal_metrics")
        if isinstance(declared, list) and declared:
            name, unit = declared[0]
            return str(name), str(unit)
    return "puck_distance", "m"


def format_table(outcomes: Sequence[TrialOutcome], max_error: int = 100) -> str:
    """One line per trial: name, status, the final headline goal metric (puck distance on the pushers),
    success rate and error."""
    name, unit = _headline(outcomes)
    title = name.replace("_", " ") + (f" ({unit})" if unit else "")
    rows = [("trial", "status", title, "success", "error")]
    for outcome in outcomes:
        value = outcome.metrics.get(f"{name}_mean")
        success = outcome.metrics.get("success_rate")
        error = outcome.error or ""
        rows.append(
            (
                outcome.trial.name,
                outcome.status.value,
                "-" if value is None else f"{float(value):.3f}",
                "-" if success is None else f"{success:.0%}",
                error if len(error) <= max_error else error[: max_error - 3] + "...",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    )


def write_summary(
    sweep_dir: Path,
    config: str | Path,
    grid_items: Sequence[str],
    seeds: Sequence[int],
    outcomes: Sequence[TrialOutcome],
) -> Path:
    """``sweep.json``: the sweep's arguments and every trial's outcome, written atomically."""
    path = sweep_dir / SWEEP_FILE
    io.write_json(
        path,
        {
            "config": str(resolve_config_path(config).resolve()),
            "grid": list(grid_items),
            "seeds": list(seeds),
            "succeeded": sum(o.status is TrialStatus.SUCCEEDED for o in outcomes),
            "failed": sum(o.status is TrialStatus.FAILED for o in outcomes),
            "trials": [o.to_json() for o in outcomes],
        },
    )
    return path


# ------------------------------------------------------------------------------ Ray
def import_ray() -> ModuleType:
    try:
        import ray
        from ray import tune  # noqa: F401  ray without the [tune] extra fails here
    except ImportError as error:
        raise SweepError(f"{INSTALL_HINT} ({error})") from error
    return ray


def run_trial(params: dict[str, Any], configs: dict[str, dict[str, Any]], until: str | None = None) -> None:
    """Ray Tune's function trainable: one ``rig run`` of the trial named in ``params``, or its stages up to
    ``until``; such a trial reports the stage it reached in place of a final evaluation."""
    from ray import tune

    from rig.pipeline import run_pipeline, run_until

    cfg = from_dict(configs[params["trial"]])
    if until is None:
        tune.report({"eval": run_pipeline(cfg, progress=False)})
    else:
        run_until(cfg, until, progress=False)
        tune.report({"eval": {"done": until}})


def _start_ray(ray: ModuleType, address: str | None) -> bool:
    """Connect to ``address``, or start a small local instance; returns whether this call started Ray."""
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)
        return True
    try:
        ray.init(address=address, **quiet)
    except ConnectionError as error:
        raise SweepError(f"cannot connect to the Ray cluster at {address!r}: {error}") from error
    return True


def tune_trials(
    configs: Mapping[str, Config], storage: Path, resources: Mapping[str, float], until: str | None = None
) -> dict[str, TrialReport]:
    """Run one Tune trial per config (keyed by trial name), each up to the stage ``until`` (default: all);
    Ray must be initialised."""
    from ray import tune

    def trial_dirname(trial: Any) -> str:
        return str(trial.config["trial"])

    configs_dict = {name: to_dict(cfg) for name, cfg in configs.items()}
    trainable = tune.with_parameters(run_trial, configs=configs_dict, until=until)
    tuner = tune.Tuner(
        tune.with_resources(trainable, dict(resources)),
        param_space={"trial": tune.grid_search(list(configs))},
        tune_config=tune.TuneConfig(trial_name_creator=trial_dirname, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=time.strftime("%Y-%m-%d_%H-%M-%S"),
            storage_path=str(storage.resolve()),
            verbose=0,
            log_to_file=True,
        ),
    )
    results = tuner.fit()
    reports = {}
    for result in (results[i] for i in range(len(results))):  # ResultGrid is indexable, not typed iterable
        metrics = (result.metrics or {}).get("eval") or {}
        reports[Path(result.path).name] = TrialReport(dict(metrics), result.error, str(result.path))
    return reports


# ------------------------------------------------------------------------------ entry points
def run_sweep(
    config: str | Path,
    grid: Sequence[str] = (),
    seeds: Sequence[int] = (0,),
    sweep_dir: str | os.PathLike[str] | None = None,
    address: str | None = None,
    resources: Mapping[str, float] | None = None,
    until: str | None = None,
) -> SweepResult:
    """Run every trial of the sweep on Ray, then write ``sweep.json`` and the combined report.

    ``resources`` per trial default to one CPU; add ``"gpu": 1`` for GPU trials (Ray hides GPUs from
    trials that do not ask for one). ``until`` names the last stage each trial runs (e.g. ``pretrain`` for
    a sweep of representations); by default trials run every stage. An already initialised Ray is used as
    it is; otherwise this starts a local instance, or connects to ``address``, and shuts it down at the end.
    Raises ``SweepError`` after writing everything when no trial succeeded.
    """
    root = Path(sweep_dir) if sweep_dir is not None else Path("runs") / f"sweep-{Path(config).stem}"
    root = root.resolve()
    planned = plan_sweep(config, grid, seeds, root)
    ray = import_ray()
    logger.info("rig sweep: %d trials on Ray; results in %s", len(planned), root)
    started = _start_ray(ray, address)
    try:
        configs = {trial.name: cfg for trial, cfg in planned}
        reports = tune_trials(configs, root / RAY_DIR, resources or {"cpu": 1}, until)
    finally:
        if started:
            ray.shutdown()
    outcomes = collect_outcomes([trial for trial, _ in planned], reports)
    summary = write_summary(root, config, grid, seeds, outcomes)
    logger.info("%s", format_table(outcomes))
    result = SweepResult(root, outcomes, summary, combined_report(outcomes, root))
    logger.info("summary: %s", summary)
    if not result.succeeded:
        raise SweepError(f"all {len(outcomes)} trials failed; their errors are in {summary}")
    if result.failed:
        logger.warning(
            "%d of %d trials failed; their errors are in %s", len(result.failed), len(outcomes), summary
        )
    return result


def combined_report(outcomes: Sequence[TrialOutcome], sweep_dir: Path) -> Path | None:
    """One report over the succeeded trials whose run directories this machine sees."""
    succeeded = [o.trial.run_dir for o in outcomes if o.status is TrialStatus.SUCCEEDED]
    run_dirs = [run_dir for run_dir in succeeded if RunDir(run_dir).is_run()]
    if len(run_dirs) < len(succeeded):
        logger.warning("%d succeeded run directories are not on this machine", len(succeeded) - len(run_dirs))
    if not run_dirs:
        return None
    from rig.report import build_report

    report = build_report(run_dirs, out_dir=sweep_dir)
    logger.info("report: %s", report)
    return report


def sweep_from_args(args: argparse.Namespace) -> SweepResult:
    """``rig sweep CONFIG [grid ...] --seeds 0,1,2 [--address ADDR] [--out DIR]``."""
    return run_sweep(args.config, args.grid, parse_seeds(args.seeds), args.out, args.address)
