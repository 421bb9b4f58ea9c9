"""Diagnostics of a learned representation: is its latent space usable for goal-conditioned RL?

RIG's agent sees the world only through the encoder, so imagined goals and latent rewards are only as
good as the latent space. The numbers here measure it against the true state on held-out frames:

- R^2 of linear probes from the latent to hand xy and to puck xy;
- the Spearman rank correlation between latent distances and true-state distances;
- negative ELBO, per-pixel MSE, KL per dimension and the count of active units;
- what the latent reward pays for moving the hand and for moving the object (``rig.reward_geometry``);
- on the multi-object env, object-focused numbers on frames with held-out colours: puck probe R^2,
  reconstruction error on the object's pixels, and whether prior samples show the context's colour.

Grids (reconstructions, prior samples, latent traversals) are returned as uint8 images; ``write_diagnostics``
saves them enlarged for people to look at. Everything runs without gradients, in eval mode, on the model's
own device, and leaves the model's training flag and the global RNG as it found them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn

from rig.config import EnvConfig
from rig.data import FrameDataset
from rig.media import image_grid, save_png
from rig.representation import RepresentationModule
from rig.representation.base import Representation, images_to_tensor, module_device, tensor_to_images
from rig.reward_geometry import reward_geometry_metrics
from rig.rundir import PretrainDir

TABLE_HALF_WIDTH = 0.25
"""The top-down camera sees the table square [-0.25, 0.25]^2 metres, walls included."""
TABLE_RGB = np.array([219.0, 219.0, 209.0]) / 255.0
"""The table as rendered (measured), in [0, 1]."""
OBJECT_CHROMA = 0.2
"""A pixel is an object pixel when max(rgb) - min(rgb) exceeds this (rgb in [0, 1]). Table, hand and walls
render with chroma <= 0.05; every palette colour has at least 0.6."""
MIN_OBJECT_PIXELS = 4
"""Fewer object pixels than this is no object: the smallest object covers about 36 pixels at 48 px."""
HUE_TOLERANCE = 20.0
"""Degrees within which a decoded object's hue counts as the context's colour (``prior_colour_match``)."""
GRID_SCALE = 3
"""Enlargement of the saved grids, so that 48 px frames can be inspected."""


# --------------------------------------------------------------------------- running the model


def _device(rep: Representation) -> torch.device:
    return module_device(rep) if isinstance(rep, nn.Module) else torch.device("cpu")


@contextmanager
def _inference(rep: Representation) -> Iterator[torch.device]:
    """No gradients and eval mode (the previous mode is restored afterwards); yields the model's device."""
    was_training = isinstance(rep, nn.Module) and rep.training
    if isinstance(rep, nn.Module):
        rep.eval()
    try:
        with torch.no_grad():
            yield _device(rep)
    finally:
        if isinstance(rep, nn.Module):
            rep.train(was_training)


@contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[None]:
    """Seed torch's global RNG (the loss samples z with it) without disturbing the caller's stream."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _generator(rep: Representation, seed: int) -> torch.Generator:
    return torch.Generator(device=_device(rep)).manual_seed(seed)


def _batches(count: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, count, batch_size):
        yield slice(start, min(start + batch_size, count))


def _model_input(rep: Representation, array: np.ndarray, device: torch.device) -> Tensor:
    """uint8 frames for image representations, float state vectors for the state identity."""
    if rep.input_kind == "image":
        return images_to_tensor(array, device)
    return torch.as_tensor(array, dtype=torch.float32, device=device)


def _optional_images(images: np.ndarray | None, device: torch.device) -> Tensor | None:
    return None if images is None else images_to_tensor(images, device)


def _check_contexts(images: np.ndarray, contexts: np.ndarray | None) -> None:
    if contexts is not None and len(contexts) != len(images):
        raise ValueError(f"got {len(contexts)} context images for {len(images)} images")


def _require_images(rep: Representation, what: str) -> None:
    if rep.input_kind != "image":
        raise ValueError(f"{what} needs an image representation, got input_kind={rep.input_kind!r}")


def encode_dataset(
    rep: Representation, images: np.ndarray, contexts: np.ndarray | None = None, batch_size: int = 512
) -> np.ndarray:
    """float32 (N, latent_dim) encoder means of ``images`` (states for the state identity), in batches.

    ``contexts`` are the context images of the frames, needed by the CC-VAE only.
    """
    _check_contexts(images, contexts)
    chunks = [np.zeros((0, rep.latent_dim), dtype=np.float32)]
    with _inference(rep) as device:
        for batch in _batches(len(images), batch_size):
            context = None if contexts is None else images_to_tensor(contexts[batch], device)
            latent = rep.encode(_model_input(rep, images[batch], device), context)
            chunks.append(latent.float().cpu().numpy())
    return np.concatenate(chunks)


def _reconstruct(rep: Representation, images: np.ndarray, contexts: np.ndarray | None) -> Tensor:
    """(B, 3, H, W) decode(encode(x)) in [0, 1]: the reconstruction from the posterior mean."""
    with _inference(rep) as device:
        latent = rep.encode(images_to_tensor(images, device), _optional_images(contexts, device))
        return rep.decode(latent)


def reconstruct(
    rep: Representation, images: np.ndarray, contexts: np.ndarray | None = None, batch_size: int = 512
) -> np.ndarray:
    """uint8 (N, H, W, 3) reconstructions of ``images`` from their encoder means."""
    _require_images(rep, "reconstruct")
    _check_contexts(images, contexts)
    chunks = [np.zeros((0, *images.shape[1:]), dtype=np.uint8)]
    for batch in _batches(len(images), batch_size):
        context = None if contexts is None else contexts[batch]
        chunks.append(tensor_to_images(_reconstruct(rep, images[batch], context)))
    return np.concatenate(chunks)


def _prior_images(
    rep: Representation, context_image: np.ndarray | None, n: int, generator: torch.Generator | None
) -> np.ndarray:
    """uint8 (n, H, W, 3) decoded prior samples; under the context's c for the CC-VAE, plain otherwise."""
    with _inference(rep) as device:
        context_latent = None
        if rep.context_dim > 0:
            if context_image is None:
                raise ValueError("prior samples of a context-conditioned model need a context image")
            context_latent = rep.encode_context(images_to_tensor(context_image, device))
        return tensor_to_images(rep.decode(rep.sample_prior(n, context_latent, generator)))


# ------------------------------------------------------------------------- latent quality


def linear_probe_r2(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, ridge: float = 1e-3
) -> float:
    """R^2 on the test set of a ridge-regularised linear map with bias, fitted on the train set.

    R^2 = 1 - SS_res / SS_tot with both sums taken over all target dims together (so x and y of a
    position count as one target), SS_tot around the test targets' own mean. 1 is perfect, 0 is no
    better than predicting the mean, and it is negative for worse. The bias is not penalised.
    """
    weights, bias = _fit_ridge(np.asarray(train_x, np.float64), np.asarray(train_y, np.float64), ridge)
    predicted = np.asarray(test_x, np.float64) @ weights + bias
    return r_squared(np.asarray(test_y, np.float64), predicted)


def knn_probe_r2(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    k: int = 5,
    chunk: int = 512,
) -> float:
    """R^2 on the test set of predicting each target as the mean of its k nearest training latents' targets.

    Set beside the linear probe, it tells missing information (both low) from information that is
    there but folded non-linearly (this one high, the linear one low). Same R^2 convention as
    ``linear_probe_r2``.
    """
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y = np.asarray(train_y, np.float64)
    if len(train_x) != len(train_y) or len(train_x) < k:
        raise ValueError(f"a k={k} probe needs >= {k} paired samples, got {len(train_x)} and {len(train_y)}")
    predicted = []
    for start in range(0, len(test_x), chunk):
        block = test_x[start : start + chunk]
        squared = (block**2).sum(1)[:, None] - 2.0 * block @ train_x.T + (train_x**2).sum(1)[None]
        nearest = np.argpartition(squared, k - 1, axis=1)[:, :k]
        predicted.append(train_y[nearest].mean(axis=1))
    return r_squared(np.asarray(test_y, np.float64), np.concatenate(predicted))


def _fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares on centred data, so the bias is exactly the mean residual and goes unpenalised."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"a probe needs >= 2 paired samples, got {len(x)} inputs and {len(y)} targets")
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    centred_x = x - x_mean
    gram = centred_x.T @ centred_x + ridge * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, centred_x.T @ (y - y_mean))
    return weights, y_mean - x_mean @ weights


def r_squared(target: np.ndarray, predicted: np.ndarray) -> float:
    """1 - SS_res / SS_tot, summed over all target dims."""
    total = float(np.square(target - target.mean(axis=0)).sum())
    if total == 0.0:
        raise ValueError("R^2 is undefined for constant targets")
    return 1.0 - float(np.square(target - predicted).sum()) / total


def distance_rank_correlation(
    latents: np.ndarray,
    states: np.ndarray,
    n_pairs: int = 5000,
    rng: np.random.Generator | None = None,
    groups: np.ndarray | None = None,
) -> float:
    """Spearman correlation between latent and true-state Euclidean distances over random frame pairs.

    The latent reward is -||e(s) - z_g||, so it ranks states correctly only when this is high. With
    ``groups`` (e.g. each frame's episode) both frames of a pair come from one group: in RL, a state is
    only ever compared with goals of its own episode, hence of its own object.
    """
    if len(latents) != len(states) or len(latents) < 2:
        raise ValueError(f"need >= 2 paired frames, got {len(latents)} latents and {len(states)} states")
    rng = rng if rng is not None else np.random.default_rng(0)
    first, second = _frame_pairs(len(latents), n_pairs, rng, groups)
    latent_distance = np.linalg.norm(latents[first] - latents[second], axis=1)
    state_distance = np.linalg.norm(states[first] - states[second], axis=1)
    return float(stats.spearmanr(latent_distance, state_distance)[0])


def _frame_pairs(
    count: int, n_pairs: int, rng: np.random.Generator, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Random pairs of distinct frames, within one group each when ``groups`` is given."""
    if groups is None:
        first = rng.integers(count, size=n_pairs)
        return first, (first + rng.integers(1, count, size=n_pairs)) % count  # never the same frame
    if len(groups) != count:
        raise ValueError(f"groups has {len(groups)} entries for {count} frames")
    order = np.argsort(groups, kind="stable")
    starts = np.searchsorted(groups[order], groups[order], side="left")
    sizes = np.searchsorted(groups[order], groups[order], side="right") - starts
    eligible = np.flatnonzero(sizes > 1)
    if len(eligible) == 0:
        raise ValueError("no group holds two frames to pair")
    pick = eligible[rng.integers(len(eligible), size=n_pairs)]
    offset = (pick - starts[pick] + rng.integers(1, sizes[pick])) % sizes[pick]
    return order[pick], order[starts[pick] + offset]


def active_units(latent_means: np.ndarray, threshold: float = 0.01) -> int:
    """Latent dims whose posterior mean varies across the data: Var_x(E_q[z_d | x]) > threshold.

    Burda et al. (2016, "Importance Weighted Autoencoders"); an inactive dim ignores its input and only
    copies the prior, so it carries no information about the frame. ``latent_means`` is (N, z_dim).
    """
    return int((np.var(latent_means, axis=0) > threshold).sum())


# ------------------------------------------------------------------------------------ grids


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
    for batch in _batches(len(inputs), ncols):
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
    _require_images(rep, "prior_sample_grid")
    if contexts is None:
        return image_grid(_prior_images(rep, None, n * rows, generator), n)
    tiles = []
    for context in contexts:
        tiles += [context[None], _prior_images(rep, context, n, generator)]
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
    _require_images(rep, "traversal_grid")
    with _inference(rep) as device:
        mean = rep.encode(images_to_tensor(image, device), _optional_images(context, device))
        values = torch.linspace(-span, span, steps, device=device)
        latents = mean.repeat(rep.z_dim * steps, 1)
        for dim in range(rep.z_dim):
            latents[dim * steps : (dim + 1) * steps, dim] = values
        frames = tensor_to_images(rep.decode(latents))
    return image_grid(frames, steps)


# ------------------------------------------------------------------- object-focused metrics


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


def contexts_of(rep: Representation, dataset: FrameDataset, indices: np.ndarray) -> np.ndarray | None:
    """The context images of the frames at ``indices``, for models that take them."""
    return dataset.images[dataset.context_index[indices]] if rep.context_dim > 0 else None


def object_reconstruction_error(
    rep: Representation, dataset: FrameDataset, indices: np.ndarray, batch_size: int = 512
) -> float:
    """Mean squared error (pixel values in [0, 1], over RGB) between frames and their reconstructions,
    on the object's pixels only (``object_mask``): the whole-image MSE is dominated by the table."""
    _require_images(rep, "object_reconstruction_error")
    squared_error, count = 0.0, 0
    for batch in _batches(len(indices), batch_size):
        chosen = indices[batch]
        recon = _reconstruct(rep, dataset.images[chosen], contexts_of(rep, dataset, chosen))
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
        samples = _prior_images(rep, image, samples_per_context, generator)
        matches += int((hue_distance(detect_object_hue(samples), target) <= HUE_TOLERANCE).sum())
    return matches / (len(context_images) * samples_per_context)


# ------------------------------------------------------------------------- metrics and files


def _heldout_indices(dataset: FrameDataset) -> np.ndarray:
    heldout = dataset.split(heldout=True)
    if len(heldout) == 0:
        raise ValueError("the dataset has no held-out frames to measure on")
    return heldout


def _spread(indices: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` entries of ``indices``, evenly spaced, so grids show many episodes."""
    positions = np.linspace(0, len(indices) - 1, min(n, len(indices))).round().astype(int)
    return indices[np.unique(positions)]


def _latent_quality(
    rep: Representation, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], seed: int
) -> dict[str, Any]:
    """Probe R^2 for hand and puck and the distance rank correlation, from (latents, states) pairs.

    For the CC-VAE the latent is the whole RL representation [mu_z, c]; the ``_z_only`` entries use mu_z
    alone, to show how much of the position z carries by itself.
    """
    (train_x, train_s), (test_x, test_s) = train, test
    metrics: dict[str, Any] = {
        "probe_r2_hand": linear_probe_r2(train_x, train_s[:, :2], test_x, test_s[:, :2]),
        "probe_r2_puck": linear_probe_r2(train_x, train_s[:, 2:], test_x, test_s[:, 2:]),
        "knn_probe_r2_hand": knn_probe_r2(train_x, train_s[:, :2], test_x, test_s[:, :2]),
        "knn_probe_r2_puck": knn_probe_r2(train_x, train_s[:, 2:], test_x, test_s[:, 2:]),
        "spearman": distance_rank_correlation(test_x, test_s, rng=np.random.default_rng(seed)),
    }
    if rep.context_dim > 0:
        z_train, z_test = train_x[:, : rep.z_dim], test_x[:, : rep.z_dim]
        metrics["probe_r2_puck_z_only"] = linear_probe_r2(z_train, train_s[:, 2:], z_test, test_s[:, 2:])
        metrics["spearman_z_only"] = distance_rank_correlation(
            z_test, test_s, rng=np.random.default_rng(seed)
        )
    return metrics


def heldout_loss_metrics(
    rep: Representation, images: np.ndarray, contexts: np.ndarray | None, seed: int = 0, batch_size: int = 512
) -> dict[str, Any]:
    """Frame-weighted means of the loss metrics, the KL of each dim, and ``neg_elbo``.

    ``loss`` is the training objective (KL weighted by beta, and for the CC-VAE with the context
    reconstruction); ``neg_elbo`` = recon + kl is the negative ELBO of the frame (given its context) with
    beta = 1, up to the likelihood's constant. ``mse`` is per pixel value, as in the training logs.
    """
    _check_contexts(images, contexts)
    totals: dict[str, float] = {}
    kl_total = np.zeros(rep.z_dim)
    with _inference(rep) as device, _seeded(device, seed):
        for batch in _batches(len(images), batch_size):
            x = images_to_tensor(images[batch], device)
            context = None if contexts is None else images_to_tensor(contexts[batch], device)
            count = batch.stop - batch.start
            for key, value in rep.loss(x, context)[1].items():
                totals[key] = totals.get(key, 0.0) + value * count
            kl_total += rep.kl_per_dim(x, context).double().cpu().numpy() * count
    metrics: dict[str, Any] = {key: value / len(images) for key, value in totals.items()}
    metrics["neg_elbo"] = metrics["recon"] + metrics["kl"]
    metrics["kl_per_dim"] = (kl_total / len(images)).tolist()
    return metrics


def representation_metrics(rep: Representation, dataset: FrameDataset, rng_seed: int = 0) -> dict[str, Any]:
    """Every number about ``rep`` on ``dataset``, JSON-ready; probes are fitted on the train split and
    everything else is measured on the held-out split. A state representation gets the latent-quality
    numbers only (its probes are the identity's)."""
    train, heldout = dataset.split(heldout=False), _heldout_indices(dataset)
    inputs = dataset.images if rep.input_kind == "image" else dataset.states
    train_x = encode_dataset(rep, inputs[train], contexts_of(rep, dataset, train))
    test_x = encode_dataset(rep, inputs[heldout], contexts_of(rep, dataset, heldout))
    metrics: dict[str, Any] = {"num_train": len(train), "num_heldout": len(heldout)}
    metrics.update(
        _latent_quality(rep, (train_x, dataset.states[train]), (test_x, dataset.states[heldout]), rng_seed)
    )
    if rep.input_kind == "image":
        metrics.update(
            heldout_loss_metrics(rep, dataset.images[heldout], contexts_of(rep, dataset, heldout), rng_seed)
        )
        metrics["active_units"] = active_units(test_x[:, : rep.z_dim])
        metrics["object_recon_mse"] = object_reconstruction_error(rep, dataset, heldout)
    return metrics


def heldout_colour_metrics(
    rep: Representation, dataset: FrameDataset, colour_dataset: FrameDataset, rng_seed: int = 0
) -> dict[str, Any]:
    """Generalisation to object colours never trained on (frames of the held-out palette).

    Positions are read from the position part of the representation, z (the whole latent of a beta-VAE,
    mu_z without the context c of a CC-VAE). The probes are fitted on the train split of ``dataset``
    (training palette) and tested on every frame of ``colour_dataset``. ``spearman`` ranks z distances
    over random pairs of frames; ``spearman_within_episode`` ranks distances of the whole RL
    representation over pairs from one episode (one object), as the latent reward compares them. The
    object error is measured on every frame; prior samples are drawn under each episode's context frame
    and must show its hue (``prior_colour_match``).
    """
    _require_images(rep, "heldout_colour_metrics")
    train, every = dataset.split(heldout=False), np.arange(len(colour_dataset))
    train_x = encode_dataset(rep, dataset.images[train], contexts_of(rep, dataset, train))
    test_x = encode_dataset(rep, colour_dataset.images, contexts_of(rep, colour_dataset, every))
    z = slice(0, rep.z_dim)
    train_s, test_s = dataset.states[train], colour_dataset.states
    rng = np.random.default_rng(rng_seed)
    metrics: dict[str, Any] = {"num_frames": len(colour_dataset)}
    for name, part in (("hand", slice(0, 2)), ("puck", slice(2, 4))):
        metrics[f"probe_r2_{name}"] = linear_probe_r2(
            train_x[:, z], train_s[:, part], test_x[:, z], test_s[:, part]
        )
        metrics[f"knn_probe_r2_{name}"] = knn_probe_r2(
            train_x[:, z], train_s[:, part], test_x[:, z], test_s[:, part]
        )
    metrics["spearman"] = distance_rank_correlation(test_x[:, z], test_s, rng=rng)
    metrics["spearman_within_episode"] = distance_rank_correlation(
        test_x, test_s, rng=rng, groups=colour_dataset.episodes
    )
    metrics["object_recon_mse"] = object_reconstruction_error(rep, colour_dataset, every)
    contexts = np.unique(colour_dataset.context_index)
    metrics["num_contexts"] = len(contexts)
    metrics["prior_colour_match"] = prior_colour_match(
        rep,
        colour_dataset.images[contexts],
        colour_dataset.object_rgb[contexts],
        generator=_generator(rep, rng_seed),
    )
    metrics["prior_colour_match_fitted"] = _fitted_prior_colour_match(
        rep, train_x[:, z], colour_dataset, contexts, rng_seed
    )
    return metrics


def _fitted_prior_colour_match(
    rep: Representation, train_z: np.ndarray, colour_dataset: FrameDataset, contexts: np.ndarray, seed: int
) -> float:
    """``prior_colour_match`` with z drawn as the agent's imagined goals are by default: from a diagonal
    Gaussian fitted to the training frames' z means (``agent.goal_prior=fitted``). N(0, I) draws also land
    on dims and ends the encoder never uses, where decoded colours drift."""
    previous = getattr(rep, "goal_prior", None)
    rep.set_goal_prior(train_z.mean(axis=0).tolist(), np.maximum(train_z.std(axis=0), 1e-6).tolist())
    try:
        return prior_colour_match(
            rep,
            colour_dataset.images[contexts],
            colour_dataset.object_rgb[contexts],
            generator=_generator(rep, seed),
        )
    finally:
        rep.set_goal_prior(*(previous if previous is not None else (None, None)))


def _save_grid(path: Path, grid: np.ndarray) -> None:
    save_png(path, grid, scale=GRID_SCALE)


def _write_grids(rep: Representation, dataset: FrameDataset, out: PretrainDir, rng_seed: int) -> None:
    """reconstructions.png, prior_samples.png and traversals.png, all from held-out frames."""
    heldout = _heldout_indices(dataset)
    shown = _spread(heldout, 16)
    recon = reconstruction_grid(rep, dataset.images[shown], contexts_of(rep, dataset, shown))
    _save_grid(out.reconstructions, recon)
    contexts = None
    if rep.context_dim > 0:
        contexts = dataset.images[_spread(np.unique(dataset.context_index[heldout]), 4)]
    prior = prior_sample_grid(rep, contexts=contexts, generator=_generator(rep, rng_seed))
    _save_grid(out.prior_samples, prior)
    frame = heldout[len(heldout) // 2 : len(heldout) // 2 + 1]
    context = contexts_of(rep, dataset, frame)
    traversal = traversal_grid(rep, dataset.images[frame[0]], None if context is None else context[0])
    _save_grid(out.traversals, traversal)


def _write_heldout_colour_grids(
    rep: Representation, colour_dataset: FrameDataset, out: PretrainDir, rng_seed: int
) -> None:
    """reconstructions_heldout.png and prior_samples_heldout.png (a row per held-out-colour context,
    for every model, so that samples that ignore the context show it)."""
    shown = _spread(np.arange(len(colour_dataset)), 16)
    recon = reconstruction_grid(rep, colour_dataset.images[shown], contexts_of(rep, colour_dataset, shown))
    _save_grid(out.heldout_reconstructions, recon)
    contexts = colour_dataset.images[_spread(np.unique(colour_dataset.context_index), 4)]
    prior = prior_sample_grid(rep, contexts=contexts, generator=_generator(rep, rng_seed))
    _save_grid(out.heldout_prior_samples, prior)


def write_diagnostics(
    rep: RepresentationModule,
    dataset: FrameDataset,
    out_dir: str | os.PathLike[str],
    heldout_colour_dataset: FrameDataset | None = None,
    rng_seed: int = 0,
    env_cfg: EnvConfig | None = None,
    goal_seed: int = 10_000,
) -> dict[str, Any]:
    """Write the PNG grids into ``out_dir`` and return the metrics (the caller writes metrics.json).

    With ``heldout_colour_dataset`` (frames of the held-out palette) the metrics gain a
    ``heldout_colours`` entry and its grids are written too. With ``env_cfg`` they gain
    ``reward_geometry`` (``rig.reward_geometry``, on the real goals seeded from ``goal_seed``, in the
    training palette, and in the held-out one under ``heldout_colours``). A state representation has no
    images, so it gets metrics only.
    """
    metrics = representation_metrics(rep, dataset, rng_seed)
    if rep.input_kind != "image":
        return metrics
    out = PretrainDir(Path(out_dir))
    _write_grids(rep, dataset, out, rng_seed)
    if env_cfg is not None:
        metrics["reward_geometry"] = reward_geometry_metrics(env_cfg, rep, env_cfg.palette, seed=goal_seed)
    if heldout_colour_dataset is not None:
        metrics["heldout_colours"] = heldout_colour_metrics(rep, dataset, heldout_colour_dataset, rng_seed)
        if env_cfg is not None:
            held = reward_geometry_metrics(env_cfg, rep, "heldout", seed=goal_seed)
            metrics["heldout_colours"]["reward_geometry"] = held
        _write_heldout_colour_grids(rep, heldout_colour_dataset, out, rng_seed)
    return metrics
