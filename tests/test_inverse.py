"""The inverse model (``vae.inverse_weight``): the recorded actions, the loss, training and resuming with it,
the refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rig.config import ConfigError
from rig.data import FrameDataset, collect
from rig.pretrain import pretrain
from rig.representation import read_checkpoint
from rig.representation.inverse import (
    InverseModel,
    acted_pairs,
    action_variance,
    check_inverse_frames,
    inverse_loss,
)
from tests.test_goal_prior import debug
from tests.test_pretrain import assert_interrupted_pretraining_resumes_exactly


@pytest.fixture
def frames(debug_frames: FrameDataset) -> FrameDataset:
    return debug_frames


def test_the_dataset_records_the_action_between_consecutive_random_action_frames(
    frames: FrameDataset, tmp_path: Path
) -> None:
    reset = frames.context_index == np.arange(len(frames))
    assert frames.actions.shape == (len(frames), 2) and frames.actions.dtype == np.float32
    # Every frame after the first of a random-action episode, and no other frame, follows by an action.
    assert np.array_equal(frames.acted, ~reset & ~frames.teleported)
    assert not frames.actions[~frames.acted].any()
    assert np.abs(frames.actions[frames.acted]).max() <= 1.0
    # The recorded action is the one that moved the hand: the hand's step follows it.
    after = acted_pairs(frames, heldout=False)
    steps = frames.states[after, :2] - frames.states[after - 1, :2]
    for axis in (0, 1):
        assert np.corrcoef(frames.actions[after, axis], steps[:, axis])[0, 1] > 0.8
    teleported = debug(tmp_path, "data.teleport_fraction=1")
    assert not collect(teleported.env, teleported.data, seed=0, progress=False).acted.any()


def test_frames_without_enough_recorded_actions_are_refused(frames: FrameDataset) -> None:
    # As a dataset collected before actions were recorded loads (tests/test_data.py).
    older = replace(frames, actions=np.zeros((len(frames), 0), np.float32), acted=np.zeros_like(frames.acted))
    with pytest.raises(ConfigError, match="collected before actions were recorded"):
        check_inverse_frames(older)
    few = np.zeros_like(frames.acted)
    few[acted_pairs(frames, heldout=False)[:5]] = True
    with pytest.raises(ConfigError, match="records 5 training pairs"):
        check_inverse_frames(replace(frames, acted=few))
    check_inverse_frames(frames)


def test_the_inverse_model_maps_a_pair_of_codes_to_an_action() -> None:
    model = InverseModel(z_dim=6, action_dim=2)
    assert model(torch.zeros(5, 6), torch.ones(5, 6)).shape == (5, 2)
    with pytest.raises(ValueError, match="differ in shape"):
        model(torch.zeros(5, 6), torch.zeros(4, 6))
    with pytest.raises(ValueError, match="must be >= 1"):
        InverseModel(z_dim=6, action_dim=0)


def test_the_inverse_loss_is_one_for_the_mean_action_and_zero_for_the_true_one() -> None:
    actions = torch.tensor([[1.0, 10.0], [-1.0, 30.0], [0.5, 20.0], [-0.5, 0.0]])
    variance = actions.var(dim=0, unbiased=False)
    mean = actions.mean(dim=0).expand_as(actions)
    assert float(inverse_loss(mean, actions, variance)) == pytest.approx(1.0)
    assert float(inverse_loss(actions, actions, variance)) == 0.0
    # Scale-free: the same errors in an action dimension ten times larger weigh as much.
    scale = torch.tensor([10.0, 1.0])
    wrong = actions + torch.tensor([0.3, 2.0])
    assert float(inverse_loss(wrong * scale, actions * scale, variance * scale**2)) == pytest.approx(
        float(inverse_loss(wrong, actions, variance))
    )


def test_the_action_variance_is_taken_over_the_training_pairs(frames: FrameDataset) -> None:
    after = acted_pairs(frames, heldout=False)
    assert not frames.heldout[after].any() and frames.acted[after].all()
    assert (frames.episodes[after - 1] == frames.episodes[after]).all()
    np.testing.assert_allclose(action_variance(frames), frames.actions[after].var(axis=0), rtol=1e-6)


@pytest.mark.parametrize("kind", ["beta_vae", "cc_vae"])
def test_pretraining_with_the_inverse_loss_trains_encoder_and_head_and_logs_it(
    tmp_path: Path, frames: FrameDataset, kind: str
) -> None:
    cfg = debug(tmp_path, f"vae.kind={kind}", "vae.epochs=2", "vae.inverse_weight=10")
    result = pretrain(cfg, frames, tmp_path / "pretrain", progress=False)
    last = read_checkpoint(tmp_path / "pretrain" / "last.pt")
    for row in last["history"]:
        assert row["train/inverse"] > 0 and row["heldout/inverse"] > 0
        # The held-out loss that picks best.pt stays the VAE's own, without the inverse term.
        own = row["heldout/recon"] + row.get("heldout/recon_context", 0.0) + cfg.vae.beta * row["heldout/kl"]
        assert row["heldout/loss"] == pytest.approx(own, rel=1e-4)
    z_dim = result.representation.z_dim
    head = InverseModel(z_dim, 2)
    assert last["inverse_model"].keys() == head.state_dict().keys()
    assert last["inverse_model"]["net.0.weight"].shape == (64, 2 * z_dim)
    # The same pretraining without the loss ends elsewhere: its gradient reaches the encoder.
    plain_cfg = debug(tmp_path, f"vae.kind={kind}", "vae.epochs=2")
    off = pretrain(plain_cfg, frames, tmp_path / "off", progress=False)
    trained, plain = result.representation.state_dict(), off.representation.state_dict()
    assert any(not torch.equal(trained[key], plain[key]) for key in plain if key.startswith("encoder."))
    assert "inverse_model" not in read_checkpoint(tmp_path / "off" / "last.pt")


def test_interrupted_pretraining_with_the_inverse_loss_resumes_to_the_same_weights(
    tmp_path: Path, frames: FrameDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inverse model's weights and optimiser state come back from ``last.pt``."""
    cfg = debug(tmp_path, "vae.epochs=3", "vae.kind=cc_vae", "vae.inverse_weight=10")
    assert_interrupted_pretraining_resumes_exactly(cfg, frames, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["vae.inverse_weight=-1"], "vae.inverse_weight must be finite and >= 0"),
        (["vae.inverse_weight=1", "vae.kind=supervised"], "needs vae.kind=beta_vae or cc_vae"),
        (["vae.inverse_weight=1", "data.teleport_fraction=1"], "trains on random-action frames"),
        (["vae.inverse_weight=1", "online.enabled=true"], "trains in pretraining only"),
    ],
)
def test_inverse_settings_are_checked(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        debug(tmp_path, *overrides)
