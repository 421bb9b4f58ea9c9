"""Goal-reaching evaluation: real goal images, judged by the env's own distances (its ``goal_metrics``).

Episode ``i`` of an evaluation resets the env with ``seed + i``, so every policy (RIG, CC-RIG, the state
oracle, the random baseline) faces the same goals. The metrics are taken at the episode's final step from the
env's ``info``, never from latent distances: on the pushers the puck and hand distances, on any env the
distances its ``goal_metrics`` name (``rig.goal_env``). An ``EvalPoint`` records one evaluation during
training; the learning curve is a CSV of them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

from rig.config import EnvConfig, Palette
from rig.errors import UserError
from rig.goal_env import DEFAULT_METRIC, GoalMetric
from rig.io import write_csv
from rig.latent_env import GoalMode, LatentGoalEnv, make_latent_env
from rig.media import image_grid
from rig.representation import RepresentationModule

Array = np.ndarray
GIF_SCALE = 4
"""48 px frames are enlarged this much in rollout GIFs."""


class Policy(Protocol):
    """What evaluation needs of an agent: SB3's ``predict``."""

    def predict(
        self,
        observation: dict[str, Array],
        state: tuple[Array, ...] | None = None,
        episode_start: Array | None = None,
        deterministic: bool = False,
    ) -> tuple[Array, tuple[Array, ...] | None]: ...


class StatelessPolicy:
    """A ``Policy`` whose action depends on the observation alone: subclasses give ``act``."""

    def act(self, observation: dict[str, Array]) -> Array:
        raise NotImplementedError

    def predict(
        self,
        observation: dict[str, Array],
        state: tuple[Array, ...] | None = None,
        episode_start: Array | None = None,
        deterministic: bool = False,
    ) -> tuple[Array, tuple[Array, ...] | None]:
        return self.act(observation), None


class RandomPolicy(StatelessPolicy):
    """Uniform random actions: the baseline for the same evaluation."""

    def __init__(self, action_space: spaces.Box, seed: int) -> None:
        self.action_space = spaces.Box(
            action_space.low, action_space.high, dtype=action_space.dtype, seed=seed
        )

    def act(self, observation: dict[str, Array]) -> Array:
        return self.action_space.sample()


class NoisyPolicy(StatelessPolicy):
    """A policy's deterministic action plus Gaussian noise of std ``sigma`` per dimension, clipped to the
    action space: the behaviour TD3 collects its training episodes with (``agent.action_noise``)."""

    def __init__(self, policy: Policy, action_space: spaces.Box, sigma: float, seed: int) -> None:
        self.policy, self.space, self.sigma = policy, action_space, sigma
        self.rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, Array]) -> Array:
        action = np.asarray(self.policy.predict(observation, deterministic=True)[0], dtype=np.float64)
        noisy = action + self.rng.normal(0.0, self.sigma, size=action.shape)
        return np.clip(noisy, self.space.low, self.space.high).astype(self.space.dtype)


@dataclass(frozen=True)
class EpisodeOutcome:
    metrics: dict[str, float]
    """the env's goal metrics at the final step, e.g. ``{"puck_distance": 0.03, "hand_distance": 0.02}``"""
    success: bool
    """the env's is_success at the final step"""


@dataclass
class GoalReachingResult:
    outcomes: list[EpisodeOutcome]
    seed: int
    """episode i used seed + i"""
    metrics: tuple[GoalMetric, ...] = (GoalMetric(DEFAULT_METRIC),)
    """the env's goal metrics, the headline first"""
    rollouts: list[list[Array]] = field(default_factory=list)
    """frames (agent | goal image | decoded goal) of the recorded episodes"""

    def summary(self) -> dict[str, Any]:
        """Mean and std over the episodes of every goal metric (``<name>_mean``, ``<name>_std``) and success;
        ``goal_metrics`` lists the metrics' ``[name, unit]``, the headline first."""
        summary: dict[str, Any] = {}
        for metric in self.metrics:
            values = np.array([outcome.metrics[metric.name] for outcome in self.outcomes])
            summary[f"{metric.name}_mean"] = float(values.mean())
            summary[f"{metric.name}_std"] = float(values.std())
        success = np.array([outcome.success for outcome in self.outcomes], dtype=np.float64)
        summary.update(
            success_rate=float(success.mean()),
            success_std=float(success.std()),
            episodes=len(self.outcomes),
            seed=self.seed,
            # [name, unit] pairs, not a mapping: eval.json is written with sorted keys, and the order matters
            goal_metrics=[[metric.name, metric.unit] for metric in self.metrics],
        )
        return summary


@dataclass(frozen=True)
class EvalPoint:
    """Real-goal metrics of the policy after ``steps`` env steps: one point of the learning curve.

    ``values`` holds each goal metric's mean and std over the episodes (``puck_distance``,
    ``puck_distance_std``, ...); they also read as attributes, ``point.puck_distance``.
    """

    steps: int
    values: dict[str, float]
    success_rate: float
    episodes: int

    def __getattr__(self, name: str) -> float:
        values = self.__dict__.get("values", {})
        if name in values:
            return float(values[name])
        raise AttributeError(f"this evaluation point has no metric {name!r}; it has {sorted(values)}")

    @property
    def metric_names(self) -> list[str]:
        """The goal metrics, the headline first (their std columns left out)."""
        return [name for name in self.values if not name.endswith("_std")]

    @classmethod
    def from_result(cls, steps: int, result: GoalReachingResult) -> EvalPoint:
        summary = result.summary()
        values: dict[str, float] = {}
        for metric in result.metrics:
            values[metric.name] = summary[f"{metric.name}_mean"]
            values[f"{metric.name}_std"] = summary[f"{metric.name}_std"]
        return cls(steps, values, summary["success_rate"], len(result.outcomes))

    @classmethod
    def from_row(cls, row: dict[str, str]) -> EvalPoint:
        values = {name: float(value) for name, value in row.items() if name not in CURVE_BOOKKEEPING}
        return cls(int(row["steps"]), values, float(row["success_rate"]), int(row["episodes"]))

    def row(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            **self.values,
            "success_rate": self.success_rate,
            "episodes": self.episodes,
        }


CURVE_BOOKKEEPING = ("steps", "success_rate", "episodes")
"""the learning curve's columns that are not goal metrics"""


def read_eval_curve(path: str | os.PathLike[str]) -> list[EvalPoint]:
    """The learning curve in ``path``; empty when there is none yet."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [EvalPoint.from_row(row) for row in rows]


def write_eval_curve(path: str | os.PathLike[str], curve: Sequence[EvalPoint]) -> None:
    """The curve as CSV: steps, each goal metric and its std, success rate, episodes."""
    rows = [point.row() for point in curve]
    columns = list(rows[0]) if rows else list(CURVE_BOOKKEEPING)
    write_csv(path, rows, tuple(columns))


class RepresentationMismatchError(UserError, ValueError):
    """A trained run's representation or agent does not fit the env it is evaluated on."""


def run_goal_episodes(
    policy: Policy, env: LatentGoalEnv, episodes: int, seed: int, record: int = 0
) -> GoalReachingResult:
    """``episodes`` real-goal episodes on ``env`` (switched to eval mode); the first ``record`` are filmed."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    env.set_mode(GoalMode.EVAL)
    result = GoalReachingResult(outcomes=[], seed=seed, metrics=env.goal_metrics)
    for index in range(episodes):
        outcome, frames = _run_episode(policy, env, seed + index, filmed=index < record)
        result.outcomes.append(outcome)
        if frames:
            result.rollouts.append(frames)
    return result


def evaluate_policy_on_goals(
    policy: Policy,
    env_cfg: EnvConfig,
    representation: RepresentationModule,
    episodes: int,
    seed: int,
    palette: Palette | None = None,
    record: int = 0,
) -> GoalReachingResult:
    """Evaluate ``policy`` on a fresh env of ``env_cfg``; ``palette`` defaults to its ``eval_palette``."""
    env = make_latent_env(
        env_cfg, representation, GoalMode.EVAL, seed, palette or env_cfg.eval_palette, record=record > 0
    )
    try:
        return run_goal_episodes(policy, env, episodes, seed, record)
    finally:
        env.close()


def evaluate_random_policy(
    env_cfg: EnvConfig,
    representation: RepresentationModule,
    episodes: int,
    seed: int,
    palette: Palette | None = None,
) -> GoalReachingResult:
    """The random-policy baseline on the same goals as ``evaluate_policy_on_goals`` with the same seed."""
    env = make_latent_env(env_cfg, representation, GoalMode.EVAL, seed, palette or env_cfg.eval_palette)
    try:
        assert isinstance(env.action_space, spaces.Box)
        return run_goal_episodes(RandomPolicy(env.action_space, seed), env, episodes, seed)
    finally:
        env.close()


def check_representation_fits(
    representation: RepresentationModule, env_cfg: EnvConfig, observation_space: spaces.Space[Any]
) -> None:
    """Raise ``RepresentationMismatchError`` naming each mismatch of image size or latent size."""
    problems = []
    image_size = getattr(representation, "image_size", None)
    if representation.input_kind == "image" and image_size != env_cfg.image_size:
        problems.append(
            f"the representation takes {image_size} px images but env.image_size is {env_cfg.image_size}"
        )
    agent_dim = _goal_dim(observation_space)
    if agent_dim != representation.latent_dim:
        problems.append(
            f"the agent observes {agent_dim}-d latents but the representation "
            f"gives {representation.latent_dim}-d latents"
        )
    if problems:
        raise RepresentationMismatchError("representation does not fit: " + "; ".join(problems))


def rollout_frame(env: LatentGoalEnv) -> Array:
    """Agent frame | real goal image | decoded latent goal (the VAEs only), side by side."""
    if env.last_frame is None:
        raise ValueError("filming a rollout needs an env that renders (make_latent_env(..., record=True))")
    panels = [env.last_frame, env.goal_frame]
    if env.decoded_goal is not None:
        panels.append(env.decoded_goal)
    return image_grid(panels, ncols=len(panels))


def _run_episode(
    policy: Policy, env: LatentGoalEnv, seed: int, filmed: bool
) -> tuple[EpisodeOutcome, list[Array]]:
    obs, info = env.reset(seed=seed)
    frames = [rollout_frame(env)] if filmed else []
    done = False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        if filmed:
            frames.append(rollout_frame(env))
    metrics = {metric.name: float(info[metric.name]) for metric in env.goal_metrics}
    outcome = EpisodeOutcome(metrics=metrics, success=bool(info["is_success"]))
    return outcome, frames


@dataclass
class Rollout:
    """One episode, step by step, for the diagnostics that look inside episodes (``scripts/``)."""

    observations: list[dict[str, Array]] = field(default_factory=list)
    """the observation each action answered"""
    actions: list[Array] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    """each step's info"""
    achieved: list[Array] = field(default_factory=list)
    """the env's own achieved goal at the reset and after every step (one more than the steps)"""


def roll_out(act: Callable[[dict[str, Array]], Array], env: LatentGoalEnv, seed: int) -> Rollout:
    """One episode of ``act`` (observation to action) on ``env`` from ``reset(seed=seed)``, to its end."""
    obs, _ = env.reset(seed=seed)
    rollout, done = Rollout(), False
    while not done:
        action = np.asarray(act(obs))
        rollout.observations.append(obs)
        rollout.actions.append(action)
        rollout.achieved.append(_achieved(env))
        obs, reward, terminated, truncated, info = env.step(action)
        rollout.rewards.append(float(reward))
        rollout.infos.append(info)
        done = terminated or truncated
    rollout.achieved.append(_achieved(env))
    return rollout


def acting(policy: Policy) -> Callable[[dict[str, Array]], Array]:
    """``policy``'s deterministic action, as ``roll_out`` takes it."""
    return lambda obs: np.asarray(policy.predict(obs, deterministic=True)[0])


def _achieved(env: LatentGoalEnv) -> Array:
    assert env.achieved_state is not None, "the env has not been reset"
    return env.achieved_state


def _goal_dim(observation_space: spaces.Space[Any]) -> int | None:
    """The size of the agent's goals: the representation's latent (for the oracle, the env's goal)."""
    if not isinstance(observation_space, spaces.Dict) or "desired_goal" not in observation_space.spaces:
        return None
    shape = observation_space.spaces["desired_goal"].shape
    return int(shape[0]) if shape else None
