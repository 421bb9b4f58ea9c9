"""Image grids of a representation for people to look at: reconstructions, prior samples, latent traversals.

Each is returned as a uint8 image; ``rig.diagnostics.write_diagnostics`` saves them enlarged. They need an
image decoder (``output_kind`` "image"): the supervised encoder and the state identity have none.
"""

from __future__ import annotations

import numpy as np
import torch

from rig.media import image_grid
from rig.representation.base import Representation, images_to_tensor, tensor_to_images
from rig.representation.inference import (
    batches,
    inference,
    optional_images,
    prior_images,
    reconstruct,
    require_image_decoder,
)


def _pad_row(images: np.ndarray, ncols: int) -> np.ndarray:
    """Fill a short last row with white frames so the rows of a grid stay aligned."""
    blank = np.full((ncols - len(images), *images.shape[1:]), 255, dtype=np.uint8)
    return np.concatenate([images, blank])


def reconstruction_grid(
    rep: Representation, images: np.ndarray, contexts: np.ndarray | None = None, n: int = 16, ncols: int = 8
) -> np.ndarray:
    """The first ``n`` images in rows of ``ncols``; each row of inputs sits above their reconstructions."""
    inputs = images[:n]
    recons = reconstruct(rep, inputs, None if contexts is None else contexts[:n])
    ncols = max(1, min(ncols, len(inputs)))
    rows = []
    for batch in batches(len(inputs), ncols):
        rows += [_pad_row(inputs[batch], ncols), _pad_row(recons[batch], ncols)]
    return image_grid(np.concatenate(rows), ncols)


def prior_sample_grid(
    rep: Representation,
    n: int = 8,
    contexts: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    rows: int = 4,
) -> np.ndarray:
    """Decoded prior samples, ``n`` per row.

    With ``contexts`` (required for the CC-VAE) each row is one context image followed by ``n`` samples
    decoded under its c; a model without context draws plain samples there, which shows whether its
    samples follow the scene. Without ``contexts``: ``rows`` rows of plain samples.
    """
    require_image_decoder(rep, "prior_sample_grid")
    if contexts is None:
        return image_grid(prior_images(rep, None, n * rows, generator), n)
    tiles = []
    for context in contexts:
        tiles += [context[None], prior_images(rep, context, n, generator)]
    return image_grid(np.concatenate(tiles), n + 1)


def traversal_grid(
    rep: Representation,
    image: np.ndarray,
    context: np.ndarray | None = None,
    steps: int = 9,
    span: float = 3.0,
) -> np.ndarray:
    """One row per z dim: that dim takes ``steps`` values from -span to +span (prior standard deviations),
    every other latent entry stays at the encoder mean of ``image`` (for the CC-VAE, c stays fixed)."""
    require_image_decoder(rep, "traversal_grid")
    with inference(rep) as device:
        mean = rep.encode(images_to_tensor(image, device), optional_images(context, device))
        values = torch.linspace(-span, span, steps, device=device)
        latents = mean.repeat(rep.z_dim * steps, 1)
        for dim in range(rep.z_dim):
            latents[dim * steps : (dim + 1) * steps, dim] = values
        frames = tensor_to_images(rep.decode(latents))
    return image_grid(frames, steps)
