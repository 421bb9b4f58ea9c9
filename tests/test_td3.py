"""rig.td3.LeanTD3 and ImaginedGoalReplayBuffer.sample: SB3's update and batches, with less work per step."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import TD3, HerReplayBuffer
from torch import nn

from rig.agent import make_agent, make_training_env
from rig.config import load_config
from rig.representation import BetaVAE
from rig.td3 import LeanTD3, lean_update_applies, optimizer_kwargs


@pytest.fixture(scope="module")
def agent() -> LeanTD3:
    """A debug-config agent whose replay buffer holds a few episodes."""
    cfg = load_config("debug", ["agent.learning_starts=40", "agent.total_steps=60"])
    torch.manual_seed(0)
    model = make_agent(cfg, make_training_env(cfg, BetaVAE(z_dim=4, decoder="broadcast")), "cpu")
    assert isinstance(model, LeanTD3)
    model.learn(60)
    return model


def reseed(model: LeanTD3, seed: int) -> None:
    """The same seed for every generator a replay batch and an update draw from."""
    assert model.replay_buffer is not None
    np.random.seed(seed)
    torch.manual_seed(seed)
    model.replay_buffer._source_rng = np.random.default_rng(seed)  # type: ignore[attr-defined]
    model.env.env_method("_seed_generators", seed)


def test_sample_is_the_batch_sb3_draws(agent: LeanTD3) -> None:
    buffer = agent.replay_buffer
    assert buffer is not None
    reseed(agent, 3)
    lean = buffer.sample(64)
    reseed(agent, 3)
    stock = HerReplayBuffer.sample(buffer, 64)  # type: ignore[arg-type]
    for key in stock.observations:
        assert torch.equal(lean.observations[key], stock.observations[key]), key
        assert torch.equal(lean.next_observations[key], stock.next_observations[key]), key
    for field in ("actions", "rewards", "dones"):
        assert torch.equal(getattr(lean, field), getattr(stock, field)), field
    # The batch really is relabelled: goals differ from the stored rollout goals for most rows.
    assert not torch.equal(lean.observations["desired_goal"], lean.observations["achieved_goal"])


@pytest.mark.parametrize("update_actor", [False, True])
def test_update_matches_sb3_td3(agent: LeanTD3, update_actor: bool) -> None:
    """One gradient step of LeanTD3 and of SB3's TD3 from the same weights, batch and noise."""
    start = copy.deepcopy(agent.policy.state_dict())
    results = []
    for train in (LeanTD3.train, TD3.train):
        agent.policy.load_state_dict(start)
        for optimizer in (agent.actor.optimizer, agent.critic.optimizer):
            optimizer.state.clear()
        # _n_updates + 1 decides the actor step: even for an actor step, odd for a critic-only one.
        agent._n_updates = 1 if update_actor else 0
        reseed(agent, 7)
        train(agent, 1, 32)
        results.append(copy.deepcopy(agent.policy.state_dict()))
    lean, stock = results
    moved = [name for name in start if not torch.equal(start[name], stock[name])]
    assert any(name.startswith("critic.") for name in moved)
    assert any(name.startswith("actor.") for name in moved) == update_actor
    assert any(name.startswith("critic_target.") for name in moved) == update_actor
    for name in start:
        torch.testing.assert_close(lean[name], stock[name], rtol=1e-5, atol=1e-6, msg=name)


def test_actor_step_adds_no_critic_gradient(agent: LeanTD3) -> None:
    """The critic is frozen while the actor loss is back-propagated (SB3 computes and discards them)."""
    start = copy.deepcopy(agent.policy.state_dict())
    grads = []
    for update_actor in (False, True):
        agent.policy.load_state_dict(start)
        reseed(agent, 2)
        agent._update(32, update_actor)
        grads.append([p.grad.clone() for p in agent.critic.parameters() if p.grad is not None])
    critic_only, with_actor = grads
    assert len(critic_only) == len(with_actor) == len(list(agent.critic.parameters()))
    for left_by_critic_step, after_actor_step in zip(critic_only, with_actor, strict=True):
        assert torch.equal(left_by_critic_step, after_actor_step)
    assert all(p.requires_grad for p in agent.critic.parameters())
    agent.policy.load_state_dict(start)


def test_lean_update_only_for_parameter_free_extractors_and_no_mode_dependent_modules(agent: LeanTD3) -> None:
    assert agent.lean and lean_update_applies(agent.policy)
    changed = copy.deepcopy(agent.policy)
    changed.actor.mu.append(nn.Dropout(0.1))
    assert not lean_update_applies(changed)
    changed = copy.deepcopy(agent.policy)
    changed.critic.features_extractor.extractors["observation"] = nn.Linear(4, 4)
    assert not lean_update_applies(changed)


def test_fused_adam_where_torch_has_it(agent: LeanTD3) -> None:
    assert optimizer_kwargs(torch.device("cpu")) == {"fused": True}
    assert optimizer_kwargs(torch.device("cuda")) == {"fused": True}
    assert optimizer_kwargs(torch.device("mps")) == {}
    for optimizer in (agent.actor.optimizer, agent.critic.optimizer):
        assert optimizer.defaults["fused"] is True


def test_save_and_load_keep_the_lean_update(agent: LeanTD3, tmp_path: Path) -> None:
    agent.save(tmp_path / "agent.zip")
    loaded = LeanTD3.load(tmp_path / "agent.zip", env=agent.env, device="cpu")
    assert loaded.lean
    for name, tensor in agent.policy.state_dict().items():
        assert torch.equal(loaded.policy.state_dict()[name], tensor), name
    # The soft update acts on the loaded networks, not on tensors left over from before loading.
    online = {id(p) for p in [*loaded.critic.parameters(), *loaded.actor.parameters()]}
    assert {id(p) for p in loaded._online} == online
