"""What a checkpoint needs besides the agent and its buffer to continue training bit-identically.

SB3 saves the networks, optimisers, counters and the last observation; the replay buffer saves its own
random stream. What is left lives outside them:

- the global random generators (Python, numpy and torch), which draw the replay batches, the
  exploration noise and TD3's target noise;
- the training env mid-episode: SB3's ``Monitor`` counters, and each ``LatentGoalEnv``'s snapshot
  (physics, goal, context, generators, goal pool).

``capture`` takes both; ``restore_envs`` puts the envs back when the agent is restored, and
``restore_generators`` resets the global generators last, after everything that draws from them on the
way (building networks, the evaluation env).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rig.latent_env import LatentGoalEnv

MONITOR_FIELDS = (
    "rewards",
    "needs_reset",
    "episode_returns",
    "episode_lengths",
    "episode_times",
    "total_steps",
)
"""The ``Monitor`` attributes its episode statistics continue from."""


def capture(env: VecEnv) -> dict[str, Any]:
    """The global generators' states and a snapshot of every training env (None for envs without snapshots,
    ``rig.goal_env``)."""
    return {
        "generators": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        },
        "envs": _env_snapshots(env),
    }


def _env_snapshots(env: VecEnv) -> list[dict[str, Any]] | None:
    """Every training env's snapshot; None when an env cannot take one (its episode restarts on resume)."""
    monitors = _monitors(env)
    if not all(_latent_env(monitor).can_snapshot for monitor in monitors):
        return None
    return [_env_snapshot(monitor) for monitor in monitors]


def restore_envs(env: VecEnv, state: dict[str, Any]) -> None:
    """Put each training env back where ``capture`` found it; SB3 then steps on without a reset."""
    monitors = _monitors(env)
    if len(monitors) != len(state["envs"]):
        raise ValueError(f"the snapshot holds {len(state['envs'])} envs, the training env {len(monitors)}")
    for monitor, snapshot in zip(monitors, state["envs"], strict=True):
        for name in MONITOR_FIELDS:
            value = snapshot["monitor"][name]
            setattr(monitor, name, list(value) if isinstance(value, list) else value)
        _latent_env(monitor).restore_snapshot(snapshot["latent_env"])


def restore_generators(state: dict[str, Any]) -> None:
    generators = state["generators"]
    random.setstate(generators["python"])
    np.random.set_state(generators["numpy"])
    torch.set_rng_state(generators["torch"])


def _env_snapshot(monitor: Monitor) -> dict[str, Any]:
    fields = {name: getattr(monitor, name) for name in MONITOR_FIELDS}
    fields = {name: list(value) if isinstance(value, list) else value for name, value in fields.items()}
    return {"monitor": fields, "latent_env": _latent_env(monitor).get_snapshot()}


def _monitors(env: VecEnv) -> list[Monitor]:
    if not isinstance(env, DummyVecEnv) or not all(isinstance(e, Monitor) for e in env.envs):
        raise TypeError(f"rig's training env is a DummyVecEnv of Monitor-wrapped envs, got {env}")
    return list(env.envs)  # type: ignore[arg-type]


def _latent_env(monitor: Monitor) -> LatentGoalEnv:
    inner = monitor.env
    if not isinstance(inner, LatentGoalEnv):
        raise TypeError(f"a training env's Monitor must wrap a LatentGoalEnv, got {type(inner).__name__}")
    return inner
