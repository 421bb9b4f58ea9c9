"""Identity on state vectors, for the state-oracle agent: standard HER with goals drawn uniformly in a box."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rig.representation.base import ContextFree, check_last_dim, reject_context


class StateRepresentation(ContextFree, nn.Module):
    input_kind = "state"
    output_kind = "state"

    low: Tensor
    high: Tensor

    def __init__(self, low: Sequence[float], high: Sequence[float]) -> None:
        super().__init__()
        low_t = torch.as_tensor(low, dtype=torch.float32)
        high_t = torch.as_tensor(high, dtype=torch.float32)
        if low_t.ndim != 1 or low_t.shape != high_t.shape or low_t.numel() == 0:
            raise ValueError(
                f"low and high must be non-empty, 1-D and equally long, got {low_t} and {high_t}"
            )
        if bool((low_t > high_t).any()):
            raise ValueError(f"low must not exceed high, got low={low_t} high={high_t}")
        self.register_buffer("low", low_t)
        self.register_buffer("high", high_t)
        self.z_dim = low_t.numel()
        self.latent_dim = self.z_dim

    def encode(
        self, x: Tensor, context: Tensor | None = None, context_latent: Tensor | None = None
    ) -> Tensor:
        reject_context(context, "StateRepresentation", context_latent)
        check_last_dim(x, self.latent_dim, "state")
        return x

    def sample_prior(
        self, n: int, context: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Goals uniform in [low, high]."""
        reject_context(context, "StateRepresentation")
        unit = torch.rand(n, self.latent_dim, device=self.low.device, generator=generator)
        return self.low + unit * (self.high - self.low)

    def set_goal_prior(self, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
        raise RuntimeError("StateRepresentation draws goals uniformly in its box; it has no prior to fit")

    def decode(self, latent: Tensor) -> Tensor:
        check_last_dim(latent, self.latent_dim, "latent")
        return latent

    def loss(
        self,
        x: Tensor,
        context: Tensor | None = None,
        kl_weight: float = 1.0,
        targets: Tensor | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        raise RuntimeError("StateRepresentation has nothing to train: it is the identity on states")

    def kl_per_dim(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        raise RuntimeError("StateRepresentation has no posterior, so no KL: it is the identity on states")

    def config_dict(self) -> dict[str, object]:
        return {"low": self.low.tolist(), "high": self.high.tolist()}
