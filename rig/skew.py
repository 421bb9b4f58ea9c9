"""Skew-Fit's weights: how much more often a stored frame is replayed the rarer the VAE finds it.

Skew-Fit (Pong et al., ICML 2020) gives each stored frame x the weight p_theta(x)^alpha, alpha in [-1, 0],
and draws both the VAE's training frames and the exploration goals with these weights, so the goal
distribution spreads towards uniform over the states the agent has reached. alpha = 0 gives uniform
weights: online RIG.

``log_likelihood`` estimates log p_theta(x) by importance sampling with K draws from the encoder,
``log mean_k p(x | z_k) p(z_k) / q(z_k | x)``, a bound that tightens as K grows (K = 1 is the ELBO's
sample). Per image it is a sum over 3 * H * W values, so two frames' estimates can differ by tens of nats,
and p^-1 would put all the weight on the one rarest frame. ``skew_weights`` therefore caps every weight at
``cap`` times the uniform weight (rig's choice; the reference implementation normalised the raw powers).
``coverage_entropy`` is the measure Skew-Fit reports: the entropy of goal states over a grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from rig.representation.base import check_images, reconstruction_nll
from rig.representation.beta_vae import BetaVAE

GAUSSIAN_LOG_NORMALISER = 0.5 * math.log(math.pi)
"""Per value: the Gaussian likelihood's variance is 1/2, so log N(x; m, 1/2) = -(x - m)^2 - log(pi) / 2."""


@torch.no_grad()
def log_likelihood(
    vae: BetaVAE, images: Tensor, samples: int = 10, generator: torch.Generator | None = None
) -> Tensor:
    """(B,) importance-sampled log p(x) of float images in [0, 1], in nats per image.

    The Bernoulli likelihood is the one the VAE trains with (it is not normalised over continuous pixel
    values, so only differences between frames mean something, which is all the weights use).
    """
    if not isinstance(vae, BetaVAE):
        raise TypeError(f"skew weights need a beta-VAE (vae.kind beta_vae), got {type(vae).__name__}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    check_images(images, vae.image_size, "images")
    mu, logvar = vae.encoder(images)
    std = (0.5 * logvar).exp()
    values = images[0].numel()
    log_terms = []
    for _ in range(samples):
        noise = torch.randn(mu.shape, device=mu.device, generator=generator)
        z = mu + std * noise
        log_decoder = -reconstruction_nll(vae.decoder(z), images, vae.likelihood)
        if vae.likelihood == "gaussian":
            log_decoder = log_decoder - values * GAUSSIAN_LOG_NORMALISER
        # log p(z) - log q(z | x) of a draw z = mu + std * noise, summed over the latent dims.
        log_prior = -0.5 * (z.square() + math.log(2 * math.pi)).sum(dim=1)
        log_posterior = -0.5 * (noise.square() + math.log(2 * math.pi) + logvar).sum(dim=1)
        log_terms.append(log_decoder + log_prior - log_posterior)
    stacked = torch.stack(log_terms, dim=1)
    return torch.logsumexp(stacked, dim=1) - math.log(samples)


def skew_weights(log_density: np.ndarray, alpha: float, cap: float | None = None) -> np.ndarray:
    """Normalised weights proportional to p(x)^alpha for log densities ``log_density``.

    Computed in log space, so no power overflows. With ``cap``, no weight exceeds ``cap`` times the uniform
    weight 1/N: the largest are clipped to that and the others keep their ratios. alpha = 0 gives uniform
    weights.
    """
    log_density = np.asarray(log_density, dtype=np.float64)
    if log_density.ndim != 1 or not len(log_density):
        raise ValueError(f"log_density must be a non-empty vector, got shape {log_density.shape}")
    if not np.isfinite(log_density).all():
        raise ValueError("log_density holds non-finite values")
    if not -1.0 <= alpha <= 0.0:
        raise ValueError(f"alpha must lie in [-1, 0], got {alpha}")
    if cap is not None and cap < 1.0:
        raise ValueError(f"cap must be >= 1 (a multiple of the uniform weight), got {cap}")
    log_weights = alpha * log_density
    weights = np.exp(log_weights - log_weights.max())
    weights /= weights.sum()
    if cap is not None:
        weights = _capped(weights, cap / len(weights))
    return weights


def _capped(weights: np.ndarray, ceiling: float) -> np.ndarray:
    """Normalised weights with none above ``ceiling``: the largest are set to it and the rest scaled up in
    proportion, repeated until none of the rest exceeds it (at most N rounds; ceiling >= 1/N is feasible)."""
    capped = np.zeros(len(weights), dtype=bool)
    while True:
        free = weights[~capped].sum()
        scale = (1.0 - ceiling * capped.sum()) / free if free > 0 else 0.0
        over = ~capped & (weights * scale > ceiling)
        if not over.any():
            return np.where(capped, ceiling, weights * scale)
        capped |= over


def effective_sample_size(weights: np.ndarray) -> float:
    """(sum w)^2 / sum w^2: N for uniform weights, 1 when one frame has all the weight."""
    weights = np.asarray(weights, dtype=np.float64)
    return float(weights.sum() ** 2 / np.square(weights).sum())


def coverage_entropy(
    positions: np.ndarray,
    low: Sequence[float] | np.ndarray,
    high: Sequence[float] | np.ndarray,
    bins: int = 10,
) -> float:
    """Entropy in nats of (N, d) ``positions`` on a grid of ``bins`` cells a side over [low, high].

    Points outside the box count in the edge cells. The maximum, log(bins^d), is reached by a uniform spread.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or not 1 <= positions.shape[1] <= 3 or not len(positions):
        raise ValueError(f"positions must have shape (N, d) with N >= 1 and d in 1..3, got {positions.shape}")
    low_array, high_array = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    cells = np.floor((positions - low_array) / (high_array - low_array) * bins).astype(np.int64)
    cells = np.clip(cells, 0, bins - 1)
    flat = np.ravel_multi_index(tuple(cells.T), (bins,) * positions.shape[1])
    counts = np.bincount(flat, minlength=bins ** positions.shape[1]).astype(np.float64)
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * np.log(shares)).sum())
