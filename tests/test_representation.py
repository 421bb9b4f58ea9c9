"""Representations: shapes, loss convention, training signal, context conditioning, priors, checkpoints."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from rig.representation import (
    CCVAE,
    BetaVAE,
    Representation,
    StateRepresentation,
    build_representation,
    images_to_tensor,
    load_representation,
    load_state_checked,
    read_checkpoint,
    save_representation,
    tensor_to_images,
)
from rig.representation.base import gaussian_kl
from rig.representation.nets import BroadcastDecoder


def coloured_squares(n: int = 32, size: int = 48, side: int = 10, seed: int = 0) -> torch.Tensor:
    """Black frames, each with one square of a random colour at a random position."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 3, size, size)
    colours = torch.rand(n, 3, generator=generator) * 0.7 + 0.3
    corners = torch.randint(0, size - side, (n, 2), generator=generator)
    for image, colour, (row, col) in zip(images, colours, corners.tolist(), strict=True):
        image[:, row : row + side, col : col + side] = colour[:, None, None]
    return images


def random_images(n: int, size: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- image conversion ---


def test_images_to_tensor_and_back_round_trips() -> None:
    frames = np.random.default_rng(0).integers(0, 256, size=(5, 48, 48, 3), dtype=np.uint8)
    tensor = images_to_tensor(frames, "cpu")
    assert tensor.shape == (5, 3, 48, 48) and tensor.dtype == torch.float32
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0
    np.testing.assert_array_equal(tensor_to_images(tensor), frames)
    assert images_to_tensor(frames[0], "cpu").shape == (1, 3, 48, 48)


def test_tensor_to_images_clamps_and_rounds() -> None:
    x = torch.tensor([-0.5, 0.6 / 255, 1.4 / 255, 2.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    assert tensor_to_images(x)[0, :, :, 0].tolist() == [[0, 1], [1, 255]]


def test_images_to_tensor_rejects_float_frames() -> None:
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(np.zeros((2, 48, 48, 3), dtype=np.float32), "cpu")


# --- shapes and the protocol ---


def test_all_representations_follow_the_protocol() -> None:
    for model in (BetaVAE(), CCVAE(), StateRepresentation([0.0], [1.0])):
        assert isinstance(model, Representation)


def test_beta_vae_shapes() -> None:
    torch.manual_seed(0)
    model = BetaVAE(z_dim=4)
    x = random_images(3)
    assert model.encode(x).shape == (3, 4)
    assert model.encode_context(x).shape == (3, 0)
    decoded = model.decode(model.encode(x))
    assert decoded.shape == (3, 3, 48, 48)
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0
    assert model.sample_prior(7).shape == (7, 4)
    loss, metrics = model.loss(x)
    assert loss.shape == () and {"loss", "recon", "kl", "mse"} <= metrics.keys()
    assert model.kl_per_dim(x).shape == (4,)
    assert (model.latent_dim, model.z_dim, model.context_dim) == (4, 4, 0)


def test_beta_vae_rejects_a_context() -> None:
    model = BetaVAE()
    x = random_images(2)
    with pytest.raises(ValueError, match="takes no context"):
        model.encode(x, context=x)
    with pytest.raises(ValueError, match="takes no context"):
        model.encode(x, context_latent=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="takes no context"):
        model.sample_prior(2, context=torch.zeros(2, 4))


def test_cc_vae_shapes() -> None:
    torch.manual_seed(0)
    model = CCVAE(z_dim=6, context_dim=4)
    x, x0 = random_images(3, seed=0), random_images(3, seed=1)
    latent = model.encode(x, x0)
    assert latent.shape == (3, 10)
    with torch.no_grad():
        cached = model.encode(x, x0, context_latent=model.encode_context(x0))
    torch.testing.assert_close(cached, latent.detach())
    with pytest.raises(ValueError, match="context_latent"):
        model.encode(x, x0, context_latent=torch.zeros(3, 5))
    assert model.encode_context(x0).shape == (3, 4)
    assert model.decode(latent).shape == (3, 3, 48, 48)
    assert model.decode_context(latent[:, 6:]).shape == (3, 3, 48, 48)
    assert model.sample_prior(5, context=torch.zeros(5, 4)).shape == (5, 10)
    assert model.sample_prior(5, context=torch.zeros(4)).shape == (5, 10)
    loss, metrics = model.loss(x, x0)
    assert loss.shape == () and {"loss", "recon", "recon_context", "kl", "mse"} <= metrics.keys()
    assert model.kl_per_dim(x, x0).shape == (6,)
    assert (model.latent_dim, model.z_dim, model.context_dim) == (10, 6, 4)


def test_cc_vae_requires_a_context_image() -> None:
    model = CCVAE()
    with pytest.raises(ValueError, match="needs a context"):
        model.encode(random_images(2))
    with pytest.raises(ValueError, match="needs a context"):
        model.loss(random_images(2))


@pytest.mark.parametrize("image_size", [84, 64, 83])
def test_encode_decode_shapes_at_other_sizes(image_size: int) -> None:
    x = random_images(2, size=image_size)
    beta_vae = BetaVAE(image_size=image_size)
    assert beta_vae.decode(beta_vae.encode(x)).shape == (2, 3, image_size, image_size)
    cc_vae = CCVAE(image_size=image_size)
    assert cc_vae.decode(cc_vae.encode(x, x)).shape == (2, 3, image_size, image_size)
    assert cc_vae.decode_context(cc_vae.encode_context(x)).shape == (2, 3, image_size, image_size)


def test_image_of_the_wrong_size_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(B, 3, 48, 48\)"):
        BetaVAE().encode(random_images(2, size=84))


def test_too_small_image_size_raises() -> None:
    with pytest.raises(ValueError, match="too small"):
        BetaVAE(image_size=16)
    with pytest.raises(ValueError, match="too small"):
        CCVAE(image_size=16)


def test_unknown_likelihood_raises() -> None:
    with pytest.raises(ValueError, match="likelihood"):
        BetaVAE(likelihood="laplace")


# --- the loss convention ---


def test_closed_form_kl_matches_torch_distributions() -> None:
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(16, 5, generator=generator) * 2
    logvar = torch.randn(16, 5, generator=generator) * 2
    posterior = Independent(Normal(mu, (0.5 * logvar).exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    expected = kl_divergence(posterior, prior)
    torch.testing.assert_close(gaussian_kl(mu, logvar).sum(dim=1), expected)


def test_gaussian_recon_is_the_sum_of_squared_errors() -> None:
    torch.manual_seed(0)
    model = BetaVAE(beta=2.5)
    _, metrics = model.loss(random_images(4))
    assert metrics["recon"] == pytest.approx(metrics["mse"] * 3 * 48 * 48, rel=1e-4)
    assert metrics["loss"] == pytest.approx(metrics["recon"] + 2.5 * metrics["kl"], rel=1e-4)


def test_cc_vae_loss_adds_the_context_reconstruction() -> None:
    torch.manual_seed(0)
    model = CCVAE(beta=3.0)
    _, metrics = model.loss(random_images(4, seed=0), random_images(4, seed=1))
    expected = metrics["recon"] + metrics["recon_context"] + 3.0 * metrics["kl"]
    assert metrics["loss"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("kl_weight", [0.0, 0.3])
def test_kl_weight_scales_only_the_kl_term(kl_weight: float) -> None:
    torch.manual_seed(0)
    beta_vae, cc_vae = BetaVAE(beta=2.0), CCVAE(beta=2.0)
    _, metrics = beta_vae.loss(random_images(4), kl_weight=kl_weight)
    assert metrics["kl"] > 0
    assert metrics["loss"] == pytest.approx(metrics["recon"] + kl_weight * 2.0 * metrics["kl"], rel=1e-4)
    _, metrics = cc_vae.loss(random_images(4, seed=0), random_images(4, seed=1), kl_weight=kl_weight)
    expected = metrics["recon"] + metrics["recon_context"] + kl_weight * 2.0 * metrics["kl"]
    assert metrics["loss"] == pytest.approx(expected, rel=1e-4)


def test_kl_per_dim_sums_to_the_kl_metric() -> None:
    torch.manual_seed(0)
    model = BetaVAE()
    x = random_images(4)
    _, metrics = model.loss(x)
    assert model.kl_per_dim(x).sum().item() == pytest.approx(metrics["kl"], rel=1e-4)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
@pytest.mark.parametrize("model_class", [BetaVAE, CCVAE])
def test_loss_decreases_on_coloured_squares(model_class: type[BetaVAE | CCVAE], likelihood: str) -> None:
    torch.manual_seed(0)
    model = model_class(likelihood=likelihood)
    x = coloured_squares(seed=0)
    context = coloured_squares(seed=1) if model_class is CCVAE else None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.manual_seed(1)
    initial = model.loss(x, context)[1]["loss"]
    for _ in range(30):
        loss, _ = model.loss(x, context)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.manual_seed(1)
    final = model.loss(x, context)[1]["loss"]
    assert final < 0.5 * initial


# --- context conditioning ---


def test_cc_vae_decoder_depends_on_the_context() -> None:
    torch.manual_seed(0)
    model = CCVAE(z_dim=6, context_dim=4)
    z = torch.randn(2, 6)
    context_a, context_b = torch.randn(2, 4), torch.randn(2, 4)
    decoded_a = model.decode(torch.cat([z, context_a], dim=1))
    decoded_b = model.decode(torch.cat([z, context_b], dim=1))
    assert (decoded_a - decoded_b).abs().max().item() > 1e-3


def test_cc_vae_encoding_carries_the_context_latent() -> None:
    torch.manual_seed(0)
    model = CCVAE(z_dim=6, context_dim=4)
    x = coloured_squares(2, seed=2)
    x0_a, x0_b = coloured_squares(2, seed=0), coloured_squares(2, seed=1)
    latent_a, latent_b = model.encode(x, x0_a), model.encode(x, x0_b)
    torch.testing.assert_close(latent_a[:, 6:], model.encode_context(x0_a))
    assert (latent_a[:, 6:] - latent_b[:, 6:]).abs().max().item() > 1e-4


# --- priors ---


def test_cc_vae_prior_needs_and_keeps_the_context() -> None:
    model = CCVAE(z_dim=6, context_dim=4)
    with pytest.raises(ValueError, match="needs a context"):
        model.sample_prior(3)
    context = torch.randn(3, 4)
    samples = model.sample_prior(3, context=context)
    assert torch.equal(samples[:, 6:], context)
    broadcast = model.sample_prior(3, context=context[0])
    assert torch.equal(broadcast[:, 6:], context[0].expand(3, 4))
    with pytest.raises(ValueError, match="context latent"):
        model.sample_prior(3, context=torch.zeros(3, 5))


def test_beta_vae_prior_is_standard_normal() -> None:
    samples = BetaVAE(z_dim=4).sample_prior(20_000, generator=torch.Generator().manual_seed(0))
    assert samples.mean(dim=0).abs().max() < 0.05
    assert (samples.std(dim=0) - 1.0).abs().max() < 0.05


def test_prior_samples_follow_the_generator() -> None:
    for model, kwargs in ((BetaVAE(), {}), (CCVAE(), {"context": torch.zeros(4)})):
        first = model.sample_prior(8, generator=torch.Generator().manual_seed(3), **kwargs)
        again = model.sample_prior(8, generator=torch.Generator().manual_seed(3), **kwargs)
        other = model.sample_prior(8, generator=torch.Generator().manual_seed(4), **kwargs)
        assert torch.equal(first, again)
        assert not torch.equal(first, other)


# --- state identity ---


def test_state_representation_is_the_identity_with_a_box_prior() -> None:
    low, high = [-0.1, -0.05, 0.2], [0.1, 0.05, 0.3]
    model = StateRepresentation(low, high)
    states = torch.randn(4, 3)
    assert torch.equal(model.encode(states), states)
    assert torch.equal(model.decode(states), states)
    assert model.encode_context(states).shape == (4, 0)
    assert (model.latent_dim, model.z_dim, model.context_dim, model.input_kind) == (3, 3, 0, "state")
    samples = model.sample_prior(5_000, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (5_000, 3)
    assert (samples >= torch.tensor(low)).all() and (samples <= torch.tensor(high)).all()
    assert (
        samples.max(dim=0).values - samples.min(dim=0).values > 0.9 * (torch.tensor(high) - torch.tensor(low))
    ).all()


def test_state_representation_has_nothing_to_train() -> None:
    model = StateRepresentation([0.0, 0.0], [1.0, 1.0])
    assert list(model.parameters()) == []
    assert set(model.state_dict()) == {"low", "high"}
    with pytest.raises(RuntimeError, match="nothing to train"):
        model.loss(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="takes no context"):
        model.encode(torch.zeros(1, 2), context=torch.zeros(1, 2))


def test_state_representation_rejects_an_inverted_box() -> None:
    with pytest.raises(ValueError, match="must not exceed"):
        StateRepresentation([1.0], [0.0])


# --- checkpoints ---


def test_checkpoint_round_trip_reproduces_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    x, x0 = coloured_squares(4, seed=0), coloured_squares(4, seed=1)
    for model, context in ((BetaVAE(z_dim=3, hidden_dim=0), None), (CCVAE(z_dim=5, context_dim=2), x0)):
        path = tmp_path / f"{type(model).__name__}.pt"
        save_representation(path, model, extra={"epoch": 7})
        loaded = load_representation(path, expected={"image_size": 48})
        assert type(loaded) is type(model) and loaded.config_dict() == model.config_dict()
        latent = model.encode(x, context)
        assert torch.equal(loaded.encode(x, context), latent)
        assert torch.equal(loaded.decode(latent), model.decode(latent))
        assert read_checkpoint(path)["epoch"] == 7


def test_fitted_goal_prior_draws_imagined_goals_and_survives_a_checkpoint(tmp_path: Path) -> None:
    mean, std = [2.0, -1.0, 0.5], [0.5, 0.01, 3.0]
    generator = torch.Generator().manual_seed(0)
    for model in (BetaVAE(z_dim=3, hidden_dim=0), CCVAE(z_dim=3, context_dim=2, hidden_dim=0)):
        model.set_goal_prior(mean, std)
        path = tmp_path / f"{type(model).__name__}.pt"
        save_representation(path, model)
        loaded = load_representation(path)
        context = torch.tensor([0.3, -0.7]) if model.context_dim else None
        goals = loaded.sample_prior(20_000, context, generator=generator)
        torch.testing.assert_close(goals[:, :3].mean(0), torch.tensor(mean), atol=0.06, rtol=0)
        torch.testing.assert_close(goals[:, :3].std(0), torch.tensor(std), atol=0, rtol=0.03)
        if model.context_dim:
            assert torch.equal(goals[:, 3:], context.expand(20_000, 2))
        loaded.set_goal_prior(None, None)
        torch.testing.assert_close(
            loaded.sample_prior(20_000, context)[:, :3].std(0), torch.ones(3), rtol=0.03, atol=0
        )


@pytest.mark.parametrize(
    "mean, std, message",
    [
        ([0.0, 0.0], None, "together"),
        ([0.0], [1.0], "need 2 values"),
        ([0.0, 0.0], [1.0, 0.0], "positive"),
        ([0.0, float("nan")], [1.0, 1.0], "finite"),
    ],
)
def test_goal_prior_rejects_bad_values(mean: list[float], std: list[float] | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BetaVAE(z_dim=2, hidden_dim=0).set_goal_prior(mean, std)


def test_state_checkpoint_round_trip(tmp_path: Path) -> None:
    model = StateRepresentation([-1.0, 0.0], [1.0, 0.5])
    save_representation(tmp_path / "state.pt", model)
    loaded = load_representation(tmp_path / "state.pt")
    assert isinstance(loaded, StateRepresentation) and torch.equal(loaded.high, model.high)


def test_loading_into_another_z_dim_names_the_mismatch(tmp_path: Path) -> None:
    save_representation(tmp_path / "vae.pt", BetaVAE(z_dim=4, hidden_dim=0))
    state_dict = read_checkpoint(tmp_path / "vae.pt")["state_dict"]
    with pytest.raises(
        ValueError, match=r"decoder\.fc\.0\.weight: checkpoint \(576, 4\) vs model \(576, 8\)"
    ):
        load_state_checked(BetaVAE(z_dim=8, hidden_dim=0), state_dict)


def test_loading_lists_missing_and_unexpected_keys(tmp_path: Path) -> None:
    state_dict = BetaVAE().state_dict()
    state_dict["extra.weight"] = state_dict.pop("encoder.mu.bias")
    with pytest.raises(
        ValueError, match=r"(?s)missing from checkpoint: encoder\.mu\.bias.*unexpected.*extra"
    ):
        load_state_checked(BetaVAE(), state_dict)


def test_expected_config_mismatch_names_the_key(tmp_path: Path) -> None:
    save_representation(tmp_path / "vae.pt", BetaVAE(z_dim=4))
    with pytest.raises(ValueError, match=r"'z_dim' is 4 but 8 was expected"):
        load_representation(tmp_path / "vae.pt", expected={"z_dim": 8})


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not_a_checkpoint"])
def test_unreadable_checkpoint_raises_naming_the_path(tmp_path: Path, damage: str) -> None:
    good = tmp_path / "good.pt"
    save_representation(good, BetaVAE())
    bad = tmp_path / f"{damage}.pt"
    if damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "garbage":
        bad.write_bytes(b"definitely not a torch file")
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        load_representation(bad)


def test_missing_checkpoint_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_representation(tmp_path / "nowhere.pt")


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'beta_vae', 'cc_vae', 'state'"):
        build_representation("pca", {})


def test_same_seed_gives_identical_initial_weights() -> None:
    def weights(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        return CCVAE().state_dict()

    first, again, other = weights(0), weights(0), weights(1)
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


@pytest.mark.parametrize("model_class", [BetaVAE, CCVAE])
def test_broadcast_decoder_and_coord_channels(model_class: type[BetaVAE | CCVAE], tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = model_class(z_dim=3, decoder="broadcast", coord_channels=True)
    x = torch.rand(5, 3, 48, 48)
    context = torch.rand(5, 3, 48, 48) if model_class is CCVAE else None
    latent = model.encode(x, context)
    assert latent.shape == (5, model.latent_dim)
    assert model.decode(latent).shape == (5, 3, 48, 48)
    # The coordinate channels reach the encoder: its first conv takes 3 (or 6) + 2 channels.
    first_conv = model.encoder.trunk.net[0]
    assert first_conv.in_channels == (3 if model_class is BetaVAE else 6) + 2
    save_representation(tmp_path / "m.pt", model)
    reloaded = load_representation(tmp_path / "m.pt")
    assert reloaded.config_dict()["decoder"] == "broadcast"
    assert torch.equal(reloaded.decode(latent), model.decode(latent))


@pytest.mark.parametrize("model_class", [BetaVAE, CCVAE])
def test_decoder_channels_set_the_broadcast_decoder_width_and_survive_a_checkpoint(
    model_class: type[BetaVAE | CCVAE], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = model_class(z_dim=3, decoder="broadcast", decoder_channels=16)
    widths = {layer.out_channels for layer in model.decoder.net if isinstance(layer, torch.nn.Conv2d)}
    assert widths == {16}
    assert model.decoder.net[-1].out_channels == 3
    save_representation(tmp_path / "m.pt", model)
    reloaded = load_representation(tmp_path / "m.pt")
    assert reloaded.config_dict()["decoder_channels"] == 16
    latent = torch.randn(4, model.latent_dim)
    assert torch.equal(reloaded.decode(latent), model.decode(latent))


def test_checkpoint_from_before_decoder_channels_loads_with_32(tmp_path: Path) -> None:
    """Checkpoints written before the setting existed record no width; theirs was 32."""
    torch.manual_seed(0)
    model = BetaVAE(z_dim=3, decoder="broadcast", decoder_channels=32)
    save_representation(tmp_path / "m.pt", model)
    checkpoint = torch.load(tmp_path / "m.pt", weights_only=True)
    del checkpoint["config"]["decoder_channels"]
    torch.save(checkpoint, tmp_path / "old.pt")
    reloaded = load_representation(tmp_path / "old.pt")
    latent = torch.randn(4, 3)
    assert torch.equal(reloaded.decode(latent), model.decode(latent))


def test_broadcast_decoder_rejects_no_channels() -> None:
    with pytest.raises(ValueError, match="channels must be >= 1"):
        BroadcastDecoder(4, 48, channels=0)


def test_unknown_decoder_raises() -> None:
    with pytest.raises(ValueError, match="decoder must be"):
        BetaVAE(decoder="transformer")
    with pytest.raises(ValueError, match="divisible by 4"):
        BetaVAE(image_size=50, decoder="broadcast")


def test_film_decoder_starts_as_the_plain_decoder_and_lets_the_context_scale_channels() -> None:
    torch.manual_seed(0)
    plain = BroadcastDecoder(in_dim=10, image_size=48)
    torch.manual_seed(0)
    film = BroadcastDecoder(in_dim=10, image_size=48, film_dim=4)
    latent = torch.randn(6, 10)
    # Same conv weights from the same seed, and a zero-initialised modulation: the same function.
    torch.testing.assert_close(film(latent), plain(latent))
    assert film.film is not None
    loss = film(latent).square().mean()
    loss.backward()
    assert film.film.weight.grad is not None and film.film.weight.grad.abs().sum() > 0
    with torch.no_grad():
        film.film.weight.normal_()
    other_context = latent.clone()
    other_context[:, -4:] += 1.0
    changed = (film(other_context) - film(latent)).abs().mean()
    unchanged_z = latent.clone()
    assert changed > 1e-3 and torch.equal(film(unchanged_z), film(latent))
    with pytest.raises(ValueError, match="film_dim"):
        BroadcastDecoder(in_dim=4, image_size=48, film_dim=5)


def test_cc_vae_film_is_kept_in_checkpoints_and_needs_the_broadcast_decoder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CCVAE(z_dim=3, context_dim=2, decoder="broadcast", context_film=True)
    assert isinstance(model.decoder, BroadcastDecoder) and model.decoder.film_dim == 2
    save_representation(tmp_path / "m.pt", model)
    reloaded = load_representation(tmp_path / "m.pt")
    assert reloaded.config_dict()["context_film"] is True
    latent = torch.randn(2, 5)
    assert torch.equal(reloaded.decode(latent), model.decode(latent))
    with pytest.raises(ValueError, match="broadcast"):
        CCVAE(decoder="deconv", context_film=True)


def test_slot_decoder_composites_two_halves_of_z_over_a_background() -> None:
    from rig.representation.nets import SlotDecoder

    torch.manual_seed(0)
    decoder = SlotDecoder(z_dim=6, image_size=16, channels=4, film_dim=2)
    latent = torch.randn(5, 8)
    logits = decoder(latent)
    assert logits.shape == (5, 3, 16, 16) and torch.isfinite(logits).all()
    # With both slots' masks pushed to -inf the image is the background layer, decoded from c alone.
    with torch.no_grad():
        for part in decoder.parts:
            part.net[-1].bias[3] = -1e4
    assert decoder.background is not None
    background = torch.sigmoid(decoder.background(latent[:, 6:])[:, :3])
    torch.testing.assert_close(torch.sigmoid(decoder(latent)), background, atol=1e-5, rtol=0)
    # Each slot sees only its half of z: with its mask dominant, the other half changes nothing.
    with torch.no_grad():
        decoder.parts[0].net[-1].bias[3] = 1e4
    other_half_moved = latent.clone()
    other_half_moved[:, 3:6] += 5.0
    torch.testing.assert_close(decoder(other_half_moved), decoder(latent), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="even"):
        SlotDecoder(z_dim=5, image_size=16)


def test_slot_decoder_serves_both_vaes() -> None:
    beta = BetaVAE(z_dim=4, decoder="slots", decoder_channels=4)
    assert beta.decode(torch.zeros(2, 4)).shape == (2, 3, 48, 48)
    cc = CCVAE(z_dim=4, context_dim=2, decoder="slots", decoder_channels=4, context_film=True)
    images = torch.rand(3, 3, 48, 48)
    loss, metrics = cc.loss(images, images)
    assert torch.isfinite(loss) and metrics["recon"] > 0
