"""Where torch runs: the device and the CPU thread count, chosen from the config in one place."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; anything else is a torch device name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} was asked for, but torch sees no CUDA device")
    return device


def set_torch_threads(threads: int) -> None:
    """Intra-op CPU threads for torch; 0 keeps torch's default (one per core)."""
    if threads < 0:
        raise ValueError(f"torch_threads must be >= 0, got {threads}")
    if threads:
        torch.set_num_threads(threads)
