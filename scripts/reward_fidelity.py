"""Does the latent reward rank states as the true goal distance does, along the agent's own episodes?

An image agent is paid minus the latent distance between its frame's code and the goal image's code; it
is judged by the env's own goal distance (the first goal metric, e.g. ``goal_distance`` or
``puck_distance``). This script runs the run's trained policy on its real goal images (the evaluation's
seeded goals, ``--seed`` onwards) and, at every step, records both distances. It prints:

- **spearman**: the rank correlation of latent and true distance over all steps of all episodes;
- **near**: the same over the quarter of the steps nearest the goal by true distance, where the last
  part of reaching happens;
- **success AUC**: the chance that a step the env counts as a success has a smaller latent distance than
  one it does not (1: the latent reward separates them perfectly; 0.5: not at all);
- the share of episodes whose step of least latent distance is also a success, beside the share that
  reach success at any step and the share that end in it (the evaluation's success rate). An agent that
  reaches the goal but does not end there is losing after the reward has found the goal.

    python3 scripts/reward_fidelity.py runs/rig_pointmaze/seed0 runs/rig_door/seed0
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from rig.checkpoints import load_run
from rig.evaluate import acting, roll_out
from rig.latent_env import GoalMode, make_latent_env
from rig.rundir import RunDir

Array = np.ndarray


@dataclass(frozen=True)
class Fidelity:
    metric: str
    episodes: int
    spearman: float
    near_spearman: float
    near_steps: int
    success_auc: float
    best_latent_step_succeeds: float
    reached: float
    ended: float


def success_auc(latent: Array, success: Array) -> float:
    """P(latent distance of a success step < that of a failure step), ties counting half; nan if either
    kind of step is missing."""
    hits, misses = latent[success], latent[~success]
    if len(hits) == 0 or len(misses) == 0:
        return float("nan")
    statistic = stats.mannwhitneyu(misses, hits, alternative="two-sided").statistic
    return float(statistic) / (len(hits) * len(misses))


def rank_correlation(latent: Array, true: Array) -> float:
    if len(latent) < 3 or np.ptp(latent) == 0 or np.ptp(true) == 0:
        return float("nan")
    return float(stats.spearmanr(latent, true).statistic)


def measure(run_dir: Path, episodes: int, seed: int) -> Fidelity:
    trained = load_run(RunDir(run_dir).agent.root)
    cfg, model = trained.config, trained.model
    if trained.representation.input_kind != "image":
        raise ValueError(f"{run_dir}: the agent sees the true state, so there is no latent reward to check")
    env = make_latent_env(cfg.env, trained.representation.eval(), GoalMode.EVAL, seed, cfg.env.eval_palette)
    metric = env.goal_metrics[0].name
    latent: list[float] = []
    true: list[float] = []
    success: list[bool] = []
    best_succeeds, reached, ended = [], [], []
    try:
        for index in range(episodes):
            infos = roll_out(acting(model), env, seed + index).infos
            episode_latent = [float(info["latent_distance"]) for info in infos]
            episode_success = [bool(info["is_success"]) for info in infos]
            true.extend(float(info[metric]) for info in infos)
            latent.extend(episode_latent)
            success.extend(episode_success)
            best_succeeds.append(episode_success[int(np.argmin(episode_latent))])
            reached.append(any(episode_success))
            ended.append(episode_success[-1])
    finally:
        env.close()
    latent_array, true_array, success_array = np.asarray(latent), np.asarray(true), np.asarray(success)
    close = true_array <= np.quantile(true_array, 0.25)
    return Fidelity(
        metric, episodes, rank_correlation(latent_array, true_array),
        rank_correlation(latent_array[close], true_array[close]), int(close.sum()),
        success_auc(latent_array, success_array), float(np.mean(best_succeeds)),
        float(np.mean(reached)), float(np.mean(ended)),
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of image agents")
    parser.add_argument("--episodes", type=int, default=20, help="real-goal episodes per run (default 20)")
    parser.add_argument("--seed", type=int, default=10_000, help="first goal seed (default 10000: eval's)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    print(
        "| run | metric | episodes | spearman | near (steps) | success AUC | least latent step succeeds "
        "| reached | ended |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for run_dir in args.runs:
        try:
            row = measure(run_dir, args.episodes, args.seed)
        except ValueError as error:
            parser.exit(2, f"reward_fidelity.py: error: {error}\n")
        print(
            f"| {run_dir} | {row.metric} | {row.episodes} | {row.spearman:.2f} | "
            f"{row.near_spearman:.2f} ({row.near_steps}) | {row.success_auc:.2f} | "
            f"{row.best_latent_step_succeeds:.2f} | {row.reached:.2f} | {row.ended:.2f} |"
        )


if __name__ == "__main__":
    main()
