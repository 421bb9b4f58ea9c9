"""Context-conditioned VAE (CC-RIG): imagined goals stay consistent with the scene of the episode.

- A context encoder e0 with its own weights maps the episode's first frame x0 to a deterministic c.
- The posterior q(z | x_t, x0) sees both frames stacked as 6 channels, so its first conv can compare them
  pixel by pixel and z only has to carry what differs from the context (where things moved).
- The decoder p(x_t | z, c) takes [z, c]; with ``context_film`` c also scales and shifts the channels of
  every hidden decoder layer (FiLM), so that the context's colour multiplies where z puts the object.
  A second decoder reconstructs x0 from c alone, which forces c
  to hold the scene's appearance.
- With ``z_augment="hue"``, the training loss shows the z encoder x_t and x0 with one random hue rotation
  per sample (``rig.representation.augment``), while c comes from the unrotated x0 and the decoder's
  target stays the unrotated x_t: the object's colour reaches the decoder only through c, and z has to
  carry what the rotation keeps, the positions. Only the training loss rotates (``self.training``):
  encoding, the held-out loss and the diagnostics see the frames as they are.

loss = mean over the batch of [recon(x_t | z, c) + recon(x0 | c) + beta * KL(q(z | x_t, x0) || N(0, I))],
with the KL on z only and reconstructions summed over pixels (the convention in ``rig.representation.base``).
The RL representation is [mu_z, c]; imagined goals are [z ~ N(0, I), c of the current episode].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rig.representation.augment import check_z_augment, draw_hue_turns, rotate_hue
from rig.representation.base import (
    GoalPriorModule,
    check_images,
    check_last_dim,
    check_likelihood,
    gaussian_kl,
    reconstruction_mse,
    reconstruction_nll,
    reject_targets,
    reparameterize,
    require_context,
    scalar_metrics,
)
from rig.representation.nets import ContextEncoder, ConvDecoder, GaussianEncoder, make_decoder


class CCVAE(GoalPriorModule):
    input_kind = "image"
    output_kind = "image"

    def __init__(
        self,
        z_dim: int = 6,
        context_dim: int = 4,
        beta: float = 1.0,
        likelihood: str = "gaussian",
        image_size: int = 48,
        hidden_dim: int = 256,
        decoder: str = "deconv",
        decoder_channels: int = 32,
        coord_channels: bool = False,
        context_film: bool = False,
        z_augment: str = "none",
        encoder: str = "rig",
        goal_mean: Sequence[float] | None = None,
        goal_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if z_dim < 1 or context_dim < 1:
            raise ValueError(f"z_dim and context_dim must be >= 1, got {z_dim} and {context_dim}")
        self.z_dim = z_dim
        self.context_dim = context_dim
        self.latent_dim = z_dim + context_dim
        self.beta = float(beta)
        self.likelihood = check_likelihood(likelihood)
        self.image_size = image_size
        self.hidden_dim = hidden_dim
        self.decoder_kind = decoder
        self.decoder_channels = decoder_channels
        self.coord_channels = bool(coord_channels)
        self.context_film = bool(context_film)
        self.z_augment = check_z_augment(z_augment)
        self.encoder_body = encoder
        self.set_goal_prior(goal_mean, goal_std)
        self.context_encoder = ContextEncoder(image_size, context_dim, hidden_dim, encoder)
        self.encoder = GaussianEncoder(6, image_size, z_dim, hidden_dim, self.coord_channels, encoder)
        film_dim = context_dim if self.context_film else 0
        self.decoder = make_decoder(
            decoder, z_dim + context_dim, image_size, hidden_dim, film_dim, channels=decoder_channels
        )
        self.context_decoder = ConvDecoder(context_dim, image_size, hidden_dim)

    def encode(
        self, x: Tensor, context: Tensor | None = None, context_latent: Tensor | None = None
    ) -> Tensor:
        """[mu_z, c]; ``context_latent``, c of ``context`` encoded earlier, saves the context encoder."""
        context_images = self._context_images(x, context)
        mu, _ = self.encoder(torch.cat([x, context_images], dim=1))
        if context_latent is None:
            context_latent = self.context_encoder(context_images)
        else:
            check_last_dim(context_latent, self.context_dim, "context_latent")
            if context_latent.shape[0] != x.shape[0]:
                raise ValueError(
                    f"x and context_latent batch sizes differ: {x.shape[0]} vs {context_latent.shape[0]}"
                )
        return torch.cat([mu, context_latent.to(mu)], dim=1)

    def encode_context(self, context: Tensor) -> Tensor:
        check_images(context, self.image_size, "context")
        c: Tensor = self.context_encoder(context)
        return c

    def sample_prior(
        self, n: int, context: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Imagined goals [z ~ N(0, I) (or the fitted goal distribution, see ``set_goal_prior``), c].

        ``context`` is an encoded context latent c: (n, context_dim), (1, context_dim) or (context_dim,).
        """
        context_latent = require_context(context, "CCVAE.sample_prior")
        z = self.draw_goal_z(n, generator)
        return torch.cat([z, self._broadcast_context_latent(context_latent, n).to(z)], dim=1)

    def decode(self, latent: Tensor) -> Tensor:
        check_last_dim(latent, self.latent_dim, "latent")
        return torch.sigmoid(self.decoder(latent))

    def decode_context(self, context_latent: Tensor) -> Tensor:
        """The context image the context decoder reconstructs from c alone."""
        check_last_dim(context_latent, self.context_dim, "context_latent")
        return torch.sigmoid(self.context_decoder(context_latent))

    def loss(
        self,
        x: Tensor,
        context: Tensor | None = None,
        kl_weight: float = 1.0,
        targets: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        reject_targets(targets, "CCVAE")
        context_images = self._context_images(x, context)
        mu, logvar = self.encoder(self._training_view(x, context_images))
        c = self.context_encoder(context_images)
        logits = self.decoder(torch.cat([reparameterize(mu, logvar), c], dim=1))
        recon = reconstruction_nll(logits, x, self.likelihood)
        recon_context = reconstruction_nll(self.context_decoder(c), context_images, self.likelihood)
        kl = gaussian_kl(mu, logvar).sum(dim=1)
        loss = (recon + recon_context + kl_weight * self.beta * kl).mean()
        metrics = scalar_metrics(
            loss=loss,
            recon=recon.mean(),
            recon_context=recon_context.mean(),
            kl=kl.mean(),
            mse=reconstruction_mse(logits, x),
        )
        return loss, metrics

    def kl_per_dim(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        context_images = self._context_images(x, context)
        mu, logvar = self.encoder(torch.cat([x, context_images], dim=1))
        return gaussian_kl(mu, logvar).mean(dim=0)

    def config_dict(self) -> dict[str, object]:
        return {
            "z_dim": self.z_dim,
            "context_dim": self.context_dim,
            "beta": self.beta,
            "likelihood": self.likelihood,
            "image_size": self.image_size,
            "hidden_dim": self.hidden_dim,
            "decoder": self.decoder_kind,
            "decoder_channels": self.decoder_channels,
            "coord_channels": self.coord_channels,
            "context_film": self.context_film,
            # Left out at "none", so checkpoints from before the setting compare equal to today's.
            **({"z_augment": self.z_augment} if self.z_augment != "none" else {}),
            **({"encoder": self.encoder_body} if self.encoder_body != "rig" else {}),
            **self.goal_prior_config(),
        }

    def _training_view(self, x: Tensor, context_images: Tensor) -> Tensor:
        """The z encoder's input in the loss: [x_t, x0] stacked, hue-rotated alike when ``z_augment`` asks
        and the model is training."""
        if self.z_augment == "hue" and self.training:
            turns = draw_hue_turns(x.shape[0], x.device)
            x, context_images = rotate_hue(x, turns), rotate_hue(context_images, turns)
        return torch.cat([x, context_images], dim=1)

    def _context_images(self, x: Tensor, context: Tensor | None) -> Tensor:
        context_images = require_context(context, "CCVAE")
        check_images(x, self.image_size, "x")
        check_images(context_images, self.image_size, "context")
        if context_images.shape[0] != x.shape[0]:
            raise ValueError(f"x and context batch sizes differ: {x.shape[0]} vs {context_images.shape[0]}")
        return context_images

    def _broadcast_context_latent(self, context_latent: Tensor, n: int) -> Tensor:
        rows = context_latent[None] if context_latent.ndim == 1 else context_latent
        if rows.ndim != 2 or rows.shape[1] != self.context_dim or rows.shape[0] not in (1, n):
            raise ValueError(
                f"context latent must have shape ({n}, {self.context_dim}), (1, {self.context_dim}) "
                f"or ({self.context_dim},), got {tuple(context_latent.shape)}"
            )
        return rows.expand(n, -1)
