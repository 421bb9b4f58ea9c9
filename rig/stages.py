"""The stages as the command line runs them, each reading and writing its part of the run directory.

``RUN_DIR/config.yaml`` records the settings; ``RUN_DIR/data`` holds the frames;
``RUN_DIR/pretrain`` the representation with its diagnostics.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rig import io
from rig.config import Config, to_yaml
from rig.data import FrameDataset, collect
from rig.envs import is_multi_object
from rig.pretrain import PretrainResult, pretrain

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
    paths = dataset_paths(cfg)
    dataset = FrameDataset.load(paths["frames"])
    dataset.check_matches(cfg.env, cfg.data)
    heldout = FrameDataset.load(paths["heldout_colours"]) if "heldout_colours" in paths else None
    return pretrain(cfg, dataset, Path(cfg.run_dir) / "pretrain", heldout_colours=heldout, progress=progress)


def record_config(cfg: Config) -> None:
    io.write_text(Path(cfg.run_dir) / "config.yaml", to_yaml(cfg))
