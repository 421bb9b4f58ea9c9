"""The stages, each reading the previous stage's product from the run directory and writing its own.

``RUN_DIR/config.yaml`` records the settings; ``data/`` holds the frames; ``pretrain/`` the representation
with its diagnostics; ``agent/`` the agent's checkpoints and learning curve; ``eval.json`` and ``gifs/`` the
final evaluation; ``baselines/random.json`` a random policy on the same goals. ``rig.pipeline`` runs them
in order and caches them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rig import io
from rig.agent import TrainResult, train
from rig.config import Config, load_config, to_yaml
from rig.data import FrameDataset, collect
from rig.device import resolve_device
from rig.envs import is_multi_object
from rig.evaluate import evaluate_random_policy, evaluate_run
from rig.pretrain import PretrainResult, fit_goal_prior, pretrain, save_state_representation
from rig.representation import RepresentationModule, load_representation

HELDOUT_PALETTE = "heldout"


def dataset_paths(cfg: Config) -> dict[str, Path]:
    """The frames for training and, for the multi-object env, frames of held-out colours."""
    data_dir = Path(cfg.run_dir) / "data"
    paths = {"frames": data_dir / "frames.npz"}
    if is_multi_object(cfg.env):
        paths["heldout_colours"] = data_dir / "frames_heldout_colours.npz"
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
    if cfg.vae.kind == "state":
        return save_state_representation(cfg, Path(cfg.run_dir) / "pretrain")
    paths = dataset_paths(cfg)
    dataset = FrameDataset.load(paths["frames"])
    dataset.check_matches(cfg.env, cfg.data)
    heldout = FrameDataset.load(paths["heldout_colours"]) if "heldout_colours" in paths else None
    return pretrain(cfg, dataset, Path(cfg.run_dir) / "pretrain", heldout_colours=heldout, progress=progress)


def train_stage(cfg: Config, progress: bool = True) -> TrainResult:
    """Train (or resume) the agent on the run's pretrained representation.

    With ``agent.goal_prior=fitted`` the representation's imagined goals are first fitted to the run's
    frames (deterministic, so a resumed run fits the same goals and passes the same-representation check).
    """
    record_config(cfg)
    representation = load_stage_representation(cfg)
    if cfg.agent.goal_prior == "fitted" and representation.input_kind == "image":
        dataset = FrameDataset.load(dataset_paths(cfg)["frames"])
        representation.set_goal_prior(*fit_goal_prior(representation, dataset))
    return train(cfg, representation, Path(cfg.run_dir) / "agent", progress=progress)


def evaluate_stage(cfg: Config) -> dict[str, Any]:
    """Evaluate the trained agent on seeded real goals; writes ``eval.json`` and ``gifs/``."""
    run_dir = Path(cfg.run_dir)
    return evaluate_run(run_dir / "agent", env_cfg=cfg.env, out_dir=run_dir)


def baseline_stage(cfg: Config) -> dict[str, Any]:
    """A uniformly random policy on the same seeded real goals as ``evaluate_stage``."""
    result = evaluate_random_policy(cfg.env, load_stage_representation(cfg), cfg.eval.episodes, cfg.eval.seed)
    summary = {**result.summary(), "policy": "random", "palette": cfg.env.eval_palette}
    io.write_json(Path(cfg.run_dir) / "baselines" / "random.json", summary)
    return summary


def load_stage_representation(cfg: Config) -> RepresentationModule:
    path = Path(cfg.run_dir) / "pretrain" / "best.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no representation at {path}; run `rig pretrain` (or `rig run`) first")
    return load_representation(path, map_location=resolve_device(cfg.device))


def stored_config(run_dir: Path) -> Config:
    """The config a run directory was made with."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a rig run directory: it has no config.yaml")
    return load_config(path)


def record_config(cfg: Config) -> None:
    io.write_text(Path(cfg.run_dir) / "config.yaml", to_yaml(cfg))
