"""The agent stage: config + representation -> an SB3 off-policy agent trained on imagined goals.

``train`` builds the latent goal env (imagined goals, latent rewards), a TD3 or SAC agent whose replay buffer
relabels goals with rollout goals, prior samples and future achieved latents, and runs it with a progress
bar, CSV + TensorBoard logs, periodic real-goal evaluation and checkpoints. The state oracle is the same code
path with the identity ``StateRepresentation``.

The agent directory (``rig.rundir.AgentDir``, ``agent/`` of a run) holds:

- ``checkpoint.json``: the latest checkpoint's step, files and the config that trained it;
- ``checkpoints/agent_<step>.zip`` (SB3) and ``checkpoints/replay_buffer_<step>.pkl`` (SB3, latents only);
- ``checkpoints/training_state_<step>.pt``: the random generators and the training env mid-episode
  (``rig.snapshot``), so that a resumed run continues exactly as the uninterrupted one would have;
- ``representation.pt``: the representation the agent was trained with;
- ``eval_curve.csv``: real-goal metrics against env steps;
- ``logs/``: ``progress.csv`` (SB3's metrics, rewritten atomically at each dump) and TensorBoard events.

Training again in the same directory resumes from the latest checkpoint, replay buffer included; a larger
``agent.total_steps`` extends a finished run. On the same device and machine the continuation is
bit-identical to a run that was never interrupted.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat, filter_excluded_keys
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from tqdm import tqdm

from rig import io
from rig.config import Algo, Config, flat_settings, from_dict, to_dict
from rig.device import resolve_device
from rig.errors import UNREADABLE_ERRORS, CorruptFileError, MissingFileError, UserError, unreadable
from rig.evaluate import EvalPoint, read_eval_curve, run_goal_episodes, write_eval_curve
from rig.latent_env import GoalMode, LatentGoalEnv, make_latent_env
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
    load_representation,
    read_checkpoint,
    save_representation,
)
from rig.rundir import AgentDir
from rig.snapshot import capture, restore_envs, restore_generators
from rig.td3 import LeanTD3, optimizer_kwargs

ALGORITHMS: dict[Algo, type[OffPolicyAlgorithm]] = {"td3": LeanTD3, "sac": SAC}
LOG_INTERVAL_EPISODES = 10
"""SB3 writes its rollout and training metrics every this many episodes."""
RESUMABLE_KEYS = ("agent.total_steps", "env.eval_palette")
"""Settings under seed, env and agent that may change when a run is resumed: they do not shape training."""

logger = logging.getLogger(__name__)


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


# ------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class CheckpointRecord:
    """What ``checkpoint.json`` says: the latest checkpoint and the config that trained it."""

    steps: int
    agent_path: Path
    replay_buffer_path: Path
    representation_path: Path
    config: Config
    online_state_path: Path | None = None
    """online runs: the online VAE's state at this checkpoint (``rig.online.OnlineVAE``)"""
    online_representation_path: Path | None = None
    """online runs: the representation as trained online up to this checkpoint"""
    training_state_path: Path | None = None
    """the random generators and the training env mid-episode (``rig.snapshot``)"""

    @property
    def trained_representation_path(self) -> Path:
        """The representation the checkpointed agent acts on: trained online up to now, or the frozen one."""
        return self.online_representation_path or self.representation_path


def read_checkpoint_record(agent_dir: str | os.PathLike[str]) -> CheckpointRecord:
    run = AgentDir(Path(agent_dir))
    if not run.checkpoint.is_file():
        raise MissingFileError(f"{run.root} holds no trained agent: {run.checkpoint} is missing")
    try:
        stored = json.loads(run.checkpoint.read_text())
        online = {
            f"{key}_path": run.root / stored[key]
            for key in ("online_state", "online_representation", "training_state")
            if stored.get(key) is not None
        }
        return CheckpointRecord(
            steps=int(stored["steps"]),
            agent_path=run.root / stored["agent"],
            replay_buffer_path=run.root / stored["replay_buffer"],
            representation_path=run.root / stored["representation"],
            config=from_dict(stored["config"]),
            **online,
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptFileError(f"{run.checkpoint} cannot be read ({error})") from error


def save_checkpoint(
    model: OffPolicyAlgorithm, cfg: Config, run: AgentDir, online: OnlineVAE | None = None
) -> CheckpointRecord:
    """Write agent and replay buffer (and an online VAE's state) under new names, then point
    ``checkpoint.json`` at them.

    Until the pointer is replaced (atomically) the previous pair stays the valid checkpoint, so an
    interruption at any moment leaves a consistent agent + buffer to resume from.
    """
    steps = model.num_timesteps
    agent_path = run.agent_checkpoint(steps)
    buffer_path = run.replay_buffer_checkpoint(steps)
    io.write_with(agent_path, model.save)
    io.write_with(buffer_path, model.save_replay_buffer)
    state_path = run.training_state_checkpoint(steps)
    training_state = capture(model.get_env())  # type: ignore[arg-type]
    io.write_with(state_path, lambda handle: torch.save(training_state, handle))
    written = [agent_path, buffer_path, state_path]
    record: dict[str, Any] = {
        "steps": steps,
        "agent": str(agent_path.relative_to(run.root)),
        "replay_buffer": str(buffer_path.relative_to(run.root)),
        "training_state": str(state_path.relative_to(run.root)),
        "representation": str(run.representation.relative_to(run.root)),
        "config": to_dict(cfg),
    }
    if online is not None:
        state_path = run.online_state_checkpoint(steps)
        representation_path = run.online_representation_checkpoint(steps)
        online.save(state_path)
        save_representation(representation_path, online.vae)
        written += [state_path, representation_path]
        record["online_state"] = str(state_path.relative_to(run.root))
        record["online_representation"] = str(representation_path.relative_to(run.root))
    io.write_json(run.checkpoint, record)
    for stale in run.checkpoints.iterdir():
        if stale not in written:
            stale.unlink()
    return read_checkpoint_record(run.root)


def restore_agent(
    record: CheckpointRecord, env: VecEnv, device: torch.device | str
) -> tuple[OffPolicyAlgorithm, dict[str, Any] | None]:
    """The checkpointed agent on ``env``, with its replay buffer, and the checkpoint's training state.

    With a training state (``rig.snapshot``) ``env`` is put back mid-episode and the agent carries on from
    its last observation; the caller restores the random generators from the returned state just before
    training. A checkpoint without one (written before rig kept it) resumes with a fresh episode, its
    buffer's unfinished last episode closed.
    """
    algo = ALGORITHMS[record.config.agent.algo]
    state_path = record.training_state_path
    state = None if state_path is None else _read_training_state(state_path)
    with _reading(record.agent_path):
        model = algo.load(record.agent_path, env=env, device=device, force_reset=state is None)
    with _reading(record.replay_buffer_path):
        model.load_replay_buffer(record.replay_buffer_path, truncate_last_traj=state is None)
    if state is not None:
        try:
            restore_envs(env, state)
        except (KeyError, TypeError, ValueError) as error:
            raise CorruptFileError(f"{state_path} does not fit this run's training env ({error})") from error
    return model, state


def _read_training_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingFileError(f"checkpoint file {path} is missing")
    try:
        state = torch.load(path, weights_only=False)
    except UNREADABLE_ERRORS as error:
        raise unreadable(path, "a training state", error) from error
    if not isinstance(state, dict) or not {"generators", "envs"} <= state.keys():
        raise CorruptFileError(f"checkpoint {path} is not a training state")
    return state


@dataclass
class TrainedRun:
    config: Config
    model: OffPolicyAlgorithm
    representation: RepresentationModule
    steps: int


def load_run(agent_dir: str | os.PathLike[str], device: torch.device | str = "cpu") -> TrainedRun:
    """The latest agent (policy only, no replay buffer) and the representation it was trained with."""
    with agent_files(Path(agent_dir)):
        record = read_checkpoint_record(agent_dir)
        representation = load_representation(record.trained_representation_path, map_location=device)
        # Acting needs no replay buffer; a one-transition plain buffer spares SB3 the training env.
        policy_only = {"replay_buffer_class": DictReplayBuffer, "replay_buffer_kwargs": {}, "buffer_size": 1}
        algo = ALGORITHMS[record.config.agent.algo]
        with _reading(record.agent_path):
            model = algo.load(record.agent_path, device=device, custom_objects=policy_only)
    return TrainedRun(record.config, model, representation, record.steps)


@contextmanager
def agent_files(agent_dir: Path) -> Iterator[None]:
    """A damaged file of ``agent_dir`` is refused with a way out that keeps the frames and the VAE."""
    try:
        yield
    except CorruptFileError as error:
        raise CorruptFileError(
            f"{error}; restore it from a copy, or delete {agent_dir} and run again to train the agent anew "
            "(the frames and the representation are kept)"
        ) from error


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turns a missing or unreadable SB3 file (agent zip or replay buffer) into an error that names it."""
    if not path.is_file():
        raise MissingFileError(f"checkpoint file {path} is missing")
    if path.suffix == ".zip":
        _check_zip(path)
    try:
        yield
    except UNREADABLE_ERRORS as error:
        raise unreadable(path, "an SB3 checkpoint", error) from error


def _check_zip(path: Path) -> None:
    """SB3 reports a damaged agent zip as a bare ValueError or worse; check every member's checksum first."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged_member = archive.testzip()
            members = archive.namelist()
    except UNREADABLE_ERRORS as error:
        raise unreadable(path, "an SB3 agent (a zip archive)", error) from error
    if damaged_member is not None:
        raise CorruptFileError(f"{path} is damaged: its member {damaged_member!r} fails its checksum")
    if "data" not in members:
        raise CorruptFileError(f"{path} is damaged: it is a zip archive but holds no SB3 agent ('data')")


# ---------------------------------------------------------------------------- logging
class ProgressCSV(KVWriter):
    """SB3's metrics as ``progress.csv``, one row per dump with its env ``step``, rewritten atomically.

    Resuming from a checkpoint at step ``resume_from`` keeps the rows up to that step, so the file
    continues the interrupted run's instead of restarting or repeating steps.
    """

    def __init__(self, path: Path, resume_from: int | None = None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if resume_from is not None and path.is_file():
            with open(path, newline="") as handle:
                self.rows = [row for row in csv.DictReader(handle) if _row_step(row) <= resume_from]

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        values = filter_excluded_keys(key_values, key_excluded, "csv")
        scalars = {
            key: value for key, value in values.items() if isinstance(value, (int, float, str, np.number))
        }
        self.rows.append({"step": step, **scalars})
        io.write_csv(self.path, self.rows)

    def close(self) -> None:
        pass


def _row_step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or 0)
    except ValueError:
        return 0.0


def make_logger(folder: Path, resume_from: int | None) -> Logger:
    """SB3 logger writing ``progress.csv`` (continued when resuming) and TensorBoard events."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_format = ProgressCSV(folder / "progress.csv", resume_from)
    return Logger(str(folder), [csv_format, TensorBoardOutputFormat(str(folder))])


# -------------------------------------------------------------------------- callbacks
class ProgressBar(BaseCallback):
    """A tqdm bar over env steps; SB3's own needs ``rich``, which rig does not depend on."""

    def __init__(self, total_steps: int) -> None:
        super().__init__()
        self.total_steps = total_steps
        self.bar: tqdm[Any] | None = None

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total_steps, initial=self.num_timesteps, unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        assert self.bar is not None
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class PeriodicEvaluation(BaseCallback):
    """Real-goal evaluation and a checkpoint every ``cfg.eval.every`` env steps and at the end.

    The first evaluation (of the untrained policy, step 0) happens when a fresh run starts. Later ones happen
    at the start of a rollout, when the last step's transition is in the replay buffer and its gradient step
    is done: a checkpoint's buffer holds as many transitions as its step count, and its agent is the one
    that ``train`` returns.
    """

    def __init__(
        self,
        cfg: Config,
        run: AgentDir,
        eval_env: LatentGoalEnv,
        curve: list[EvalPoint],
        online: OnlineVAE | None = None,
    ) -> None:
        super().__init__()
        self.cfg, self.run, self.eval_env, self.curve, self.online = cfg, run, eval_env, curve, online
        self.next_step = 0

    def _on_training_start(self) -> None:
        if not self.curve:
            self._evaluate()
        every = self.cfg.eval.every
        self.next_step = (self.num_timesteps // every + 1) * every

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        self._evaluate_and_checkpoint_when_due()

    def _on_training_end(self) -> None:
        # Training also ends when a callback stops it early; only a finished run gets its last checkpoint.
        if self.num_timesteps >= self.cfg.agent.total_steps:
            self._evaluate_and_checkpoint_when_due()

    def _evaluate_and_checkpoint_when_due(self) -> None:
        if self.num_timesteps < min(self.next_step, self.cfg.agent.total_steps):
            return
        self._evaluate()
        assert isinstance(self.model, OffPolicyAlgorithm)
        save_checkpoint(self.model, self.cfg, self.run, self.online)
        every = self.cfg.eval.every
        self.next_step = (self.num_timesteps // every + 1) * every

    def _evaluate(self) -> None:
        eval_cfg = self.cfg.eval
        result = run_goal_episodes(self.model, self.eval_env, eval_cfg.episodes, eval_cfg.seed)
        point = EvalPoint.from_result(self.num_timesteps, result)
        self.curve.append(point)
        write_eval_curve(self.run.eval_curve, self.curve)
        for name in ("puck_distance", "hand_distance", "success_rate"):
            self.logger.record(f"eval/{name}", getattr(point, name))
        self.logger.dump(self.num_timesteps)
        logger.info(
            "step %d: final puck distance %.3f m, hand distance %.3f m, success %.0f%%",
            point.steps,
            point.puck_distance,
            point.hand_distance,
            100 * point.success_rate,
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
    model.set_logger(make_logger(run.logs, resume_from=model.num_timesteps if resumed else None))
    eval_env = make_latent_env(
        cfg.env, representation, GoalMode.EVAL, seed=cfg.eval.seed, palette=cfg.env.eval_palette
    )
    periodic = PeriodicEvaluation(cfg, run, eval_env, curve, online)
    all_callbacks: list[BaseCallback] = [periodic, *callbacks]
    if online is not None:  # before the evaluation, so a checkpoint at the same step holds the update
        all_callbacks.insert(0, OnlineRepresentationCallback(online, run))
    if progress:
        all_callbacks.insert(0, ProgressBar(cfg.agent.total_steps))
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
    if record.steps > cfg.agent.total_steps:
        raise ResumeMismatchError(
            f"{run.root} holds an agent trained for {record.steps} steps, more than agent.total_steps="
            f"{cfg.agent.total_steps}; ask for at least {record.steps} steps, or use another run_dir"
        )
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
