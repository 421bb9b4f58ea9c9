"""Appearance augmentation of what the CC-VAE's z encoder sees in training (``vae.z_augment``).

``hue`` rotates the hue of every pixel of a sample's frame x_t and of its context x0 by one angle, drawn
uniformly over the whole hue circle for each sample. Why this augmentation, for rig's pushers:

- **Positions stay exact.** It acts on each pixel alone: no pixel moves, and since an HSV rotation keeps a
  pixel's largest and smallest channel (its value and chroma), a pixel that stands out from the table
  still does, by as much, after it.
- **The scene hardly changes; the object's colour is gone.** Grey pixels (r = g = b) come back unchanged.
  The table (219, 219, 209), walls (115, 115, 128 and 63, 63, 70) and hand (31, 31, 36) are nearly grey,
  with a chroma of 5 to 13 of 255, so each of their channels moves by at most that much. The object's
  colours have a chroma of at least 0.6 (``envs.appearance``), and an angle uniform over the circle makes
  the hue the encoder sees uniform and independent of the object's own: z cannot learn the hue.
- **The held-out colours are inside what it shows.** The palettes differ by hue only (both draw
  saturation in [0.75, 0.95] and value in [0.8, 0.95]), so every held-out colour is a rotation of training
  colours, and the z encoder has seen held-out hues before evaluation shows them.

What it leaves: saturation and value pass through (a narrow range each), and so does the object's size
and shape on ``rig/PushMultiObject-v0``; x_t and x0 share the angle, so the encoder's pixel-by-pixel
comparison of the two still shows what moved.
"""

from __future__ import annotations

from typing import get_args

import torch
from torch import Tensor

from rig.config import ZAugment

Z_AUGMENTS: tuple[ZAugment, ...] = get_args(ZAugment)

_SEXTANTS = 6.0
"""HSV hue in sextants of the circle: red 0, yellow 1, green 2, cyan 3, blue 4, magenta 5"""
_CHANNEL_OFFSETS = (5.0, 3.0, 1.0)
"""the sextant offsets of R, G and B in the closed form of HSV -> RGB"""


def check_z_augment(z_augment: str) -> ZAugment:
    for option in Z_AUGMENTS:
        if z_augment == option:
            return option
    raise ValueError(f"z_augment must be one of {Z_AUGMENTS}, got {z_augment!r}")


def draw_hue_turns(n: int, device: torch.device) -> Tensor:
    """(n,) rotation angles in turns, uniform in [0, 1), drawn from torch's global CPU generator (which
    pretraining's ``last.pt`` saves, so a resumed run draws what an uninterrupted one would)."""
    return torch.rand(n).to(device)


def rotate_hue(images: Tensor, turns: Tensor) -> Tensor:
    """(B, 3, H, W) images in [0, 1], the hue of sample i's pixels rotated by ``turns[i]`` of the circle.

    Each pixel keeps its largest and smallest channel; grey pixels come back exactly as they were.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) tensor, got {tuple(images.shape)}")
    if turns.shape != (images.shape[0],):
        raise ValueError(f"expected one angle per image, ({images.shape[0]},), got {tuple(turns.shape)}")
    high = images.amax(dim=1, keepdim=True)
    chroma = high - images.amin(dim=1, keepdim=True)
    hue = _hue(images, high, chroma) + _SEXTANTS * turns.to(images).view(-1, 1, 1, 1)
    offsets = images.new_tensor(_CHANNEL_OFFSETS).view(1, 3, 1, 1)
    position = torch.remainder(offsets + hue, _SEXTANTS)
    return high - chroma * torch.minimum(position, 4.0 - position).clamp(0.0, 1.0)


def _hue(images: Tensor, high: Tensor, chroma: Tensor) -> Tensor:
    """(B, 1, H, W) HSV hue in sextants, [0, 6); 0 for grey pixels, whose rotation changes nothing."""
    red, green, blue = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    safe_chroma = chroma.clamp_min(torch.finfo(images.dtype).tiny)
    from_red = torch.remainder((green - blue) / safe_chroma, _SEXTANTS)
    from_green = (blue - red) / safe_chroma + 2.0
    from_blue = (red - green) / safe_chroma + 4.0
    hue = torch.where(high == red, from_red, torch.where(high == green, from_green, from_blue))
    return torch.where(chroma > 0, hue, torch.zeros_like(hue))
