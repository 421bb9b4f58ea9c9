"""beta-VAE on RGB frames (RIG): the RL representation is the encoder mean; imagined goals come from N(0, I)
or, once ``set_goal_prior`` is called, from a diagonal Gaussian fitted to the encoder means.

loss = mean over the batch of [recon(x | z) + beta * KL(q(z | x) || N(0, I))], with the reconstruction
summed over all 3 * H * W values (the convention in ``rig.representation.base``). Decoder outputs are logits;
``decode`` applies a sigmoid for both likelihoods, so for the Gaussian likelihood the sigmoid is the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rig.representation.base import (
    ContextFree,
    GoalPriorModule,
    check_images,
    check_last_dim,
    check_likelihood,
    gaussian_kl,
    reconstruction_mse,
    reconstruction_nll,
    reject_context,
    reject_targets,
    reparameterize,
    scalar_metrics,
)
from rig.representation.nets import GaussianEncoder, make_decoder


class BetaVAE(ContextFree, GoalPriorModule):
    input_kind = "image"
    output_kind = "image"

    def __init__(
        self,
        z_dim: int = 4,
        beta: float = 1.0,
        likelihood: str = "gaussian",
        image_size: int = 48,
        hidden_dim: int = 256,
        decoder: str = "deconv",
        decoder_channels: int = 32,
        coord_channels: bool = False,
        encoder: str = "rig",
        goal_mean: Sequence[float] | None = None,
        goal_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if z_dim < 1:
            raise ValueError(f"z_dim must be >= 1, got {z_dim}")
        self.z_dim = z_dim
        self.latent_dim = z_dim
        self.beta = float(beta)
        self.likelihood = check_likelihood(likelihood)
        self.image_size = image_size
        self.hidden_dim = hidden_dim
        self.decoder_kind = decoder
        self.decoder_channels = decoder_channels
        self.coord_channels = bool(coord_channels)
        self.encoder_body = encoder
        self.set_goal_prior(goal_mean, goal_std)
        self.encoder = GaussianEncoder(3, image_size, z_dim, hidden_dim, self.coord_channels, encoder)
        self.decoder = make_decoder(decoder, z_dim, image_size, hidden_dim, channels=decoder_channels)

    def encode(
        self, x: Tensor, context: Tensor | None = None, context_latent: Tensor | None = None
    ) -> Tensor:
        reject_context(context, "BetaVAE", context_latent)
        check_images(x, self.image_size, "x")
        mu: Tensor = self.encoder(x)[0]
        return mu

    def sample_prior(
        self, n: int, context: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        reject_context(context, "BetaVAE")
        return self.draw_goal_z(n, generator)

    def decode(self, latent: Tensor) -> Tensor:
        check_last_dim(latent, self.latent_dim, "latent")
        return torch.sigmoid(self.decoder(latent))

    def loss(
        self,
        x: Tensor,
        context: Tensor | None = None,
        kl_weight: float = 1.0,
        targets: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        reject_targets(targets, "BetaVAE")
        reject_context(context, "BetaVAE")
        check_images(x, self.image_size, "x")
        mu, logvar = self.encoder(x)
        logits = self.decoder(reparameterize(mu, logvar))
        recon = reconstruction_nll(logits, x, self.likelihood)
        kl = gaussian_kl(mu, logvar).sum(dim=1)
        loss = (recon + kl_weight * self.beta * kl).mean()
        metrics = scalar_metrics(
            loss=loss, recon=recon.mean(), kl=kl.mean(), mse=reconstruction_mse(logits, x)
        )
        return loss, metrics

    def kl_per_dim(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        reject_context(context, "BetaVAE")
        check_images(x, self.image_size, "x")
        mu, logvar = self.encoder(x)
        return gaussian_kl(mu, logvar).mean(dim=0)

    def config_dict(self) -> dict[str, object]:
        return {
            "z_dim": self.z_dim,
            "beta": self.beta,
            "likelihood": self.likelihood,
            "image_size": self.image_size,
            "hidden_dim": self.hidden_dim,
            "decoder": self.decoder_kind,
            "decoder_channels": self.decoder_channels,
            "coord_channels": self.coord_channels,
            # Left out at "rig", so checkpoints from before the setting compare equal to today's.
            **({"encoder": self.encoder_body} if self.encoder_body != "rig" else {}),
            **self.goal_prior_config(),
        }
