"""Object appearances for the multi-object pusher: colour, size and shape, drawn at every reset.

The ``train`` and ``heldout`` palettes share no colour, so a model trained on one can be
evaluated on colours it has never seen. Every colour is saturated and far from the grey table
and the near-black hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SHAPES = ("cylinder", "box")

PALETTES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "train": (
        (0.90, 0.10, 0.10),  # red
        (0.95, 0.55, 0.05),  # orange
        (0.10, 0.75, 0.15),  # green
        (0.15, 0.35, 0.90),  # blue
        (0.60, 0.15, 0.80),  # purple
        (0.05, 0.70, 0.70),  # teal
        (0.90, 0.30, 0.60),  # pink
        (0.55, 0.35, 0.15),  # brown
    ),
    "heldout": (
        (0.95, 0.85, 0.05),  # yellow
        (0.05, 0.85, 0.95),  # cyan
        (0.55, 0.85, 0.10),  # lime
        (0.85, 0.05, 0.85),  # magenta
    ),
}


@dataclass(frozen=True)
class Appearance:
    """How the pushed object looks: RGB in [0, 1], radius (half width for a box) in metres, shape."""

    rgb: tuple[float, float, float]
    radius: float
    shape: str

    def as_info(self) -> dict[str, Any]:
        return {"object_rgb": np.array(self.rgb), "object_radius": self.radius, "object_shape": self.shape}


def sample_appearance(
    rng: np.random.Generator, palette: str, radius_range: tuple[float, float], shapes: tuple[str, ...]
) -> Appearance:
    colours = PALETTES[palette]
    rgb = colours[int(rng.integers(len(colours)))]
    radius = float(rng.uniform(*radius_range))
    shape = shapes[int(rng.integers(len(shapes)))]
    return Appearance(rgb=rgb, radius=radius, shape=shape)
