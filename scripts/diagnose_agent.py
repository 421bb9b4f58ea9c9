"""Where a trained goal-reaching agent loses: reaching per palette, contact, the reward's parts, the goals.

For each run it prints three tables, on the run's seeded real goals (``eval.seed`` onwards):
- **reaching**: final puck and hand distances of the agent, of the agent acting with its training
  exploration noise (``agent.action_noise``, as the episodes it learns from are collected), and of the
  random policy for each palette (``train`` and ``heldout`` on the multi-colour envs, so a gap between
  them is a generalisation gap), the share of episodes in which the hand touched the object, and how far
  the object moved;
- **reward by part**: the latent distance to the goal image from teleported scenes. From the reset scene,
  moving only the hand to its goal, only the object to its goal, or both (which must remove all of it),
  removes a share of the distance. The same shares of the true state distance stand beside them: where
  the latent share of the object is much smaller, the reward pays little for pushing. The interaction
  column is 1 when hand and object add up in the latent as they do in the true state (see
  ``rig.reward_geometry``);
- **imagined goals**: where the goals the agent trains on put hand and object. A linear probe from z to
  the true state, fitted on the run's training frames, reads each imagined goal, beside the same probe on
  encoded real goal images and the real goals' true states; the share of goals with the object at least
  ``FAR`` from its start is how often the agent practises long pushes, and the share of possible scenes
  (hand and object inside the walls, not overlapping) how many of the prior's goals can be reached at all;
- **reaching by distance**: the reaching table's final puck distance split by how far each goal puts the
  object from its start, so that a loss on long pushes shows apart from one on short ones.

    python3 scripts/diagnose_agent.py runs/ccrig runs/rig_multicolor

A run that is only pretrained (no agent yet) gets the last two tables. The reward-part table measures the
reward the run trains with (``agent.reward_scale``); ``--reward-scale`` measures another on the same run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
from gymnasium import spaces

from envs.push import HAND_RADIUS, PUCK_RADIUS, WALL_HALF_WIDTH
from rig.checkpoints import load_run
from rig.config import Config, Palette, RewardScale
from rig.data import FrameDataset
from rig.diagnostics.probes import fit_ridge
from rig.evaluate import NoisyPolicy, Policy, RandomPolicy
from rig.latent_env import GoalMode, LatentGoalEnv, make_latent_env
from rig.representation import RepresentationModule, load_representation
from rig.representation.inference import contexts_of, encode_dataset
from rig.reward_geometry import PARTS, part_interaction, reward_part_shares
from rig.rundir import RunDir
from rig.stages import set_training_goal_prior, stored_config

Array = np.ndarray
CONTACT = HAND_RADIUS + PUCK_RADIUS + 0.005
"""Hand-to-object centre distance (m) counted as touching, for the default puck size."""
FAR = 0.08
"""object start-to-goal distance (m) from which a goal counts as far; two thirds of rig/Push-v0's goals"""
DISTANCE_BINS = ((0.0, 0.04), (0.04, FAR), (FAR, np.inf))
"""start-to-goal distances (m) the reaching-by-distance table splits the episodes into"""


@dataclass(frozen=True)
class Reaching:
    """Means over one policy's real-goal episodes on one palette."""

    palette: str
    policy: str
    puck_distance: float
    hand_distance: float
    touched: float
    object_moved: float
    by_distance: tuple[tuple[int, float], ...]
    """(episodes, mean final puck distance) for each of ``DISTANCE_BINS``"""


def episode(policy: Policy, env: LatentGoalEnv, seed: int) -> tuple[float, float, bool, float, float]:
    """One real-goal episode: final puck and hand distance, whether the hand touched, object travel (m),
    and how far the goal puts the object from its start (m)."""
    obs, info = env.reset(seed=seed)
    start, closest, done = env.push.state[2:].copy(), np.inf, False
    needed = float(np.linalg.norm(env.push.goal[2:] - start))
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = env.step(action)
        closest = min(closest, info["touch_distance"])
        done = terminated or truncated
    moved = float(np.linalg.norm(env.push.state[2:] - start))
    return info["puck_distance"], info["hand_distance"], closest < CONTACT, moved, needed


def by_distance(final: Array, needed: Array) -> tuple[tuple[int, float], ...]:
    """(count, mean of ``final``) of the episodes in each of ``DISTANCE_BINS`` of ``needed``."""
    rows = []
    for low, high in DISTANCE_BINS:
        inside = (needed >= low) & (needed < high)
        rows.append((int(inside.sum()), float(final[inside].mean()) if inside.any() else float("nan")))
    return tuple(rows)


def reaching(
    cfg: Config, policy: Policy, rep: RepresentationModule, palette: Palette, episodes: int, seed: int
) -> list[Reaching]:
    """The agent, the agent with its training noise and the random policy on the same ``episodes`` seeded
    goals of ``palette``."""
    env = make_latent_env(cfg.env, rep, GoalMode.EVAL, seed, palette)
    assert isinstance(env.action_space, spaces.Box)
    rows = []
    actors: tuple[tuple[str, Policy], ...] = (
        ("agent", policy),
        ("agent + training noise", NoisyPolicy(policy, env.action_space, cfg.agent.action_noise, seed)),
        ("random", RandomPolicy(env.action_space, seed)),
    )
    try:
        for name, actor in actors:
            outcomes = np.array([episode(actor, env, seed + index) for index in range(episodes)], dtype=float)
            means = [float(value) for value in outcomes[:, :4].mean(axis=0)]
            rows.append(Reaching(palette, name, *means, by_distance(outcomes[:, 0], outcomes[:, 4])))
    finally:
        env.close()
    return rows


def load(run: RunDir, epochs: int | None = None) -> tuple[Config, RepresentationModule, Policy | None]:
    """The trained agent's config, representation and policy. For a run that is only pretrained: its
    config, its pretrained representation (the best weights of the budget of ``epochs`` epochs, when
    given) with the goal prior fitted as training fits it, and no policy."""
    if run.agent.checkpoint.is_file():
        if epochs is not None:
            raise SystemExit(f"diagnose_agent.py: --epochs reads pretraining runs; {run.root} has an agent")
        trained = load_run(run.agent.root)
        return trained.config, trained.representation.eval(), trained.model
    cfg = stored_config(run.root)
    weights = run.representation if epochs is None else run.pretrain_dir.best_at(epochs)
    if not weights.is_file():
        raise SystemExit(f"diagnose_agent.py: {weights} is missing (budgets kept: {budget_list(run)})")
    rep = load_representation(weights, map_location="cpu").eval()
    set_training_goal_prior(cfg, rep, run.frames)
    return cfg, rep, None


def budget_list(run: RunDir) -> str:
    pretrain = run.pretrain_dir
    kept = [str(epochs) for epochs in pretrain.budgets() if pretrain.best_at(epochs).is_file()]
    return ", ".join(kept) or "none"


def goal_readings(
    cfg: Config, rep: RepresentationModule, frames: FrameDataset, goals: int, seed: int
) -> dict[str, Array]:
    """(goals, 4) states of imagined goals and of encoded real goal images as a linear probe reads them,
    the real goals' true states (``true``), and (goals, 2) where each real-goal episode starts the object
    (``start``), against which all three are measured."""
    train = frames.split(heldout=False)
    z = slice(0, rep.z_dim)
    latents = encode_dataset(rep, frames.images[train], contexts_of(rep, frames, train))[:, z]
    weights, bias = fit_ridge(latents.astype(np.float64), frames.states[train].astype(np.float64), 1e-3)
    env = make_latent_env(cfg.env, rep, GoalMode.TRAIN, seed, "train")
    imagined, real, true, start = [], [], [], []
    try:
        for index in range(goals):
            env.set_mode(GoalMode.TRAIN)
            env.reset(seed=seed + index)
            imagined.append(env.latent_goal[z].copy())
            env.set_mode(GoalMode.EVAL)
            env.reset(seed=seed + index)
            real.append(env.latent_goal[z].copy())
            true.append(env.push.goal.copy())
            start.append(env.push.state[2:].copy())
    finally:
        env.close()
    probe = {
        name: np.asarray(values, np.float64) @ weights + bias
        for name, values in (("imagined", imagined), ("real", real))
    }
    return {**probe, "true": np.asarray(true), "start": np.asarray(start)}


def possible_scenes(states: Array) -> Array:
    """(goals,) whether each goal state (hand xy, puck xy) is a scene the pusher can show: hand and puck
    inside the walls and not overlapping. Every real goal is; an imagined one read as impossible cannot
    be reached, however the agent acts."""
    hand, puck = states[:, :2], states[:, 2:]
    inside = np.all(np.abs(hand) <= WALL_HALF_WIDTH - HAND_RADIUS, axis=1)
    inside &= np.all(np.abs(puck) <= WALL_HALF_WIDTH - PUCK_RADIUS, axis=1)
    return inside & (np.linalg.norm(hand - puck, axis=1) >= HAND_RADIUS + PUCK_RADIUS)


def goal_summary(states: Array, start: Array) -> str:
    """The goals table's columns for goal ``states`` (goals, 4), the object starting at ``start``."""
    hand, puck = states[:, :2], states[:, 2:]
    from_start = np.linalg.norm(puck - start, axis=1)
    return (
        f"{possible_scenes(states).mean():.2f} | "
        f"{from_start.mean():.3f} | {np.mean(from_start >= FAR):.2f} | "
        f"{puck[:, 0].std():.3f} / {puck[:, 1].std():.3f} | "
        f"{np.linalg.norm(hand - puck, axis=1).mean():.3f} | {hand[:, 0].std():.3f} / {hand[:, 1].std():.3f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=20, help="real-goal episodes per palette and policy")
    parser.add_argument("--goals", type=int, default=200, help="goals for the reward-part and goal tables")
    parser.add_argument(
        "--epochs",
        type=int,
        help="a pretraining run's budget to read (its pretrain/best_epochs<N>.pt); default: its best.pt",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="first goal seed (default: the run's eval.seed)"
    )
    parser.add_argument(
        "--reward-scale",
        choices=get_args(RewardScale),
        help="the reward whose parts are measured (default: the run's agent.reward_scale)",
    )
    args = parser.parse_args(argv)
    tables: dict[str, list[str]] = {
        "reaching": [
            "| run | palette | policy | final puck (m) | final hand (m) | touched | object moved (m) |",
            "|---|---|---|---|---|---|---|",
        ],
        "parts": [
            "| run | palette | goals | latent share: hand only / object only / both | interaction "
            "| cosine of the parts' moves | non-additivity | true-state share: hand only / object only |",
            "|---|---|---|---|---|---|---|---|",
        ],
        "goals": [
            f"| run | goals | possible scene | puck from start (m) | share >= {FAR} m | puck std x / y "
            "| hand to puck (m) "
            "| hand std x / y |",
            "|---|---|---|---|---|---|---|---|",
        ],
        "by_distance": [
            "| run | palette | policy | "
            + " | ".join(f"puck {low:.2f}-{high:.2f} m: episodes, final (m)" for low, high in DISTANCE_BINS)
            + " |",
            "|---|---|---|" + "---|" * len(DISTANCE_BINS),
        ],
    }
    for run_dir in args.run_dirs:
        run = RunDir(run_dir)
        cfg, rep, policy = load(run, args.epochs)
        seed = cfg.eval.seed if args.seed is None else args.seed
        palettes: list[Palette] = ["train", "heldout"] if cfg.env.id != "rig/Push-v0" else ["train"]
        for palette in palettes if policy is not None else ():
            for row in reaching(cfg, policy, rep, palette, args.episodes, seed):
                tables["reaching"].append(
                    f"| {run_dir} | {palette} | {row.policy} | {row.puck_distance:.4f} | "
                    f"{row.hand_distance:.4f} | {row.touched:.2f} | {row.object_moved:.4f} |"
                )
                tables["by_distance"].append(
                    f"| {run_dir} | {palette} | {row.policy} | "
                    + " | ".join(f"{count}, {final:.4f}" for count, final in row.by_distance)
                    + " |"
                )
        if rep.input_kind != "image":
            continue
        for palette in palettes:
            scale = args.reward_scale or cfg.agent.reward_scale
            parts = reward_part_shares(cfg.env, rep, palette, args.goals, seed, reward_scale=scale)
            if not len(parts["latent_both"]):
                tables["parts"].append(f"| {run_dir} | {palette} | 0 | — | — | — | — | — |")
                continue
            shares, count = {key: value.mean() for key, value in parts.items()}, len(parts["latent_both"])
            tables["parts"].append(
                f"| {run_dir} | {palette} | {count} | "
                + " / ".join(f"{shares['latent_' + part]:.2f}" for part in PARTS)
                + f" | {part_interaction(parts).mean():.2f}"
                + f" | {shares['part_cosine']:+.2f} | {shares['part_nonadditivity']:.2f}"
                + f" | {shares['true_hand']:.2f} / {shares['true_object']:.2f} |"
            )
        readings = goal_readings(cfg, rep, FrameDataset.load(run.frames), args.goals, seed)
        for name, label in (
            ("imagined", "imagined (probe)"),
            ("real", "real images (probe)"),
            ("true", "real (true state)"),
        ):
            summary = goal_summary(readings[name], readings["start"])
            tables["goals"].append(f"| {run_dir} | {label} | {summary} |")
    print("\n\n".join("\n".join(table) for table in tables.values()))


if __name__ == "__main__":
    main()
