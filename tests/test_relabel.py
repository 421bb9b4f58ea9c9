"""Relabelling with rollout goals, prior samples and future achieved latents.

The buffer is filled with synthetic latents whose values say where they came from: the rollout goal is 500
everywhere, an achieved latent is [1000 + episode, step, 0, ...] (+ the episode's context for the CC-VAE),
and prior samples are standard normal, so every replayed goal can be traced back to its source.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv

from rig.config import RewardScale, load_config
from rig.latent_env import GoalMode, make_latent_env
from rig.relabel import GoalSource, ImaginedGoalReplayBuffer, goal_fractions
from rig.representation import CCVAE, BetaVAE, RepresentationModule

EPISODES, LENGTH, ROLLOUT_GOAL = 30, 10, 500.0
SAMPLES = 20_000


def context_of(episode: int, context_dim: int) -> np.ndarray:
    return np.array([episode + 0.5, -episode - 0.25][:context_dim], dtype=np.float32)


def achieved_latent(episode: int, step: int, z_dim: int, context_dim: int) -> np.ndarray:
    z = np.zeros(z_dim, dtype=np.float32)
    z[:2] = [1000 + episode, step]
    return np.concatenate([z, context_of(episode, context_dim)])


def filled_buffer(
    representation: RepresentationModule,
    fractions: tuple[float, float, float],
    reward_scale: RewardScale = "none",
) -> ImaginedGoalReplayBuffer:
    env_cfg = load_config("debug").env
    vec_env = DummyVecEnv(
        [lambda: make_latent_env(env_cfg, representation, GoalMode.TRAIN, seed=0, reward_scale=reward_scale)]
    )
    buffer = ImaginedGoalReplayBuffer(
        1_000,
        vec_env.observation_space,  # type: ignore[arg-type]
        vec_env.action_space,
        vec_env,
        device="cpu",
        rollout_goal_fraction=fractions[0],
        prior_goal_fraction=fractions[1],
        future_goal_fraction=fractions[2],
        seed=0,
    )
    z_dim, context_dim = representation.z_dim, representation.context_dim
    for episode in range(EPISODES):
        goal = np.concatenate([np.full(z_dim, ROLLOUT_GOAL), context_of(episode, context_dim)])
        for step in range(LENGTH):
            now = achieved_latent(episode, step, z_dim, context_dim)
            after = achieved_latent(episode, step + 1, z_dim, context_dim)
            buffer.add(
                {"observation": now[None], "achieved_goal": now[None], "desired_goal": goal[None]},
                {"observation": after[None], "achieved_goal": after[None], "desired_goal": goal[None]},
                np.zeros((1, 2), dtype=np.float32),
                np.zeros(1, dtype=np.float32),
                np.array([step == LENGTH - 1]),
                [{}],
            )
    return buffer


def sample(buffer: ImaginedGoalReplayBuffer) -> DictReplayBufferSamples:
    np.random.seed(0)  # SB3 draws transitions and future steps from numpy's global generator
    return buffer.sample(SAMPLES)


def classify(samples: DictReplayBufferSamples) -> np.ndarray:
    goals = samples.observations["desired_goal"].numpy()
    sources = np.full(len(goals), GoalSource.PRIOR)
    sources[goals[:, 0] == ROLLOUT_GOAL] = GoalSource.ROLLOUT
    sources[goals[:, 0] >= 1000] = GoalSource.FUTURE
    return sources


@pytest.mark.parametrize("fractions", [(0.1, 0.5, 0.4), (0.2, 0.5, 0.3)])
def test_goal_source_fractions_hold_over_many_samples(fractions: tuple[float, float, float]) -> None:
    torch.manual_seed(0)
    sources = classify(sample(filled_buffer(BetaVAE(z_dim=4), fractions)))
    for source, fraction in zip(GoalSource, fractions, strict=True):
        count = int((sources == source).sum())
        sigma = np.sqrt(SAMPLES * fraction * (1 - fraction))
        assert abs(count - SAMPLES * fraction) <= 3 * sigma, (source.name, count)


def test_relabelled_goals_come_from_the_right_place_and_rewards_follow_them() -> None:
    torch.manual_seed(0)
    samples = sample(filled_buffer(BetaVAE(z_dim=4), (0.1, 0.5, 0.4)))
    sources = classify(samples)
    goals = samples.observations["desired_goal"].numpy()
    achieved = samples.observations["achieved_goal"].numpy()
    next_achieved = samples.next_observations["achieved_goal"].numpy()
    future = sources == GoalSource.FUTURE
    # Future goals: the same episode, at the transition's next step or later.
    np.testing.assert_array_equal(goals[future, 0], achieved[future, 0])
    assert np.all(goals[future, 1] >= achieved[future, 1] + 1) and np.all(goals[future, 1] <= LENGTH)
    prior = goals[sources == GoalSource.PRIOR]
    assert np.abs(prior.mean(axis=0)).max() < 0.05 and np.abs(prior.std(axis=0) - 1).max() < 0.05
    np.testing.assert_array_equal(samples.next_observations["desired_goal"].numpy(), goals)
    expected = -np.linalg.norm(next_achieved.astype(np.float64) - goals, axis=1)
    np.testing.assert_allclose(samples.rewards.numpy()[:, 0], expected, rtol=1e-6)


def test_relabelled_rewards_are_scaled_by_the_goal_std_when_configured() -> None:
    torch.manual_seed(0)
    vae = BetaVAE(z_dim=4)
    vae.set_goal_prior([0.0] * 4, [4.0, 0.5, 0.05, 1.0])
    samples = sample(filled_buffer(vae, (0.1, 0.5, 0.4), reward_scale="goal_std"))
    goals = samples.observations["desired_goal"].numpy().astype(np.float64)
    next_achieved = samples.next_observations["achieved_goal"].numpy().astype(np.float64)
    weights = np.array([0.25, 2.0, 0.0, 1.0])
    expected = -np.linalg.norm((next_achieved - goals) * weights, axis=1)
    np.testing.assert_allclose(samples.rewards.numpy()[:, 0], expected, rtol=1e-6)
    unscaled = -np.linalg.norm(next_achieved - goals, axis=1)
    assert np.abs(expected - unscaled).max() > 1.0, "the scaled rewards differ from the plain ones"


def test_cc_vae_prior_relabel_replaces_z_and_keeps_the_transition_context() -> None:
    torch.manual_seed(0)
    representation = CCVAE(z_dim=3, context_dim=2)
    samples = sample(filled_buffer(representation, (0.0, 1.0, 0.0)))
    goals = samples.observations["desired_goal"].numpy()
    achieved = samples.observations["achieved_goal"].numpy()
    np.testing.assert_array_equal(goals[:, 3:], achieved[:, 3:])
    assert np.abs(goals[:, :3]).max() < 10  # z came from N(0, I), not from the stored latents
    assert len(np.unique(goals[:, 3:], axis=0)) == EPISODES  # every episode kept its own context


def test_goal_fractions_are_checked() -> None:
    np.testing.assert_allclose(goal_fractions(0.1, 0.5, 0.4), [0.1, 0.5, 0.4])
    with pytest.raises(ValueError, match="sum to 1"):
        goal_fractions(0.2, 0.5, 0.4)
    with pytest.raises(ValueError, match="non-negative"):
        goal_fractions(-0.1, 0.7, 0.4)
