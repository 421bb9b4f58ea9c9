"""The agent stage: config + representation -> an SB3 off-policy agent trained on imagined goals.

``train`` builds the latent goal env (imagined goals, latent rewards), a TD3 or SAC agent whose replay buffer
relabels goals with rollout goals, prior samples and future achieved latents, and runs it with a progress
bar, CSV + TensorBoard logs, periodic real-goal evaluation and checkpoints. The state oracle is the same code
path with the identity ``StateRepresentation``.

The agent directory (``rig.rundir.AgentDir``, ``agent/`` of a run) holds:

- ``checkpoint.json`` and ``checkpoints/``: the latest checkpoint (``rig.checkpoints``);
- ``representation.pt``: the representation the agent was trained with;
- ``eval_curve.csv``: real-goal metrics against env steps (``rig.callbacks.PeriodicEvaluation``);
- ``logs/``: ``progress.csv`` (SB3's metrics, rewritten atomically at each dump) and TensorBoard events
  (``rig.logger``).

Training again in the same directory resumes from the latest checkpoint, replay buffer included; a larger
``agent.total_steps`` extends a finished run. On the same device and machine the continuation is
bit-identical to a run that was never interrupted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rig.callbacks import FollowFreeCpus, PeriodicEvaluation, ProgressBar
from rig.checkpoints import agent_files, read_checkpoint_record, restore_agent
from rig.config import Config, flat_settings
from rig.device import resolve_device
from rig.errors import UserError
from rig.evaluate import EvalPoint, read_eval_curve
from rig.latent_env import GoalMode, make_latent_env
from rig.logger import EvalCurveCSV, ProgressCSV, make_logger
from rig.online import (
    PROBE_FRAMES,
    FrameReplayBuffer,
    OnlineRepresentationCallback,
    OnlineVAE,
    probe_frames,
)
from rig.relabel import ImaginedGoalReplayBuffer
from rig.representation import (
    BetaVAE,
    RepresentationModule,
    read_checkpoint,
    save_representation,
)
from rig.rundir import AgentDir
from rig.snapshot import restore_generators
from rig.td3 import LeanTD3, optimizer_kwargs
from rig.threads import AgentThreads

LOG_INTERVAL_EPISODES = 10
"""SB3 writes its rollout and training metrics every this many episodes."""
RESUMABLE_KEYS = ("agent.total_steps", "env.eval_palette")
"""Settings under seed, env and agent that may change when a run is resumed: they do not shape training."""


class ResumeMismatchError(UserError, ValueError):
    """An agent directory whose checkpoint other settings or another representation made."""


# --------------------------------------------------------------------------- factories
def make_training_env(cfg: Config, representation: RepresentationModule) -> VecEnv:
    """One latent goal env with imagined goals, monitored for SB3's episode statistics."""

    def build() -> Monitor:
        env = make_latent_env(
            cfg.env,
            representation,
            GoalMode.TRAIN,
            seed=cfg.seed,
            reward=cfg.agent.reward,
            sparse_threshold=cfg.agent.sparse_threshold,
            frames_in_info=cfg.online.enabled,
            reward_scale=cfg.agent.reward_scale,
        )
        return Monitor(env)

    vec_env = DummyVecEnv([build])
    vec_env.seed(cfg.seed)
    return vec_env


def make_agent(cfg: Config, env: VecEnv, device: torch.device | str) -> OffPolicyAlgorithm:
    """TD3 (``rig.td3.LeanTD3``) or SAC with ``MultiInputPolicy``, the imagined-goal replay buffer and fused
    Adam where the device has it, all settings from config."""
    agent = cfg.agent
    device = get_device(device)  # resolves SB3's "auto" as SB3 will
    buffer_kwargs: dict[str, Any] = {
        "rollout_goal_fraction": agent.rollout_goal_fraction,
        "prior_goal_fraction": agent.prior_goal_fraction,
        "future_goal_fraction": agent.future_goal_fraction,
        "seed": cfg.seed,
    }
    if cfg.online.enabled:
        buffer_kwargs["image_size"] = cfg.env.image_size
        buffer_kwargs["state_dim"] = env.get_attr("state_dim")[0]
    common: dict[str, Any] = {
        "policy": "MultiInputPolicy",
        "env": env,
        "learning_rate": agent.learning_rate,
        "buffer_size": agent.buffer_size,
        "learning_starts": agent.learning_starts,
        "batch_size": agent.batch_size,
        "tau": agent.tau,
        "gamma": agent.gamma,
        "train_freq": 1,
        "gradient_steps": agent.gradient_steps,
        "replay_buffer_class": FrameReplayBuffer if cfg.online.enabled else ImaginedGoalReplayBuffer,
        "replay_buffer_kwargs": buffer_kwargs,
        "policy_kwargs": {"net_arch": list(agent.net_arch), "optimizer_kwargs": optimizer_kwargs(device)},
        "seed": cfg.seed,
        "device": device,
    }
    if agent.algo == "sac":
        return SAC(**common)
    action_shape = env.action_space.shape
    assert action_shape is not None, "TD3 needs a Box action space"
    noise = NormalActionNoise(np.zeros(action_shape), np.full(action_shape, agent.action_noise))
    return LeanTD3(
        **common,
        action_noise=noise,
        policy_delay=agent.policy_delay,
        target_policy_noise=agent.target_policy_noise,
        target_noise_clip=agent.target_noise_clip,
    )


# ----------------------------------------------------------------------------- train
@dataclass
class TrainResult:
    model: OffPolicyAlgorithm
    eval_curve: list[EvalPoint]
    agent_dir: Path


def train(
    cfg: Config,
    representation: RepresentationModule,
    agent_dir: str | os.PathLike[str],
    device: torch.device | str | None = None,
    progress: bool = True,
    callbacks: Sequence[BaseCallback] = (),
) -> TrainResult:
    """Train (or resume training) an agent on ``representation`` up to ``cfg.agent.total_steps`` env steps.

    ``agent_dir`` holds the checkpoints; one there is resumed, and a larger ``total_steps`` extends it.
    ``device`` defaults to ``cfg.device`` (``auto``: CUDA when available). ``callbacks`` are extra SB3
    callbacks; one returning False stops training early, like an interruption.
    """
    run = AgentDir(Path(agent_dir))
    device = resolve_device(cfg.device) if device is None else torch.device(device)
    representation = representation.to(device)
    env = make_training_env(cfg, representation)
    with agent_files(run.root):
        model, resumed, training_state = _start_or_resume(cfg, representation, env, run, device)
        online = _online_trainer(cfg, representation, run, device, resumed)
    curve = [point for point in read_eval_curve(run.eval_curve) if point.steps <= model.num_timesteps]
    curve = curve if resumed else []
    resume_from = model.num_timesteps if resumed else None
    writers = ProgressCSV(run.progress, resume_from), EvalCurveCSV(run.eval_curve, resume_from)
    model.set_logger(make_logger(run.logs, *writers))
    eval_env = make_latent_env(
        cfg.env, representation, GoalMode.EVAL, seed=cfg.eval.seed, palette=cfg.env.eval_palette
    )
    periodic = PeriodicEvaluation(_curve_config(cfg, curve), run, eval_env, curve, online)
    all_callbacks: list[BaseCallback] = [periodic, *callbacks]
    if online is not None:  # before the evaluation, so a checkpoint at the same step holds the update
        all_callbacks.insert(0, OnlineRepresentationCallback(online, run))
    if progress:
        all_callbacks.insert(0, ProgressBar(cfg.agent.total_steps))
    all_callbacks.insert(0, FollowFreeCpus(AgentThreads(cfg.torch_threads, online=online is not None)))
    if training_state is not None:  # last: building the callbacks and envs above may draw from them
        restore_generators(training_state)
    try:
        remaining = cfg.agent.total_steps - model.num_timesteps
        if remaining > 0:
            model.learn(
                remaining,
                callback=CallbackList(all_callbacks),
                log_interval=LOG_INTERVAL_EPISODES,
                reset_num_timesteps=not resumed,
            )
    finally:
        eval_env.close()
        model.logger.close()
        # The files are closed; a caller that keeps training the returned model logs nowhere, not to them.
        model.set_logger(Logger(None, []))
    return TrainResult(model, curve, run.root)


def _curve_config(cfg: Config, curve: Sequence[EvalPoint]) -> Config:
    """A resumed learning curve goes on with the episodes it was measured with: ``eval.episodes`` may
    change without retraining, and then changes the final evaluation only."""
    if not curve:
        return cfg
    return replace(cfg, eval=replace(cfg.eval, episodes=curve[-1].episodes))


def _start_or_resume(
    cfg: Config, representation: RepresentationModule, env: VecEnv, run: AgentDir, device: torch.device
) -> tuple[OffPolicyAlgorithm, bool, dict[str, Any] | None]:
    """A new agent, or the checkpointed one with its training state; and whether it resumes."""
    if not run.checkpoint.is_file():
        run.root.mkdir(parents=True, exist_ok=True)
        save_representation(run.representation, representation)
        return make_agent(cfg, env, device), False, None
    record = read_checkpoint_record(run.root)
    check_resumable(record.config, cfg, run.root)
    _check_budget(run.root, record.steps, cfg.agent.total_steps)
    check_same_representation(record.representation_path, representation)
    model, training_state = restore_agent(record, env, device)
    return model, True, training_state


def _online_trainer(
    cfg: Config, representation: RepresentationModule, run: AgentDir, device: torch.device, resumed: bool
) -> OnlineVAE | None:
    """The online VAE trainer of an online run, restored from the checkpoint when resuming."""
    if not cfg.online.enabled:
        return None
    if not isinstance(representation, BetaVAE):
        raise UserError(
            f"online.enabled needs a beta-VAE representation, got {type(representation).__name__}"
        )
    probe = probe_frames(cfg.env, PROBE_FRAMES, seed=cfg.eval.seed + 1)
    trainer = OnlineVAE(cfg, representation, device, probe)
    if resumed:
        record = read_checkpoint_record(run.root)
        if record.online_state_path is None:
            raise ResumeMismatchError(f"{run.root} holds a checkpoint without the online VAE's state")
        trainer.load(record.online_state_path)
    return trainer


def check_extendable(cfg: Config, agent_dir: Path) -> None:
    """Refuse, before anything runs, an ``agent.total_steps`` below what the agent in ``agent_dir`` has
    trained: a larger budget extends it, a smaller one cannot undo steps."""
    if AgentDir(agent_dir).checkpoint.is_file():
        _check_budget(agent_dir, read_checkpoint_record(agent_dir).steps, cfg.agent.total_steps)


def _check_budget(agent_dir: Path, steps: int, total_steps: int) -> None:
    if steps > total_steps:
        raise ResumeMismatchError(
            f"{agent_dir} holds an agent trained for {steps} steps, more than agent.total_steps="
            f"{total_steps}; ask for at least {steps} steps, or use another run_dir"
        )


def check_resumable(stored: Config, current: Config, run_dir: Path) -> None:
    """Resuming must not change what is being trained: seed, env and agent settings (bar total_steps)."""
    before, after = training_settings(stored), training_settings(current)
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    if changed:
        details = ", ".join(f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in changed)
        raise ResumeMismatchError(
            f"{run_dir} was trained with other settings ({details}); use another run_dir"
        )


def check_same_representation(path: Path, representation: RepresentationModule) -> None:
    """Resuming with other representation weights would silently change the agent's inputs and goals."""
    checkpoint = read_checkpoint(path)
    stored = checkpoint["state_dict"]
    current = {name: tensor.detach().cpu() for name, tensor in representation.state_dict().items()}
    same = checkpoint["config"] == representation.config_dict() and stored.keys() == current.keys()
    if not same or not all(torch.equal(stored[name], current[name]) for name in stored):
        raise ResumeMismatchError(
            f"the representation differs from the one this run was trained with ({path})"
        )


def training_settings(cfg: Config) -> dict[str, Any]:
    """The settings that shape training: seed, env and agent, less ``RESUMABLE_KEYS``."""
    return {
        key: value
        for key, value in flat_settings(cfg).items()
        if (key == "seed" or key.startswith(("env.", "agent.", "online."))) and key not in RESUMABLE_KEYS
    }
