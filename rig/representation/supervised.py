"""Supervised state encoder: the VAEs' conv encoder trained to regress the frame's true state.

An upper bound for image representations of this size: an image agent whose representation is the true
state read from the frames (hand and object positions on the pushers), by an encoder of the size the VAEs
use. If an agent on this representation stalls where the state oracle learns, what is lost lies in RL on
images, not in what the VAE's objective leaves out.

- The encoder is the VAEs' (``RegressionEncoder``: the same convs, hidden layer and CoordConv setting)
  with one linear head of ``state_dim`` outputs: the env's ``achieved_goal``, whatever its size.
- Targets are standardised per dimension by the training frames' mean and std (``fit_standardisation``),
  kept as buffers so that checkpoints carry them. The representation is the standardised prediction.
- loss = mean over the batch and the state dims of (prediction - (state - mean) / std)^2.
- Imagined goals are N(0, I) in the standardised space, a Gaussian with the training states' per-dim mean
  and std, until ``set_goal_prior`` sets a fitted one (``agent.goal_prior=fitted`` fits it to the
  predictions on the training frames).
- ``decode`` gives the state a latent stands for, in the env's units; there is no image decoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from rig.representation.base import (
    ContextFree,
    GoalPriorModule,
    check_images,
    check_last_dim,
    reject_context,
    scalar_metrics,
)
from rig.representation.nets import RegressionEncoder

STD_FLOOR = 1e-6
"""Smallest std a target dimension is divided by: a dimension constant over the training frames stays 0."""


class SupervisedEncoder(ContextFree, GoalPriorModule):
    input_kind = "image"
    output_kind = "state"

    state_mean: Tensor
    state_std: Tensor

    def __init__(
        self,
        state_dim: int = 4,
        image_size: int = 48,
        hidden_dim: int = 256,
        coord_channels: bool = False,
        goal_mean: Sequence[float] | None = None,
        goal_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if state_dim < 1:
            raise ValueError(f"state_dim must be >= 1, got {state_dim}")
        self.z_dim = state_dim
        self.latent_dim = state_dim
        self.image_size = image_size
        self.hidden_dim = hidden_dim
        self.coord_channels = bool(coord_channels)
        self.set_goal_prior(goal_mean, goal_std)
        self.encoder = RegressionEncoder(3, image_size, state_dim, hidden_dim, self.coord_channels)
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))

    def fit_standardisation(self, states: np.ndarray) -> None:
        """Standardise targets by the per-dim mean and std of ``states``, the training frames' states."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or states.shape[1] != self.latent_dim or len(states) == 0:
            raise ValueError(f"states must have shape (N >= 1, {self.latent_dim}), got {states.shape}")
        self.state_mean.copy_(torch.as_tensor(states.mean(axis=0)))
        self.state_std.copy_(torch.as_tensor(np.maximum(states.std(axis=0), STD_FLOOR)))

    def standardise(self, states: Tensor) -> Tensor:
        return (states - self.state_mean) / self.state_std

    def encode(
        self, x: Tensor, context: Tensor | None = None, context_latent: Tensor | None = None
    ) -> Tensor:
        """(B, state_dim) standardised predicted states."""
        reject_context(context, "SupervisedEncoder", context_latent)
        check_images(x, self.image_size, "x")
        prediction: Tensor = self.encoder(x)
        return prediction

    def sample_prior(
        self, n: int, context: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Standardised states from N(0, I), or from the fitted goal distribution (``set_goal_prior``)."""
        reject_context(context, "SupervisedEncoder")
        return self.draw_goal_z(n, generator)

    def decode(self, latent: Tensor) -> Tensor:
        """(B, state_dim) the states the latents stand for, in the env's units (no images)."""
        check_last_dim(latent, self.latent_dim, "latent")
        return latent * self.state_std + self.state_mean

    def loss(
        self,
        x: Tensor,
        context: Tensor | None = None,
        kl_weight: float = 1.0,
        targets: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """Mean squared error of the standardised prediction; ``kl_weight`` does not apply."""
        reject_context(context, "SupervisedEncoder")
        check_images(x, self.image_size, "x")
        if targets is None:
            raise ValueError("SupervisedEncoder regresses the frames' states: pass them as targets")
        check_last_dim(targets, self.latent_dim, "targets")
        if targets.shape[0] != x.shape[0]:
            raise ValueError(f"x and targets batch sizes differ: {x.shape[0]} vs {targets.shape[0]}")
        loss = (self.encoder(x) - self.standardise(targets)).square().mean()
        return loss, scalar_metrics(loss=loss)

    def kl_per_dim(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        raise RuntimeError("SupervisedEncoder has no posterior, so no KL: it regresses states")

    def config_dict(self) -> dict[str, object]:
        return {
            "state_dim": self.latent_dim,
            "image_size": self.image_size,
            "hidden_dim": self.hidden_dim,
            "coord_channels": self.coord_channels,
            **self.goal_prior_config(),
        }
