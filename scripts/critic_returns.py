"""Does the critic know what its policy earns? Q estimates against the discounted returns it really gets.

For each run, the trained policy acts deterministically from seeded resets, on real goal images
(``eval``) and on goals imagined as in training (``train``). Each episode runs ``--horizon`` steps with
the goal held, far past the training episode length: SB3 treats the time limit as a cut, not an end, so
the critic values an endless episode, and ``gamma ** horizon`` is what the cut-off tail can still weigh.
For every step ``t`` of the training episode length the script compares the first critic's
``Q(s_t, a_t)`` with the discounted sum of the rewards that followed, ``G_t``, under the run's own reward
(the latent distance to the goal, or its sparse form). It prints the means over steps and episodes,
their difference (positive: the critic overestimates) and the mean absolute error, plus the mean reward
at the end of the training episode length as the scale of one step's pay.

    python3 scripts/critic_returns.py runs/rig/seed0 runs/rig_100k/seed0 --episodes 20
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from rig.checkpoints import load_run
from rig.evaluate import acting, roll_out
from rig.latent_env import GoalMode, Obs, make_latent_env
from rig.rundir import RunDir

Array = np.ndarray


@dataclass(frozen=True)
class CriticCheck:
    """Means over episodes and over the first ``steps`` steps of each."""

    goals: str
    episodes: int
    steps: int
    q: float
    returns: float
    bias: float
    abs_error: float
    final_reward: float


def discounted_returns(rewards: Array, gamma: float) -> Array:
    """``G_t = sum_k gamma**k r_{t+k}`` for every ``t`` of one episode's rewards."""
    returns = np.empty(len(rewards), dtype=np.float64)
    running = 0.0
    for index in range(len(rewards) - 1, -1, -1):
        running = float(rewards[index]) + gamma * running
        returns[index] = running
    return returns


def critic_values(model: object, observations: list[Obs], actions: Array) -> Array:
    """The first critic's Q of each (observation, action) pair."""
    policy = model.policy  # type: ignore[attr-defined]
    batch = {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
    with torch.no_grad():
        obs_tensor, _ = policy.obs_to_tensor(batch)
        scaled = torch.as_tensor(policy.scale_action(actions), dtype=torch.float32, device=policy.device)
        q_values = policy.critic(obs_tensor, scaled)[0]
    return q_values.squeeze(-1).cpu().numpy().astype(np.float64)


def check(run_dir: Path, goals: GoalMode, episodes: int, horizon: int, seed: int) -> CriticCheck:
    trained = load_run(RunDir(run_dir).agent.root)
    cfg, model = trained.config, trained.model
    steps = cfg.env.max_episode_steps
    if horizon < steps:
        raise ValueError(f"--horizon {horizon} is shorter than the run's episodes ({steps} steps)")
    env_cfg = replace(cfg.env, max_episode_steps=horizon)
    env = make_latent_env(
        env_cfg, trained.representation.eval(), goals, seed, "train", reward=cfg.agent.reward,
        sparse_threshold=cfg.agent.sparse_threshold, reward_scale=cfg.agent.reward_scale,
    )  # fmt: skip
    q_values, returns, final_rewards = [], [], []
    try:
        for index in range(episodes):
            rollout = roll_out(acting(model), env, seed + index)
            q_values.append(
                critic_values(model, rollout.observations[:steps], np.asarray(rollout.actions[:steps]))
            )
            returns.append(discounted_returns(np.asarray(rollout.rewards), cfg.agent.gamma)[:steps])
            final_rewards.append(rollout.rewards[steps - 1])
    finally:
        env.close()
    q, g = np.concatenate(q_values), np.concatenate(returns)
    return CriticCheck(
        goals.value, episodes, steps, float(q.mean()), float(g.mean()), float((q - g).mean()),
        float(np.abs(q - g).mean()), float(np.mean(final_rewards)),
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with a trained agent")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per goal source (default 20)")
    parser.add_argument("--horizon", type=int, default=600, help="steps per episode (default 600)")
    parser.add_argument("--seed", type=int, default=10_000, help="first reset seed (default 10000: eval's)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    print("| run | goals | episodes | mean Q | mean return | Q - return | mean abs error | final reward |")
    print("|---|---|---|---|---|---|---|---|")
    for run_dir in args.runs:
        for goals in (GoalMode.EVAL, GoalMode.TRAIN):
            try:
                row = check(run_dir, goals, args.episodes, args.horizon, args.seed)
            except ValueError as error:
                parser.exit(2, f"critic_returns.py: error: {error}\n")
            cells = (row.q, row.returns, row.bias, row.abs_error, row.final_reward)
            numbers = " | ".join(f"{value:.3f}" for value in cells)
            print(f"| {run_dir} | {row.goals} | {row.episodes} | {numbers} |")


if __name__ == "__main__":
    main()
