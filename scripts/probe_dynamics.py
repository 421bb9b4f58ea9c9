"""Pretrain a VAE on an existing run's frames and print the latent probes every few epochs.

The final probes say whether a representation is usable; this says when each factor was learned and
whether it arrived folded. It retrains with the run's own config (plus any overrides) into ``--out``;
the run itself is not touched. Probing forks the RNG, so the weights are those ``rig pretrain`` would
make with the same config and thread count.

    python scripts/probe_dynamics.py runs/rig/seed=2 --out runs/dynamics/z4_seed2 vae.z_dim=4
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rig.config import load_config
from rig.data import FrameDataset
from rig.device import set_torch_threads
from rig.diagnostics.metrics import representation_metrics
from rig.pretrain import pretrain
from rig.representation import RepresentationModule
from rig.rundir import RunDir

COLUMNS = ("probe_r2_hand", "knn_probe_r2_hand", "probe_r2_puck", "knn_probe_r2_puck", "spearman")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("run_dir", type=Path, help="a run with config.yaml and data/frames.npz")
    parser.add_argument("--out", type=Path, required=True, help="where the retrained VAE goes")
    parser.add_argument("--every", type=int, default=5, help="probe every this many epochs")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. vae.z_dim=4")
    args = parser.parse_intermixed_args()
    if args.every < 1:
        parser.error("--every must be at least 1")
    run = RunDir(args.run_dir)
    cfg = load_config(run.config, args.overrides)
    set_torch_threads(cfg.torch_threads)
    dataset = FrameDataset.load(run.frames)

    print("| epoch | held-out loss | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 2) + "|")

    def probe(epoch: int, model: RepresentationModule, heldout_loss: float) -> None:
        if (epoch + 1) % args.every and epoch + 1 != cfg.vae.epochs:
            return
        metrics = representation_metrics(model, dataset)
        cells = " | ".join(f"{metrics[key]:.3f}" for key in COLUMNS)
        print(f"| {epoch + 1} | {heldout_loss:.1f} | {cells} |", flush=True)

    pretrain(cfg, dataset, args.out, progress=False, on_epoch=probe)


if __name__ == "__main__":
    main()
