"""The ``Representation`` protocol and the helpers the representations share.

A representation maps what the env shows (an image, or a state vector for the oracle) to the vector the
agent sees, samples imagined goals from its prior, and decodes latents back to what it was trained to
reproduce: images for the VAEs, states for the supervised encoder (and the identity).

Loss convention of the VAEs (it fixes what ``beta`` means). Per image, with ``x`` in [0, 1]:

- reconstruction = negative log-likelihood summed over all 3 * H * W values, up to a constant:
  ``gaussian``: ``sum((x - sigmoid(logits))**2)``, a Gaussian with variance 1/2 whose mean is squashed into
  [0, 1] by a sigmoid; ``bernoulli``: ``sum(BCE_with_logits(logits, x))``.
- KL = closed-form KL(N(mu, sigma^2) || N(0, I)) summed over the latent dims.
- loss = mean over the batch of (reconstruction + beta * KL).

Because the reconstruction is a per-image sum, beta here is not the per-pixel-mean beta of Skew-Fit
(beta 20 there is about 20 / (3 * 48 * 48) here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, get_args, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rig.config import Likelihood

LIKELIHOODS: tuple[Likelihood, ...] = get_args(Likelihood)


@runtime_checkable
class Representation(Protocol):
    """What the latent goal env, relabelling, evaluation and diagnostics rely on."""

    input_kind: str
    """"image" for the VAEs and the supervised encoder, "state" for the identity on state vectors."""
    output_kind: str
    """What ``decode`` gives, and so what ``loss`` learns to reproduce: "image" for the VAEs, which
    reconstruct their input; "state" for the supervised encoder, which regresses the frame's true state
    (``loss``'s ``targets``), and for the identity, which has nothing to learn."""
    latent_dim: int
    """Size of the vector the agent sees ([mu_z, c] for the CC-VAE)."""
    z_dim: int
    """Size of the part drawn from the prior; equals latent_dim except for the CC-VAE."""
    context_dim: int
    """Size of the context latent c; 0 when there is none."""

    def encode(
        self, x: Tensor, context: Tensor | None = None, context_latent: Tensor | None = None
    ) -> Tensor:
        """(B, latent_dim) encoder means, no sampling.

        ``context`` is the context image batch x0 (CC-VAE only). ``context_latent``, when given, is
        ``encode_context(context)`` computed earlier: an episode's context is encoded once, not every step.
        """
        ...

    def encode_context(self, context: Tensor) -> Tensor:
        """(B, context_dim) context latents of context images; (B, 0) for models without context."""
        ...

    def sample_prior(
        self, n: int, context: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """(n, latent_dim) imagined goals; ``context`` is an already encoded context latent (CC-VAE only)."""
        ...

    def set_goal_prior(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        """Draw imagined goals' z from N(mean, diag(std^2)) instead of the prior (None, None: back)."""
        ...

    def decode(self, latent: Tensor) -> Tensor:
        """(B, 3, H, W) images in [0, 1] for the VAEs; (B, state_dim) states for the supervised encoder;
        the latent itself for the identity."""
        ...

    def loss(
        self,
        x: Tensor,
        context: Tensor | None = None,
        kl_weight: float = 1.0,
        targets: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """Scalar training loss and per-image-mean metrics ("loss", "recon", "kl", "mse", ...).

        ``kl_weight`` scales beta for a KL warm-up; at 1 (the default) the loss is the model's own objective.
        ``targets`` are the frames' true states, (B, state_dim): required when ``output_kind`` is "state",
        refused otherwise.
        """
        ...

    def kl_per_dim(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """(z_dim,) KL of each latent dim from the prior, averaged over the batch."""
        ...

    def config_dict(self) -> dict[str, object]:
        """The constructor kwargs, enough to rebuild the model for a checkpoint."""
        ...


def images_to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """uint8 (B, H, W, 3) or (H, W, 3) frames -> float (B, 3, H, W) in [0, 1] on ``device``."""
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (B, H, W, 3) or (H, W, 3), got {images.shape}")
    # Move the uint8 bytes first: a quarter of the float32 traffic.
    pixels = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return pixels.permute(0, 3, 1, 2).float().div_(255.0)


def tensor_to_images(x: Tensor) -> np.ndarray:
    """float (B, 3, H, W) in [0, 1] -> uint8 (B, H, W, 3), clamped and rounded."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) tensor, got {tuple(x.shape)}")
    pixels = (x.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def check_likelihood(likelihood: str) -> str:
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    return likelihood


def reconstruction_nll(logits: Tensor, target: Tensor, likelihood: str) -> Tensor:
    """(B,) negative log-likelihood of each target image, summed over its values (see module docstring)."""
    if likelihood == "gaussian":
        per_value = (target - torch.sigmoid(logits)).square()
    else:
        per_value = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return per_value.flatten(1).sum(dim=1)


def reconstruction_mse(logits: Tensor, target: Tensor) -> Tensor:
    """Per-value mean squared error of the decoded image, comparable across likelihoods."""
    return F.mse_loss(torch.sigmoid(logits), target)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """(B, z_dim) closed-form KL(N(mu, exp(logvar)) || N(0, 1)) of each latent dim."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


def standard_normal(
    n: int, dim: int, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    if n < 0:
        raise ValueError(f"cannot draw {n} samples")
    return torch.randn(n, dim, device=device, generator=generator)


def check_goal_prior(
    mean: Sequence[float] | None, std: Sequence[float] | None, z_dim: int
) -> tuple[list[float], list[float]] | None:
    """A fitted goal distribution of z as plain lists (None: the prior N(0, I)), checked."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError("goal_mean and goal_std must be given together")
    mean_list, std_list = [float(value) for value in mean], [float(value) for value in std]
    if len(mean_list) != z_dim or len(std_list) != z_dim:
        raise ValueError(
            f"goal_mean and goal_std need {z_dim} values each, got {len(mean_list)} and {len(std_list)}"
        )
    if not all(math.isfinite(value) for value in mean_list) or not all(
        math.isfinite(value) and value > 0 for value in std_list
    ):
        raise ValueError("goal_mean must be finite and goal_std finite and positive")
    return mean_list, std_list


class ContextFree:
    """The context members of a representation without a context (all but the CC-VAE): c is empty."""

    context_dim = 0

    def encode_context(self, context: Tensor) -> Tensor:
        """(B, 0): there is no context latent."""
        return context.new_zeros((context.shape[0], 0))


class GoalPriorModule(nn.Module):
    """Base of the VAEs: where the z of imagined goals is drawn from.

    N(0, I), the VAE prior, until ``set_goal_prior`` sets a fitted diagonal Gaussian. The fitted mean and
    std are kept twice: as lists in ``goal_prior`` (for ``config_dict``, so checkpoints rebuild them) and
    as non-persistent buffers that follow the module's device, so drawing a goal copies nothing.
    """

    z_dim: int
    goal_prior: tuple[list[float], list[float]] | None
    goal_mean: Tensor | None
    goal_std: Tensor | None

    def set_goal_prior(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        """Draw the z of imagined goals from N(mean, diag(std^2)) instead of N(0, I); None, None: back."""
        self.goal_prior = check_goal_prior(mean, std, self.z_dim)
        device = next((tensor.device for tensor in self.parameters()), torch.device("cpu"))
        mean_tensor = std_tensor = None
        if self.goal_prior is not None:
            mean_tensor = torch.tensor(self.goal_prior[0], device=device)
            std_tensor = torch.tensor(self.goal_prior[1], device=device)
        self.register_buffer("goal_mean", mean_tensor, persistent=False)
        self.register_buffer("goal_std", std_tensor, persistent=False)

    def draw_goal_z(self, n: int, generator: torch.Generator | None) -> Tensor:
        """(n, z_dim) draws of z for imagined goals, from the goal distribution."""
        z = standard_normal(n, self.z_dim, module_device(self), generator)
        if self.goal_std is None or self.goal_mean is None:
            return z
        return z * self.goal_std + self.goal_mean

    def goal_prior_config(self) -> dict[str, list[float]]:
        """The constructor kwargs that restore the goal distribution (none for N(0, I))."""
        if self.goal_prior is None:
            return {}
        return {"goal_mean": self.goal_prior[0], "goal_std": self.goal_prior[1]}


def module_device(module: nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer."""
    for tensor in [*module.parameters(), *module.buffers()]:
        return tensor.device
    return torch.device("cpu")


def reject_context(context: Tensor | None, owner: str, context_latent: Tensor | None = None) -> None:
    if context is not None or context_latent is not None:
        raise ValueError(f"{owner} takes no context; pass context=None (only CCVAE is context-conditioned)")


def reject_targets(targets: Tensor | None, owner: str) -> None:
    if targets is not None:
        raise ValueError(
            f"{owner} learns from the images alone; pass targets=None (the supervised encoder takes them)"
        )


def require_context(context: Tensor | None, owner: str) -> Tensor:
    if context is None:
        raise ValueError(f"{owner} needs a context: the context images x0 (their latent for sample_prior)")
    return context


def check_images(x: Tensor, image_size: int, what: str) -> None:
    expected = (3, image_size, image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"{what} must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")


def check_last_dim(x: Tensor, size: int, what: str) -> None:
    if x.ndim != 2 or x.shape[1] != size:
        raise ValueError(f"{what} must have shape (B, {size}), got {tuple(x.shape)}")


def scalar_metrics(**values: Tensor) -> dict[str, float]:
    """Detached scalars as floats, read back in one device sync."""
    stacked = torch.stack([value.detach().float().reshape(()) for value in values.values()])
    return dict(zip(values, stacked.tolist(), strict=True))
