"""The stages, declared once in ``STAGES``: each reads the previous stage's product from the run directory
and writes its own.

A stage's declaration says its name, the settings that make its products, the stages it reads from, where
its products live and the function that runs it. ``rig.pipeline`` runs the declared stages in order,
caches them and holds the run directory's lock while they write; where each product lives is
``rig.rundir.RunDir``'s to say. Adding a stage is one ``Stage`` in ``STAGES`` plus its function here.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rig import io
from rig.agent import RESUMABLE_KEYS, TrainResult, train
from rig.agent import check_extendable as check_agent_extendable
from rig.checkpoints import load_run, read_checkpoint_record
from rig.config import Config, EnvConfig, Palette, load_config, to_yaml
from rig.data import FrameDataset, collect, collection_mismatch, read_dataset_meta
from rig.device import resolve_device
from rig.envs import is_multi_object
from rig.errors import UNREADABLE_ERRORS, MissingFileError, UserError, way_out
from rig.evaluate import (
    GIF_SCALE,
    check_representation_fits,
    evaluate_policy_on_goals,
    evaluate_random_policy,
)
from rig.media import save_gif
from rig.pretrain import (
    PretrainResult,
    check_teleported_frames,
    fit_goal_prior,
    pretrain,
    pretrained_epochs,
    save_state_representation,
)
from rig.pretrain import check_extendable as check_pretraining_extendable
from rig.representation import RepresentationModule, load_representation
from rig.representation.inverse import check_inverse_frames
from rig.rundir import RunDir

HELDOUT_PALETTE: Palette = "heldout"


def dataset_paths(cfg: Config) -> dict[str, Path]:
    """The frames for training and, for the multi-object env, frames of held-out colours."""
    run = RunDir(cfg.run_dir)
    paths = {"frames": run.frames}
    if is_multi_object(cfg.env):
        paths["heldout_colours"] = run.heldout_colour_frames
    return paths


def collect_stage(cfg: Config, progress: bool = True) -> dict[str, Path]:
    """Collect the dataset(s) of ``cfg`` into the run directory."""
    record_config(cfg)
    paths = dataset_paths(cfg)
    collect(cfg.env, cfg.data, seed=cfg.seed, progress=progress).save(paths["frames"])
    if "heldout_colours" in paths:
        # Evaluation-only frames: as many as the held-out split, in colours training never sees.
        frames = max(cfg.data.frames_per_episode, round(cfg.data.num_frames * cfg.data.heldout_fraction))
        data = replace(cfg.data, num_frames=frames)
        held = collect(cfg.env, data, seed=cfg.seed + 1, palette=HELDOUT_PALETTE, progress=progress)
        held.save(paths["heldout_colours"])
    return paths


def pretrain_stage(cfg: Config, progress: bool = True) -> PretrainResult:
    """Train the representation on the run's dataset, resuming an interrupted pretraining."""
    record_config(cfg)
    run = RunDir(cfg.run_dir)
    if cfg.vae.is_oracle:
        return save_state_representation(cfg, run.pretrain)
    paths = dataset_paths(cfg)
    dataset = FrameDataset.load(paths["frames"])
    dataset.check_matches(cfg.env, cfg.data, seed=cfg.seed)
    heldout = FrameDataset.load(paths["heldout_colours"]) if "heldout_colours" in paths else None
    with pretrain_files(run):
        return pretrain(cfg, dataset, run.pretrain, heldout_colours=heldout, progress=progress)


def train_stage(cfg: Config, progress: bool = True) -> TrainResult:
    """Train (or resume) the agent on the run's pretrained representation.

    With ``agent.goal_prior`` fitted or teleported the representation's imagined goals are first fitted to
    the run's frames (deterministic, so a resumed run fits the same goals and passes the same-representation
    check).
    """
    record_config(cfg)
    representation = load_stage_representation(cfg)
    set_training_goal_prior(cfg, representation, dataset_paths(cfg)["frames"], seed=cfg.seed)
    return train(cfg, representation, RunDir(cfg.run_dir).agent.root, progress=progress)


def set_training_goal_prior(
    cfg: Config, representation: RepresentationModule, frames: Path, seed: int | None = None
) -> None:
    """With ``agent.goal_prior`` fitted or teleported, fit the representation's imagined goals to the frames
    at ``frames`` as the train stage does; otherwise leave its prior as it is. With ``seed`` the frames must
    be this run's: collected with its env and data settings and this seed.

    An online run fits its goals to its own replay instead (``rig.online``), never to the collected frames.
    """
    fitted = cfg.agent.goal_prior in ("fitted", "teleported") and not cfg.online.enabled
    if fitted and representation.input_kind == "image":
        dataset = FrameDataset.load(frames)
        if seed is not None:
            dataset.check_matches(cfg.env, cfg.data, seed=seed)
        teleported = cfg.agent.goal_prior == "teleported"
        representation.set_goal_prior(*fit_goal_prior(representation, dataset, teleported=teleported))


def evaluate_stage(cfg: Config, progress: bool = True) -> dict[str, Any]:
    """Evaluate the trained agent on seeded real goals; writes ``eval.json`` and ``gifs/``.

    It runs in seconds and shows no progress bar; ``progress`` is there because every stage takes it.
    """
    episodes, seed, gifs = cfg.eval.episodes, cfg.eval.seed, cfg.eval.gifs
    return evaluate_run(cfg.run_dir, episodes=episodes, seed=seed, gifs=gifs, env_cfg=cfg.env)


def evaluate_run(
    run_dir: str | os.PathLike[str],
    episodes: int | None = None,
    seed: int | None = None,
    gifs: int | None = None,
    env_cfg: EnvConfig | None = None,
) -> dict[str, Any]:
    """Evaluate a run's trained agent on seeded real goals; writes ``eval.json`` and ``gifs/eval_<i>.gif``.

    Defaults come from the config the agent was trained with; ``env_cfg`` evaluates on another env setting
    (e.g. ``eval_palette="heldout"``) and must still fit the run's representation.
    """
    run = RunDir(run_dir)
    trained = load_run(run.agent.root)
    env_cfg = env_cfg or trained.config.env
    check_representation_fits(trained.representation, env_cfg, trained.model.observation_space)
    episodes = episodes or trained.config.eval.episodes
    seed = trained.config.eval.seed if seed is None else seed
    gifs = trained.config.eval.gifs if gifs is None else gifs
    result = evaluate_policy_on_goals(
        trained.model, env_cfg, trained.representation, episodes, seed, record=gifs
    )
    summary = {
        **result.summary(),
        "steps": trained.steps,
        "env_id": env_cfg.id,
        "palette": env_cfg.eval_palette,
    }
    io.write_json(run.eval, summary)
    for index, frames in enumerate(result.rollouts):
        save_gif(run.eval_gif(index), frames, scale=GIF_SCALE)
    return summary


def baseline_stage(cfg: Config, progress: bool = True) -> dict[str, Any]:
    """A uniformly random policy on the same seeded real goals as ``evaluate_stage`` (no progress bar)."""
    result = evaluate_random_policy(cfg.env, load_stage_representation(cfg), cfg.eval.episodes, cfg.eval.seed)
    summary = {**result.summary(), "policy": "random", "palette": cfg.env.eval_palette}
    io.write_json(RunDir(cfg.run_dir).random_baseline, summary)
    return summary


def train_on_representation(
    source_dir: str | os.PathLike[str], cfg: Config, overrides: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new run in ``cfg.run_dir`` on a copy of another run's frames and pretrained representation: its
    train, evaluate and baselines stages run on them. Returns the evaluation and the random baseline.

    The new run records the source and the ``overrides`` that made ``cfg`` from the source's config in
    ``source.json``; the source directory is only read, and ``cfg.run_dir`` must not hold anything yet.
    """
    source, out = RunDir(source_dir), RunDir(cfg.run_dir)
    source.require_run()
    if not source.representation.is_file():
        raise MissingFileError(f"{source.root} has no pretrained representation ({source.representation})")
    if out.root.exists() and any(out.root.iterdir()):
        raise UserError(f"{out.root} is not empty; choose a new run directory")
    out.root.mkdir(parents=True, exist_ok=True)
    with out.lock():
        record_config(cfg)
        io.write_text(out.source_record, json.dumps({"source": str(source.root), "overrides": overrides}))
        shutil.copytree(source.data, out.data)
        out.pretrain.mkdir()
        shutil.copy2(source.representation, out.representation)
        train_stage(cfg)
        return evaluate_stage(cfg), baseline_stage(cfg)


def load_stage_representation(cfg: Config) -> RepresentationModule:
    run = RunDir(cfg.run_dir)
    path = run.representation
    if not path.is_file():
        raise MissingFileError(f"no representation at {path}; run `rig pretrain` (or `rig run`) first")
    with pretrain_files(run):
        return load_representation(path, map_location=resolve_device(cfg.device))


@contextmanager
def pretrain_files(run: RunDir) -> Iterator[None]:
    """A damaged file of ``pretrain/`` is refused with a way out that keeps the frames."""
    with way_out(
        f"restore it from a copy, or delete {run.pretrain} and run again to pretrain anew on the kept frames"
    ):
        yield


def stored_config(run_dir: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Config:
    """The config a run directory was made with, with ``overrides`` (``key=value``) applied."""
    run = RunDir(run_dir)
    run.require_run()
    return load_config(run.config, overrides)


def record_config(cfg: Config) -> None:
    """Write the resolved ``cfg`` into its run directory's ``config.yaml`` (the one place that does)."""
    io.write_text(RunDir(cfg.run_dir).config, to_yaml(cfg))


# ------------------------------------------------------------------------------ what the products say
# Cheap checks: files there and their headers or records readable; no frames, weights or buffers loaded.
def collect_intact(cfg: Config) -> bool:
    """The datasets are there and their archives list every array and a readable record of settings."""
    try:
        for path in dataset_paths(cfg).values():
            read_dataset_meta(path)
    except UserError:
        return False
    return True


def pretrain_intact(cfg: Config) -> bool:
    """The representation later stages load is there and opens as a torch archive."""
    return _opens_as_zip(RunDir(cfg.run_dir).representation)


def train_intact(cfg: Config) -> bool:
    """``checkpoint.json`` reads, and the files it names are there (the agent's archive opens)."""
    try:
        record = read_checkpoint_record(RunDir(cfg.run_dir).agent.root)
    except UserError:
        return False
    named = (record.replay_buffer_path, record.trained_representation_path, record.training_state_path)
    return _opens_as_zip(record.agent_path) and all(path is None or path.is_file() for path in named)


def evaluate_intact(cfg: Config) -> bool:
    return _json_object(RunDir(cfg.run_dir).eval)


def baselines_intact(cfg: Config) -> bool:
    return _json_object(RunDir(cfg.run_dir).random_baseline)


_ZIP_ERRORS: tuple[type[Exception], ...] = (OSError, *UNREADABLE_ERRORS)


def _opens_as_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except _ZIP_ERRORS:
        return False


def _json_object(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text(encoding="utf-8")), dict)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


@dataclass(frozen=True)
class Provenance:
    """What a stage's products say made them; ``rig.pipeline`` rebuilds a damaged ``stages.json`` from it."""

    config: Config | None
    """a config with the settings that made them; None when they cannot say, or were made otherwise"""
    finished: bool = False
    """whether the stage finished making them"""
    problem: str = ""
    """why ``config`` is None, e.g. ``data/frames.npz was collected with seed=1, ...``"""


def collect_provenance(cfg: Config) -> Provenance:
    """The dataset records its env and data settings and seed: ``cfg`` when they are this run's."""
    frames = RunDir(cfg.run_dir).frames
    try:
        mismatch = collection_mismatch(read_dataset_meta(frames), cfg.env, cfg.data, cfg.seed)
    except UserError as error:
        return Provenance(None, problem=str(error))
    if mismatch is not None:
        return Provenance(None, problem=f"{frames} was collected with {mismatch}")
    return Provenance(cfg, finished=collect_intact(cfg))


def pretrain_provenance(cfg: Config) -> Provenance:
    """``last.pt`` records the VAE settings, seed and frames that trained it: ``cfg`` when they are this
    run's; the state oracle's representation has nothing to record."""
    run = RunDir(cfg.run_dir)
    if cfg.vae.is_oracle:
        return Provenance(cfg, finished=pretrain_intact(cfg))
    try:
        epochs = pretrained_epochs(cfg, run.pretrain)
    except UserError as error:
        return Provenance(None, problem=str(error))
    return Provenance(cfg, finished=epochs == cfg.vae.epochs and pretrain_intact(cfg))


def train_provenance(cfg: Config) -> Provenance:
    """``checkpoint.json`` records the whole config that trained the agent, whatever it was."""
    try:
        record = read_checkpoint_record(RunDir(cfg.run_dir).agent.root)
    except UserError as error:
        return Provenance(None, problem=str(error))
    finished = record.steps >= record.config.agent.total_steps and train_intact(cfg)
    return Provenance(record.config, finished=finished)


def check_pretrain_start(cfg: Config) -> None:
    """Refuse, before any stage runs, what would stop the pretrain stage: a ``vae.epochs`` below what is
    trained, or ``vae.inverse_weight`` on this run's frames when they record too few actions."""
    check_pretraining_extendable(cfg, RunDir(cfg.run_dir).pretrain)
    if cfg.vae.inverse_weight > 0 and collect_provenance(cfg).finished:
        check_inverse_frames(FrameDataset.load(RunDir(cfg.run_dir).frames))


def check_train_start(cfg: Config) -> None:
    """Refuse, before any stage runs, what would stop the train stage after collecting and pretraining: an
    ``agent.total_steps`` below what is trained, or ``agent.goal_prior=teleported`` on this run's frames
    when they record too few teleported ones."""
    run = RunDir(cfg.run_dir)
    check_agent_extendable(cfg, run.agent.root)
    fitted_to_frames = not cfg.vae.is_oracle and not cfg.online.enabled
    if cfg.agent.goal_prior == "teleported" and fitted_to_frames and collect_provenance(cfg).finished:
        check_teleported_frames(FrameDataset.load(run.frames))


# ------------------------------------------------------------------------------ the declaration
@dataclass(frozen=True)
class Stage:
    """One stage of the method, declared once; ``rig.pipeline`` plans, caches and runs it from this."""

    name: str
    """the stage's name, also its ``rig`` command where it has one and its entry in ``stages.json``"""
    settings: tuple[str, ...]
    """the config keys (``seed``) and sections (``vae.``) that shape its products"""
    products: Callable[[RunDir], tuple[Path, ...]]
    """where its products live; deleting them undoes the stage"""
    run: Callable[[Config, bool], object]
    """``run(cfg, progress)`` writes the products into ``cfg.run_dir``"""
    intact: Callable[[Config], bool]
    """whether its products are there and load (cheap checks): a finished stage is done only then"""
    provenance: Callable[[Config], Provenance] | None = None
    """what its products say made them; None for a derived stage, which is redone instead"""
    reads: tuple[str, ...] = ()
    """the stages whose products it reads: their settings shape its products too"""
    excluded: tuple[str, ...] = ()
    """keys under ``settings`` that do not shape the products"""
    resumable: tuple[str, ...] = ()
    """keys that may change without discarding the products: the stage then resumes"""
    derived: bool = False
    """recomputed in seconds from the stages before it: a change of settings replaces its products"""
    oracle_settings: tuple[str, ...] | None = None
    """the settings for the state oracle, when they differ (``VAEConfig.is_oracle``)"""
    oracle_runs: bool = True
    """whether the state oracle runs it (it collects no frames)"""
    why: Mapping[str, str] = field(default_factory=dict)
    """for a setting whose change looks like it should not discard the products, why it does"""
    check_start: Callable[[Config], None] | None = None
    """raises a ``UserError`` when starting or resuming the stage under ``cfg`` cannot work (a budget below
    what is done, products of earlier stages it cannot use); the pipeline calls it before any stage runs"""

    def settings_for(self, cfg: Config) -> tuple[str, ...] | None:
        """The keys that shape this stage's products under ``cfg``; ``None`` when ``cfg`` skips it."""
        if not cfg.vae.is_oracle:
            return self.settings
        if not self.oracle_runs:
            return None
        return self.settings if self.oracle_settings is None else self.oracle_settings


STAGES: tuple[Stage, ...] = (
    Stage(
        "collect",
        settings=("seed", "env.id", "env.image_size", "env.palette", "data."),
        products=lambda run: (run.data,),
        run=collect_stage,
        intact=collect_intact,
        provenance=collect_provenance,
        oracle_runs=False,
    ),
    Stage(
        "pretrain",
        settings=("vae.",),
        # The identity representation needs no frames and has nothing to learn: no VAE setting changes it.
        oracle_settings=("vae.kind",),
        # An epoch's batches and KL weight do not depend on the budget, so a larger vae.epochs continues a
        # finished pretraining from last.pt to the same weights a longer run would have reached.
        excluded=("vae.epochs",),
        resumable=("vae.epochs",),
        reads=("collect",),
        products=lambda run: (run.pretrain,),
        run=pretrain_stage,
        intact=pretrain_intact,
        provenance=pretrain_provenance,
        check_start=check_pretrain_start,
    ),
    Stage(
        "train",
        # The learning curve is measured every eval.every steps while the agent trains; eval.episodes is
        # not a setting of it: a resumed curve keeps the episodes it has (rig.agent.train).
        settings=("seed", "env.", "agent.", "online.", "eval.every", "vae.epochs"),
        oracle_settings=("seed", "env.", "agent.", "online.", "eval.every"),
        excluded=RESUMABLE_KEYS,
        resumable=("agent.total_steps",),
        reads=("pretrain",),
        products=lambda run: (run.agent.root,),
        run=train_stage,
        intact=train_intact,
        provenance=train_provenance,
        check_start=lambda cfg: check_train_start(cfg),
        why={
            "eval.every": "the learning curve is measured every eval.every steps while the agent trains",
            "vae.epochs": "the agent was trained on the representation of fewer epochs",
        },
    ),
    Stage(
        "evaluate",
        settings=("agent.total_steps", "env.eval_palette", "eval."),
        reads=("train",),
        products=lambda run: (run.eval, run.gifs),
        run=evaluate_stage,
        intact=evaluate_intact,
        derived=True,
    ),
    Stage(
        "baselines",
        settings=("env.", "eval."),
        reads=("pretrain",),
        products=lambda run: (run.baselines,),
        run=baseline_stage,
        intact=baselines_intact,
        derived=True,
    ),
)
"""The stages in the order they run."""
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage(name: str) -> Stage:
    """The declared stage called ``name`` (a ``KeyError`` for another name)."""
    return {declared.name: declared for declared in STAGES}[name]
