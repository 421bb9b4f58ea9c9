"""Do an image agent's latents say how the achieved goal moves, and not only where it is?

An agent that must stop on its goal (a ball driven by forces, say) needs the velocity; a single frame's
latent holds the position at best. Given the latents of two frames ``gap`` steps apart (what
``env.frame_stack`` hands the agent, for a gap of one step), how well can the achieved goal's displacement
over those steps be read from them? This script runs the run's trained policy on its real goal images
(the evaluation's seeded goals, ``--seed`` onwards), keeps each step's latent and true achieved goal, and
fits probes on three quarters of the episodes, scored on the rest:

- **position**: the achieved goal from one frame's latent, for reference;
- **displacement, per gap**: ``achieved[t] - achieved[t - gap]`` from ``[z_t, z_(t - gap)]``.

Each probe is linear (ridge) and k-nearest-neighbour (``rig.diagnostics.probes``): information that is
in the code but folded shows in the second alone. R^2 near 0 means the pair says nothing about the motion.

    python3 scripts/motion_probe.py runs/rig_pointmaze/seed0 --gaps 1 2 4 8 16
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rig.checkpoints import load_run
from rig.diagnostics.probes import knn_probe_r2, linear_probe_r2
from rig.evaluate import acting, roll_out
from rig.latent_env import GoalMode, make_latent_env
from rig.rundir import RunDir

Array = np.ndarray
HELDOUT_EVERY = 4
"""every fourth episode is held out to score the probes"""


@dataclass(frozen=True)
class Readings:
    """One run's real-goal episodes: per episode, each step's latent (T, z) and true achieved goal (T, d)."""

    latents: list[Array]
    achieved: list[Array]


@dataclass(frozen=True)
class Probe:
    target: str
    gap: int
    mean_size: float
    """mean norm of the target over the held-out pairs (env units)"""
    linear_r2: float
    knn_r2: float


def read_episodes(run_dir: Path, episodes: int, seed: int) -> Readings:
    """The trained policy's real-goal episodes on ``run_dir``'s env, seeds ``seed`` onwards."""
    trained = load_run(RunDir(run_dir).agent.root)
    cfg = trained.config
    if trained.representation.input_kind != "image":
        raise ValueError(f"{run_dir}: the agent sees the true state, so there is no latent to probe")
    env = make_latent_env(cfg.env, trained.representation.eval(), GoalMode.EVAL, seed, cfg.env.eval_palette)
    latents, achieved = [], []
    try:
        for index in range(episodes):
            rollout = roll_out(acting(trained.model), env, seed + index)
            latents.append(np.stack([obs["achieved_goal"] for obs in rollout.observations]))
            achieved.append(np.stack(rollout.achieved[:-1]))
    finally:
        env.close()
    return Readings(latents, achieved)


def displacement_pairs(latents: Array, achieved: Array, gap: int) -> tuple[Array, Array]:
    """Inputs ``[z_t, z_(t - gap)]`` and targets ``achieved[t] - achieved[t - gap]`` for every t >= gap."""
    if gap < 1 or gap >= len(latents):
        raise ValueError(
            f"gap must be at least 1 and shorter than the episode ({len(latents)} steps), got {gap}"
        )
    inputs = np.concatenate([latents[gap:], latents[:-gap]], axis=1)
    return inputs, achieved[gap:] - achieved[:-gap]


def probe(target: str, gap: int, pairs: list[tuple[Array, Array]]) -> Probe:
    """Linear and kNN probes fitted on all but every ``HELDOUT_EVERY``-th episode's pairs, scored on those."""
    if len(pairs) < HELDOUT_EVERY:
        raise ValueError(f"the probes need at least {HELDOUT_EVERY} episodes, got {len(pairs)}")
    test = [pair for index, pair in enumerate(pairs) if index % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    train = [pair for index, pair in enumerate(pairs) if index % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    train_x, train_y = (np.concatenate([pair[part] for pair in train]) for part in (0, 1))
    test_x, test_y = (np.concatenate([pair[part] for pair in test]) for part in (0, 1))
    return Probe(
        target, gap, float(np.linalg.norm(test_y, axis=1).mean()),
        linear_probe_r2(train_x, train_y, test_x, test_y), knn_probe_r2(train_x, train_y, test_x, test_y),
    )  # fmt: skip


def measure(readings: Readings, gaps: Sequence[int]) -> list[Probe]:
    """The position probe, then one displacement probe per gap."""
    episodes = list(zip(readings.latents, readings.achieved, strict=True))
    rows = [probe("position", 0, episodes)]
    for gap in gaps:
        rows.append(probe("displacement", gap, [displacement_pairs(z, a, gap) for z, a in episodes]))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of image agents")
    parser.add_argument("--gaps", type=int, nargs="+", default=[1, 2, 4, 8], help="steps between the frames")
    parser.add_argument("--episodes", type=int, default=20, help="real-goal episodes per run (default 20)")
    parser.add_argument("--seed", type=int, default=10_000, help="first goal seed (default 10000: eval's)")
    args = parser.parse_args(argv)
    if args.episodes < HELDOUT_EVERY:
        parser.error(f"--episodes must be at least {HELDOUT_EVERY}")
    if min(args.gaps) < 1:
        parser.error("--gaps must be whole numbers of steps, at least 1")
    print("| run | probe | gap (steps) | mean size (env units) | linear R² | kNN R² |")
    print("|---|---|---|---|---|---|")
    for run_dir in args.runs:
        try:
            rows = measure(read_episodes(run_dir, args.episodes, args.seed), args.gaps)
        except ValueError as error:
            parser.exit(2, f"motion_probe.py: error: {error}\n")
        for row in rows:
            gap = "–" if row.target == "position" else str(row.gap)
            print(
                f"| {run_dir} | {row.target} | {gap} | {row.mean_size:.3f} | {row.linear_r2:.2f} | "
                f"{row.knn_r2:.2f} |"
            )


if __name__ == "__main__":
    main()
