"""Diagnostics of a learned representation: is its latent space usable for goal-conditioned RL?

RIG's agent sees the world only through the encoder, so imagined goals and latent rewards are only as
good as the latent space. The numbers measure it against the true state on held-out frames, one topic per
module:

- ``probes``: R^2 of linear and nearest-neighbour probes from the latent to hand xy and to puck xy, the
  Spearman rank correlation between latent and true-state distances, the count of active units;
- ``metrics``: every number on a dataset, with the negative ELBO, per-pixel MSE and KL per dimension, and
  on the multi-object env the object-focused numbers on frames with held-out colours;
- ``colour``: the object's pixels, its reconstruction error, and whether prior samples show the context's
  colour;
- ``grids``: reconstructions, prior samples and latent traversals as uint8 images (the VAEs only: the
  supervised encoder decodes to states, and gets its regression error per state part instead);
- here, ``write_diagnostics``: all of it for the pretrain stage, with the grids saved enlarged for people
  to look at, and what the latent reward pays for moving the hand and the object
  (``rig.reward_geometry``).

The model runs through ``rig.representation.inference``: without gradients, in eval mode, on the model's
own device, leaving the model's training flag and the global RNG as it found them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rig.config import EnvConfig
from rig.data import FrameDataset
from rig.diagnostics.grids import prior_sample_grid, reconstruction_grid, traversal_grid
from rig.diagnostics.metrics import (
    PUSHER_FACTORS,
    heldout_colour_metrics,
    heldout_indices,
    representation_metrics,
)
from rig.envs import is_pusher, state_factors
from rig.media import save_png
from rig.representation import RepresentationModule
from rig.representation.base import Representation
from rig.representation.inference import contexts_of, generator_for
from rig.reward_geometry import reward_geometry_metrics
from rig.rundir import PretrainDir

GRID_SCALE = 3
"""Enlargement of the saved grids, so that 48 px frames can be inspected."""


def _spread(indices: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` entries of ``indices``, evenly spaced, so grids show many episodes."""
    positions = np.linspace(0, len(indices) - 1, min(n, len(indices))).round().astype(int)
    return indices[np.unique(positions)]


def _save_grid(path: Path, grid: np.ndarray) -> None:
    save_png(path, grid, scale=GRID_SCALE)


def _write_grids(rep: Representation, dataset: FrameDataset, out: PretrainDir, rng_seed: int) -> None:
    """reconstructions.png, prior_samples.png and traversals.png, all from held-out frames; none for a
    representation without an image decoder."""
    if rep.output_kind != "image":
        return
    heldout = heldout_indices(dataset)
    shown = _spread(heldout, 16)
    recon = reconstruction_grid(rep, dataset.images[shown], contexts_of(rep, dataset, shown))
    _save_grid(out.reconstructions, recon)
    contexts = None
    if rep.context_dim > 0:
        contexts = dataset.images[_spread(np.unique(dataset.context_index[heldout]), 4)]
    prior = prior_sample_grid(rep, contexts=contexts, generator=generator_for(rep, rng_seed))
    _save_grid(out.prior_samples, prior)
    frame = heldout[len(heldout) // 2 : len(heldout) // 2 + 1]
    context = contexts_of(rep, dataset, frame)
    traversal = traversal_grid(rep, dataset.images[frame[0]], None if context is None else context[0])
    _save_grid(out.traversals, traversal)


def _write_heldout_colour_grids(
    rep: Representation, colour_dataset: FrameDataset, out: PretrainDir, rng_seed: int
) -> None:
    """reconstructions_heldout.png and prior_samples_heldout.png (a row per held-out-colour context,
    for every model, so that samples that ignore the context show it); none without an image decoder."""
    if rep.output_kind != "image":
        return
    shown = _spread(np.arange(len(colour_dataset)), 16)
    recon = reconstruction_grid(rep, colour_dataset.images[shown], contexts_of(rep, colour_dataset, shown))
    _save_grid(out.heldout_reconstructions, recon)
    contexts = colour_dataset.images[_spread(np.unique(colour_dataset.context_index), 4)]
    prior = prior_sample_grid(rep, contexts=contexts, generator=generator_for(rep, rng_seed))
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
    training palette, and in the held-out one under ``heldout_colours``) on rig's pushers, and probe the
    env's own ``state_factors``. A state representation has no images, so it gets metrics only; the
    supervised encoder has no image decoder, so it gets every metric that needs none and no grids.
    """
    factors = PUSHER_FACTORS if env_cfg is None else state_factors(env_cfg)
    pusher = env_cfg is None or is_pusher(env_cfg)
    metrics = representation_metrics(rep, dataset, rng_seed, factors, pusher)
    if rep.input_kind != "image":
        return metrics
    out = PretrainDir(Path(out_dir))
    _write_grids(rep, dataset, out, rng_seed)
    if env_cfg is not None and pusher:
        metrics["reward_geometry"] = reward_geometry_metrics(env_cfg, rep, env_cfg.palette, seed=goal_seed)
    if heldout_colour_dataset is not None:
        metrics["heldout_colours"] = heldout_colour_metrics(rep, dataset, heldout_colour_dataset, rng_seed)
        if env_cfg is not None and pusher:
            held = reward_geometry_metrics(env_cfg, rep, "heldout", seed=goal_seed)
            metrics["heldout_colours"]["reward_geometry"] = held
        _write_heldout_colour_grids(rep, heldout_colour_dataset, out, rng_seed)
    return metrics
