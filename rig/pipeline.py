"""The whole method as cached stages: collect -> pretrain -> train -> evaluate (+ a random baseline).

``RUN_DIR/stages.json`` records, for each stage, the settings that made its products (dotted keys such as
``vae.beta``, those of the stages it reads from included), a key hashing them, whether it finished and how
long it took. Running again with the same ``run_dir``:

- skips a finished stage whose settings are unchanged and whose products are there and load (cheap checks,
  ``Stage.intact``); one whose products were deleted or damaged runs again, and so do the evaluations
  after a stage that runs;
- resumes a stage that was interrupted (pretraining from its last epoch, training from its last checkpoint
  with the replay buffer), or whose only change is a resumable setting: a larger ``agent.total_steps``
  extends a finished agent from its last checkpoint, a larger ``vae.epochs`` a finished pretraining from
  its last epoch (the agent trained on the shorter one is then refused, as any change of its inputs);
- redoes the evaluation stages (evaluate, baselines) when anything they depend on changed: they are
  recomputed in seconds from the stages before them, so their old results are replaced;
- refuses, before any stage runs, when a change would discard what collect, pretrain or train made,
  and names the settings that changed. ``overwrite=True`` (the CLI's ``--overwrite``) deletes exactly
  the products of the stages the change invalidates, and says so, before running them again.

A damaged ``stages.json``, or none beside products, is rebuilt from what the products record of the
settings that made them (``Stage.provenance``), and the rebuild is logged: no intact product is deleted.

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
from rig.checkpoints import read_checkpoint_record
from rig.config import Config, ConfigError, Palette, flat_settings, section_hash
from rig.device import resolve_device, set_torch_threads
from rig.envs import check_env_config
from rig.errors import CorruptFileError, UserError, first_line
from rig.pretrain import make_representation
from rig.resources import check_resources
from rig.rundir import RunDir
from rig.stages import STAGES, Provenance, Stage, evaluate_run, record_config, stored_config
from rig.threads import choose_threads

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
    stage: Stage
    """its declaration"""
    cfg: Config

    @classmethod
    def of(cls, stage: Stage, cfg: Config, settings: dict[str, Any]) -> StagePlan:
        """``stage`` under ``cfg``, whose settings behind it are ``settings``."""
        resumable = _select(flat_settings(cfg), stage.resumable, ())
        products = stage.products(RunDir(cfg.run_dir))
        return cls(stage.name, settings, resumable, products, stage.run, stage.derived, stage, cfg)

    @property
    def key(self) -> str:
        return section_hash(self.settings)

    def status(self, entry: dict[str, Any] | None) -> StageStatus:
        """What to do with this stage, given its entry in ``stages.json``.

        A finished stage is done only while its products are there and load: one whose products were
        deleted or damaged runs again (resuming from what is left).
        """
        has_products = any(path.exists() for path in self.products)
        if entry is None or not self.made_alike(entry):
            return StageStatus.CHANGED if has_products else StageStatus.NEW
        finished = entry.get("done") and self.stage.intact(self.cfg)
        if finished and entry.get("resumable", {}) == self.resumable:
            return StageStatus.DONE
        return StageStatus.RESUME

    def made_alike(self, entry: dict[str, Any]) -> bool:
        """Whether the entry's products were made with these settings. A setting that the entry records
        but that no longer shapes the stage's products (``eval.episodes`` of training, since rig stopped
        retraining for it) does not count."""
        recorded = entry.get("settings")
        if entry.get("key") == self.key or not isinstance(recorded, dict):
            return entry.get("key") == self.key
        return _relevant(recorded, self.settings) == self.settings


def _relevant(recorded: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The recorded settings among those that shape the products now (``settings``)."""
    return {key: recorded[key] for key in settings if key in recorded}


def statuses(stages: Sequence[StagePlan], record: StageRecord) -> dict[str, StageStatus]:
    """What to do with each of ``stages``: as ``StagePlan.status`` says, except that a derived stage is
    redone when a stage it reads from runs (its results would describe products that are gone)."""
    result: dict[str, StageStatus] = {}
    for stage in stages:
        status = stage.status(record.get(stage.name))
        inputs_run = any(
            result.get(name, StageStatus.DONE) is not StageStatus.DONE for name in stage.stage.reads
        )
        if status is StageStatus.DONE and stage.derived and inputs_run:
            status = StageStatus.RESUME
        result[stage.name] = status
    return result


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

    The device must be there, the machine must hold what the run allocates (``rig.resources``), the env
    must implement rig's protocol (``rig.goal_env``), and the
    representation must take frames of ``env.image_size``.
    """
    check_resources(cfg)
    set_torch_threads(choose_threads(cfg.torch_threads, "agent"))
    resolve_device(cfg.device)
    check_env_config(cfg.env, needs_images=not cfg.vae.is_oracle)
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
        _run_stages(cfg, stage_record(cfg, stages), stages, stages, overwrite, progress)
        if report:
            from rig.report import build_report

            logger.info("report: %s", build_report([run.root]))
        return read_evaluation(run.eval)


def read_evaluation(path: Path) -> dict[str, Any]:
    """The final evaluation; a damaged one is refused with the way to redo it, which takes seconds."""
    try:
        evaluation = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        evaluation = error
    if not isinstance(evaluation, dict):
        detail = first_line(evaluation) if isinstance(evaluation, Exception) else "not a JSON object"
        raise CorruptFileError(
            f"{path} is damaged ({detail}); delete it and run again: the evaluation is redone in seconds"
        )
    return evaluation


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
        _run_stages(cfg, stage_record(cfg, stages), stages, stages[: position + 1], overwrite, progress)


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
        record = stage_record(cfg, stages)
        for before, status in statuses(stages[:position], record).items():
            if status is not StageStatus.DONE:
                raise UserError(
                    f"`rig {name}` needs the {before} stage done with these settings in {run.root}; "
                    f"run `rig {before}` (or `rig run`) with them first"
                )
        _run_stages(cfg, record, stages[position:], stages[position : position + 1], overwrite, progress)


class RunFilesDisagreeError(UserError):
    """A run's config, stage record and agent checkpoint say different things about how it was trained."""


def evaluate_again(
    run_dir: str | os.PathLike[str],
    episodes: int | None = None,
    seed: int | None = None,
    palette: Palette | None = None,
) -> dict[str, Any]:
    """``rig evaluate``: evaluate a run's agent again, with other episodes, seed or palette if given.

    The env is the one the agent was trained on, as its checkpoint records it; the run's ``config.yaml``
    and ``stages.json`` must agree with it, or the evaluation is refused naming the file that does not.
    The evaluation settings (episodes, seed, GIFs, palette) default to ``config.yaml``'s. An evaluation that
    is not the evaluate stage's under ``config.yaml`` has its record dropped, so the next ``rig run``
    evaluates again.
    """
    run = RunDir(run_dir)
    # The run directory may have moved since config.yaml was written: its products are where it is now.
    cfg = replace(stored_config(run.root), run_dir=str(run.root))
    with run.lock():
        record = stage_record(cfg, plan(cfg))
        trained = read_checkpoint_record(run.agent.root).config
        check_run_agrees(run, cfg, record, trained)
        env_cfg = replace(trained.env, eval_palette=palette or cfg.env.eval_palette)
        episodes, seed = episodes or cfg.eval.episodes, cfg.eval.seed if seed is None else seed
        summary = evaluate_run(run.root, episodes, seed, gifs=cfg.eval.gifs, env_cfg=env_cfg)
        asked = replace(cfg, env=env_cfg, eval=replace(cfg.eval, episodes=episodes, seed=seed))
        stale = record.get("evaluate", {}).get("key") != stage_keys(cfg)["evaluate"]
        if (asked != cfg or stale) and record.pop("evaluate", None) is not None:
            _write_stage_record(run, record)
    return summary


def check_run_agrees(run: RunDir, cfg: Config, record: StageRecord, trained: Config) -> None:
    """The settings that trained the agent (its ``checkpoint.json``) must be those of ``config.yaml`` and
    of ``stages.json``; otherwise one of them was edited or replaced, and is named."""
    made = stage_settings(trained)["train"]
    config_differs = _differences(made, stage_settings(cfg).get("train", {}))
    if config_differs:
        raise RunFilesDisagreeError(
            f"{run.config} does not describe the agent in {run.agent.root} ({_listed(config_differs)}, "
            f"from its {run.agent.checkpoint.name} to {run.config.name}); put {run.config.name} back as it "
            f"was: a `rig run` with the settings that trained the agent rewrites it"
        )
    entry = record.get("train", {}).get("settings")
    record_differs = _differences(made, _relevant(entry, made)) if isinstance(entry, dict) else {}
    if record_differs:
        raise RunFilesDisagreeError(
            f"{run.stages} does not describe the agent in {run.agent.root} ({_listed(record_differs)}, "
            f"from its {run.agent.checkpoint.name} to {run.stages.name}); delete {run.stages}: the next rig "
            "command rebuilds it from the products, which are kept"
        )


def _run_stages(
    cfg: Config,
    record: StageRecord,
    checked: list[StagePlan],
    selected: list[StagePlan],
    overwrite: bool,
    progress: bool,
) -> None:
    """Refuse or clear what changed among ``checked``, then run each stage of ``selected`` not yet done."""
    run = RunDir(cfg.run_dir)
    planned = statuses(checked, record)
    changed = [stage for stage in checked if planned[stage.name] is StageStatus.CHANGED]
    protected = [stage for stage in changed if not stage.derived]
    if protected and not overwrite:
        raise _refusal(run, protected, record)
    for stage in selected:
        starts = planned[stage.name] in (StageStatus.NEW, StageStatus.RESUME)
        if starts and stage.stage.check_start is not None:
            stage.stage.check_start(cfg)
    if overwrite:
        for stage in changed:
            _discard(run, stage, record)
    record_config(cfg)
    for stage in selected:
        status = planned[stage.name]
        if status is StageStatus.DONE:
            logger.info("[%s] up to date, skipped", stage.name)
            continue
        if status is StageStatus.CHANGED and not overwrite:  # derived: its products are replaced unasked
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
    changes = _changed_settings(stages, record)
    why = [stage.stage.why[key] for stage in stages for key in sorted(changes) if key in stage.stage.why]
    because = "".join(f" ({reason})" for reason in why)
    return SettingsChangedError(
        f"{run.root} holds work made with other settings ({_listed(changes)}); running would delete "
        f"{_describe(run, stages)}{because}. Choose another run_dir, or pass --overwrite to delete them"
    )


def _changes(stages: Sequence[StagePlan], record: StageRecord) -> str:
    """The settings that changed since ``stages`` ran, e.g. ``vae.beta: 0.25 -> 2.0``."""
    return _listed(_changed_settings(stages, record))


def _changed_settings(stages: Sequence[StagePlan], record: StageRecord) -> dict[str, str]:
    changes: dict[str, str] = {}
    for stage in stages:
        before = record.get(stage.name, {}).get("settings")
        if isinstance(before, dict):
            changes.update(_differences(_relevant(before, stage.settings), stage.settings))
    return changes


def _listed(changes: dict[str, str]) -> str:
    what = ", ".join(f"{key}: {change}" for key, change in sorted(changes.items()))
    return what or "settings that the run's stage record does not hold"


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


class StageRecordError(CorruptFileError):
    """``stages.json`` cannot be read as a record of stages."""


def read_stage_record(run_dir: str | os.PathLike[str]) -> StageRecord:
    """``stages.json`` of ``run_dir``; empty when there is none, a ``StageRecordError`` when it is damaged."""
    path = RunDir(run_dir).stages
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StageRecordError(f"{path} is damaged ({first_line(error)})") from None
    if not isinstance(record, dict):
        raise StageRecordError(f"{path} is damaged (not a JSON object)")
    unusable = sorted(name for name, entry in record.items() if not _usable_entry(entry))
    if unusable:
        raise StageRecordError(f"{path} records no settings for {', '.join(unusable)}")
    return record


def _usable_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("key"), str)
        and isinstance(entry.get("settings"), dict)
    )


def stage_record(cfg: Config, stages: Sequence[StagePlan]) -> StageRecord:
    """``stages.json``, rebuilt from what the products say made them where it is damaged, or missing beside
    products; the rebuilt record is written and the rebuild logged."""
    run = RunDir(cfg.run_dir)
    try:
        record = read_stage_record(run.root)
    except StageRecordError as error:
        return _rebuild_stage_record(run, stages, str(error))
    if not record and any(path.exists() for stage in stages for path in stage.products):
        return _rebuild_stage_record(run, stages, f"{run.stages} is missing")
    return record


def _rebuild_stage_record(run: RunDir, stages: Sequence[StagePlan], problem: str) -> StageRecord:
    """A record of the stages whose products say what made them (rig.stages.Provenance)."""
    record: StageRecord = {}
    unrecorded: list[str] = []
    for stage in stages:
        provenance = stage.stage.provenance
        if provenance is None or not any(path.exists() for path in stage.products):
            continue
        made = provenance(stage.cfg)
        entry = _entry_of(stage.stage, made)
        if entry is None:
            unrecorded.append(f"{stage.name} ({made.problem})")
        else:
            record[stage.name] = entry
    kept = ", ".join(record) or "none"
    left = f"; not recorded: {'; '.join(unrecorded)}" if unrecorded else ""
    logger.warning(
        "%s: rebuilt it from the products, which record what made them (recorded: %s%s); the "
        "evaluations are redone",
        problem,
        kept,
        left,
    )
    _write_stage_record(run, record)
    return record


def _entry_of(stage: Stage, made: Provenance) -> dict[str, Any] | None:
    """The ``stages.json`` entry of products made with ``made.config``; None when they do not say."""
    if made.config is None:
        return None
    settings = stage_settings(made.config).get(stage.name)
    if settings is None:
        return None
    resumable = _select(flat_settings(made.config), stage.resumable, ())
    # No "seconds": how long the stage took is lost with the damaged record.
    return {
        "key": section_hash(settings),
        "settings": settings,
        "resumable": resumable,
        "done": made.finished,
    }


def _write_stage_record(run: RunDir, record: StageRecord) -> None:
    io.write_json(run.stages, record)
