"""Relabelling with imagined goals: SB3's ``HerReplayBuffer`` with the representation prior as a goal source.

Every replayed transition gets its goal from one of three sources, drawn independently per transition:

- ``ROLLOUT``: the goal the episode was collected with;
- ``PRIOR``: a fresh sample from the representation's prior (the "imagined" goal); for the CC-VAE only z
  is drawn and the transition's own context c is kept;
- ``FUTURE``: the achieved latent of a later (or the same) step of the same episode, as in HER.

How this maps onto SB3: ``HerReplayBuffer.sample`` sends ``int(her_ratio * batch_size)`` transitions through
its relabelling path and keeps the rest as stored. That split is a fixed count per batch, and ``her_ratio``
comes from an integer ``n_sampled_goal``, so shares such as 0.1 could not hold exactly. Here ``her_ratio`` is
1: every transition takes the relabelling path, and ``_sample_goals`` returns the stored rollout goal for the
``ROLLOUT`` share. Rewards for all three are recomputed by the env's batched ``compute_reward``, which for a
rollout goal reproduces the stored reward. The shares then hold exactly in expectation for any batch size.

``sample`` draws exactly what SB3's ``HerReplayBuffer.sample`` draws (the same calls on numpy's global
generator, in the same order) and returns the same batch, without SB3's empty "real" half: with every
transition relabelled, that half only cost array and tensor copies of zero rows and a concatenation.

Prior samples come from the env, through the VecEnv, just like the rewards: the env holds the frozen
representation and a seeded generator (``LatentGoalEnv.sample_prior_goals``). Keeping the model out of the
buffer keeps it out of SB3's zip (which stores ``replay_buffer_kwargs``) and the pickled buffer, and SB3
re-attaches the env when it loads a saved buffer. The buffer itself holds latents only, never images.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import VecEnv, VecNormalize


class GoalSource(enum.IntEnum):
    ROLLOUT = 0
    PRIOR = 1
    FUTURE = 2


def goal_fractions(rollout: float, prior: float, future: float) -> np.ndarray:
    """The three shares as probabilities in ``GoalSource`` order; they must be non-negative and sum to 1."""
    fractions = np.array([rollout, prior, future], dtype=np.float64)
    if fractions.min() < 0.0 or abs(fractions.sum() - 1.0) > 1e-6:
        raise ValueError(
            "goal fractions (rollout, prior, future) must be non-negative and sum to 1, "
            f"got {tuple(fractions.tolist())}"
        )
    return fractions / fractions.sum()


class ImaginedGoalReplayBuffer(HerReplayBuffer):
    """``HerReplayBuffer`` whose goals are rollout goals, prior samples or future achieved latents.

    The env (a VecEnv of ``LatentGoalEnv``) must provide ``compute_reward`` and ``sample_prior_goals``.

    Args:
        rollout_goal_fraction, prior_goal_fraction, future_goal_fraction: the share of each goal source.
        seed: seeds the per-transition choice of goal source.
        Everything else is passed to ``HerReplayBuffer`` (the ``future`` strategy serves the future share).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Dict,
        action_space: spaces.Space[Any],
        env: VecEnv,
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        rollout_goal_fraction: float = 0.1,
        prior_goal_fraction: float = 0.5,
        future_goal_fraction: float = 0.4,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            env,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
            goal_selection_strategy="future",
        )
        self.goal_fractions = goal_fractions(rollout_goal_fraction, prior_goal_fraction, future_goal_fraction)
        # All transitions take SB3's relabelling path; _sample_goals keeps the rollout goal for its share.
        self.her_ratio = 1.0
        self._source_rng = np.random.default_rng(seed)

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> DictReplayBufferSamples:  # type: ignore[override]
        """A batch of relabelled transitions, as ``HerReplayBuffer.sample`` with ``her_ratio`` 1 gives it."""
        if env is not None:  # observation normalisation, which rig does not use: SB3's own path
            return super().sample(batch_size, env)
        valid = np.flatnonzero(self.ep_length > 0)
        if not len(valid):
            raise RuntimeError("cannot sample before the first episode has ended; raise learning_starts")
        sampled = np.random.choice(valid, size=batch_size, replace=True)
        batch_indices, env_indices = np.unravel_index(sampled, self.ep_length.shape)
        obs = {key: value[batch_indices, env_indices] for key, value in self.observations.items()}
        next_obs = {key: value[batch_indices, env_indices] for key, value in self.next_observations.items()}
        goals = self._sample_goals(batch_indices, env_indices)
        obs["desired_goal"] = next_obs["desired_goal"] = goals
        assert self.env is not None, "ImaginedGoalReplayBuffer needs its env (set_env) to compute rewards"
        achieved = next_obs["achieved_goal"]
        rewards = self.env.env_method("compute_reward", achieved, goals, None, indices=[0])[0]
        dones = self.dones[batch_indices, env_indices] * (1 - self.timeouts[batch_indices, env_indices])
        return DictReplayBufferSamples(
            observations={key: self.to_torch(value) for key, value in obs.items()},
            actions=self.to_torch(self.actions[batch_indices, env_indices]),
            next_observations={key: self.to_torch(value) for key, value in next_obs.items()},
            dones=self.to_torch(dones).reshape(-1, 1),
            rewards=self.to_torch(np.asarray(rewards, dtype=np.float32).reshape(-1, 1)),
        )

    def sample_goal_sources(self, n: int) -> np.ndarray:
        """(n,) ``GoalSource`` values drawn independently with the configured shares."""
        return self._source_rng.choice(len(GoalSource), size=n, p=self.goal_fractions)

    def _sample_goals(self, batch_indices: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        sources = self.sample_goal_sources(len(batch_indices))
        goals = self.observations["desired_goal"][batch_indices, env_indices].copy()
        prior = sources == GoalSource.PRIOR
        if prior.any():
            goals[prior] = self._prior_goals(batch_indices[prior], env_indices[prior])
        future = sources == GoalSource.FUTURE
        if future.any():
            goals[future] = super()._sample_goals(batch_indices[future], env_indices[future])
        return goals

    def _prior_goals(self, batch_indices: np.ndarray, env_indices: np.ndarray) -> np.ndarray:
        if self.env is None:
            raise RuntimeError("ImaginedGoalReplayBuffer needs its env (set_env) to draw prior goals")
        # The achieved latent carries the transition's context c, which a CC-VAE prior goal must keep.
        achieved = self.observations["achieved_goal"][batch_indices, env_indices]
        goals = self.env.env_method("sample_prior_goals", achieved, indices=[0])[0]
        return np.asarray(goals, dtype=self.observations["desired_goal"].dtype)
