"""The image goal-env protocol: what rig needs of an environment, and the check that it has it.

rig runs on any gymnasium env that is a goal env seen through images. The env is made with
``gymnasium.make(id, render_mode="rgb_array", width=size, height=size, max_episode_steps=T, **kwargs)``
and must provide the members of ``ImageGoalEnv``: gymnasium's API with goal-env dict observations
(``observation`` / ``achieved_goal`` / ``desired_goal``, as gymnasium-robotics and stable-baselines3's HER
expect), a batched ``compute_reward``, ``render()`` frames of the configured size, and
``info["is_success"]`` at every step.

Everything else is optional, and rig says what it does without it:

- **the real goal image** for evaluation: ``goal_image()`` (the env places itself in its goal state,
  renders and restores itself, like multiworld's ``set_to_goal``), or ``info["goal_image"]`` returned by
  ``reset`` (as OGBench does). One of the two is required for image agents;
- **goal metrics** (``goal_metrics``): the names of the distances in ``info`` that evaluation reports,
  with their units, the headline first. Without it rig reports ``goal_distance``, the Euclidean distance
  between ``achieved_goal`` and ``desired_goal``;
- **teleporting** (``sample_state`` and ``set_to_state``): frame collection then also records frames of
  states spread over the goal space. Without it, frames come from random actions only;
- **snapshots** (``get_snapshot`` and ``restore_snapshot``): a checkpoint then carries the env
  mid-episode, and a resumed run is bit-identical to one never interrupted. Without it a resumed run
  restarts the interrupted episode from a fresh reset, and continues from there;
- **goal box** (``goal_box``): where the state oracle's imagined goals are drawn from; without it, the
  bounds of ``desired_goal``'s space when they are finite;
- **state factors** (``state_factors``): named slices of ``achieved_goal`` (for example hand and object)
  that the representation diagnostics probe one by one; without it, the whole vector as one factor.

gymnasium wrappers may provide any member: rig looks each up with ``get_wrapper_attr``, outermost first,
so an adapter can be a wrapper around an env that knows nothing of rig.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rig.errors import UserError

Array = np.ndarray
GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")
DEFAULT_METRIC = "goal_distance"
"""the metric rig computes when an env names none: ||achieved_goal - desired_goal||"""


class EnvProtocolError(UserError, ValueError):
    """An env that lacks what rig needs of it; the message names what is missing."""


@runtime_checkable
class ImageGoalEnv(Protocol):
    """The members every env must have (on the env or on one of its wrappers)."""

    observation_space: spaces.Space[Any]
    """a ``spaces.Dict`` with ``observation``, ``achieved_goal`` and ``desired_goal`` Boxes"""
    action_space: spaces.Space[Any]
    """a bounded ``spaces.Box``"""

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        """Start an episode with a new goal; the same seed gives the same start and goal."""
        ...

    def step(self, action: Array) -> tuple[dict[str, Array], Any, bool, bool, dict[str, Any]]:
        """One step; ``info`` holds ``is_success`` and every name in ``goal_metrics``."""
        ...

    def render(self) -> Array | None:
        """The current frame, uint8 (size, size, 3), when made with ``render_mode="rgb_array"``."""
        ...

    def compute_reward(self, achieved_goal: Array, desired_goal: Array, info: Any) -> Any:
        """The env's own reward, on single goals and on batches (..., goal_dim); the state oracle's reward."""
        ...


@runtime_checkable
class RendersGoal(Protocol):
    """An env that can show its goal: place itself in the goal state, render, and restore itself."""

    def goal_image(self) -> Array:
        """The current episode's goal as a frame like ``render()``'s; the simulation is left untouched."""
        ...


@runtime_checkable
class Teleports(Protocol):
    """An env that can be put in any valid state, for frame collection spread over the goal space."""

    def sample_state(self) -> Array:
        """A random valid state, in ``achieved_goal``'s layout."""
        ...

    def set_to_state(self, state: Array) -> None:
        """Put the env, at rest, in ``state`` (``achieved_goal``'s layout); raise ValueError if invalid."""
        ...


@runtime_checkable
class Snapshots(Protocol):
    """An env whose whole mid-episode state can be saved and restored, for bit-identical resume."""

    def get_snapshot(self) -> dict[str, Any]:
        """Everything the rest of the episode depends on (physics, goal, random generator, ...)."""
        ...

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Continue from ``snapshot`` exactly as the env it came from would have."""
        ...


@dataclass(frozen=True)
class GoalMetric:
    """A distance in ``info`` that evaluation reports at an episode's final step."""

    name: str
    unit: str = ""


class GoalEnvView:
    """One place that asks a made env (under any wrappers) for the protocol's members.

    Stages use this instead of the env's class, so that any env implementing the protocol runs through
    them. ``env`` is the outermost env, as ``gymnasium.make`` returns it.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        self.env = env

    def member(self, name: str) -> Any:
        """The member ``name`` of the outermost wrapper that has it, or of the env; None when none does."""
        try:
            return self.env.get_wrapper_attr(name)
        except AttributeError:
            return None

    # -------------------------------------------------------------- capabilities
    @property
    def renders_goal(self) -> bool:
        return callable(self.member("goal_image"))

    @property
    def teleports(self) -> bool:
        return callable(self.member("sample_state")) and callable(self.member("set_to_state"))

    @property
    def snapshots(self) -> bool:
        return callable(self.member("get_snapshot")) and callable(self.member("restore_snapshot"))

    # --------------------------------------------------------------- the members
    def goal_image(self, reset_info: Mapping[str, Any] | None = None) -> Array:
        """The real goal frame: ``goal_image()`` when the env has it, else the one ``reset`` returned."""
        if self.renders_goal:
            return np.asarray(self.member("goal_image")())
        if reset_info is not None and "goal_image" in reset_info:
            return np.asarray(reset_info["goal_image"])
        raise EnvProtocolError(
            f"{env_name(self.env)} gives no goal image: give it a goal_image() method, or return "
            "info['goal_image'] from reset"
        )

    def sample_state(self) -> Array:
        return np.asarray(self.member("sample_state")())

    def set_to_state(self, state: Array) -> None:
        self.member("set_to_state")(state)

    def get_snapshot(self) -> dict[str, Any]:
        snapshot = self.member("get_snapshot")()
        assert isinstance(snapshot, dict)
        return snapshot

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.member("restore_snapshot")(snapshot)

    @property
    def goal_metrics(self) -> tuple[GoalMetric, ...]:
        """The distances evaluation reports, the headline first."""
        declared = self.member("goal_metrics")
        if not declared:
            return (GoalMetric(DEFAULT_METRIC, ""),)
        if isinstance(declared, Mapping):
            return tuple(GoalMetric(str(name), str(unit)) for name, unit in declared.items())
        return tuple(GoalMetric(str(name)) for name in declared)

    def metrics(self, obs: Mapping[str, Array], info: Mapping[str, Any]) -> dict[str, float]:
        """The goal metrics of one step, from ``info`` (``goal_distance`` from ``obs`` when undeclared)."""
        values: dict[str, float] = {}
        for metric in self.goal_metrics:
            if metric.name in info:
                values[metric.name] = float(info[metric.name])
            elif metric.name == DEFAULT_METRIC:
                values[metric.name] = goal_distance(obs)
            else:
                raise EnvProtocolError(f"{env_name(self.env)}: step info has no goal metric {metric.name!r}")
        return values

    def goal_box(self) -> tuple[Array, Array]:
        """Where the state oracle's imagined goals are drawn from."""
        declared = self.member("goal_box")
        if callable(declared):
            low, high = declared()
            return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        space = goal_spaces(self.env)["desired_goal"]
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise EnvProtocolError(
                f"{env_name(self.env)}: the state oracle needs a goal_box() method or a bounded "
                "desired_goal space to draw its goals from"
            )
        return space.low.astype(np.float64), space.high.astype(np.float64)

    def state_factors(self) -> dict[str, slice]:
        """Named parts of ``achieved_goal``, e.g. ``{"hand": slice(0, 2), "puck": slice(2, 4)}``."""
        declared = self.member("state_factors")
        if declared:
            return {str(name): slice(*bounds) for name, bounds in dict(declared).items()}
        dim = goal_spaces(self.env)["achieved_goal"].shape[0]
        return {"state": slice(0, dim)}


def goal_distance(obs: Mapping[str, Array]) -> float:
    difference = np.asarray(obs["achieved_goal"], np.float64) - np.asarray(obs["desired_goal"], np.float64)
    return float(np.linalg.norm(difference))


def goal_spaces(env: gym.Env[Any, Any]) -> dict[str, spaces.Box]:
    """The three Boxes of a goal env's observation space; EnvProtocolError when it is not one."""
    space = env.observation_space
    if not isinstance(space, spaces.Dict) or any(key not in space.spaces for key in GOAL_KEYS):
        raise EnvProtocolError(
            f"{env_name(env)}: observations must be a gymnasium Dict with keys {', '.join(GOAL_KEYS)} "
            f"(a goal env), got {space}"
        )
    boxes = {key: space.spaces[key] for key in GOAL_KEYS}
    for key, box in boxes.items():
        if not isinstance(box, spaces.Box) or len(box.shape) != 1:
            raise EnvProtocolError(f"{env_name(env)}: observation {key!r} must be a 1-D Box, got {box}")
    if boxes["achieved_goal"].shape != boxes["desired_goal"].shape:
        raise EnvProtocolError(f"{env_name(env)}: achieved_goal and desired_goal must have one shape")
    return boxes  # type: ignore[return-value]


def env_name(env: gym.Env[Any, Any]) -> str:
    spec = env.spec
    return spec.id if spec is not None else type(env.unwrapped).__name__


def check_goal_env(env: gym.Env[Any, Any], image_size: int, needs_images: bool = True) -> None:
    """Raise EnvProtocolError, naming what is missing, unless ``env`` implements the protocol.

    It resets and steps the env once with a sampled action, so call it on a fresh env made for the check.
    """
    name = env_name(env)
    goal_spaces(env)
    view = GoalEnvView(env)
    if not callable(view.member("compute_reward")):
        raise EnvProtocolError(f"{name} has no compute_reward(achieved_goal, desired_goal, info) method")
    if not isinstance(env.action_space, spaces.Box) or not env.action_space.is_bounded():
        raise EnvProtocolError(f"{name}: actions must be a bounded Box, got {env.action_space}")
    obs, reset_info = env.reset(seed=0)
    if needs_images:
        _check_frame(name, "render()", env.render(), image_size)
        _check_frame(name, "the goal image", view.goal_image(reset_info), image_size)
    obs, _, _, _, info = env.step(env.action_space.sample())
    if "is_success" not in info:
        raise EnvProtocolError(f"{name}: step info must hold 'is_success' (the goal counted as reached)")
    view.metrics(obs, info)
    _check_batched_reward(env, obs, info)


def _check_frame(name: str, what: str, frame: Any, image_size: int) -> None:
    expected = (image_size, image_size, 3)
    if frame is None:
        raise EnvProtocolError(f"{name}: {what} returned None; make the env with render_mode='rgb_array'")
    frame = np.asarray(frame)
    if frame.shape != expected or frame.dtype != np.uint8:
        raise EnvProtocolError(
            f"{name}: {what} must be a uint8 frame of shape {expected} (env.image_size={image_size}), "
            f"got {frame.dtype} {frame.shape}; the env must take width= and height= keyword arguments"
        )


def _check_batched_reward(env: gym.Env[Any, Any], obs: Mapping[str, Array], info: dict[str, Any]) -> None:
    achieved = np.stack([obs["achieved_goal"]] * 3)
    desired = np.stack([obs["desired_goal"]] * 3)
    try:
        rewards = np.asarray(GoalEnvView(env).member("compute_reward")(achieved, desired, [info] * 3))
    except Exception as error:  # any failure means the same thing: not batched
        raise EnvProtocolError(
            f"{env_name(env)}: compute_reward must work on batches of goals: {type(error).__name__}: {error}"
        ) from None
    if rewards.shape != (3,):
        raise EnvProtocolError(
            f"{env_name(env)}: compute_reward on a batch of 3 goals must return 3 rewards, got shape "
            f"{rewards.shape}"
        )
