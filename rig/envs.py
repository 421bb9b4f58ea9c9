"""Environment factory: the one place that turns an ``EnvConfig`` into a gymnasium env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

import envs  # noqa: F401  registers the rig/Push* ids
from envs.push import PushEnv
from rig.config import EnvConfig


def make_env(cfg: EnvConfig, palette: str | None = None, render: bool = True) -> gym.Env[Any, Any]:
    """A rendering env of the configured id, image size and episode length."""
    kwargs: dict[str, Any] = {"width": cfg.image_size, "height": cfg.image_size}
    if render:
        kwargs["render_mode"] = "rgb_array"
    if is_multi_object(cfg):
        kwargs["palette"] = palette or cfg.palette
    return gym.make(cfg.id, max_episode_steps=cfg.max_episode_steps, **kwargs)


def is_multi_object(cfg: EnvConfig) -> bool:
    return bool(gym.spec(cfg.id).kwargs.get("multi_object", False))


def push_env(env: gym.Env[Any, Any]) -> PushEnv:
    """The ``PushEnv`` under gymnasium's wrappers, for its state and goal API."""
    inner = env.unwrapped
    if not isinstance(inner, PushEnv):
        raise TypeError(f"rig needs a PushEnv, got {type(inner).__name__}")
    return inner
