"""TD3 with stable-baselines3's update, computed with less work per gradient step.

``LeanTD3.train`` computes the same losses and takes the same optimiser steps as ``stable_baselines3.TD3``
(same replay samples, same target-noise draws from torch's global generator), with four savings:

- the observation dict is flattened once per batch and shared by the actor, both critics and their
  targets, instead of once per network call; this needs feature extractors without parameters (SB3's
  ``CombinedExtractor`` and ``FlattenExtractor`` over vectors, which is what rig's latent observations
  get), and any other policy falls back to SB3's own ``train``;
- the actor loss is back-propagated with the critic's parameters frozen, so no critic weight gradient
  is computed only to be zeroed at the next critic step;
- the target networks are soft-updated by one fused ``torch._foreach_lerp_`` over all tensors
  (``target += tau * (online - target)``, SB3's ``polyak_update`` up to float rounding);
- the policy is not walked to switch train / eval mode at every step when none of its modules behaves
  differently in the two modes (no batch norm, no dropout).

``optimizer_kwargs(device)`` gives the Adam settings rig uses with it: the fused kernel where torch has
one for the device (CPU and CUDA), which updates every parameter of a network in one call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import TD3
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

MODE_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)
"""Modules whose forward depends on train / eval mode."""


def optimizer_kwargs(device: torch.device) -> dict[str, Any]:
    """Adam keyword arguments for actor and critic: ``fused=True`` on CPU and CUDA, nothing elsewhere."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {}


class LeanTD3(TD3):
    """``stable_baselines3.TD3`` whose ``train`` does the same update with less work (module docstring)."""

    def _setup_model(self) -> None:
        super()._setup_model()
        self.lean = lean_update_applies(self.policy)
        """whether the lean update applies; otherwise ``train`` is SB3's"""
        if self.lean:
            # SB3 switches modes around every rollout step and prediction; here that changes nothing.
            self.policy.set_training_mode = _keep_mode  # type: ignore[method-assign]
        self._online: list[torch.Tensor] = [*self.critic.parameters(), *self.actor.parameters()]
        self._targets: list[torch.Tensor] = [
            *self.critic_target.parameters(),
            *self.actor_target.parameters(),
        ]

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_online", "_targets"]

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if not self.lean:
            super().train(gradient_steps, batch_size)
            return
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            critic_loss, actor_loss = self._update(batch_size, self._n_updates % self.policy_delay == 0)
            critic_losses.append(critic_loss)
            if actor_loss is not None:
                actor_losses.append(actor_loss)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))

    def _update(self, batch_size: int, update_actor: bool) -> tuple[float, float | None]:
        """One critic step and, when ``update_actor``, one actor step and soft target update."""
        assert self.replay_buffer is not None
        batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        discounts = batch.discounts if batch.discounts is not None else self.gamma
        flatten = self.actor.features_extractor
        features = self.actor.extract_features(batch.observations, flatten)
        with torch.no_grad():
            next_features = self.actor.extract_features(batch.next_observations, flatten)
            noise = batch.actions.clone().normal_(0, self.target_policy_noise)
            noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
            next_actions = (self.actor_target.mu(next_features) + noise).clamp(-1, 1)
            next_input = torch.cat([next_features, next_actions], dim=1)
            next_q = torch.cat([q_net(next_input) for q_net in self.critic_target.q_networks], dim=1)
            next_q = next_q.min(dim=1, keepdim=True).values
            target_q = batch.rewards + (1 - batch.dones) * discounts * next_q
        current_input = torch.cat([features, batch.actions], dim=1)
        critic_loss = sum(
            (F.mse_loss(q_net(current_input), target_q) for q_net in self.critic.q_networks),
            start=torch.zeros((), device=target_q.device),
        )
        self.critic.optimizer.zero_grad()
        critic_loss.backward()
        self.critic.optimizer.step()
        if not update_actor:
            return critic_loss.item(), None
        q1 = self.critic.q_networks[0]
        q1.requires_grad_(False)
        try:
            actor_loss = -q1(torch.cat([features, self.actor.mu(features)], dim=1)).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
        finally:
            q1.requires_grad_(True)
        self.actor.optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(self._targets, self._online, self.tau)
        return critic_loss.item(), actor_loss.item()


def lean_update_applies(policy: TD3Policy) -> bool:
    """Whether one flattening of the observations serves every network and modes never matter."""
    networks = (policy.actor, policy.critic, policy.actor_target, policy.critic_target)
    extractors_learn = any(any(True for _ in net.features_extractor.parameters()) for net in networks)
    mode_dependent = any(isinstance(module, MODE_DEPENDENT) for module in policy.modules())
    return not extractors_learn and not mode_dependent


def _keep_mode(mode: bool) -> None:
    """Stands in for ``set_training_mode`` on a policy that has no mode-dependent module."""
