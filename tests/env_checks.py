"""Checks every planar mocap-hand env passes: the pushers (``test_envs.py``), the door (``test_door.py``)."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env


def assert_gymnasium_checker_passes(env: gym.Env[Any, Any]) -> None:
    """gymnasium's checker on the unwrapped env, every warning it gives an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports problems as warnings
        gym_check_env(env.unwrapped, skip_render_check=False)


def assert_sb3_checker_passes(env: gym.Env[Any, Any]) -> None:
    # gymnasium 1.x wrappers do not forward compute_reward, which SB3 reaches through get_wrapper_attr.
    sb3_check_env(env.unwrapped, warn=True)


def steps_until_truncated(env: gym.Env[Any, Any]) -> int:
    """How many zero actions after ``reset(seed=0)`` until the episode is truncated."""
    env.reset(seed=0)
    count, truncated = 0, False
    while not truncated:
        *_, truncated, _ = env.step(np.zeros(2))
        count += 1
    return count


def assert_batched_reward_matches_rows_and_steps(env: gym.Env[Any, Any]) -> None:
    """10 random steps: ``compute_reward`` of the batch equals it row by row, the step rewards and minus
    the Euclidean goal distance; ``compute_terminated`` and ``compute_truncated`` are batched and False."""
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    achieved, desired, step_rewards = [], [], []
    for _ in range(10):
        obs, reward, *_ = env.step(rng.uniform(-1, 1, size=2))
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        step_rewards.append(reward)
    unwrapped: Any = env.unwrapped
    batch = unwrapped.compute_reward(np.array(achieved), np.array(desired), [{}] * 10)
    rows = [unwrapped.compute_reward(a, d, {}) for a, d in zip(achieved, desired, strict=True)]
    assert batch.shape == (10,)
    np.testing.assert_allclose(batch, rows, rtol=1e-12)
    np.testing.assert_allclose(batch, step_rewards, rtol=1e-6)
    expected = -np.linalg.norm(np.array(achieved, dtype=np.float64) - np.array(desired), axis=1)
    np.testing.assert_allclose(batch, expected, rtol=1e-12)
    assert unwrapped.compute_terminated(np.array(achieved), np.array(desired), {}).shape == (10,)
    assert not unwrapped.compute_truncated(np.array(achieved), np.array(desired), {}).any()


def assert_actions_are_clipped(big: gym.Env[Any, Any], unit: gym.Env[Any, Any]) -> None:
    """From a seeded reset, a step of ``[5, -7]`` in ``big`` ends where ``[1, -1]`` does in ``unit``."""
    big.reset(seed=0)
    unit.reset(seed=0)
    obs_big, *_ = big.step(np.array([5.0, -7.0]))
    obs_unit, *_ = unit.step(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(obs_big["observation"], obs_unit["observation"])
