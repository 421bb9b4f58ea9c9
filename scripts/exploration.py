"""Does exploration reach the goal? How far the achieved goal moves in the episodes an agent trains on.

An agent whose reward depends only on an object it never moves has nothing to learn from: every
transition pays the same. This script measures, for each run, how often the env's achieved goal (the
object, in the env's own state units) moves during training-style episodes:

- **agent**: the run's final policy with its training exploration (TD3's Gaussian action noise of
  ``agent.action_noise`` on the scaled action; SAC's own stochastic policy), on imagined goals, as it
  collects its data late in training;
- **random**: uniform random actions on the same seeds, as the agent collects before ``learning_starts``;
- **replay**: the agent's own training episodes, read from its last replay buffer, where that buffer
  holds the true achieved goal (the state oracle's does; an image agent's holds latents and is skipped).

For each it prints the share of episodes whose achieved goal moved more than ``--moved`` from where it
started (at any step), and the mean of that largest displacement.

    python3 scripts/exploration.py runs/oracle_pusher/seed0 runs/rig_pusher/seed0 --episodes 50
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gymnasium import spaces

from rig.checkpoints import load_run
from rig.evaluate import roll_out
from rig.latent_env import GoalMode, LatentGoalEnv, Obs, make_latent_env
from rig.rundir import RunDir

Array = np.ndarray
Actor = Callable[[Obs], Array]


@dataclass(frozen=True)
class Motion:
    """How far the achieved goal moved in one set of episodes."""

    source: str
    episodes: int
    moved_share: float
    mean_displacement: float


def largest_displacements(achieved: Array) -> Array:
    """(episodes,) largest distance of the achieved goal from its start, from (episodes, steps, d)."""
    return np.linalg.norm(achieved - achieved[:, :1], axis=-1).max(axis=1)


def summary(source: str, displacements: Array, moved: float) -> Motion:
    share = float(np.mean(displacements > moved))
    return Motion(source, len(displacements), share, float(displacements.mean()))


def exploring_actor(model: object, action_space: spaces.Box, noise: float, seed: int) -> Actor:
    """The trained policy acting as it does in training (see the module docstring)."""
    rng = np.random.default_rng(seed)
    policy = model.policy  # type: ignore[attr-defined]
    stochastic = type(model).__name__ == "SAC"

    def act(obs: Obs) -> Array:
        action, _ = model.predict(obs, deterministic=not stochastic)  # type: ignore[attr-defined]
        if stochastic or noise == 0.0:
            return np.asarray(action)
        scaled = policy.scale_action(np.asarray(action))
        scaled = np.clip(scaled + rng.normal(0.0, noise, size=scaled.shape), -1.0, 1.0)
        return np.asarray(policy.unscale_action(scaled))

    return act


def random_actor(action_space: spaces.Box, seed: int) -> Actor:
    action_space.seed(seed)
    return lambda _obs: action_space.sample()


def rollout_displacements(env: LatentGoalEnv, actor: Actor, episodes: int, seed: int) -> Array:
    """Largest achieved-goal displacement of each of ``episodes`` imagined-goal episodes."""
    achieved = [np.asarray(roll_out(actor, env, seed + index).achieved) for index in range(episodes)]
    return np.asarray([largest_displacements(episode[None])[0] for episode in achieved])


def replay_displacements(run: RunDir, state_goals: bool) -> Array | None:
    """Largest achieved-goal displacement of each complete episode in the run's last replay buffer, or
    ``None`` when the buffer holds latents rather than the env's achieved goal."""
    buffers = sorted(run.agent.root.glob("checkpoints/replay_buffer_*.pkl"))
    if not buffers or not state_goals:
        return None
    with open(buffers[-1], "rb") as handle:
        buffer = pickle.load(handle)
    size = buffer.buffer_size if buffer.full else buffer.pos
    achieved = buffer.observations["achieved_goal"][:size, 0]
    starts, lengths = buffer.ep_start[:size, 0], buffer.ep_length[:size, 0]
    episodes = []
    for start in np.unique(starts):
        length = int(lengths[start])
        if length == 0 or start + length > size:
            continue
        episodes.append(largest_displacements(achieved[start : start + length][None])[0])
    return np.asarray(episodes) if episodes else None


def measure(run_dir: Path, episodes: int, seed: int, moved: float) -> list[Motion]:
    run = RunDir(run_dir)
    trained = load_run(run.agent.root)
    cfg = trained.config
    env = make_latent_env(cfg.env, trained.representation.eval(), GoalMode.TRAIN, seed, "train")
    assert isinstance(env.action_space, spaces.Box)
    actors = {
        "agent": exploring_actor(trained.model, env.action_space, cfg.agent.action_noise, seed),
        "random": random_actor(env.action_space, seed),
    }
    try:
        rows = [
            summary(source, rollout_displacements(env, actor, episodes, seed), moved)
            for source, actor in actors.items()
        ]
        replay = replay_displacements(run, state_goals=not env.uses_images)
    finally:
        env.close()
    if replay is not None:
        rows.append(summary("replay", replay, moved))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with a trained agent")
    parser.add_argument("--episodes", type=int, default=50, help="episodes per policy (default 50)")
    parser.add_argument("--seed", type=int, default=20000, help="first episode seed (default 20000)")
    parser.add_argument(
        "--moved", type=float, default=0.01, help="displacement that counts as moved, in the goal's units"
    )
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    print(f"| run | episodes from | episodes | goal moved > {args.moved:g} | mean largest displacement |")
    print("|---|---|---|---|---|")
    for run_dir in args.runs:
        for row in measure(run_dir, args.episodes, args.seed, args.moved):
            share, displacement = f"{row.moved_share:.2f}", f"{row.mean_displacement:.4f}"
            print(f"| {run_dir} | {row.source} | {row.episodes} | {share} | {displacement} |")


if __name__ == "__main__":
    main()
