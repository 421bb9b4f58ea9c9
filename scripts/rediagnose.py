"""Measure a pretraining again with today's diagnostics, from the weights it kept, without retraining.

``rig pretrain`` writes ``pretrain/metrics.json`` (and ``metrics_epochs<N>.json`` for its budget) with the
diagnostics of the version that trained it. A measure added since (the reward geometry's cosine and
non-additivity, for example) is missing from older records; this recomputes every measure from
``pretrain/best.pt``, or with ``--epochs N`` from ``pretrain/best_epochs<N>.pt``, on the run's own frames,
and replaces the metrics file of that budget, keeping its ``training`` entry (what the training itself
measured). The diagnostic grids go to a temporary directory and are discarded, so the run's images stay
those of its best weights.

    python scripts/rediagnose.py runs/ccrig_epochs/seed0 --epochs 60
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rig import io
from rig.data import FrameDataset
from rig.diagnostics import write_diagnostics
from rig.representation import load_representation
from rig.rundir import RunDir
from rig.stages import dataset_paths, stored_config


def rediagnose(run_dir: Path, epochs: int | None) -> Path:
    """Recompute the metrics of ``run_dir``'s pretraining (of the budget ``epochs``); the file written."""
    run = RunDir(run_dir)
    pretrain = run.pretrain_dir
    weights = pretrain.best if epochs is None else pretrain.best_at(epochs)
    target = pretrain.metrics if epochs is None else pretrain.metrics_at(epochs)
    for path in (weights, target):
        if not path.is_file():
            raise SystemExit(f"rediagnose.py: {path} is missing")
    cfg = stored_config(run_dir)
    paths = dataset_paths(cfg)
    dataset = FrameDataset.load(paths["frames"])
    heldout = FrameDataset.load(paths["heldout_colours"]) if "heldout_colours" in paths else None
    rep = load_representation(weights, map_location="cpu").eval()
    with tempfile.TemporaryDirectory() as grids:
        metrics = write_diagnostics(
            rep, dataset, grids, heldout_colour_dataset=heldout, env_cfg=cfg.env, goal_seed=cfg.eval.seed
        )
    before = json.loads(target.read_text())
    if "training" in before:
        metrics["training"] = before["training"]
    io.write_json(target, metrics)
    return target


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("runs", nargs="+", type=Path, help="pretraining run directories")
    parser.add_argument("--epochs", type=int, help="the budget to measure (its best_epochs<N>.pt)")
    args = parser.parse_args()
    for run_dir in args.runs:
        print(f"rewrote {rediagnose(run_dir, args.epochs)}")


if __name__ == "__main__":
    main()
