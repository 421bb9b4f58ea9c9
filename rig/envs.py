"""Environment factory: the one place that turns an ``EnvConfig`` into a gymnasium env.

Any registered id works whose env implements rig's image goal-env protocol (``rig.goal_env``);
``check_env_config`` makes one and checks it, before any stage runs.
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  registers the rig/ ids
from envs.push import PushEnv
from rig.config import EnvConfig
from rig.goal_env import EnvProtocolError, GoalEnvView, check_goal_env, goal_spaces


def make_env(cfg: EnvConfig, palette: str | None = None, render: bool = True) -> gym.Env[Any, Any]:
    """A rendering env of the configured id, image size and episode length."""
    if cfg.module:
        importlib.import_module(cfg.module)
    kwargs: dict[str, Any] = {"width": cfg.image_size, "height": cfg.image_size, **cfg.kwargs}
    if render:
        kwargs["render_mode"] = "rgb_array"
    if is_multi_object(cfg):
        kwargs["palette"] = palette or cfg.palette
    try:
        return gym.make(cfg.id, max_episode_steps=cfg.max_episode_steps, **kwargs)
    except (TypeError, ValueError) as error:  # the constructor refused an argument or its value
        raise EnvProtocolError(f"gymnasium.make({cfg.id!r}) failed: {error}") from None


def is_multi_object(cfg: EnvConfig) -> bool:
    """Whether the env draws its object's appearance per reset from a palette (rig's multi-object pushers)."""
    return bool(gym.spec(cfg.id).kwargs.get("multi_object", False))


def check_env_config(cfg: EnvConfig, needs_images: bool = True) -> None:
    """Make the configured env and check it implements the protocol; EnvProtocolError names what is not."""
    env = make_env(cfg, render=True)
    try:
        check_goal_env(env, cfg.image_size, needs_images=needs_images)
    finally:
        env.close()


def describe_env(cfg: EnvConfig) -> list[str]:
    """What rig sees of the configured env after it passed the check: spaces, metrics, capabilities."""
    check_env_config(cfg)
    env = make_env(cfg, render=True)
    try:
        view, boxes = GoalEnvView(env), goal_spaces(env)
        metrics = ", ".join(f"{m.name} ({m.unit})" if m.unit else m.name for m in view.goal_metrics)
        factors = ", ".join(f"{name} {part.start}:{part.stop}" for name, part in view.state_factors().items())
        lines = [
            f"{cfg.id}: passes rig's env check at {cfg.image_size} px",
            f"observation {boxes['observation'].shape[0]}-d, goals {boxes['desired_goal'].shape[0]}-d, "
            f"action {env.action_space}",
            f"goal metrics: {metrics} (the first is the headline)",
            f"state factors (probed by the diagnostics): {factors}",
            _capability(
                view.renders_goal, "goal_image()", "goal images come from reset's info['goal_image']"
            ),
            _capability(view.teleports, "teleports", "frames are collected with random actions only"),
            _capability(view.snapshots, "snapshots", "a resumed run restarts its interrupted episode"),
        ]
    finally:
        env.close()
    return lines


def _capability(present: bool, name: str, without: str) -> str:
    return f"{name}: yes" if present else f"{name}: no, so {without}"


def state_factors(cfg: EnvConfig) -> dict[str, slice]:
    """The env's named parts of its state (``achieved_goal``), which the diagnostics probe one by one."""
    env = make_env(cfg, render=False)
    try:
        return GoalEnvView(env).state_factors()
    finally:
        env.close()


def is_pusher(cfg: EnvConfig) -> bool:
    """Whether the configured env is one of rig's pushers, which the pusher-only tools measure."""
    env = make_env(cfg, render=False)
    try:
        return isinstance(env.unwrapped, PushEnv)
    finally:
        env.close()


def push_env(env: gym.Env[Any, Any]) -> PushEnv:
    """The ``PushEnv`` under gymnasium's wrappers, for the pusher-only tools (reward geometry, diagnosis)."""
    inner = env.unwrapped
    if not isinstance(inner, PushEnv):
        raise EnvProtocolError(f"this tool measures rig's pushers only, not {type(inner).__name__}")
    return inner
