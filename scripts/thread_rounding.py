"""Whether torch's thread count changes rig's numbers: one computation on 1 and on N threads, bit for bit.

A thread count that follows the machine's load can only be free if it changes no result. This script runs,
from the same seed, the pieces of a run whose arithmetic the CPU kernels split across threads and compares
their outputs exactly:

- the agent's networks (the default ``agent.net_arch`` MLP on a latent observation and goal): 300 Adam
  steps on the training batch size, and 300 forward passes at batch 1, as when it picks actions;
- the default beta-VAE: the loss and its gradients on one batch of frames, and its encoder on single
  frames, as the latent env encodes each observation.

    python3 scripts/thread_rounding.py [--threads 2]

It prints one line per piece: ``identical`` or the largest absolute difference.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import Tensor, nn

from rig.config import load_config
from rig.pretrain import make_representation


def mlp(inputs: int, hidden: list[int]) -> nn.Sequential:
    """The agent's critic shape with seeded initial weights."""
    torch.manual_seed(0)
    sizes = [inputs, *hidden]
    layers: list[nn.Module] = []
    for width_in, width_out in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 1))


def agent_update(batch: int, inputs: int, hidden: list[int], steps: int = 300) -> list[Tensor]:
    """An MLP of the agent's shape after ``steps`` Adam steps on seeded random batches."""
    net = mlp(inputs, hidden)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.rand(batch, inputs, generator=generator)
        target = torch.rand(batch, 1, generator=generator)
        loss = ((net(x) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [parameter.detach().clone() for parameter in net.parameters()]


def acting(inputs: int, hidden: list[int], steps: int = 300) -> list[Tensor]:
    """The same MLP's outputs on ``steps`` single seeded inputs, one forward pass each."""
    net = mlp(inputs, hidden)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        return [net(torch.rand(1, inputs, generator=generator)) for _ in range(steps)]


def vae_gradients(overrides: list[str]) -> list[Tensor]:
    """The default VAE's loss and gradients on one seeded batch of frames."""
    cfg = load_config("default", overrides)
    torch.manual_seed(0)
    vae = make_representation(cfg.vae, cfg.env.image_size)
    frames = torch.rand(cfg.vae.batch_size, 3, cfg.env.image_size, cfg.env.image_size)
    loss, _ = vae.loss(frames)
    loss.backward()
    return [loss.detach().clone(), *(p.grad.clone() for p in vae.parameters() if p.grad is not None)]


def encoding(overrides: list[str], frames: int = 100) -> list[Tensor]:
    """The default VAE's encodings of single seeded frames."""
    cfg = load_config("default", overrides)
    torch.manual_seed(0)
    vae = make_representation(cfg.vae, cfg.env.image_size)
    generator = torch.Generator().manual_seed(1)
    size = cfg.env.image_size
    with torch.no_grad():
        return [vae.encode(torch.rand(1, 3, size, size, generator=generator)) for _ in range(frames)]


def largest_difference(first: list[Tensor], second: list[Tensor]) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(first, second, strict=True))


def on_threads(threads: int, piece: Callable[[], list[Tensor]]) -> list[Tensor]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return piece()
    finally:
        torch.set_num_threads(previous)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2, help="compared against 1 thread")
    args = parser.parse_args()
    cfg = load_config("default", [])
    hidden = list(cfg.agent.net_arch)
    inputs = 2 * cfg.vae.z_dim + 2  # observation and goal latents, and the action for the critic
    pieces: dict[str, Callable[[], list[Tensor]]] = {
        f"agent MLP {hidden}, 300 Adam steps at batch {cfg.agent.batch_size}": lambda: agent_update(
            cfg.agent.batch_size, inputs, hidden
        ),
        f"agent MLP {hidden}, 300 forward passes at batch 1 (acting)": lambda: acting(inputs, hidden),
        f"beta-VAE z {cfg.vae.z_dim}, loss and gradients at batch {cfg.vae.batch_size}": lambda: (
            vae_gradients([])
        ),
    }
    pieces[f"beta-VAE z {cfg.vae.z_dim}, encoder at batch 1 (the latent env)"] = lambda: encoding([])
    print(f"torch {torch.__version__}: 1 thread against {args.threads}")
    for name, piece in pieces.items():
        difference = largest_difference(on_threads(1, piece), on_threads(args.threads, piece))
        verdict = "identical" if difference == 0.0 else f"differs (largest difference {difference:.2e})"
        print(f"{name}: {verdict}")


if __name__ == "__main__":
    main()
