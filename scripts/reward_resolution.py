"""Does the latent reward still pay for the last centimetres? Near-goal scenes, one part moved at a time.

For each run's representation and its seeded real goals (``eval.seed`` onwards, the evaluation palette),
the goal scene is teleported with one part, the hand or the object, moved 1, 2 and 4 cm from its goal in
8 directions (``rig.reward_geometry.near_goal_distances``). It prints, per part:

- **pay at r**: the latent distance to the goal image's latent, as a share of the goal's latent distance
  from its reset scene, over r as a share of the true distance from the reset scene. 1 pays the part's
  error as the true state does, in proportion to the whole task; below 1 the reward underpays it;
- **ranked**: the chance that a scene moved farther (2 against 1 cm, 4 against 2 cm) has the larger
  latent distance, within the same goal; 1 separates them always, 0.5 never.

A reward that pays the object's last centimetres less than the hand's asks the agent to hold the hand
still at its goal rather than push the object the last bit.

    python3 scripts/reward_resolution.py runs/rig/seed0 runs/rig_multicolor/seed0 --goals 50

``--epochs N`` measures the weights a pretraining kept for that budget (``best_epochs<N>.pt``). The
distances are those of the reward the run trains with (``agent.reward_scale``), or of ``--reward-scale``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

import numpy as np

from rig.config import RewardScale
from rig.representation import load_representation
from rig.reward_geometry import RESOLUTION_RADII, near_goal_distances, ranked_above
from rig.rundir import RunDir
from rig.stages import set_training_goal_prior, stored_config

Array = np.ndarray


def resolution_rows(distances: dict[str, Array], radii: tuple[float, ...]) -> list[dict[str, float | str]]:
    """One row per part: the pay at each radius and the ranking of each radius against the one before."""
    scale = distances["start"] / distances["true_start"]  # latent distance per metre of the whole task
    rows: list[dict[str, float | str]] = []
    for part in ("hand", "object"):
        row: dict[str, float | str] = {"part": part}
        for r in radii:
            row[f"pay {r * 100:g} cm"] = float(np.nanmean(distances[f"{part}_{r:g}"] / (r * scale)))
        for near, far in zip(radii, radii[1:], strict=False):
            row[f"ranked {far * 100:g} > {near * 100:g} cm"] = ranked_above(
                distances[f"{part}_{far:g}"], distances[f"{part}_{near:g}"]
            )
        rows.append(row)
    return rows


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with a pretrained representation")
    parser.add_argument("--goals", type=int, default=50, help="seeded real goals per run")
    parser.add_argument("--epochs", type=int, help="measure the weights of this pretraining budget")
    parser.add_argument(
        "--reward-scale",
        choices=get_args(RewardScale),
        help="the reward whose distances are measured (default: the run's agent.reward_scale)",
    )
    args = parser.parse_args()
    header: list[str] = []
    for run_dir in args.runs:
        cfg = stored_config(run_dir)
        pretrain = RunDir(run_dir).pretrain_dir
        best = pretrain.best if args.epochs is None else pretrain.best_at(args.epochs)
        if not best.is_file():
            raise SystemExit(f"reward_resolution.py: {best} is missing; pretrain the run first")
        rep = load_representation(best, map_location="cpu").eval()
        scale = args.reward_scale or cfg.agent.reward_scale
        if scale != "none":  # the scale is the goal prior's std, fitted as the train stage fits it
            set_training_goal_prior(cfg, rep, RunDir(run_dir).frames)
        distances = near_goal_distances(
            cfg.env, rep, cfg.env.eval_palette, args.goals, cfg.eval.seed, reward_scale=scale
        )
        for row in resolution_rows(distances, RESOLUTION_RADII):
            if not header:
                header = ["run", "goals", *row]
                print("| " + " | ".join(header) + " |")
                print("|" + "---|" * len(header))
            cells = [str(run_dir), str(len(distances["start"]))]
            cells += [value if isinstance(value, str) else f"{value:.2f}" for value in row.values()]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
