"""Object appearances for the multi-object pusher: colour, size and shape, drawn at every reset.

A palette is a continuous colour distribution: a set of hue ranges (degrees in [0, 360)) with hue
drawn uniformly over their total arc, saturation uniformly in ``SATURATION_RANGE`` and value uniformly
in ``VALUE_RANGE``. The ``heldout`` palette is three 30-degree bands centred on yellow (60), cyan (180)
and magenta (300); ``train`` is the rest of the hue circle. A model trained on ``train`` has seen
colours on both sides of every held-out band, so held-out colours test interpolation between trained
hues, not recognition of a few memorised colours. Every colour has chroma max(rgb) - min(rgb) >= 0.6,
far from the grey table and the near-black hand.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Any

import numpy as np

SHAPES = ("cylinder", "box")

HUE_CIRCLE = 360.0
SATURATION_RANGE = (0.75, 0.95)
VALUE_RANGE = (0.8, 0.95)
"""Saturation times value, the chroma, is at least 0.75 * 0.8 = 0.6 for every drawn colour."""
HELDOUT_HUE_CENTRES = (60.0, 180.0, 300.0)
HELDOUT_BAND_WIDTH = 30.0

HueRange = tuple[float, float]
RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Palette:
    """Colours whose hue lies in ``hue_ranges``: half-open [low, high) ranges of degrees in [0, 360]."""

    hue_ranges: tuple[HueRange, ...]

    def __post_init__(self) -> None:
        if not self.hue_ranges or any(not 0 <= low < high <= HUE_CIRCLE for low, high in self.hue_ranges):
            raise ValueError(f"hue ranges must be [low, high) within [0, 360], got {self.hue_ranges}")

    def contains_hue(self, hue: float) -> bool:
        """Whether ``hue`` (degrees, any turn) falls in one of the ranges."""
        wrapped = hue % HUE_CIRCLE
        return any(low <= wrapped < high for low, high in self.hue_ranges)

    def sample_hue(self, rng: np.random.Generator) -> float:
        """A hue uniform over the ranges' total arc: a range is picked in proportion to its width."""
        widths = np.array([high - low for low, high in self.hue_ranges])
        low, high = self.hue_ranges[int(rng.choice(len(widths), p=widths / widths.sum()))]
        return float(rng.uniform(low, high))

    def sample(self, rng: np.random.Generator) -> RGB:
        """An RGB colour in [0, 1]: hue from the ranges, saturation and value from their fixed ranges."""
        hue = self.sample_hue(rng)
        saturation = float(rng.uniform(*SATURATION_RANGE))
        value = float(rng.uniform(*VALUE_RANGE))
        return colorsys.hsv_to_rgb(hue / HUE_CIRCLE, saturation, value)


def _heldout_bands() -> tuple[HueRange, ...]:
    """The bands from their centres and width, which are the numbers the held-out split is defined by."""
    half = HELDOUT_BAND_WIDTH / 2
    return tuple((centre - half, centre + half) for centre in HELDOUT_HUE_CENTRES)


def _complement(ranges: tuple[HueRange, ...]) -> tuple[HueRange, ...]:
    """The rest of the hue circle, for sorted, disjoint ranges; gaps of zero width are left out."""
    edges = [0.0, *(edge for hue_range in ranges for edge in hue_range), HUE_CIRCLE]
    gaps = zip(edges[::2], edges[1::2], strict=True)
    return tuple((low, high) for low, high in gaps if low < high)


PALETTES: dict[str, Palette] = {
    "train": Palette(_complement(_heldout_bands())),
    "heldout": Palette(_heldout_bands()),
}


@dataclass(frozen=True)
class Appearance:
    """How the pushed object looks: RGB in [0, 1], radius (half width for a box) in metres, shape."""

    rgb: RGB
    radius: float
    shape: str

    def as_info(self) -> dict[str, Any]:
        return {"object_rgb": np.array(self.rgb), "object_radius": self.radius, "object_shape": self.shape}


def sample_appearance(
    rng: np.random.Generator, palette: str, radius_range: tuple[float, float], shapes: tuple[str, ...]
) -> Appearance:
    """Draw colour, radius and shape from ``rng`` alone, so that a seeded reset repeats its appearance."""
    rgb = PALETTES[palette].sample(rng)
    radius = float(rng.uniform(*radius_range))
    shape = shapes[int(rng.integers(len(shapes)))]
    return Appearance(rgb=rgb, radius=radius, shape=shape)
