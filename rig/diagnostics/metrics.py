"""Every number about a representation on a frame dataset, JSON-ready: latent quality on held-out frames,
the held-out loss (the VAEs) or regression error (the supervised encoder), and generalisation to object
colours never trained on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from rig.data import FrameDataset
from rig.diagnostics.colour import object_reconstruction_error, prior_colour_match
from rig.diagnostics.probes import (
    active_units,
    distance_rank_correlation,
    knn_probe_r2,
    linear_probe_r2,
    r_squared,
)
from rig.representation.base import Representation, images_to_tensor
from rig.representation.inference import (
    batches,
    check_contexts,
    contexts_of,
    encode_dataset,
    generator_for,
    inference,
    require_images,
    seeded,
)

PUSHER_FACTORS: dict[str, slice] = {"hand": slice(0, 2), "puck": slice(2, 4)}
"""the pushers' state parts (``PushEnv.state_factors``), the default of every function here"""


def heldout_indices(dataset: FrameDataset) -> np.ndarray:
    heldout = dataset.split(heldout=True)
    if len(heldout) == 0:
        raise ValueError("the dataset has no held-out frames to measure on")
    return heldout


def _latent_quality(
    rep: Representation,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    seed: int,
    factors: Mapping[str, slice],
) -> dict[str, Any]:
    """Probe R^2 for each state part (hand and puck on the pushers) and the distance rank correlation,
    from (latents, states) pairs.

    For the CC-VAE the latent is the whole RL representation [mu_z, c]; the ``_z_only`` entries use mu_z
    alone, to show how much of the last part (the object) z carries by itself.
    """
    (train_x, train_s), (test_x, test_s) = train, test
    metrics: dict[str, Any] = {}
    for probe, fit in (("probe_r2", linear_probe_r2), ("knn_probe_r2", knn_probe_r2)):
        for name, part in factors.items():
            metrics[f"{probe}_{name}"] = fit(train_x, train_s[:, part], test_x, test_s[:, part])
    metrics["spearman"] = distance_rank_correlation(test_x, test_s, rng=np.random.default_rng(seed))
    if rep.context_dim > 0:
        z_train, z_test = train_x[:, : rep.z_dim], test_x[:, : rep.z_dim]
        name, part = list(factors.items())[-1]
        metrics[f"probe_r2_{name}_z_only"] = linear_probe_r2(
            z_train, train_s[:, part], z_test, test_s[:, part]
        )
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
    check_contexts(images, contexts)
    totals: dict[str, float] = {}
    kl_total = np.zeros(rep.z_dim)
    with inference(rep) as device, seeded(device, seed):
        for batch in batches(len(images), batch_size):
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


def representation_metrics(
    rep: Representation,
    dataset: FrameDataset,
    rng_seed: int = 0,
    factors: Mapping[str, slice] = PUSHER_FACTORS,
    pusher: bool = True,
) -> dict[str, Any]:
    """Every number about ``rep`` on ``dataset``, JSON-ready; probes are fitted on the train split and
    everything else is measured on the held-out split. ``factors`` names the parts of the dataset's states
    to probe (the env's ``state_factors``); the object's pixel error (``pusher``) needs the pushers' object
    disc at states[:, 2:4]. A state representation gets the latent-quality numbers only (its probes are
    the identity's); the supervised encoder gets its regression error in place of the VAEs' loss, KL and
    reconstruction numbers."""
    train, heldout = dataset.split(heldout=False), heldout_indices(dataset)
    inputs = dataset.images if rep.input_kind == "image" else dataset.states
    train_x = encode_dataset(rep, inputs[train], contexts_of(rep, dataset, train))
    test_x = encode_dataset(rep, inputs[heldout], contexts_of(rep, dataset, heldout))
    metrics: dict[str, Any] = {"num_train": len(train), "num_heldout": len(heldout)}
    metrics.update(
        _latent_quality(
            rep, (train_x, dataset.states[train]), (test_x, dataset.states[heldout]), rng_seed, factors
        )
    )
    if rep.input_kind != "image":
        return metrics
    if rep.output_kind == "state":
        metrics.update(regression_metrics(rep, test_x, dataset.states[heldout], factors))
        return metrics
    metrics.update(
        heldout_loss_metrics(rep, dataset.images[heldout], contexts_of(rep, dataset, heldout), rng_seed)
    )
    metrics["active_units"] = active_units(test_x[:, : rep.z_dim])
    if pusher:
        metrics["object_recon_mse"] = object_reconstruction_error(rep, dataset, heldout)
    return metrics


def regression_metrics(
    rep: Representation,
    latents: np.ndarray,
    states: np.ndarray,
    factors: Mapping[str, slice] = PUSHER_FACTORS,
) -> dict[str, float]:
    """How well a representation that decodes to states (the supervised encoder) reads them: for each
    state part, ``regression_rmse_<part>``, the root mean squared error of the states ``latents`` decode
    to against the true ``states``, in the state's units (metres on the pushers), and
    ``regression_r2_<part>``, the R^2 of those decoded states themselves (no probe is fitted)."""
    if rep.output_kind != "state":
        raise ValueError(
            f"regression error needs a representation that decodes to states, got {rep.output_kind!r}"
        )
    with inference(rep) as device:
        decoded = rep.decode(torch.as_tensor(latents, device=device)).double().cpu().numpy()
    metrics: dict[str, float] = {}
    for name, part in factors.items():
        error = decoded[:, part] - states[:, part]
        metrics[f"regression_rmse_{name}"] = float(np.sqrt(np.mean(np.square(error))))
        metrics[f"regression_r2_{name}"] = r_squared(states[:, part], decoded[:, part])
    return metrics


def heldout_colour_metrics(
    rep: Representation, dataset: FrameDataset, colour_dataset: FrameDataset, rng_seed: int = 0
) -> dict[str, Any]:
    """Generalisation to object colours never trained on (frames of the held-out palette).

    Positions are read from the position part of the representation, z (the whole latent of a beta-VAE,
    mu_z without the context c of a CC-VAE). The probes are fitted on the train split of ``dataset``
    (training palette) and tested on every frame of ``colour_dataset``. ``spearman`` ranks z distances
    over random pairs of frames; ``spearman_within_episode`` ranks distances of the whole RL
    representation over pairs from one episode (one object), as the latent reward compares them. For a
    representation with an image decoder the object error is measured on every frame, and prior samples
    are drawn under each episode's context frame and must show its hue (``prior_colour_match``); for
    the supervised encoder, its regression error (``regression_metrics``) instead.
    """
    require_images(rep, "heldout_colour_metrics")
    train, every = dataset.split(heldout=False), np.arange(len(colour_dataset))
    train_x = encode_dataset(rep, dataset.images[train], contexts_of(rep, dataset, train))
    test_x = encode_dataset(rep, colour_dataset.images, contexts_of(rep, colour_dataset, every))
    z = slice(0, rep.z_dim)
    train_s, test_s = dataset.states[train], colour_dataset.states
    rng = np.random.default_rng(rng_seed)
    metrics: dict[str, Any] = {"num_frames": len(colour_dataset)}
    for name, part in PUSHER_FACTORS.items():
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
    if rep.output_kind == "state":
        metrics.update(regression_metrics(rep, test_x, test_s))
        return metrics
    metrics["object_recon_mse"] = object_reconstruction_error(rep, colour_dataset, every)
    contexts = np.unique(colour_dataset.context_index)
    metrics["num_contexts"] = len(contexts)
    metrics["prior_colour_match"] = prior_colour_match(
        rep,
        colour_dataset.images[contexts],
        colour_dataset.object_rgb[contexts],
        generator=generator_for(rep, rng_seed),
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
            generator=generator_for(rep, seed),
        )
    finally:
        rep.set_goal_prior(*(previous if previous is not None else (None, None)))


def colour_generalisation(metrics: Mapping[str, Any]) -> dict[str, float] | None:
    """The numbers of a pretraining's ``metrics.json`` measured on object colours never trained on, with its
    reward geometry's shares and part interaction flattened in; None for a pretraining that measured none
    (an env whose object keeps its colour, or a run from before the measure existed)."""
    heldout = metrics.get("heldout_colours")
    if not isinstance(heldout, Mapping):
        return None
    flat = {key: float(value) for key, value in heldout.items() if isinstance(value, int | float)}
    geometry = heldout.get("reward_geometry")
    if isinstance(geometry, Mapping):
        flat.update({key: float(geometry[key]) for key in GEOMETRY_KEYS if key in geometry})
    return flat


GEOMETRY_KEYS = (
    "part_interaction",
    "part_cosine",
    "part_nonadditivity",
    "latent_hand",
    "latent_object",
    "true_hand",
    "true_object",
)
"""what ``colour_generalisation`` takes from the reward geometry (``rig.reward_geometry``)"""
