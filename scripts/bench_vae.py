"""VAE training throughput (images/s) of rig's default VAE against the default before and the reference.

All train on the same random 48x48 batches with Adam, in this process, alternating round by round:

- the default: spatial broadcast decoder with 32 hidden channels, CoordConv encoder;
- the same VAE with 16 decoder channels (``vae.decoder_channels=16``);
- the reference: the mirror deconv decoder of the RIG / Skew-Fit 48 px VAE, no CoordConv.

The ratios say what 16 channels would buy and what the default architecture costs; the default's images/s
times the default epochs says how long default pretraining takes on this machine.

    python scripts/bench_vae.py [--batches 40] [--rounds 3] [--threads 0] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from rig.config import VAEConfig, load_config
from rig.device import resolve_device, set_torch_threads
from rig.pretrain import make_representation


def images_per_second(vae: VAEConfig, batches: int, batch_size: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = make_representation(vae, 48).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=vae.lr)
    data = torch.rand(batches, batch_size, 3, 48, 48, device=device)

    def step(images: torch.Tensor) -> None:
        loss, _ = model.loss(images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(data[0])  # warm-up: lazy initialisation stays out of the timing
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for images in data:
        step(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0: torch's default")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    set_torch_threads(args.threads)
    device = resolve_device(args.device)
    cfg = load_config(None)
    variants = {
        "default (broadcast, 32 channels)": cfg.vae,
        "broadcast, 16 channels": replace(cfg.vae, decoder_channels=16),
        "reference (deconv mirror)": replace(cfg.vae, decoder="deconv", coord_channels=False),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, vae in variants.items():
            rates[name].append(images_per_second(vae, args.batches, cfg.vae.batch_size, device))
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    frames = cfg.data.num_frames * (1 - cfg.data.heldout_fraction)
    threads = torch.get_num_threads()
    print(f"device {device}, {threads} threads, batch {cfg.vae.batch_size}, {args.rounds} rounds")
    for name, rate in medians.items():
        print(f"{name:34s}: {rate:7.0f} images/s (median)")
    default, narrow, reference = medians.values()
    print(f"ratio 16 channels / default         : {narrow / default:7.2f}")
    print(f"ratio default / reference           : {default / reference:7.2f}")
    minutes = cfg.vae.epochs * frames / default / 60
    budget = f"{cfg.vae.epochs} epochs x {frames:.0f} frames"
    print(f"default pretraining ({budget}): about {minutes:.1f} min of training")


if __name__ == "__main__":
    main()
