"""What a run will take from the machine, checked before any stage runs: memory and CPU threads.

A setting such as ``agent.buffer_size=10000000000`` passes every range check, and used to fail with an
out-of-memory error only after collection and pretraining had run. ``check_resources`` estimates what the
run allocates and refuses, in one line with the figures, what the machine cannot hold.

The estimate counts what grows with the settings, not Python's and the libraries' fixed overhead:

- the replay buffer as SB3 stores it: observations and next observations (one float32 array per key of the
  latent goal env's dict observation), actions, rewards, flags, episode bookkeeping and one info dict per
  transition (``HerReplayBuffer``), plus the frames an online run keeps beside each transition;
- the collected frames, twice: collection stacks them from a list, and pretraining keeps a channels-first
  copy;
- the VAE's parameters with their gradients and Adam's two moments, and the activations of one batch;
- the agent's actor and critics with their target copies, gradients and Adam moments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from rig.config import Config, ConfigError
from rig.pretrain import make_representation
from rig.threads import usable_cpus

FLOAT_BYTES = 4
FRAME_COPIES = 2
"""the collected frames are held twice at the peak (see the module docstring)"""
TRAINED_COPIES = 4
"""a trained parameter is held as the weight, its gradient and Adam's two moments"""
INFO_BYTES = 144
"""one empty info dict per transition in ``HerReplayBuffer`` (the dict, its row list and pointers)"""
TRANSITION_SCALARS_BYTES = 3 * FLOAT_BYTES + 2 * 8
"""reward, done and timeout (float32), episode start and length (int64)"""
GOAL_KEYS = 3
"""observation, achieved_goal and desired_goal, each a latent"""
ACTION_DIM = 2
STATE_DIM = 4
MEMINFO = Path("/proc/meminfo")

MemoryProbe = Callable[[], int | None]


class ResourceError(ConfigError):
    """Settings that the machine cannot run: more memory than it has, or more threads than its CPUs."""


@dataclass(frozen=True)
class Allocation:
    """One thing a run allocates, and the settings that size it."""

    what: str
    settings: str
    bytes: int


def check_resources(cfg: Config, available: MemoryProbe | None = None, cpus: int | None = None) -> None:
    """Refuse settings that need more memory than is available, or more torch threads than CPUs.

    ``available`` returns the bytes the machine can give (default: ``MemAvailable`` of /proc/meminfo;
    None skips the memory check); ``cpus`` is the number of CPUs this process may run on.
    """
    check_threads(cfg.torch_threads, usable_cpus() if cpus is None else cpus)
    free = (available or available_memory)()
    if free is None:
        return
    allocations = estimate_allocations(cfg)
    total = sum(part.bytes for part in allocations)
    if total > free:
        largest = max(allocations, key=lambda part: part.bytes)
        raise ResourceError(
            f"this run would allocate about {_size(total)}, more than the {_size(free)} of memory available; "
            f"the largest part is {largest.what}, {_size(largest.bytes)} for {largest.settings}: lower them"
        )


def check_threads(threads: int, cpus: int) -> None:
    """More torch threads than CPUs only makes them wait for each other (``rig.threads``)."""
    if threads > cpus:
        raise ResourceError(
            f"torch_threads={threads} is more than the {cpus} CPUs this process may run on; "
            f"use at most {cpus}, or 0 for rig's choice"
        )


def estimate_allocations(cfg: Config) -> list[Allocation]:
    """What ``cfg`` allocates, part by part, in bytes."""
    latent_dim = _latent_dim(cfg)
    parts = [_replay_buffer(cfg, latent_dim), _agent_networks(cfg, latent_dim)]
    if cfg.online.enabled:
        parts.append(_online_frames(cfg))
    if cfg.vae.kind != "state":
        parts += [_collected_frames(cfg), _vae_training(cfg)]
    return parts


def _replay_buffer(cfg: Config, latent_dim: int) -> Allocation:
    observations = 2 * GOAL_KEYS * latent_dim * FLOAT_BYTES  # observations and next observations
    per_transition = observations + ACTION_DIM * FLOAT_BYTES + TRANSITION_SCALARS_BYTES + INFO_BYTES
    settings = (
        f"agent.buffer_size={cfg.agent.buffer_size} with {2 * GOAL_KEYS} latents of {_latent_settings(cfg)}"
    )
    return Allocation("the replay buffer", settings, cfg.agent.buffer_size * per_transition)


def _online_frames(cfg: Config) -> Allocation:
    frame = 3 * cfg.env.image_size**2
    episodes = -(-cfg.agent.buffer_size // cfg.env.max_episode_steps)
    total = cfg.agent.buffer_size * (frame + STATE_DIM * FLOAT_BYTES) + 2 * episodes * frame
    settings = f"agent.buffer_size={cfg.agent.buffer_size}, env.image_size={cfg.env.image_size}"
    return Allocation("the online run's frames", settings, total)


def _collected_frames(cfg: Config) -> Allocation:
    frames = FRAME_COPIES * cfg.data.num_frames * 3 * cfg.env.image_size**2
    settings = f"data.num_frames={cfg.data.num_frames}, env.image_size={cfg.env.image_size}"
    return Allocation("the collected frames", settings, frames)


def _vae_training(cfg: Config) -> Allocation:
    vae = cfg.vae
    parameters = _parameter_count(cfg) * TRAINED_COPIES * FLOAT_BYTES
    # Measured on the shipped decoders: 18 to 67 floats per pixel of each frame in the forward pass;
    # backward holds about as much again.
    per_pixel = 2 * (16 + vae.decoder_channels)
    activations = 2 * vae.batch_size * cfg.env.image_size**2 * per_pixel * FLOAT_BYTES
    settings = f"vae.z_dim={vae.z_dim}, vae.batch_size={vae.batch_size}, env.image_size={cfg.env.image_size}"
    return Allocation("the VAE's training", settings, parameters + activations)


def _agent_networks(cfg: Config, latent_dim: int) -> Allocation:
    observation = GOAL_KEYS * latent_dim  # SB3's MultiInputPolicy flattens every key
    actor = _mlp_parameters(observation, cfg.agent.net_arch, ACTION_DIM)
    critic = 2 * _mlp_parameters(observation + ACTION_DIM, cfg.agent.net_arch, 1)
    # trained copies of actor and critics, and a target copy of each
    total = (actor + critic) * (TRAINED_COPIES + 1) * FLOAT_BYTES
    settings = f"agent.net_arch={list(cfg.agent.net_arch)} on {GOAL_KEYS} latents of {_latent_settings(cfg)}"
    return Allocation("the agent's networks", settings, total)


def _mlp_parameters(inputs: int, hidden: list[int], outputs: int) -> int:
    sizes = [inputs, *hidden, outputs]
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes, sizes[1:], strict=False))


def _latent_dim(cfg: Config) -> int:
    if cfg.vae.kind in ("state", "supervised"):
        return STATE_DIM
    return cfg.vae.z_dim + (cfg.vae.context_dim if cfg.vae.kind == "cc_vae" else 0)


def _latent_settings(cfg: Config) -> str:
    if cfg.vae.kind in ("state", "supervised"):
        return f"the state's {STATE_DIM}"
    context = f" + vae.context_dim={cfg.vae.context_dim}" if cfg.vae.kind == "cc_vae" else ""
    return f"vae.z_dim={cfg.vae.z_dim}{context}"


def _parameter_count(cfg: Config) -> int:
    """The VAE's parameters, counted on torch's meta device: nothing is allocated, however large."""
    try:
        with torch.device("meta"):
            model = make_representation(cfg.vae, cfg.env.image_size)
    except ValueError:
        return 0  # settings that do not fit the image size: the representation check names them
    return sum(parameter.numel() for parameter in model.parameters())


def available_memory() -> int | None:
    """Bytes the machine can give without swapping (``MemAvailable``), or None where that is unknown."""
    try:
        lines = MEMINFO.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _size(count: int) -> str:
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count / 10**3:,.1f} KB"
