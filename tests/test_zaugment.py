"""vae.z_augment: the hue rotation keeps positions and grey, and hides the object's colour from z only."""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor

import envs  # noqa: F401  registers the rig/ envs
from envs.appearance import PALETTES
from rig.config import ConfigError, flat_settings, load_config
from rig.pretrain import fingerprint, make_representation
from rig.representation import CCVAE, images_to_tensor, load_representation, save_representation
from rig.representation import cc_vae as cc_vae_module
from rig.representation.augment import rotate_hue
from rig.representation.base import gaussian_kl, reconstruction_nll, reparameterize

SATURATED = 0.3
"""chroma above which a pixel is the object's (the palettes' objects have >= 0.6, the scene <= 0.06)"""


def rendered_frames(seeds: range = range(4)) -> Tensor:
    env = gym.make("rig/PushMultiColor-v0", render_mode="rgb_array")
    frames = []
    for seed in seeds:
        env.reset(seed=seed)
        frames.append(env.render())
    env.close()
    return images_to_tensor(np.stack(frames))


def chroma(images: Tensor) -> Tensor:
    return images.amax(dim=1) - images.amin(dim=1)


def hue_turns(rgb: Tensor) -> float:
    return colorsys.rgb_to_hsv(*rgb.tolist())[0]


def turn_difference(a: float, b: float) -> float:
    """a - b on the circle, in [0, 1)."""
    return (a - b) % 1.0


# ------------------------------------------------------------------------------ the rotation itself
def test_rotation_keeps_every_pixel_in_place_and_moves_only_the_object() -> None:
    frames = rendered_frames()
    rotated = rotate_hue(frames, torch.tensor([0.5, 0.25, 0.6, 0.9]))
    object_mask = chroma(frames) > SATURATED
    assert object_mask.any(dim=(1, 2)).all(), "every frame shows the object"
    assert torch.equal(chroma(rotated) > SATURATED, object_mask)
    torch.testing.assert_close(rotated.amax(dim=1), frames.amax(dim=1), atol=1e-6, rtol=0)
    torch.testing.assert_close(rotated.amin(dim=1), frames.amin(dim=1), atol=1e-6, rtol=0)
    scene_change = (rotated - frames).abs().amax(dim=1)[~object_mask]
    assert scene_change.max() <= 13 / 255 + 1e-6, "table, walls and hand are nearly grey"
    object_change = (rotated - frames).abs().amax(dim=1)[object_mask]
    assert object_change.min() > 0.3, "a quarter turn or more recolours every object pixel"


def test_grey_stays_grey_exactly_and_zero_turns_change_nothing() -> None:
    levels = torch.linspace(0, 1, 11)
    grey = levels.view(1, 1, 11, 1).expand(2, 3, 11, 5).contiguous()
    assert torch.equal(rotate_hue(grey, torch.tensor([0.3, 0.7])), grey)
    frames = rendered_frames()
    torch.testing.assert_close(rotate_hue(frames, torch.zeros(4)), frames, atol=1e-6, rtol=0)


def test_rotation_is_the_hsv_hue_rotation() -> None:
    pixels = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    turns = torch.tensor([0.1, 0.45, 0.8])
    rotated = rotate_hue(pixels, turns)
    for image, shift, result in zip(pixels, turns.tolist(), rotated, strict=True):
        for row in range(4):
            for col in range(4):
                hue, saturation, value = colorsys.rgb_to_hsv(*image[:, row, col].tolist())
                expected = colorsys.hsv_to_rgb((hue + shift) % 1.0, saturation, value)
                np.testing.assert_allclose(result[:, row, col].numpy(), expected, atol=1e-5)


def test_every_heldout_colour_is_a_rotation_of_a_training_colour() -> None:
    """The palettes differ by hue alone, so the z encoder is shown held-out hues in training."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        heldout = PALETTES["heldout"].sample(rng)
        trained_hue = PALETTES["train"].sample_hue(rng) / 360.0
        hue, saturation, value = colorsys.rgb_to_hsv(*heldout)
        trained = torch.tensor(colorsys.hsv_to_rgb(trained_hue, saturation, value)).view(1, 3, 1, 1)
        shift = torch.tensor([turn_difference(hue, trained_hue)])
        np.testing.assert_allclose(rotate_hue(trained, shift).flatten().numpy(), heldout, atol=1e-5)


# ------------------------------------------------------------------------------ inside the CC-VAE's loss
def small_ccvae(z_augment: str = "none") -> CCVAE:
    torch.manual_seed(0)
    return CCVAE(z_dim=4, context_dim=2, image_size=48, hidden_dim=16, z_augment=z_augment)


def pair_batch() -> tuple[Tensor, Tensor]:
    """Two rendered scenes per sample: x_t the reset frame of seed i, x0 that of seed i + 4."""
    frames = rendered_frames(range(8))
    return frames[:4], frames[4:]


def captured_inputs(model: CCVAE, x: Tensor, context: Tensor) -> dict[str, Any]:
    """What the z encoder and the context encoder saw, and the reconstruction targets, in one loss call."""
    seen: dict[str, Any] = {"targets": []}
    model.encoder.register_forward_pre_hook(lambda _, args: seen.__setitem__("z_encoder", args[0]))
    model.context_encoder.register_forward_pre_hook(lambda _, args: seen.__setitem__("c_encoder", args[0]))
    original = cc_vae_module.reconstruction_nll

    def recording(logits: Tensor, target: Tensor, likelihood: str) -> Tensor:
        seen["targets"].append(target)
        return original(logits, target, likelihood)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cc_vae_module, "reconstruction_nll", recording)
        model.loss(x, context)
    return seen


def test_hue_rotates_what_z_sees_alike_for_frame_and_context_and_differently_across_samples() -> None:
    x, context = pair_batch()
    model = small_ccvae("hue").train()
    torch.manual_seed(3)
    seen = captured_inputs(model, x, context)
    seen_x, seen_context = seen["z_encoder"][:, :3], seen["z_encoder"][:, 3:]
    shifts = []
    for i in range(len(x)):
        original_pixel = (chroma(x[i : i + 1]) > SATURATED)[0].nonzero()[0]
        context_pixel = (chroma(context[i : i + 1]) > SATURATED)[0].nonzero()[0]
        row, col = original_pixel.tolist()
        shift_x = turn_difference(hue_turns(seen_x[i, :, row, col]), hue_turns(x[i, :, row, col]))
        row, col = context_pixel.tolist()
        shift_context = turn_difference(
            hue_turns(seen_context[i, :, row, col]), hue_turns(context[i, :, row, col])
        )
        assert min(abs(shift_x - shift_context), 1 - abs(shift_x - shift_context)) < 1e-4
        shifts.append(shift_x)
    assert len({round(shift, 3) for shift in shifts}) == len(shifts), shifts


def test_with_hue_the_decoder_reconstructs_the_unrotated_frames_from_the_unrotated_context() -> None:
    x, context = pair_batch()
    seen = captured_inputs(small_ccvae("hue").train(), x, context)
    assert not torch.allclose(seen["z_encoder"], torch.cat([x, context], dim=1), atol=1e-3)
    assert torch.equal(seen["c_encoder"], context)
    frame_target, context_target = seen["targets"]
    assert torch.equal(frame_target, x) and torch.equal(context_target, context)


def test_outside_training_the_hue_model_sees_the_frames_as_they_are() -> None:
    x, context = pair_batch()
    hue, plain = small_ccvae("hue").eval(), small_ccvae().eval()
    seen = captured_inputs(hue, x, context)
    assert torch.equal(seen["z_encoder"], torch.cat([x, context], dim=1))
    torch.manual_seed(5)
    hue_loss, _ = hue.loss(x, context)
    torch.manual_seed(5)
    plain_loss, _ = plain.loss(x, context)
    assert torch.equal(hue_loss, plain_loss)
    assert torch.equal(hue.encode(x, context), plain.encode(x, context))


def test_the_default_loss_is_the_plain_cc_vae_loss_on_the_same_seed() -> None:
    """No augmentation and no extra random draw: the loss written out by hand, draw for draw."""
    x, context = pair_batch()
    model = small_ccvae().train()
    torch.manual_seed(7)
    loss, _ = model.loss(x, context)
    torch.manual_seed(7)
    mu, logvar = model.encoder(torch.cat([x, context], dim=1))
    c = model.context_encoder(context)
    logits = model.decoder(torch.cat([reparameterize(mu, logvar), c], dim=1))
    recon = reconstruction_nll(logits, x, model.likelihood)
    recon_context = reconstruction_nll(model.context_decoder(c), context, model.likelihood)
    expected = (recon + recon_context + model.beta * gaussian_kl(mu, logvar).sum(dim=1)).mean()
    assert torch.equal(loss, expected)


# ------------------------------------------------------------------------------ settings and records
@pytest.mark.parametrize("kind", ["beta_vae", "supervised", "state"])
def test_kinds_without_a_context_refuse_it_in_one_line(kind: str) -> None:
    with pytest.raises(ConfigError, match="vae.z_augment=hue needs vae.kind=cc_vae") as error:
        load_config(None, [f"vae.kind={kind}", "vae.z_augment=hue"])
    assert len(str(error.value).splitlines()) == 1


def test_an_unknown_augmentation_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="vae.z_augment") as error:
        load_config(None, ["vae.kind=cc_vae", "vae.z_augment=sepia"])
    assert len(str(error.value).splitlines()) == 1
    with pytest.raises(ValueError, match="z_augment must be one of"):
        CCVAE(z_augment="sepia")


def test_the_default_leaves_records_as_they_were_and_hue_is_recorded(tmp_path: Path) -> None:
    plain = load_config(None, ["vae.kind=cc_vae"])
    hue = load_config(None, ["vae.kind=cc_vae", "vae.z_augment=hue"])
    assert "vae.z_augment" not in flat_settings(plain)
    assert flat_settings(hue)["vae.z_augment"] == "hue"
    assert "z_augment" not in fingerprint(plain, 10, {})["vae"]
    assert fingerprint(hue, 10, {})["vae"]["z_augment"] == "hue"
    assert "z_augment" not in make_representation(plain.vae, 48).config_dict()
    model = make_representation(hue.vae, 48)
    save_representation(tmp_path / "hue.pt", model)
    loaded = load_representation(tmp_path / "hue.pt")
    assert isinstance(loaded, CCVAE) and loaded.z_augment == "hue"
