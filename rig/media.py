"""Image grids, PNGs and GIFs for people to look at."""

from __future__ import annotations

import os
from collections.abc import Sequence

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from rig.io import atomic_path

Array = np.ndarray


def upscale(image: Array, factor: int) -> Array:
    """Nearest-neighbour enlargement, so 48 px frames stay crisp when viewed."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def image_grid(images: Array | Sequence[Array], ncols: int, pad: int = 2, fill: int = 255) -> Array:
    """Tile equally sized HxWx3 uint8 images row by row, with ``pad`` pixels between them."""
    stack = np.asarray(images)
    if stack.ndim != 4 or stack.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {stack.shape}")
    count, height, width, _ = stack.shape
    ncols = max(1, min(ncols, count))
    nrows = -(-count // ncols)
    grid = np.full((nrows * (height + pad) + pad, ncols * (width + pad) + pad, 3), fill, dtype=np.uint8)
    for index, image in enumerate(stack):
        row, col = divmod(index, ncols)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        grid[top : top + height, left : left + width] = image
    return grid


def save_png(path: str | os.PathLike[str], image: Array, scale: int = 1) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(upscale(np.asarray(image, dtype=np.uint8), scale)).save(tmp, format="PNG")


def save_gif(path: str | os.PathLike[str], frames: Sequence[Array], fps: int = 10, scale: int = 1) -> None:
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, [upscale(f, scale) for f in frames], format="GIF", duration=1000 / fps, loop=0)
