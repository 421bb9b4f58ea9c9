"""Object-focused measures on the multi-object env: the object's pixels, its reconstruction error, and
whether decoded prior samples show the context's colour.

The table's extent and colour are the env's (``envs.push.TABLE_HALF_WIDTH``, ``envs.push.TABLE_RGB``).
"""

from __future__ import annotations

import numpy as np
import torch

from envs.push import TABLE_HALF_WIDTH, TABLE_RGB
from rig.data import FrameDataset
from rig.representation.base import Representation, images_to_tensor
from rig.representation.inference import (
    batches,
    contexts_of,
    prior_images,
    reconstruct_tensor,
    require_image_decoder,
)

OBJECT_CHROMA = 0.2
"""A pixel is an object pixel when max(rgb) - min(rgb) exceeds this (rgb in [0, 1]). Table, hand and walls
render with chroma <= 0.05; every palette colour has at least 0.6."""

MIN_OBJECT_PIXELS = 4
"""Fewer object pixels than this is no object: the smallest object covers about 36 pixels at 48 px."""

HUE_TOLERANCE = 20.0
"""Degrees within which a decoded object's hue counts as the context's colour (``prior_colour_match``)."""


def pixel_centres(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Table coordinates (x of each column, y of each row) of the pixel centres; row 0 is y = +0.25."""
    offsets = (np.arange(image_size) + 0.5) * (2 * TABLE_HALF_WIDTH / image_size)
    return -TABLE_HALF_WIDTH + offsets, TABLE_HALF_WIDTH - offsets


def object_mask(states: np.ndarray, radius: np.ndarray, image_size: int) -> np.ndarray:
    """bool (N, H, W): pixel centres within ``radius`` of the object centre (states[:, 2:4]).

    The same disc serves both shapes: it is a cylinder's footprint and lies inside a box of that half
    width whatever its yaw (which the dataset does not store), so every masked pixel shows the object.
    """
    x, y = pixel_centres(image_size)
    dx = x[None, None, :] - states[:, 2, None, None]
    dy = y[None, :, None] - states[:, 3, None, None]
    return np.square(dx) + np.square(dy) <= np.square(np.asarray(radius))[:, None, None]


def object_reconstruction_error(
    rep: Representation, dataset: FrameDataset, indices: np.ndarray, batch_size: int = 512
) -> float:
    """Mean squared error (pixel values in [0, 1], over RGB) between frames and their reconstructions,
    on the object's pixels only (``object_mask``): the whole-image MSE is dominated by the table."""
    require_image_decoder(rep, "object_reconstruction_error")
    squared_error, count = 0.0, 0
    for batch in batches(len(indices), batch_size):
        chosen = indices[batch]
        recon = reconstruct_tensor(rep, dataset.images[chosen], contexts_of(rep, dataset, chosen))
        target = images_to_tensor(dataset.images[chosen], recon.device)
        mask = object_mask(dataset.states[chosen], dataset.object_radius[chosen], dataset.images.shape[1])
        mask_t = torch.as_tensor(mask, device=recon.device)[:, None].expand_as(recon)
        squared_error += float((recon - target).square()[mask_t].sum())
        count += int(mask_t.sum())
    if count == 0:
        raise ValueError("no object pixels in the chosen frames")
    return squared_error / count


def opponent_hue(colours: np.ndarray) -> np.ndarray:
    """Degrees in [0, 360) of the opponent-colour angle atan2(sqrt(3)/2 (G - B), R - (G + B) / 2).

    The angle is of a linear map of the colour, so it is defined for colour differences with negative
    components, and a positive multiple of a difference has the same angle. Grey maps to the origin:
    adding grey to a colour leaves its angle unchanged. It differs from the HSV hue by at most 1.2
    degrees (red at 0, yellow at 60, green at 120 and so on in both).
    """
    red, green, blue = np.moveaxis(np.asarray(colours, dtype=np.float64), -1, 0)
    return np.degrees(np.arctan2(np.sqrt(3.0) / 2.0 * (green - blue), red - (green + blue) / 2.0)) % 360.0


def reference_hue(rgb: np.ndarray) -> np.ndarray:
    """(N,) the hue that ``detect_object_hue`` measures for objects of the known colours ``rgb`` (in [0, 1]).

    It is the opponent angle of the colour's offset from the table, as the detector's is.
    """
    return opponent_hue(np.asarray(rgb, dtype=np.float64) - TABLE_RGB)


def hue_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Circular distance in degrees, in [0, 180]; NaN where either hue is NaN."""
    difference = np.abs(np.asarray(first) - np.asarray(second)) % 360.0
    return np.minimum(difference, 360.0 - difference)


def detect_object_hue(images: np.ndarray) -> np.ndarray:
    """float (N,) hue in degrees of the object seen in each uint8 image; NaN where there is none.

    Object pixels are those with chroma max(rgb) - min(rgb) > ``OBJECT_CHROMA``, which the grey table,
    the near-black hand and the walls never reach. A blurry decode mixes the object with the table, so
    its mean colour is a blend w c + (1 - w) t of object colour c and table colour t; the opponent angle
    of that mean minus t is the angle of w (c - t), the same for every w > 0. The hue is thus measured
    on the offset from the table and compared with ``reference_hue`` of the known colour. The scene's
    lighting renders a top face at its material colour: on 300 rendered resets of both palettes the
    detected hue was within 0.3 degrees of the drawn colour's reference hue.
    """
    pixels = images.astype(np.float64) / 255.0
    is_object = pixels.max(axis=-1) - pixels.min(axis=-1) > OBJECT_CHROMA
    counts = is_object.sum(axis=(1, 2))
    mean_colour = (pixels * is_object[..., None]).sum(axis=(1, 2)) / np.maximum(counts, 1)[:, None]
    return np.where(counts >= MIN_OBJECT_PIXELS, reference_hue(mean_colour), np.nan)


def prior_colour_match(
    rep: Representation,
    context_images: np.ndarray,
    context_rgb: np.ndarray,
    samples_per_context: int = 16,
    generator: torch.Generator | None = None,
) -> float:
    """Share of decoded prior samples whose object hue is within ``HUE_TOLERANCE`` of their context's.

    Samples are drawn under each context's c for the CC-VAE and unconditioned for a model without
    context. The context's hue is ``reference_hue`` of ``context_rgb``; a sample without object pixels
    counts as a miss. A model that shows the context's colour scores 1. A context-blind model matches
    only where its sample's hue happens to lie near the context's: about 2 * 20 / 360 = 0.11 when
    either the contexts' or the samples' hues spread uniformly round the circle, less when its samples
    often show no object.
    """
    if len(context_images) != len(context_rgb) or len(context_images) == 0:
        raise ValueError(
            f"need matching, non-empty contexts: {len(context_images)} images, {len(context_rgb)}"
        )
    matches = 0
    for image, target in zip(context_images, reference_hue(context_rgb), strict=True):
        samples = prior_images(rep, image, samples_per_context, generator)
        matches += int((hue_distance(detect_object_hue(samples), target) <= HUE_TOLERANCE).sum())
    return matches / (len(context_images) * samples_per_context)
