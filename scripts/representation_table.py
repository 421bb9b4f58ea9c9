"""Pretrain the representations of several configs over seeds, then tabulate their held-out-colour metrics.

Each (config, seed) is collected and pretrained into ``--out/<config>/seed=<seed>`` by ``rig.sweep``, one
sweep per config that stops after the pretrain stage, ``--jobs`` trials at a time with one torch thread
each; one whose ``pretrain/metrics.json`` exists is not run again. The table gives, per config, the mean ±
sample std over seeds of what ``rig pretrain`` measures on frames of colours never seen in training (the
``heldout_colours`` entry of ``metrics.json``), and the number of seeds that meet the CC-RIG targets of the
config's env.
Where the directories hold whole runs (an agent's ``eval.json`` beside the pretraining), it also asks which
measure predicts the agent: the Spearman rank correlation, over every run of every config given, between
each measure and the agent's final puck distance.

    python scripts/representation_table.py ccrig rig_multicolor --seeds 0,1,2,3,4
    python scripts/representation_table.py ccrig --seeds 0 vae.z_dim=8 --out runs/repr_z8
    python scripts/representation_table.py ccrig rig_multicolor --no-run     # tabulate only
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from scipy import stats

from rig.config import load_config
from rig.diagnostics.metrics import colour_generalisation
from rig.rundir import RunDir
from rig.stats import summarize
from rig.sweep import run_sweep

COLUMNS = (
    ("probe_r2_hand", "probe R² hand (z)"),
    ("probe_r2_puck", "probe R² object (z)"),
    ("knn_probe_r2_hand", "5-NN R² hand (z)"),
    ("knn_probe_r2_puck", "5-NN R² object (z)"),
    ("spearman", "Spearman (z)"),
    ("spearman_within_episode", "Spearman within episode"),
    ("prior_colour_match", "prior colour match"),
    ("part_interaction", "reward part interaction"),
)
TARGETS = {"probe_r2_hand": 0.9, "probe_r2_puck": 0.9, "spearman": 0.8, "prior_colour_match": 0.9}
"""The CC-RIG issue's targets on rig/PushMultiColor-v0."""
MULTI_OBJECT_TARGETS = {**TARGETS, "probe_r2_hand": 0.8, "probe_r2_puck": 0.8}
"""Its targets on rig/PushMultiObject-v0, where size and shape change too."""


def targets(config: str) -> dict[str, float]:
    """The targets for the env of ``config`` (a config in configs/)."""
    multi_object = load_config(config).env.id == "rig/PushMultiObject-v0"
    return MULTI_OBJECT_TARGETS if multi_object else TARGETS


def run_dir(out: Path, config: str, seed: int) -> Path:
    return out / config / f"seed={seed}"


def pretrain(configs: list[str], seeds: list[int], out: Path, overrides: list[str], jobs: int) -> None:
    """Collect and pretrain each (config, seed) not yet pretrained: one ``rig.sweep`` per config, up to the
    pretrain stage, ``jobs`` trials at a time with one torch thread each."""
    cpus_per_trial = (os.cpu_count() or 1) / jobs
    for config in configs:
        missing = [
            seed for seed in seeds if not RunDir(run_dir(out, config, seed)).pretrain_metrics.is_file()
        ]
        if missing:
            run_sweep(
                config, overrides, missing, out / config, resources={"cpu": cpus_per_trial}, until="pretrain"
            )


def heldout_metrics(directory: Path) -> dict[str, float] | None:
    path = RunDir(directory).pretrain_metrics
    return colour_generalisation(json.loads(path.read_text())) if path.is_file() else None


def agent_distance(directory: Path) -> float | None:
    """The final puck distance of the run's agent, when the directory holds a whole run."""
    path = RunDir(directory).eval
    return float(json.loads(path.read_text())["puck_distance_mean"]) if path.is_file() else None


def predictors(configs: list[str], seeds: list[int], out: Path) -> list[str]:
    """Spearman rank correlation of each measure with the agent's final puck distance, over all runs.

    A measure of a better representation should correlate negatively with the distance (probes,
    Spearman, colour) or positively (the part interaction). Nothing is printed with fewer than 4 runs.
    """
    pairs = []
    for config in configs:
        for seed in seeds:
            metrics, distance = (
                heldout_metrics(run_dir(out, config, seed)),
                agent_distance(run_dir(out, config, seed)),
            )
            if metrics is not None and distance is not None:
                pairs.append((metrics, distance))
    if len(pairs) < 4:
        return []
    lines = [f"rank correlation with the agent's final puck distance, over {len(pairs)} runs:"]
    for key, title in COLUMNS:
        measured = [(float(m[key]), d) for m, d in pairs if key in m]
        values, distances = [x for x, _ in measured], [d for _, d in measured]
        if len(measured) < 4 or len(set(values)) < 2 or len(set(distances)) < 2:
            continue  # no rank correlation of a constant
        rho, p_value = stats.spearmanr(values, distances)
        if math.isfinite(rho):
            lines.append(f"  {title}: Spearman {rho:+.2f} (p = {p_value:.3f}, {len(measured)} runs)")
    return lines


def table(configs: list[str], seeds: list[int], out: Path) -> list[str]:
    header = ["config", "seeds", *(title for _, title in COLUMNS), "seeds meeting the targets"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for config in configs:
        measured = [m for m in (heldout_metrics(run_dir(out, config, s)) for s in seeds) if m is not None]
        if not measured:
            lines.append(f"| {config} | 0 |" + " — |" * (len(header) - 2))
            continue
        cells = []
        for key, _ in COLUMNS:
            values = [float(m[key]) for m in measured if key in m]
            summary = summarize(values) if values else None
            cells.append(f"{summary.mean:.3f} ± {summary.std:.3f}" if summary else "—")
        bounds = targets(config)
        met = sum(all(m[key] >= bound for key, bound in bounds.items()) for m in measured)
        lines.append(f"| {config} | {len(measured)} | " + " | ".join(cells) + f" | {met} / {len(measured)} |")
    return lines


def per_seed(configs: list[str], seeds: list[int], out: Path) -> list[str]:
    lines = []
    for config in configs:
        for seed in seeds:
            metrics = heldout_metrics(run_dir(out, config, seed))
            if metrics is not None:
                values = ", ".join(f"{key} {float(metrics[key]):.3f}" for key, _ in COLUMNS if key in metrics)
                distance = agent_distance(run_dir(out, config, seed))
                if distance is not None:
                    values += f", agent final puck distance {distance:.4f} m"
                lines.append(f"{config} seed {seed}: {values}")
    return lines


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("configs", nargs="+", help="configs in configs/, then any key=value overrides")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", type=Path, default=Path("runs/representations"))
    parser.add_argument("--jobs", type=int, default=2, help="pretraining runs at a time (one thread each)")
    parser.add_argument("--no-run", action="store_true", help="only tabulate what is already there")
    args = parser.parse_intermixed_args()
    configs = [item for item in args.configs if "=" not in item]
    overrides = [item for item in args.configs if "=" in item]
    seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()]
    if not configs or not seeds or args.jobs < 1:
        parser.error("give at least one config and one seed, and --jobs >= 1")
    if not args.no_run:
        pretrain(configs, seeds, args.out, overrides, args.jobs)
    print("\n".join(table(configs, seeds, args.out)))
    print("\n".join(per_seed(configs, seeds, args.out)))
    print("\n".join(predictors(configs, seeds, args.out)))


if __name__ == "__main__":
    main()
