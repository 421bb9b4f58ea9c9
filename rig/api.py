"""The Python API: what the ``rig`` command does, as functions a script can call.

```python
import rig

cfg = rig.load_config("debug", ["seed=1", "run_dir=runs/api"])
rig.run(cfg)                                   # every stage not already done; returns eval.json's dict
run = rig.load_run("runs/api")                 # the trained agent and its representation
metrics = run.evaluate(episodes=5, seed=123)   # real goal images, the env's own distances
latents = run.encode(frames)                   # (N, H, W, 3) uint8 frames -> (N, latent_dim)
goals = run.sample_goals(8, seed=0)            # imagined goals, as the agent draws them
```

Everything here is a thin layer over the functions the command runs: ``rig.config.load_config``,
``rig.pipeline.run_pipeline`` and ``run_stage``, ``rig.checkpoints.load_run``,
``rig.evaluate.evaluate_policy_on_goals`` and ``rig.representation.inference``. A run made from Python is
the same run directory, cached and resumable in the same way, as one made with ``rig run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from rig.checkpoints import load_run as _load_trained
from rig.config import Config, Palette, load_config
from rig.evaluate import check_representation_fits, evaluate_policy_on_goals
from rig.pipeline import run_pipeline
from rig.pipeline import run_stage as _run_stage
from rig.representation import RepresentationModule
from rig.representation.base import tensor_to_images
from rig.representation.inference import encode_dataset, generator_for, inference, prior_latents
from rig.rundir import RunDir
from rig.stages import STAGE_NAMES

__all__ = ["Run", "load_config", "load_run", "run", "run_stage"]


def run(
    cfg: Config, *, progress: bool = False, report: bool = True, overwrite: bool = False
) -> dict[str, Any]:
    """Run every stage of ``cfg`` not already done in ``cfg.run_dir``, as ``rig run`` does.

    Returns the final evaluation (the contents of ``eval.json``: ``puck_distance_mean``,
    ``success_rate``, ... on the pushers; each env's own goal metrics elsewhere). ``report`` also writes
    ``report.md``; ``progress`` shows progress bars; ``overwrite`` deletes the products of stages whose
    settings changed, which otherwise is refused with a ``rig.pipeline.SettingsChangedError``.
    """
    return run_pipeline(cfg, progress=progress, report=report, overwrite=overwrite)


def run_stage(cfg: Config, stage: str, *, progress: bool = False, overwrite: bool = False) -> None:
    """Run one stage (``collect``, ``pretrain``, ``train``, ``evaluate`` or ``baselines``) into
    ``cfg.run_dir``, as ``rig collect|pretrain|train`` do; the stages before it must be done."""
    if stage not in STAGE_NAMES:
        raise ValueError(f"unknown stage {stage!r}; the stages are {', '.join(STAGE_NAMES)}")
    _run_stage(cfg, stage, progress=progress, overwrite=overwrite)


def load_run(run_dir: str | os.PathLike[str], device: torch.device | str = "cpu") -> Run:
    """The trained agent of ``run_dir`` (its latest checkpoint) and the representation it acts on.

    Works on a finished run and on one whose training is still going or was interrupted: the latest
    checkpoint is loaded. A run without a trained agent is a ``rig.errors.MissingFileError``.
    """
    root = Path(run_dir)
    trained = _load_trained(RunDir(root).agent.root, device=device)
    return Run(root, trained.config, trained.model, trained.representation, trained.steps)


@dataclass
class Run:
    """A trained run: its config, its agent (an SB3 off-policy model) and its representation."""

    run_dir: Path
    config: Config
    """the config the agent was trained with"""
    policy: OffPolicyAlgorithm
    """the SB3 agent (``LeanTD3`` or ``SAC``); ``policy.predict(obs)`` acts on latent observations"""
    representation: RepresentationModule
    """the beta-VAE, CC-VAE, supervised state encoder or state identity, with the fitted imagined-goal
    distribution"""
    steps: int
    """the env steps the agent had trained for at its checkpoint"""

    def evaluate(
        self, episodes: int | None = None, seed: int | None = None, palette: Palette | None = None
    ) -> dict[str, Any]:
        """Mean and std of the env's goal metrics and the success rate over ``episodes`` real goals.

        Episode ``i`` resets the env with ``seed + i``, so the same seed gives the same goals to any run.
        Defaults: the run's ``eval.episodes`` and ``eval.seed``; ``palette`` (``train`` or ``heldout``)
        changes the colours of the multi-colour pushers. Nothing is written to the run directory.
        """
        env_cfg = replace(self.config.env, eval_palette=palette) if palette else self.config.env
        check_representation_fits(self.representation, env_cfg, self.policy.observation_space)
        episodes = episodes or self.config.eval.episodes
        seed = self.config.eval.seed if seed is None else seed
        result = evaluate_policy_on_goals(self.policy, env_cfg, self.representation, episodes, seed)
        return {**result.summary(), "steps": self.steps}

    def encode(self, frames: np.ndarray, contexts: np.ndarray | None = None) -> np.ndarray:
        """float32 (N, latent_dim) latents of uint8 (N, H, W, 3) frames (state vectors for the oracle).

        A CC-VAE needs each frame's ``contexts``: the first frame of its episode, the same shape.
        """
        return encode_dataset(self.representation, frames, contexts)

    def sample_goals(self, n: int, seed: int = 0, context: np.ndarray | None = None) -> np.ndarray:
        """float32 (n, latent_dim) imagined goals, drawn as the agent draws them in training.

        For a CC-VAE ``context`` is the episode's first frame, (H, W, 3) uint8, whose context latent every
        goal keeps; the state oracle draws states uniformly in its goal box.
        """
        rep = self.representation
        goals = prior_latents(rep, context, n, generator_for(rep, seed))
        return goals.float().cpu().numpy()

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) images of latents (e.g. ``sample_goals``'s) for the VAEs."""
        if self.representation.output_kind != "image":
            raise ValueError(
                f"the run's {self.config.vae.kind!r} representation has no image decoder; only the VAEs "
                "decode latents to images"
            )
        with inference(self.representation) as device:
            images = self.representation.decode(torch.as_tensor(latents, dtype=torch.float32, device=device))
        return tensor_to_images(images)
