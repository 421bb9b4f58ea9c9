"""The stages, each reading the previous stage's product from the run directory and writing its own.

Where each product lives is ``rig.rundir.RunDir``'s to say. ``rig.pipeline`` runs the stages in order,
caches them and holds the run directory's lock while they write.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from rig import io
from rig.agent import TrainResult, load_run, train
from rig.config import Config, EnvConfig, Palette, load_config, to_yaml
from rig.data import FrameDataset, collect
from rig.device import resolve_device
from rig.envs import is_multi_object
from rig.errors import CorruptFileError, MissingFileError
from rig.evaluate import (
    GIF_SCALE,
    check_representation_fits,
    evaluate_policy_on_goals,
    evaluate_random_policy,
)
from rig.media import save_gif
from rig.pretrain import PretrainResult, fit_goal_prior, pretrain, save_state_representation
from rig.representation import RepresentationModule, load_representation
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
    if cfg.vae.kind == "state":
        return save_state_representation(cfg, run.pretrain)
    paths = dataset_paths(cfg)
    dataset = FrameDataset.load(paths["frames"])
    dataset.check_matches(cfg.env, cfg.data, seed=cfg.seed)
    heldout = FrameDataset.load(paths["heldout_colours"]) if "heldout_colours" in paths else None
    return pretrain(cfg, dataset, run.pretrain, heldout_colours=heldout, progress=progress)


def train_stage(cfg: Config, progress: bool = True) -> TrainResult:
    """Train (or resume) the agent on the run's pretrained representation.

    With ``agent.goal_prior=fitted`` the representation's imagined goals are first fitted to the run's
    frames (deterministic, so a resumed run fits the same goals and passes the same-representation check).
    """
    record_config(cfg)
    representation = load_stage_representation(cfg)
    # An online run fits its goals to its own replay instead (rig.online), never to the collected frames.
    fitted = cfg.agent.goal_prior == "fitted" and not cfg.online.enabled
    if fitted and representation.input_kind == "image":
        dataset = FrameDataset.load(dataset_paths(cfg)["frames"])
        dataset.check_matches(cfg.env, cfg.data, seed=cfg.seed)
        representation.set_goal_prior(*fit_goal_prior(representation, dataset))
    return train(cfg, representation, RunDir(cfg.run_dir).agent.root, progress=progress)


def evaluate_stage(cfg: Config) -> dict[str, Any]:
    """Evaluate the trained agent on seeded real goals; writes ``eval.json`` and ``gifs/``."""
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


def baseline_stage(cfg: Config) -> dict[str, Any]:
    """A uniformly random policy on the same seeded real goals as ``evaluate_stage``."""
    result = evaluate_random_policy(cfg.env, load_stage_representation(cfg), cfg.eval.episodes, cfg.eval.seed)
    summary = {**result.summary(), "policy": "random", "palette": cfg.env.eval_palette}
    io.write_json(RunDir(cfg.run_dir).random_baseline, summary)
    return summary


def load_stage_representation(cfg: Config) -> RepresentationModule:
    run = RunDir(cfg.run_dir)
    path = run.representation
    if not path.is_file():
        raise MissingFileError(f"no representation at {path}; run `rig pretrain` (or `rig run`) first")
    try:
        return load_representation(path, map_location=resolve_device(cfg.device))
    except CorruptFileError as error:
        raise CorruptFileError(
            f"{error}; restore it from a copy, or delete {run.pretrain} and run again to pretrain anew on "
            "the kept frames"
        ) from error


def stored_config(run_dir: str | os.PathLike[str]) -> Config:
    """The config a run directory was made with."""
    run = RunDir(run_dir)
    run.require_run()
    return load_config(run.config)


def record_config(cfg: Config) -> None:
    io.write_text(RunDir(cfg.run_dir).config, to_yaml(cfg))
