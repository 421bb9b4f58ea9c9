"""Agent checkpoints: an SB3 agent, its replay buffer and its training state, and the pointer to them.

The agent directory (``rig.rundir.AgentDir``, ``agent/`` of a run) holds ``checkpoint.json``, which names
the latest checkpoint's files and the config that trained it:

- ``checkpoints/agent_<step>.zip`` (SB3) and ``checkpoints/replay_buffer_<step>.pkl`` (SB3, latents only);
- ``checkpoints/training_state_<step>.pt``: the random generators and the training env mid-episode
  (``rig.snapshot``), so that a resumed run continues exactly as the uninterrupted one would have;
- online runs: the online VAE's state and the representation as trained online up to that step.

A checkpoint is written under new names before the pointer moves to it, so an interruption at any moment
leaves a consistent checkpoint to resume from.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import DictReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from rig import io
from rig.config import Algo, Config, from_dict, to_dict
from rig.errors import UNREADABLE_ERRORS, CorruptFileError, MissingFileError, unreadable, way_out
from rig.online import OnlineVAE
from rig.representation import RepresentationModule, load_representation, save_representation
from rig.rundir import AgentDir
from rig.snapshot import capture, restore_envs
from rig.td3 import LeanTD3

ALGORITHMS: dict[Algo, type[OffPolicyAlgorithm]] = {"td3": LeanTD3, "sac": SAC}


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
    # An env without snapshots (rig.goal_env) restarts its interrupted episode, as an old checkpoint does.
    mid_episode = state is not None and state["envs"] is not None
    with _reading(record.agent_path):
        model = algo.load(record.agent_path, env=env, device=device, force_reset=not mid_episode)
    with _reading(record.replay_buffer_path):
        model.load_replay_buffer(record.replay_buffer_path, truncate_last_traj=not mid_episode)
    if state is not None and mid_episode:
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
    with way_out(
        f"restore it from a copy, or delete {agent_dir} and run again to train the agent anew "
        "(the frames and the representation are kept)"
    ):
        yield


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
