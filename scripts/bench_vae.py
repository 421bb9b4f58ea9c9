"""VAE training throughput (images/s) of a config's VAE against cheaper variants and the reference.

All train on the same random 48x48 batches with Adam, in this process, alternating round by round:

- the config's VAE (``--config``, the default config's unless given): for the default, the spatial
  broadcast decoder with 32 hidden channels and a CoordConv encoder; a CC-VAE also encodes and decodes
  a random context frame per image, as it trains;
- the same VAE with 16 decoder channels (``vae.decoder_channels=16``);
- the reference: the mirror deconv decoder of the RIG / Skew-Fit 48 px VAE, no CoordConv.

``--split`` instead times each sub-network of the config's VAE (forward and backward on the inputs it gets
in a training step) against the whole loss: what a faster decoder alone could buy.

``--levers`` adds the config's VAE trained with bfloat16 autocast, in channels-last layout, with fused
Adam, and with batches twice as large (the same images in half the steps). Each ratio is a variant's
images/s over the config's VAE's; its images/s times the config's epochs says how long its pretraining
takes on this machine.

    python scripts/bench_vae.py [--config ccrig] [--batches 40] [--rounds 3] [--threads 0] [--device cpu]
                                [--levers] [--split]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from rig.config import VAEConfig, load_config
from rig.device import resolve_device, set_torch_threads
from rig.pretrain import make_representation


@dataclass(frozen=True)
class Variant:
    """A VAE and how its training step runs: the settings levers that change no weights' shapes."""

    vae: VAEConfig
    bfloat16: bool = False
    """forward pass under torch.autocast to bfloat16 (the loss itself stays float32)"""
    channels_last: bool = False
    """model and images in channels-last memory layout"""
    fused_adam: bool = False
    """Adam's fused kernel"""


def images_per_second(variant: Variant, images: int, device: torch.device) -> float:
    """Training images per second over about ``images`` images in batches of ``variant.vae.batch_size``."""
    torch.manual_seed(0)
    model = make_representation(variant.vae, 48).to(device)
    layout = torch.channels_last if variant.channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=variant.vae.lr, fused=variant.fused_adam or None)
    batch_size = variant.vae.batch_size
    batches = max(1, images // batch_size)

    def frames() -> torch.Tensor:
        return torch.rand(batch_size, 3, 48, 48, device=device).contiguous(memory_format=layout)

    with_context = variant.vae.kind == "cc_vae"
    data = [(frames(), frames() if with_context else None) for _ in range(batches)]

    def step(images: torch.Tensor, contexts: torch.Tensor | None) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=variant.bfloat16):
            loss, _ = model.loss(images, contexts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(*data[0])  # warm-up: lazy initialisation stays out of the timing
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in data:
        step(*batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batches * batch_size / (time.perf_counter() - start)


def sub_network_times(
    vae: VAEConfig, batch_size: int, repeats: int, device: torch.device
) -> dict[str, float]:
    """Milliseconds of forward and backward per batch for each sub-network of ``vae`` (its encoder, decoder,
    and a CC-VAE's context encoder and decoder), on the inputs they get in a training step, and for the
    whole loss; each the median of ``repeats`` timings of 5 batches."""
    torch.manual_seed(0)
    model = make_representation(vae, 48).to(device)
    images = torch.rand(batch_size, 3, 48, 48, device=device)
    contexts = torch.rand_like(images) if vae.kind == "cc_vae" else None
    inputs: dict[str, tuple[torch.Tensor, ...]] = {}

    def keep_inputs(name: str) -> Callable[..., None]:
        def hook(module: torch.nn.Module, args: tuple[torch.Tensor, ...], output: object) -> None:
            inputs.setdefault(name, tuple(arg.detach() for arg in args))

        return hook

    hooks = [child.register_forward_hook(keep_inputs(name)) for name, child in model.named_children()]
    model.loss(images, contexts)
    for handle in hooks:
        handle.remove()

    def sub_network(name: str) -> Callable[[], torch.Tensor]:
        child, args = getattr(model, name), inputs[name]

        def step() -> torch.Tensor:
            output = child(*args)
            parts = output if isinstance(output, tuple) else (output,)
            return torch.stack([part.sum() for part in parts]).sum()

        return step

    steps = {name: sub_network(name) for name in inputs}
    steps["whole loss"] = lambda: model.loss(images, contexts)[0]
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(milliseconds_per_backward(step, device))
    return {name: float(np.median(values)) for name, values in times.items()}


def milliseconds_per_backward(
    step: Callable[[], torch.Tensor], device: torch.device, calls: int = 5
) -> float:
    """Mean time of ``step().backward()`` over ``calls`` calls, after one untimed call."""
    step().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        step().backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", help="the config whose VAE is measured (default: the default config)")
    parser.add_argument("--batches", type=int, default=40, help="batches of the config's size per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0: torch's default")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--levers",
        action="store_true",
        help="also the config's VAE with bfloat16 autocast, channels-last, fused Adam, batches x2",
    )
    parser.add_argument(
        "--split", action="store_true", help="only time each sub-network of the config's VAE, and the loss"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print torch.profiler's table of the default's training steps"
    )
    args = parser.parse_args()
    set_torch_threads(args.threads)
    device = resolve_device(args.device)
    cfg = load_config(args.config)
    images = args.batches * cfg.vae.batch_size
    if args.split:
        times = sub_network_times(cfg.vae, cfg.vae.batch_size, args.rounds, device)
        whole = times["whole loss"]
        print(f"forward + backward per batch of {cfg.vae.batch_size}, median of {args.rounds}:")
        for name, ms in times.items():
            print(f"{name:34s}: {ms:6.1f} ms ({ms / whole:4.0%} of the whole loss)")
        return
    if args.profile:
        with torch.profiler.profile(record_shapes=True) as profiler:
            images_per_second(Variant(cfg.vae), images, device)
        print(
            profiler.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=12
            )
        )
    base = "default" if args.config is None else args.config
    base_name = f"{base} ({cfg.vae.decoder}, {cfg.vae.decoder_channels} channels)"
    reference = replace(cfg.vae, decoder="deconv", coord_channels=False, context_film=False)
    variants = {
        base_name: Variant(cfg.vae),
        f"{cfg.vae.decoder}, 16 channels": Variant(replace(cfg.vae, decoder_channels=16)),
        "reference (deconv mirror)": Variant(reference),
    }
    if args.levers:
        variants[f"{base} + bfloat16 autocast"] = Variant(cfg.vae, bfloat16=True)
        variants[f"{base} + channels-last"] = Variant(cfg.vae, channels_last=True)
        variants[f"{base} + fused Adam"] = Variant(cfg.vae, fused_adam=True)
        variants[f"{base} + batch x2"] = Variant(replace(cfg.vae, batch_size=2 * cfg.vae.batch_size))
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, vae in variants.items():
            rates[name].append(images_per_second(vae, images, device))
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    frames = cfg.data.num_frames * (1 - cfg.data.heldout_fraction)
    threads = torch.get_num_threads()
    print(f"device {device}, {threads} threads, batch {cfg.vae.batch_size}, {args.rounds} rounds")
    for name, rate in medians.items():
        print(f"{name:34s}: {rate:7.0f} images/s (median)")
    baseline = medians[base_name]
    for name, rate in medians.items():
        if name == base_name:
            continue
        print(f"ratio {name + ' / ' + base:28s} : {rate / baseline:7.2f}")
    minutes = cfg.vae.epochs * frames / baseline / 60
    budget = f"{cfg.vae.epochs} epochs x {frames:.0f} frames"
    print(f"{base} pretraining ({budget}): about {minutes:.1f} min of training")


if __name__ == "__main__":
    main()
