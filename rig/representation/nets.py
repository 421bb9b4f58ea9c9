"""Conv encoder and decoder for square RGB images, after the 48 px RIG / Skew-Fit architecture.

Encoder: Conv(c->16, k5, s3), Conv(16->32, k3, s2), Conv(32->64, k3, s2), each followed by ReLU, no padding.
48 px goes 48 -> 15 -> 7 -> 3 (576 features); 84 px goes 84 -> 27 -> 13 -> 6 (2304 features).

Decoder: linear layers to 64 x g x g (g = the encoder's last grid), then ConvTranspose 3x3 s2, 3x3 s2 and
6x6 s3. Each transposed conv gets the ``output_padding`` that restores the size its mirrored encoder conv
received, so the decoder is an exact mirror at any supported size without resampling; 48 and 84 need no
padding at all. For sizes with (size - 5) % 3 == 0 the 6x6 kernel overshoots by one pixel, and that last
row and column are cropped.

``hidden_dim`` puts one ReLU layer of that width between the conv features and the latent heads (and
mirrors it in the decoder): with a 4-d latent, a purely linear map from 576 conv features is a narrow
bottleneck to learn through. ``hidden_dim=0`` gives the reference's direct linear heads.

The encoders' fully connected body is that layer (``"rig"``), or, with ``body="reference"``, the CC-RIG
authors' (their ``ccrig`` branch of rlkit): layers of 500, 300 and 150, each Linear, batch norm, ReLU and
dropout 0.5, in the z encoder and the context encoder alike. Batch norm and dropout act in training
mode only; ``eval()`` encodes with the running statistics and without dropout.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENCODER_BODIES = ("rig", "reference")
"""the encoders' fully connected bodies (module docstring)"""
REFERENCE_FC = (500, 300, 150)
"""widths of the reference body's layers"""
REFERENCE_DROPOUT = 0.5
"""the reference body's dropout probability"""

LOGVAR_FLOOR = math.log(1e-3)
"""Log of the smallest posterior variance; keeps exp(-logvar) and the KL finite."""


class ConvSpec(NamedTuple):
    channels: int
    kernel: int
    stride: int


ENCODER_CONVS = (ConvSpec(16, 5, 3), ConvSpec(32, 3, 2), ConvSpec(64, 3, 2))
DECONV_KERNELS = (3, 3, 6)
"""Kernels of the transposed convs, in decoder order (the reference uses 6, not 5, for the last)."""


def min_image_size() -> int:
    size = 1
    for spec in reversed(ENCODER_CONVS):
        size = (size - 1) * spec.stride + spec.kernel
    return size


def encoder_grid_sizes(image_size: int) -> list[int]:
    """Spatial size entering each encoder conv, then the final grid: [48, 15, 7, 3] for 48 px."""
    if image_size < min_image_size():
        raise ValueError(
            f"image_size={image_size} is too small for the conv encoder (minimum {min_image_size()})"
        )
    sizes = [image_size]
    for spec in ENCODER_CONVS:
        sizes.append((sizes[-1] - spec.kernel) // spec.stride + 1)
    return sizes


def linear_stack(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    if hidden_dim < 0:
        raise ValueError(f"hidden_dim must be >= 0, got {hidden_dim}")
    if hidden_dim == 0:
        return nn.Sequential(nn.Linear(in_dim, out_dim))
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))


def encoder_body(in_dim: int, hidden_dim: int, body: str) -> tuple[nn.Module, int]:
    """The fully connected body from ``in_dim`` conv features, and the width it ends with: one ReLU layer
    of ``hidden_dim`` (none at 0) for ``"rig"``, the reference's stack for ``"reference"``."""
    if body not in ENCODER_BODIES:
        raise ValueError(f"encoder body must be one of {', '.join(ENCODER_BODIES)}, got {body!r}")
    if body == "reference":
        layers: list[nn.Module] = []
        for width in REFERENCE_FC:
            layers += [nn.Linear(in_dim, width), nn.BatchNorm1d(width), nn.ReLU()]
            layers.append(nn.Dropout(REFERENCE_DROPOUT))
            in_dim = width
        return nn.Sequential(*layers), in_dim
    if hidden_dim:
        return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU()), hidden_dim
    return nn.Identity(), in_dim


def floor_logvar(raw: Tensor) -> Tensor:
    """log(exp(raw) + 1e-3): a smooth variance floor, which unlike a clamp never zeroes the gradient."""
    return torch.logaddexp(raw, torch.full_like(raw, LOGVAR_FLOOR))


class ConvTrunk(nn.Module):
    """The encoder convs and flatten: (B, in_channels, S, S) -> (B, feature_dim)."""

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()
        encoder_grid_sizes(image_size)  # raises for sizes the convs cannot take
        layers: list[nn.Module] = []
        channels = in_channels
        for spec in ENCODER_CONVS:
            layers += [nn.Conv2d(channels, spec.channels, spec.kernel, spec.stride), nn.ReLU()]
            channels = spec.channels
        layers.append(nn.Flatten())
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            dummy = torch.zeros(1, in_channels, image_size, image_size)
            self.feature_dim = int(self.net(dummy).shape[1])

    def forward(self, images: Tensor) -> Tensor:
        features: Tensor = self.net(images)
        return features


def coordinate_grid(size: int) -> Tensor:
    """(2, size, size) pixel-centre x and y coordinates in [-1, 1] (x along columns, y along rows)."""
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2.0 - 1.0
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x, y])


class CoordChannels(nn.Module):
    """Appends pixel coordinates as two channels (CoordConv), so convs can turn positions into numbers."""

    coords: Tensor

    def __init__(self, image_size: int) -> None:
        super().__init__()
        self.register_buffer("coords", coordinate_grid(image_size), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        coords = self.coords.expand(images.shape[0], -1, -1, -1)
        return torch.cat([images, coords], dim=1)


class EncoderFeatures(nn.Module):
    """The encoders' shared body: (B, in_channels, S, S) -> (B, head_in) features for their heads.

    Coordinate channels when asked (CoordConv), the encoder convs, and the fully connected ``body``
    (``encoder_body``). The Gaussian encoder and the regression encoder add their heads to it.
    """

    def __init__(
        self, in_channels: int, image_size: int, hidden_dim: int, coord_channels: bool, body: str = "rig"
    ) -> None:
        super().__init__()
        self.coords: nn.Module = CoordChannels(image_size) if coord_channels else nn.Identity()
        self.trunk = ConvTrunk(in_channels + 2 * coord_channels, image_size)
        self.hidden, self.head_in = encoder_body(self.trunk.feature_dim, hidden_dim, body)

    def features(self, images: Tensor) -> Tensor:
        features: Tensor = self.hidden(self.trunk(self.coords(images)))
        return features


class GaussianEncoder(EncoderFeatures):
    """Images -> (mu, logvar) of a diagonal Gaussian posterior, with the variance floored."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        out_dim: int,
        hidden_dim: int,
        coord_channels: bool = False,
        body: str = "rig",
    ) -> None:
        super().__init__(in_channels, image_size, hidden_dim, coord_channels, body)
        self.mu = nn.Linear(self.head_in, out_dim)
        self.logvar = nn.Linear(self.head_in, out_dim)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        features = self.features(images)
        return self.mu(features), floor_logvar(self.logvar(features))


class RegressionEncoder(EncoderFeatures):
    """Images -> (B, out_dim) point estimates: the Gaussian encoder's body with one linear head."""

    def __init__(
        self, in_channels: int, image_size: int, out_dim: int, hidden_dim: int, coord_channels: bool = False
    ) -> None:
        super().__init__(in_channels, image_size, hidden_dim, coord_channels)
        self.head = nn.Linear(self.head_in, out_dim)

    def forward(self, images: Tensor) -> Tensor:
        estimate: Tensor = self.head(self.features(images))
        return estimate


class ContextEncoder(nn.Module):
    """Context image x0 -> deterministic context latent c."""

    def __init__(self, image_size: int, out_dim: int, hidden_dim: int, body: str = "rig") -> None:
        super().__init__()
        self.trunk = ConvTrunk(3, image_size)
        if body == "rig":
            self.fc = linear_stack(self.trunk.feature_dim, hidden_dim, out_dim)
        else:
            stack, width = encoder_body(self.trunk.feature_dim, hidden_dim, body)
            self.fc = nn.Sequential(stack, nn.Linear(width, out_dim))

    def forward(self, images: Tensor) -> Tensor:
        context: Tensor = self.fc(self.trunk(images))
        return context


class ConvDecoder(nn.Module):
    """(B, in_dim) -> (B, 3, S, S) logits, mirroring ConvTrunk."""

    def __init__(self, in_dim: int, image_size: int, hidden_dim: int) -> None:
        super().__init__()
        grid_sizes = encoder_grid_sizes(image_size)
        self.image_size = image_size
        self.grid_shape = (ENCODER_CONVS[-1].channels, grid_sizes[-1], grid_sizes[-1])
        self.fc = linear_stack(in_dim, hidden_dim, math.prod(self.grid_shape))
        self.deconv = nn.Sequential(*_transposed_convs(grid_sizes, out_channels=3))

    def forward(self, latent: Tensor) -> Tensor:
        grid = F.relu(self.fc(latent)).view(-1, *self.grid_shape)
        logits: Tensor = self.deconv(grid)
        return logits[..., : self.image_size, : self.image_size]


def _transposed_convs(grid_sizes: list[int], out_channels: int) -> list[nn.Module]:
    channels = [spec.channels for spec in reversed(ENCODER_CONVS)] + [out_channels]
    strides = [spec.stride for spec in reversed(ENCODER_CONVS)]
    targets = grid_sizes[-2::-1]
    size = grid_sizes[-1]
    layers: list[nn.Module] = []
    for i, (kernel, stride, target) in enumerate(zip(DECONV_KERNELS, strides, targets, strict=True)):
        padding = max(target - ((size - 1) * stride + kernel), 0)
        deconv = nn.ConvTranspose2d(channels[i], channels[i + 1], kernel, stride, output_padding=padding)
        layers += [deconv, nn.ReLU()]
        size = (size - 1) * stride + kernel + padding
    return layers[:-1]  # the decoder outputs logits: no ReLU after the last layer


class BroadcastDecoder(nn.Module):
    """Spatial broadcast decoder (Watters et al., 2019): (B, in_dim) -> (B, 3, S, S) logits.

    The latent is tiled over an S/4 grid with coordinate channels appended, two 3x3 convs mix them, and two
    4x4 stride-2 transposed convs upsample to S. Drawing an object at a position is then a near-linear
    function of the latent, which pushes position factors into latent dims that vary linearly with them.

    With ``film_dim`` > 0 the last ``film_dim`` latent entries (the CC-VAE context c) also scale and shift
    the channels of every hidden layer (FiLM, Perez et al., 2018): y = relu((1 + gamma(c)) * conv(h) +
    beta(c)). Painting an object in the context's colour is then a product of "object here" (from z) and
    the colour (from c), which a concatenated input alone leaves the ReLU layers to approximate.
    """

    coords: Tensor

    def __init__(
        self, in_dim: int, image_size: int, channels: int = 32, film_dim: int = 0, out_channels: int = 3
    ) -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"the broadcast decoder needs image_size divisible by 4, got {image_size}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if not 0 <= film_dim <= in_dim:
            raise ValueError(f"film_dim must be in [0, {in_dim}], got {film_dim}")
        self.grid = image_size // 4
        self.film_dim = film_dim
        self.register_buffer("coords", coordinate_grid(self.grid), persistent=False)
        self.net = nn.Sequential(
            nn.Conv2d(in_dim + 2, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1),
        )
        self.hidden_layers = 3
        """the convs before each ReLU; FiLM modulates their outputs"""
        self.film: nn.Linear | None = None
        if film_dim:
            self.film = nn.Linear(film_dim, 2 * channels * self.hidden_layers)
            # Start as the identity modulation, so training begins from the plain broadcast decoder.
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)

    def forward(self, latent: Tensor) -> Tensor:
        batch = latent.shape[0]
        tiled = latent[:, :, None, None].expand(-1, -1, self.grid, self.grid)
        h = torch.cat([tiled, self.coords.expand(batch, -1, -1, -1)], dim=1)
        modulation = self._modulation(latent)
        for index, layer in enumerate(self.net):
            if modulation is not None and isinstance(layer, nn.ReLU):
                gamma, beta = modulation[index // 2]
                h = h * (1.0 + gamma[:, :, None, None]) + beta[:, :, None, None]
            h = layer(h)
        return h

    def _modulation(self, latent: Tensor) -> list[tuple[Tensor, Tensor]] | None:
        if self.film is None:
            return None
        parameters = self.film(latent[:, -self.film_dim :]).view(latent.shape[0], self.hidden_layers, 2, -1)
        return [(parameters[:, i, 0], parameters[:, i, 1]) for i in range(self.hidden_layers)]


class SlotDecoder(nn.Module):
    """Hand and object from separate halves of z: (B, z_dim [+ film_dim]) -> (B, 3, S, S) logits.

    Each half of z (with the context c, when there is one) drives its own spatial broadcast decoder, which
    paints RGB and a mask logit; a background layer (decoded from c for the CC-VAE, a learned image
    otherwise) paints the rest. The layers are composited with a softmax over their masks, and the
    composite's probabilities are returned as logits, so the likelihoods stay as they are. A broadcast
    decoder draws one blob whose position is near-linear in its input, so the encoder is pushed to code
    hand and object in different halves of z, and moving one part leaves the other's half alone.
    """

    slots = 2

    def __init__(self, z_dim: int, image_size: int, channels: int = 32, film_dim: int = 0) -> None:
        super().__init__()
        if z_dim % self.slots:
            raise ValueError(f"the slot decoder splits z in {self.slots}; z_dim must be even, got {z_dim}")
        self.z_dim, self.film_dim, self.image_size = z_dim, film_dim, image_size
        part = z_dim // self.slots
        self.parts = nn.ModuleList(
            BroadcastDecoder(part + film_dim, image_size, channels, film_dim, out_channels=4)
            for _ in range(self.slots)
        )
        self.background: nn.Module | None = None
        self.background_image: nn.Parameter | None = None
        if film_dim:
            self.background = BroadcastDecoder(film_dim, image_size, channels, film_dim, out_channels=4)
        else:
            self.background_image = nn.Parameter(torch.zeros(1, 4, image_size, image_size))

    def forward(self, latent: Tensor) -> Tensor:
        z, context = latent[:, : self.z_dim], latent[:, self.z_dim :]
        layers = [
            decoder(torch.cat([half, context], dim=1))
            for decoder, half in zip(self.parts, z.chunk(self.slots, dim=1), strict=True)
        ]
        if self.background is not None:
            layers.append(self.background(context))
        else:
            assert self.background_image is not None
            layers.append(self.background_image.expand(latent.shape[0], -1, -1, -1))
        stacked = torch.stack(layers, dim=1)  # (B, layers, 4, S, S)
        weights = torch.softmax(stacked[:, :, 3:], dim=1)
        probability = (weights * torch.sigmoid(stacked[:, :, :3])).sum(dim=1)
        return torch.logit(probability.clamp(1e-6, 1 - 1e-6))


def make_decoder(
    kind: str, in_dim: int, image_size: int, hidden_dim: int, film_dim: int = 0, channels: int = 32
) -> nn.Module:
    """``deconv`` mirrors the reference encoder; ``broadcast`` is the spatial broadcast decoder; ``slots``
    draws hand and object from separate halves of z (``SlotDecoder``; ``in_dim`` is z_dim + film_dim).

    ``film_dim``: the last entries of the latent that modulate the broadcast decoder's channels (FiLM).
    ``channels``: the broadcast decoder's hidden channels (the deconv decoder mirrors the encoder's).
    """
    if kind == "deconv":
        if film_dim:
            raise ValueError("FiLM conditioning needs the broadcast decoder")
        return ConvDecoder(in_dim, image_size, hidden_dim)
    if kind == "broadcast":
        return BroadcastDecoder(in_dim, image_size, channels=channels, film_dim=film_dim)
    if kind == "slots":
        return SlotDecoder(in_dim - film_dim, image_size, channels=channels, film_dim=film_dim)
    raise ValueError(f"decoder must be 'deconv', 'broadcast' or 'slots', got {kind!r}")
