"""Recompute a run's representation metrics (linear and k-nearest-neighbour probes, Spearman) from its files.

Runs pretrained before the kNN probe was added to ``metrics.json`` can be measured with this without
retraining. The kNN probe is the baseline the linear probe is read against: when it is high and the
linear one is low, the latent holds the position but folds it.

    python scripts/probe_latents.py runs/rig/seed=0 runs/rig/seed=2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rig.data import FrameDataset
from rig.diagnostics.metrics import representation_metrics
from rig.representation import load_representation
from rig.rundir import RunDir

KEYS = ("probe_r2_hand", "knn_probe_r2_hand", "probe_r2_puck", "knn_probe_r2_puck", "spearman")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("run_dirs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| run | " + " | ".join(KEYS) + " |")
    print("|---" * (len(KEYS) + 1) + "|")
    for run_dir in args.run_dirs:
        run = RunDir(run_dir)
        rep = load_representation(run.representation, map_location="cpu")
        rep.eval()
        metrics = representation_metrics(rep, FrameDataset.load(run.frames))
        print(f"| {run_dir} | " + " | ".join(f"{metrics[key]:.3f}" for key in KEYS) + " |")


if __name__ == "__main__":
    main()
