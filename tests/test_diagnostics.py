"""Diagnostics: probes, rank correlation, active units, object masks, the colour detector, grids and files."""

from __future__ import annotations

import colorsys
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import Tensor, nn

import envs  # noqa: F401  registers the envs
from envs.appearance import PALETTES
from envs.push import TABLE_RGB
from rig import diagnostics as diag
from rig.config import load_config
from rig.data import FrameDataset, collect
from rig.diagnostics import colour, grids, probes
from rig.representation import CCVAE, BetaVAE, StateRepresentation

IMAGE_SIZE = 48


# ----------------------------------------------------------------------------- fakes and data


class FrameBank(nn.Module):
    """A fake representation whose every prior sample decodes to a fixed rendered frame.

    With ``context_dim=1`` (CC-VAE-like) the context latent is the index of the bank frame equal to the
    context image, so samples under a context decode to that very frame; with ``context_dim=0`` every
    sample decodes to bank frame 0, whatever the context.
    """

    input_kind = "image"
    output_kind = "image"
    z_dim = 1

    def __init__(self, frames: np.ndarray, context_dim: int) -> None:
        super().__init__()
        self.register_buffer("frames", torch.as_tensor(frames).permute(0, 3, 1, 2).float() / 255.0)
        self.context_dim = context_dim
        self.latent_dim = 1

    def encode_context(self, context: Tensor) -> Tensor:
        distances = (self.frames[None] - context[:, None]).square().flatten(2).sum(-1)
        return distances.argmin(dim=1, keepdim=True).float()

    def sample_prior(
        self, n: int, context: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        return torch.zeros(n, 1) if context is None else context.reshape(1, 1).expand(n, 1)

    def decode(self, latent: Tensor) -> Tensor:
        return self.frames[latent[:, 0].long()]


class PixelIdentity(nn.Module):
    """A fake autoencoder that reconstructs perfectly, or returns a blank table when ``blank``."""

    input_kind = "image"
    output_kind = "image"
    context_dim = 0

    def __init__(self, blank: bool = False) -> None:
        super().__init__()
        self.blank = blank
        self.latent_dim = self.z_dim = 3 * IMAGE_SIZE * IMAGE_SIZE
        self.encoded_in_training_mode: list[bool] = []

    def encode(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        self.encoded_in_training_mode.append(self.training)
        return x.flatten(1)

    def decode(self, latent: Tensor) -> Tensor:
        images = latent.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)
        if self.blank:
            table = torch.as_tensor(TABLE_RGB, dtype=images.dtype)
            return table[None, :, None, None].expand_as(images)
        return images


def rendered_frames(palette: str, seeds: range) -> tuple[np.ndarray, np.ndarray]:
    """Rendered reset frames of the multi-object env with the drawn object colours."""
    env = gym.make("rig/PushMultiObject-v0", render_mode="rgb_array", palette=palette)
    frames, colours = [], []
    for seed in seeds:
        _, info = env.reset(seed=seed)
        frames.append(env.render())
        colours.append(info["object_rgb"])
    env.close()
    return np.stack(frames), np.array(colours)


def heldout_colour_frames() -> tuple[np.ndarray, np.ndarray]:
    """One rendered reset frame from each of the three held-out hue bands, with its object colour.

    The bands' centres are 120 degrees apart and the bands 90 degrees apart at least, so a frame's
    hue is never within the match tolerance of another frame's.
    """
    frames, colours = rendered_frames("heldout", range(30))
    hues = np.array([colorsys.rgb_to_hsv(*rgb)[0] * 360.0 for rgb in colours])
    bands = [np.flatnonzero((hues >= low) & (hues < high)) for low, high in PALETTES["heldout"].hue_ranges]
    assert all(len(band) > 0 for band in bands), "30 resets should draw from every held-out band"
    chosen = [band[0] for band in bands]
    return frames[chosen], colours[chosen]


def hue_circle_frames(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Table frames with a centred disc whose ``reference_hue`` steps evenly round the circle.

    The disc colour is grey plus an offset of opponent angle theta: adding grey leaves the angle of
    its offset from the table at theta, and every colour keeps chroma 0.6 and stays inside [0, 1].
    """
    theta = np.radians(np.arange(count) * 360.0 / count + 4.0)
    offsets = np.stack([np.cos(theta - shift) for shift in np.radians([0.0, 120.0, 240.0])], axis=1)
    colours = TABLE_RGB - 0.36 + 0.4 * offsets
    frames = np.tile(np.round(TABLE_RGB * 255.0), (count, IMAGE_SIZE, IMAGE_SIZE, 1))
    rows, cols = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    disc = np.square(rows - IMAGE_SIZE / 2) + np.square(cols - IMAGE_SIZE / 2) <= 36
    frames[:, disc] = np.round(colours * 255.0)[:, None]
    return frames.astype(np.uint8), colours


@pytest.fixture(scope="module")
def datasets() -> tuple[FrameDataset, FrameDataset]:
    """A tiny multi-object dataset with the training palette and one with held-out colours."""
    cfg = load_config("debug", ["env.id=rig/PushMultiObject-v0"])
    dataset = collect(cfg.env, cfg.data, seed=0, progress=False)
    cfg.data.num_frames = 40
    return dataset, collect(cfg.env, cfg.data, seed=1, palette="heldout", progress=False)


def small_models() -> list[Any]:
    torch.manual_seed(0)
    return [BetaVAE(z_dim=2, hidden_dim=16), CCVAE(z_dim=2, context_dim=2, hidden_dim=16)]


# ---------------------------------------------------------------------------------- numbers


def test_probe_r2_is_one_on_a_linear_relation_and_near_zero_on_noise() -> None:
    rng = np.random.default_rng(0)
    x_train, x_test = rng.normal(size=(300, 5)), rng.normal(size=(200, 5))
    weights, bias = rng.normal(size=(5, 2)), np.array([0.3, -1.0])
    r2 = probes.linear_probe_r2(x_train, x_train @ weights + bias, x_test, x_test @ weights + bias)
    assert r2 == pytest.approx(1.0, abs=1e-6)
    noise_r2 = probes.linear_probe_r2(x_train, rng.normal(size=(300, 2)), x_test, rng.normal(size=(200, 2)))
    assert noise_r2 < 0.1


def test_probe_r2_sums_over_target_dims() -> None:
    """Predicting one of two equally varied target dims perfectly and the other by its mean gives 0.5."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 1))
    y = np.concatenate([x, rng.normal(size=(2000, 1))], axis=1)
    assert probes.linear_probe_r2(x[:1000], y[:1000], x[1000:], y[1000:]) == pytest.approx(0.5, abs=0.05)


def test_knn_probe_recovers_a_folded_code_that_the_linear_probe_misses() -> None:
    """A position stored as an angle on a circle: all there, but no linear map reads it back."""
    rng = np.random.default_rng(2)
    position = rng.uniform(-1.0, 1.0, size=(1500, 1))
    angle = position * np.pi  # folds [-1, 1] once round the circle
    latent = np.concatenate([np.cos(angle), np.sin(angle)], axis=1) + rng.normal(0, 0.01, (1500, 2))
    train, test = slice(0, 1000), slice(1000, None)
    assert probes.linear_probe_r2(latent[train], position[train], latent[test], position[test]) < 0.8
    assert probes.knn_probe_r2(latent[train], position[train], latent[test], position[test]) > 0.98
    noise = rng.normal(size=(1500, 2))
    assert probes.knn_probe_r2(noise[train], position[train], noise[test], position[test]) < 0.1
    with pytest.raises(ValueError, match="k=5"):
        probes.knn_probe_r2(latent[:3], position[:3], latent[test], position[test])


def test_spearman_is_one_for_an_affine_map_and_near_zero_for_unrelated_latents() -> None:
    rng = np.random.default_rng(0)
    states = rng.uniform(-0.1, 0.1, size=(400, 4))
    assert probes.distance_rank_correlation(states * 3 + 1, states) == pytest.approx(1.0)
    random_latents = rng.normal(size=(400, 4))
    assert abs(probes.distance_rank_correlation(random_latents, states)) < 0.1


def test_within_episode_spearman_ignores_what_differs_between_episodes() -> None:
    rng = np.random.default_rng(0)
    episodes = np.repeat(np.arange(40), 25)
    states = rng.uniform(-0.1, 0.1, size=(len(episodes), 4))
    # Each episode's latents are its states shifted by a large per-episode offset (e.g. a colour code):
    # across episodes the offset swamps the state, within one episode it cancels.
    latents = states + rng.normal(scale=5.0, size=(40, 4))[episodes]
    assert probes.distance_rank_correlation(latents, states, rng=np.random.default_rng(1)) < 0.2
    within = probes.distance_rank_correlation(latents, states, rng=np.random.default_rng(1), groups=episodes)
    assert within == pytest.approx(1.0)
    first, second = probes._frame_pairs(len(episodes), 2000, np.random.default_rng(2), episodes)
    assert np.all(episodes[first] == episodes[second]) and np.all(first != second)
    with pytest.raises(ValueError, match="no group"):
        probes._frame_pairs(3, 10, np.random.default_rng(0), np.arange(3))


def test_active_units_counts_dims_whose_mean_varies() -> None:
    rng = np.random.default_rng(0)
    scales = np.array([1.0, 0.5, 0.05, 0.001, 0.0])  # variances 1, 0.25, 0.0025, 1e-6, 0
    means = rng.normal(size=(5000, 5)) * scales + 7.0
    assert probes.active_units(means) == 2
    assert probes.active_units(means, threshold=0.001) == 3


# ---------------------------------------------------------------------------------- objects


def test_object_mask_covers_the_rendered_puck() -> None:
    env = gym.make("rig/Push-v0", render_mode="rgb_array")
    env.reset(seed=0)
    push = env.unwrapped
    hands = [(0.0, -0.09), (0.08, 0.08), (-0.09, 0.0), (0.05, -0.05)]
    pucks = [(0.0, 0.0), (-0.12, -0.08), (0.13, 0.09), (-0.05, 0.07)]
    for hand, puck in zip(hands, pucks, strict=True):
        push.set_state(np.array(hand), np.array(puck))  # type: ignore[attr-defined]
        image = env.render().astype(int)  # type: ignore[union-attr]
        blue = image[..., 2] - image[..., 0] > 100
        states = np.array([[*hand, *puck]])
        mask = colour.object_mask(states, np.array([0.04]), IMAGE_SIZE)[0]
        assert mask.sum() > 30
        assert blue[mask].mean() > 0.9, "masked pixels must show the puck"
        assert mask[blue].mean() > 0.85, "most puck pixels must be masked"
    env.close()


def test_object_reconstruction_error_sees_the_object(datasets: tuple[FrameDataset, FrameDataset]) -> None:
    dataset, _ = datasets
    frames = np.arange(50)
    perfect = PixelIdentity()
    assert colour.object_reconstruction_error(perfect, dataset, frames) == pytest.approx(0.0)
    assert perfect.encoded_in_training_mode == [False], "diagnostics run the model in eval mode"
    assert perfect.training, "and restore its training mode afterwards"
    # Blanking the scene to the table colour costs the object's whole contrast with the table.
    assert colour.object_reconstruction_error(PixelIdentity(blank=True), dataset, frames) > 0.1


def test_colour_detector_finds_rendered_object_hues_even_blurred() -> None:
    frames, colours = rendered_frames("train", range(6))
    heldout_frames, heldout_colours = heldout_colour_frames()
    frames, colours = np.concatenate([frames, heldout_frames]), np.concatenate([colours, heldout_colours])
    targets = colour.reference_hue(colours)
    assert colour.hue_distance(colour.detect_object_hue(frames), targets).max() < 1.0
    # A VAE decode is blurry: object edges mix with the table, which leaves the hue of the offset alone.
    blurred = ndimage.gaussian_filter(frames.astype(float), sigma=(0, 2, 2, 0)).round().astype(np.uint8)
    assert colour.hue_distance(colour.detect_object_hue(blurred), targets).max() < 1.5
    table = np.broadcast_to(np.round(TABLE_RGB * 255).astype(np.uint8), frames.shape)
    assert np.isnan(colour.detect_object_hue(np.ascontiguousarray(table))).all()


def test_opponent_hue_matches_hsv_hue_and_wraps_round_the_circle() -> None:
    hues = np.arange(0.0, 360.0, 7.5)
    colours = np.array([colorsys.hsv_to_rgb(hue / 360.0, 0.8, 0.9) for hue in hues])
    assert colour.hue_distance(colour.opponent_hue(colours), hues).max() < 1.2
    wrapped = colour.hue_distance(np.array([350.0, 10.0, 90.0]), np.array([10.0, 350.0, 270.0]))
    np.testing.assert_allclose(wrapped, [20.0, 20.0, 180.0])


def test_prior_colour_match_rewards_the_context_colour() -> None:
    frames, colours = heldout_colour_frames()
    conditioned = FrameBank(frames, context_dim=1)
    assert colour.prior_colour_match(conditioned, frames, colours, samples_per_context=3) == 1.0
    shuffled = np.roll(colours, 1, axis=0)  # every context now claims a band at least 90 degrees away
    assert colour.prior_colour_match(conditioned, frames, shuffled, samples_per_context=3) == 0.0
    # A model that ignores the context shows one colour: it matches one context in three.
    unconditioned = FrameBank(frames, context_dim=0)
    blind = colour.prior_colour_match(unconditioned, frames, colours, samples_per_context=3)
    assert blind == pytest.approx(1 / 3)
    # A model whose samples show only the table has no object in any sample: every sample misses.
    table = np.broadcast_to(np.round(TABLE_RGB * 255).astype(np.uint8), frames[:1].shape)
    no_object = FrameBank(np.concatenate([table, frames]), context_dim=0)
    assert colour.prior_colour_match(no_object, frames, colours, samples_per_context=3) == 0.0


def test_prior_colour_match_of_a_context_blind_model_is_the_tolerance_arc() -> None:
    """Over contexts spread evenly round the hue circle, one fixed colour matches 2 * 20 / 360 of them."""
    frames, colours = hue_circle_frames(45)  # 8 degrees apart: 0, 8 and 16 away match, 24 does not
    assert colour.hue_distance(colour.detect_object_hue(frames), colour.reference_hue(colours)).max() < 1.0
    assert colour.prior_colour_match(FrameBank(frames, context_dim=1), frames, colours, 2) == 1.0
    blind = colour.prior_colour_match(FrameBank(frames, context_dim=0), frames, colours, 2)
    assert blind == pytest.approx(2 * colour.HUE_TOLERANCE / 360.0)


# -------------------------------------------------------------------------- grids and files


def grid_side(count: int, size: int = IMAGE_SIZE, pad: int = 2) -> int:
    return count * (size + pad) + pad


def test_grids_have_the_expected_layout(datasets: tuple[FrameDataset, FrameDataset]) -> None:
    dataset, _ = datasets
    images, contexts = dataset.images[:10], dataset.contexts[:10]
    for model in small_models():
        ctx = contexts if model.context_dim else None
        recon = grids.reconstruction_grid(model, images, ctx, n=10, ncols=4)
        assert recon.shape == (grid_side(6), grid_side(4), 3)  # 3 pairs of rows, the last one padded
        assert (recon[2 : 2 + IMAGE_SIZE, 2 : 2 + IMAGE_SIZE] == images[0]).all()
        traversal = grids.traversal_grid(model, images[0], None if ctx is None else ctx[0], steps=5)
        assert traversal.shape == (grid_side(model.z_dim), grid_side(5), 3)
        assert model.training, "diagnostics must restore the training mode"
    beta, cc = small_models()
    assert grids.prior_sample_grid(beta, n=5, rows=3).shape == (grid_side(3), grid_side(5), 3)
    cc_prior = grids.prior_sample_grid(cc, n=5, contexts=contexts[:3])
    assert cc_prior.shape == (grid_side(3), grid_side(6), 3)
    assert (cc_prior[2 : 2 + IMAGE_SIZE, 2 : 2 + IMAGE_SIZE] == contexts[0]).all()
    with pytest.raises(ValueError, match="context"):
        grids.prior_sample_grid(cc, n=5)


def test_traversal_sweeps_one_dim_per_row_from_minus_to_plus_span() -> None:
    """With a decoder that shows its latent as pixels, latent dim d is the red value of pixel (0, d)."""
    identity = PixelIdentity()
    identity.z_dim = 2
    image = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 128, dtype=np.uint8)
    grid = grids.traversal_grid(identity, image, steps=3, span=0.5)

    def tile(row: int, col: int) -> np.ndarray:
        top, left = 2 + row * (IMAGE_SIZE + 2), 2 + col * (IMAGE_SIZE + 2)
        return grid[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE]

    for dim in range(2):
        other = 1 - dim
        swept = [int(tile(dim, col)[0, dim, 0]) for col in range(3)]
        # The values -0.5, 0 and 0.5 themselves (clamped to [0, 1]), not offsets from the mean 128 / 255.
        assert swept == [0, 0, 128]
        assert all(int(tile(dim, col)[0, other, 0]) == 128 for col in range(3)), "other dims stay put"
    assert (tile(0, 0)[1:] == 128).all()


def test_write_diagnostics_writes_grids_and_finite_metrics(
    datasets: tuple[FrameDataset, FrameDataset], tmp_path: Any
) -> None:
    dataset, heldout_colours = datasets
    for model in small_models():
        out = tmp_path / type(model).__name__
        metrics = diag.write_diagnostics(model, dataset, out, heldout_colour_dataset=heldout_colours)
        for name in ("reconstructions", "prior_samples", "traversals", "prior_samples_heldout"):
            assert (out / f"{name}.png").is_file()
        assert (out / "reconstructions_heldout.png").is_file()
        assert len(metrics["kl_per_dim"]) == model.z_dim
        assert 0 <= metrics["active_units"] <= model.z_dim
        assert metrics["neg_elbo"] == pytest.approx(metrics["recon"] + metrics["kl"])
        assert ("probe_r2_puck_z_only" in metrics) == (model.context_dim > 0)
        heldout = metrics["heldout_colours"]
        assert 0.0 <= heldout["prior_colour_match"] <= 1.0
        expected = {"probe_r2_hand", "probe_r2_puck", "spearman", "spearman_within_episode"}
        assert 0.0 <= heldout["prior_colour_match_fitted"] <= 1.0
        assert getattr(model, "goal_prior", None) is None, "the fitted goal prior is only borrowed"
        assert expected <= heldout.keys()
        numbers = [v for v in flatten(metrics) if isinstance(v, float)]
        assert numbers and all(math.isfinite(v) for v in numbers)


def test_state_representation_gets_latent_quality_only(
    datasets: tuple[FrameDataset, FrameDataset], tmp_path: Any
) -> None:
    dataset, _ = datasets
    rep = StateRepresentation([-0.3] * 4, [0.3] * 4)
    metrics = diag.write_diagnostics(rep, dataset, tmp_path)
    assert not list(tmp_path.iterdir())
    assert metrics["probe_r2_hand"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["probe_r2_puck"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["spearman"] == pytest.approx(1.0)
    assert "neg_elbo" not in metrics and "active_units" not in metrics


def flatten(metrics: dict[str, Any]) -> list[Any]:
    values: list[Any] = []
    for value in metrics.values():
        if isinstance(value, dict):
            values += flatten(value)
        elif isinstance(value, list):
            values += value
        else:
            values.append(value)
    return values
