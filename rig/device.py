"""Where torch runs: the device and the CPU thread count, chosen from the config in one place."""

from __future__ import annotations

import torch

from rig.config import ConfigError, device_problem


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when available, else the CPU; anything else is a torch device that must be there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    problem = device_problem(name)
    if problem is not None:
        raise ConfigError(f"device: {problem}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name!r} was asked for, but torch sees no CUDA device; use device=auto or cpu"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device={name!r} was asked for, but torch sees {torch.cuda.device_count()} CUDA devices"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            f"device={name!r} was asked for, but torch sees no MPS device; use device=auto or cpu"
        )
    return device


def set_torch_threads(threads: int) -> None:
    """Intra-op CPU threads for torch; 0 keeps the count as it is (``rig.threads`` chooses one)."""
    if threads < 0:
        raise ValueError(f"torch_threads must be >= 0, got {threads}")
    if threads:
        torch.set_num_threads(threads)
