"""The whole method as cached stages: collect -> pretrain -> train -> evaluate (+ a random baseline).

``RUN_DIR/stages.json`` records, for each stage, the settings that made its products (dotted keys such as
``vae.beta``, those of the stages it reads from included), a key hashing them, whether it finished and how
long it took. Running again with the same ``run_dir``:

- skips a finished stage whose settings are unchanged;
- resumes a stage that was interrupted (pretraining from its last epoch, training from its last checkpoint
  with the replay buffer), or whose only change is a resumable setting: a larger ``agent.total_steps``
  extends a finished agent from its last checkpoint;
- redoes the evaluation stages (evaluate, baselines) when anything they depend on changed: they are
  recomputed in seconds from the stages before them, so their old results are replaced;
- refuses, before any stage runs, when a change would discard what collect, pretrain or train made,
  and names the settings that changed. ``overwrite=True`` (the CLI's ``--overwrite``) deletes exactly
  the products of the stages the change invalidates, and says so, before running them again.

One process writes into a run directory at a time (``RunDir.lock``); a second one fails at once.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from rig import io
from rig.config import Config, ConfigError, Palette, flat_settings, section_hash
from rig.device import resolve_device, set_torch_threads
from rig.errors import UserError
from rig.pretrain import make_representation
from rig.rundir import RunDir
from rig.stages import STAGES, Stage, evaluate_run, record_config, stored_config

logger = logging.getLogger(__name__)

StageRecord = dict[str, dict[str, Any]]


class SettingsChangedError(UserError):
    """Running would delete products that a finished or started stage made with other settings."""


class StageStatus(enum.Enum):
    NEW = "new"
    """nothing of it is there (or nothing worth keeping): run it"""
    DONE = "done"
    """finished with these settings: skip it"""
    RESUME = "resume"
    """started or finished with these settings, bar resumable ones: run it on from where it is"""
    CHANGED = "changed"
    """its products were made with other settings: they must go before it runs"""


@dataclass(frozen=True)
class StagePlan:
    """One declared stage (``rig.stages.STAGES``) under one config: the settings that make its products
    and where they live."""

    name: str
    settings: dict[str, Any]
    """every setting that shapes the products, including those of the stages it reads from"""
    resumable: dict[str, Any]
    """settings that may change without discarding the products: the stage then resumes"""
    products: tuple[Path, ...]
    run: Callable[[Config, bool], object]
    derived: bool
    """recomputed in seconds from the stages before it: a change of settings replaces its products"""

    @classmethod
    def of(cls, stage: Stage, cfg: Config, settings: dict[str, Any]) -> StagePlan:
        """``stage`` under ``cfg``, whose settings behind it are ``settings``."""
        resumable = _select(flat_settings(cfg), stage.resumable, ())
        products = stage.products(RunDir(cfg.run_dir))
        return cls(stage.name, settings, resumable, products, stage.run, stage.derived)

    @property
    def key(self) -> str:
        return section_hash(self.settings)

    def status(self, entry: dict[str, Any] | None) -> StageStatus:
        """What to do with this stage, given its entry in ``stages.json``."""
        has_products = any(path.exists() for path in self.products)
        if entry is None or entry.get("key") != self.key:
            return StageStatus.CHANGED if has_products else StageStatus.NEW
        finished = entry.get("done") and self.products[0].exists()
        if finished and entry.get("resumable", {}) == self.resumable:
            return StageStatus.DONE
        return StageStatus.RESUME


def stage_settings(cfg: Config) -> dict[str, dict[str, Any]]:
    """The settings behind each stage that ``cfg`` runs, those of the stages it reads from included."""
    flat = flat_settings(cfg)
    settings: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        names = stage.settings_for(cfg)
        if names is None:
            continue
        inherited: dict[str, Any] = {}
        for before in stage.reads:
            inherited.update(settings.get(before, {}))
        settings[stage.name] = {**inherited, **_select(flat, names, stage.excluded)}
    return settings


def _select(flat: dict[str, Any], names: Sequence[str], without: Sequence[str]) -> dict[str, Any]:
    """The settings named by ``names``: keys, or sections ending in a dot, less those in ``without``."""

    def chosen(key: str) -> bool:
        return any(key == name or (name.endswith(".") and key.startswith(name)) for name in names)

    return {key: value for key, value in flat.items() if chosen(key) and key not in without}


def stage_keys(cfg: Config) -> dict[str, str]:
    """The cache key of every stage that ``cfg`` runs."""
    return {stage.name: stage.key for stage in plan(cfg)}


def plan(cfg: Config) -> list[StagePlan]:
    """The declared stages that ``cfg`` runs, in order."""
    settings = stage_settings(cfg)
    return [StagePlan.of(stage, cfg, settings[stage.name]) for stage in STAGES if stage.name in settings]


def preflight(cfg: Config) -> None:
    """What only torch and the representation code can check, done before any stage runs.

    The device must be there, and the representation must take frames of ``env.image_size``.
    """
    set_torch_threads(cfg.torch_threads)
    resolve_device(cfg.device)
    if not cfg.vae.is_oracle:
        try:
            with torch.random.fork_rng(devices=[]):  # building it draws initial weights: leave no trace
                make_representation(cfg.vae, cfg.env.image_size)
        except ValueError as error:
            raise ConfigError(
                f"the vae settings do not fit env.image_size={cfg.env.image_size}: {error}"
            ) from None


def run_pipeline(
    cfg: Config, progress: bool = True, report: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Run every stage that is not already done; returns the final evaluation (``eval.json``).

    ``overwrite`` deletes the products of stages whose settings changed; without it such a change is a
    ``SettingsChangedError`` raised before anything runs.
    """
    preflight(cfg)
    run = RunDir(cfg.run_dir)
    stages = plan(cfg)
    with run.lock():
        _run_stages(cfg, stages, stages, overwrite, progress)
        if report:
            from rig.report import build_report

            logger.info("report: %s", build_report([run.root]))
        return dict(json.loads(run.eval.read_text()))


def run_until(cfg: Config, name: str, progress: bool = True, overwrite: bool = False) -> None:
    """Run every stage up to and including ``name`` that is not already done, cached like ``run_pipeline``
    runs them (``rig.sweep`` runs representation sweeps up to ``pretrain`` with it).

    As for ``rig collect`` and then ``rig NAME``, a change that invalidates a stage after ``name`` is
    refused too, or with ``overwrite`` its products are deleted.
    """
    preflight(cfg)
    stages = plan(cfg)
    position = _position(cfg, stages, name)
    with RunDir(cfg.run_dir).lock():
        _run_stages(cfg, stages, stages[: position + 1], overwrite, progress)


def _position(cfg: Config, stages: list[StagePlan], name: str) -> int:
    """Where the stage ``name`` runs among ``stages``; an error when ``cfg`` runs no such stage."""
    names = [stage.name for stage in stages]
    if name not in names:
        raise ConfigError(f"vae.kind={cfg.vae.kind} runs no {name} stage; its stages are {', '.join(names)}")
    return names.index(name)


def run_stage(cfg: Config, name: str, progress: bool = True, overwrite: bool = False) -> None:
    """Run one stage (``rig collect``, ``pretrain`` or ``train``), cached like ``run_pipeline`` runs it.

    The stages before it must be done with these settings. A change that invalidates this stage also
    invalidates the stages after it: it is refused, or with ``overwrite`` their products are deleted too.
    """
    preflight(cfg)
    stages = plan(cfg)
    position = _position(cfg, stages, name)
    run = RunDir(cfg.run_dir)
    with run.lock():
        record = read_stage_record(run.root)
        for before in stages[:position]:
            if before.status(record.get(before.name)) is not StageStatus.DONE:
                raise UserError(
                    f"`rig {name}` needs the {before.name} stage done with these settings in {run.root}; "
                    f"run `rig {before.name}` (or `rig run`) with them first"
                )
        _run_stages(cfg, stages[position:], stages[position : position + 1], overwrite, progress)


def evaluate_again(
    run_dir: str | os.PathLike[str],
    episodes: int | None = None,
    seed: int | None = None,
    palette: Palette | None = None,
) -> dict[str, Any]:
    """``rig evaluate``: evaluate a run's agent again, with other episodes, seed or palette if given.

    An evaluation with other settings than the run's config is not the evaluate stage's: its record is
    dropped, so the next ``rig run`` evaluates with the config's settings again.
    """
    run = RunDir(run_dir)
    cfg = stored_config(run.root)
    env_cfg = replace(cfg.env, eval_palette=palette) if palette else cfg.env
    with run.lock():
        summary = evaluate_run(run.root, episodes=episodes, seed=seed, env_cfg=env_cfg)
        if (episodes, seed, palette) != (None, None, None):
            record = read_stage_record(run.root)
            if record.pop("evaluate", None) is not None:
                _write_stage_record(run, record)
    return summary


def _run_stages(
    cfg: Config, checked: list[StagePlan], selected: list[StagePlan], overwrite: bool, progress: bool
) -> None:
    """Refuse or clear what changed among ``checked``, then run each stage of ``selected`` not yet done."""
    run = RunDir(cfg.run_dir)
    record = read_stage_record(run.root)
    changed = [stage for stage in checked if stage.status(record.get(stage.name)) is StageStatus.CHANGED]
    protected = [stage for stage in changed if not stage.derived]
    if protected and not overwrite:
        raise _refusal(run, protected, record)
    if overwrite:
        for stage in changed:
            _discard(run, stage, record)
    record_config(cfg)
    for stage in selected:
        status = stage.status(record.get(stage.name))
        if status is StageStatus.DONE:
            logger.info("[%s] up to date, skipped", stage.name)
            continue
        if status is StageStatus.CHANGED:  # a derived stage: its products are replaced without asking
            _discard(run, stage, record)
        _run_one(cfg, stage, record, resuming=status is StageStatus.RESUME, progress=progress)


def _run_one(cfg: Config, stage: StagePlan, record: StageRecord, resuming: bool, progress: bool) -> None:
    run = RunDir(cfg.run_dir)
    seconds = float(record.get(stage.name, {}).get("seconds", 0.0)) if resuming else 0.0
    entry = {"key": stage.key, "settings": stage.settings, "resumable": stage.resumable, "done": False}
    record[stage.name] = {**entry, "seconds": seconds}
    _write_stage_record(run, record)
    logger.info("[%s] %s", stage.name, "resuming" if resuming else "running")
    start = time.perf_counter()
    try:
        stage.run(cfg, progress)
    finally:
        record[stage.name]["seconds"] += time.perf_counter() - start
        _write_stage_record(run, record)
    record[stage.name]["done"] = True
    _write_stage_record(run, record)


def _refusal(run: RunDir, stages: list[StagePlan], record: StageRecord) -> SettingsChangedError:
    what = _changes(stages, record)
    return SettingsChangedError(
        f"{run.root} holds work made with other settings ({what}); running would delete "
        f"{_describe(run, stages)}. Choose another run_dir, or pass --overwrite to delete them"
    )


def _changes(stages: Sequence[StagePlan], record: StageRecord) -> str:
    """The settings that changed since ``stages`` ran, e.g. ``vae.beta: 0.25 -> 2.0``."""
    changes: dict[str, str] = {}
    for stage in stages:
        before = record.get(stage.name, {}).get("settings")
        if isinstance(before, dict):
            changes.update(_differences(before, stage.settings))
    what = ", ".join(f"{key}: {change}" for key, change in sorted(changes.items()))
    return what or "settings that this run directory did not record"


def _differences(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    missing = "(unset)"
    return {
        key: f"{before.get(key, missing)!r} -> {after.get(key, missing)!r}"
        for key in before.keys() | after.keys()
        if before.get(key, missing) != after.get(key, missing)
    }


def _describe(run: RunDir, stages: Sequence[StagePlan]) -> str:
    """What the stages hold, e.g. ``pretrain/ (pretrain), agent/ (train)``."""
    parts = []
    for stage in stages:
        for path in stage.products:
            if path.exists():
                name = path.relative_to(run.root).as_posix() + ("/" if path.is_dir() else "")
                parts.append(f"{name} ({stage.name})")
    return ", ".join(parts)


def _discard(run: RunDir, stage: StagePlan, record: StageRecord) -> None:
    held = _describe(run, [stage]) or "nothing"
    level = logging.INFO if stage.derived else logging.WARNING
    verb = "replacing" if stage.derived else "deleting"
    logger.log(level, "[%s] settings changed (%s): %s %s", stage.name, _changes([stage], record), verb, held)
    for path in stage.products:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    record.pop(stage.name, None)
    _write_stage_record(run, record)


def read_stage_record(run_dir: str | os.PathLike[str]) -> StageRecord:
    path = RunDir(run_dir).stages
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # written atomically, so only a hand edit gets here; its stages count as unrecorded
    return record if isinstance(record, dict) else {}


def _write_stage_record(run: RunDir, record: StageRecord) -> None:
    io.write_json(run.stages, record)
