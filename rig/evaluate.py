"""Goal-reaching evaluation: real goal images, judged by the env's own puck and hand distances.

Episode ``i`` of an evaluation resets the env with ``seed + i``, so every policy (RIG, CC-RIG, the state
oracle, the random baseline) faces the same goals. The metrics are taken at the episode's final step from the
env's ``info``, never from latent distances. An ``EvalPoint`` records one evaluation during training; the
learning curve is a CSV of them.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces

from rig.config import EnvConfig, Palette
from rig.errors import UserError
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


class RandomPolicy:
    """Uniform random actions: the baseline for the same evaluation."""

    def __init__(self, action_space: spaces.Box, seed: int) -> None:
        self.action_space = spaces.Box(
            action_space.low, action_space.high, dtype=action_space.dtype, seed=seed
        )

    def predict(
        self,
        observation: dict[str, Array],
        state: tuple[Array, ...] | None = None,
        episode_start: Array | None = None,
        deterministic: bool = False,
    ) -> tuple[Array, tuple[Array, ...] | None]:
        return self.action_space.sample(), None


@dataclass(frozen=True)
class EpisodeOutcome:
    puck_distance: float
    """final distance of the object to its goal, metres"""
    hand_distance: float
    """final distance of the hand to its goal, metres"""
    success: bool
    """the env's is_success at the final step"""


@dataclass
class GoalReachingResult:
    outcomes: list[EpisodeOutcome]
    seed: int
    """episode i used seed + i"""
    rollouts: list[list[Array]] = field(default_factory=list)
    """frames (agent | goal image | decoded goal) of the recorded episodes"""

    def summary(self) -> dict[str, float]:
        puck = np.array([o.puck_distance for o in self.outcomes])
        hand = np.array([o.hand_distance for o in self.outcomes])
        success = np.array([o.success for o in self.outcomes], dtype=np.float64)
        return {
            "puck_distance_mean": float(puck.mean()),
            "puck_distance_std": float(puck.std()),
            "hand_distance_mean": float(hand.mean()),
            "hand_distance_std": float(hand.std()),
            "success_rate": float(success.mean()),
            "success_std": float(success.std()),
            "episodes": len(self.outcomes),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class EvalPoint:
    """Real-goal metrics of the policy after ``steps`` env steps: one point of the learning curve."""

    steps: int
    puck_distance: float
    puck_distance_std: float
    hand_distance: float
    hand_distance_std: float
    success_rate: float
    episodes: int

    @classmethod
    def from_result(cls, steps: int, result: GoalReachingResult) -> EvalPoint:
        summary = result.summary()
        return cls(
            steps=steps,
            puck_distance=summary["puck_distance_mean"],
            puck_distance_std=summary["puck_distance_std"],
            hand_distance=summary["hand_distance_mean"],
            hand_distance_std=summary["hand_distance_std"],
            success_rate=summary["success_rate"],
            episodes=len(result.outcomes),
        )

    @classmethod
    def from_row(cls, row: dict[str, str]) -> EvalPoint:
        return cls(
            steps=int(row["steps"]),
            puck_distance=float(row["puck_distance"]),
            puck_distance_std=float(row["puck_distance_std"]),
            hand_distance=float(row["hand_distance"]),
            hand_distance_std=float(row["hand_distance_std"]),
            success_rate=float(row["success_rate"]),
            episodes=int(row["episodes"]),
        )


EVAL_CURVE_FIELDS = tuple(f.name for f in fields(EvalPoint))


def read_eval_curve(path: str | os.PathLike[str]) -> list[EvalPoint]:
    """The learning curve in ``path``; empty when there is none yet."""
    if not Path(path).is_file():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [EvalPoint.from_row(row) for row in rows]


def write_eval_curve(path: str | os.PathLike[str], curve: Sequence[EvalPoint]) -> None:
    write_csv(path, [asdict(point) for point in curve], EVAL_CURVE_FIELDS)


class RepresentationMismatchError(UserError, ValueError):
    """A trained run's representation or agent does not fit the env it is evaluated on."""


def run_goal_episodes(
    policy: Policy, env: LatentGoalEnv, episodes: int, seed: int, record: int = 0
) -> GoalReachingResult:
    """``episodes`` real-goal episodes on ``env`` (switched to eval mode); the first ``record`` are filmed."""
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    env.set_mode(GoalMode.EVAL)
    result = GoalReachingResult(outcomes=[], seed=seed)
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
    agent_dim = _observation_dim(observation_space)
    if agent_dim != representation.latent_dim:
        problems.append(
            f"the agent observes {agent_dim}-d latents but the representation "
            f"gives {representation.latent_dim}-d latents"
        )
    if problems:
        raise RepresentationMismatchError("representation does not fit: " + "; ".join(problems))


def rollout_frame(env: LatentGoalEnv) -> Array:
    """Agent frame | real goal image | decoded latent goal (VAEs only), side by side."""
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
    outcome = EpisodeOutcome(
        puck_distance=float(info["puck_distance"]),
        hand_distance=float(info["hand_distance"]),
        success=bool(info["is_success"]),
    )
    return outcome, frames


def _observation_dim(observation_space: spaces.Space[Any]) -> int | None:
    if not isinstance(observation_space, spaces.Dict) or "observation" not in observation_space.spaces:
        return None
    shape = observation_space.spaces["observation"].shape
    return int(shape[0]) if shape else None
