"""The inverse model: an auxiliary pretraining loss that ties z to what the agent's actions change.

A small MLP reads the z posterior means of two consecutive random-action frames, mu(x_t) and mu(x_t+1),
and predicts the action whose env step led from one to the other (``rig.data`` records it). Its loss
trains the encoder with the VAE's own loss (``vae.inverse_weight``): a code that lets the action be read
off the move of z has to move z where, and by as much as, the action moves things. On the pushers the
action moves the hand, and the object when the hand pushes it, so the loss asks for hand coordinates that
do not depend on the object and an object code that moves when it is pushed.

The loss is the squared error of each action dimension over that dimension's variance in the training
frames, averaged over dimensions: 1 for a model that always predicts the mean action, 0 for a perfect one,
whatever the scale of the action space. The head is the trainer's, not the representation's: it is saved
with the optimiser in ``last.pt`` so that a pretraining resumes, and never reaches the agent.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from rig.config import ConfigError
from rig.data import FrameDataset

INVERSE_HIDDEN = 64
"""width of the inverse model's two hidden layers"""
MIN_ACTED_PAIRS = 20
"""fewest training pairs of consecutive random-action frames ``vae.inverse_weight`` trains on"""


class InverseModel(nn.Module):
    """(z_t, z_t+1) -> the action between them: Linear, ReLU, Linear, ReLU, Linear."""

    def __init__(self, z_dim: int, action_dim: int, hidden_dim: int = INVERSE_HIDDEN) -> None:
        super().__init__()
        if z_dim < 1 or action_dim < 1:
            raise ValueError(f"z_dim and action_dim must be >= 1, got {z_dim} and {action_dim}")
        self.net = nn.Sequential(
            nn.Linear(2 * z_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, action_dim),
        )

    def forward(self, z_before: Tensor, z_after: Tensor) -> Tensor:
        if z_before.shape != z_after.shape:
            raise ValueError(f"z_before and z_after differ in shape: {z_before.shape} vs {z_after.shape}")
        actions: Tensor = self.net(torch.cat([z_before, z_after], dim=1))
        return actions


def inverse_loss(predicted: Tensor, actions: Tensor, action_var: Tensor) -> Tensor:
    """Mean over the batch and the action dimensions of (predicted - action)^2 / var (module docstring)."""
    if predicted.shape != actions.shape:
        raise ValueError(f"predicted and true actions differ in shape: {predicted.shape} vs {actions.shape}")
    return ((predicted - actions).pow(2) / action_var).mean()


def acted_pairs(dataset: FrameDataset, heldout: bool) -> np.ndarray:
    """Indices i of the frames in one split that follow frame i - 1 by one recorded env step."""
    after = np.flatnonzero(dataset.acted & (dataset.heldout == heldout))
    after = after[after > 0]
    return after[dataset.episodes[after - 1] == dataset.episodes[after]]


def action_variance(dataset: FrameDataset) -> np.ndarray:
    """(action_dim,) the variance of each action dimension over the training pairs, floored at 1e-6."""
    actions = dataset.actions[acted_pairs(dataset, heldout=False)]
    return np.maximum(actions.var(axis=0), 1e-6).astype(np.float32)


def check_inverse_frames(dataset: FrameDataset) -> None:
    """Raise a ``ConfigError`` unless ``dataset`` records enough consecutive random-action frames."""
    count = len(acted_pairs(dataset, heldout=False))
    if count >= MIN_ACTED_PAIRS and dataset.actions.shape[1] > 0:
        return
    reason = (
        "was collected before actions were recorded"
        if dataset.actions.shape[1] == 0
        else f"records {count} training pairs of consecutive random-action frames (at least "
        f"{MIN_ACTED_PAIRS} needed)"
    )
    raise ConfigError(
        f"vae.inverse_weight trains on consecutive random-action frames, and {dataset.origin} {reason}: "
        "collect into a new run_dir, with data.teleport_fraction below 1"
    )
