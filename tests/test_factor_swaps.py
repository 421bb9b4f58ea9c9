"""Factor swaps: collecting frames that change one part of the state at a time, and the losses on them."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rig.config import Config, ConfigError, load_config
from rig.data import DatasetError, FrameDataset, collect
from rig.goal_env import GoalEnvView
from rig.pretrain import pretrain, swap_losses, swap_starts

SWAPS = ["data.factor_swaps=0.5"]


def swap_config(tmp_path: Path, *overrides: str):
    return load_config("debug", [f"run_dir={tmp_path / 'run'}", "device=cpu", *SWAPS, *overrides])


@pytest.fixture(scope="module")
def swap_frames(tmp_path_factory: pytest.TempPathFactory) -> FrameDataset:
    cfg = swap_config(tmp_path_factory.mktemp("swaps"))
    return collect(cfg.env, cfg.data, seed=0, progress=False)


def test_a_swap_changes_one_part_then_the_other_then_both(swap_frames: FrameDataset) -> None:
    starts = np.concatenate([swap_starts(swap_frames, heldout) for heldout in (False, True)])
    swap_episodes = np.unique(swap_frames.episodes[swap_frames.swap_role > 0])
    assert 0 < len(swap_episodes) < swap_frames.episodes.max() + 1, "a share of the episodes swaps"
    assert len(starts) == 3 * len(swap_episodes), "10 frames per episode: the reset frame and 3 swaps"
    hand, puck = slice(0, 2), slice(2, 4)
    for first in starts:
        reset = swap_frames.states[swap_frames.context_index[first]]
        one, other, both = swap_frames.states[first : first + 3]
        assert np.all(swap_frames.swap_role[first : first + 3] == [1, 2, 3])
        # Each of the first two frames takes one part from the new state and keeps the other from the reset.
        for kept, taken in ((hand, puck), (puck, hand)):
            takes_first = np.allclose(one[kept], reset[kept]) and np.allclose(one[taken], both[taken])
            takes_other = np.allclose(other[kept], reset[kept]) and np.allclose(other[taken], both[taken])
            assert takes_first != takes_other
        assert not np.allclose(one, other)
        # Each frame records the factors it took from s' (hand bit 1, object bit 2).
        bits = swap_frames.swap_factors[first : first + 3]
        takes_hand = not np.allclose(one[hand], reset[hand])
        assert bits.tolist() == ([1, 2, 3] if takes_hand else [2, 1, 3])
    outside = ~np.isin(swap_frames.episodes, swap_episodes)
    assert np.all(swap_frames.swap_role[outside] == 0) and np.all(swap_frames.swap_factors[outside] == 0)


def test_every_frame_of_a_swap_episode_shows_its_recorded_state(swap_frames: FrameDataset) -> None:
    from rig.envs import make_env

    env = make_env(load_config("debug").env)
    view = GoalEnvView(env)
    env.reset(seed=0)
    episode = swap_frames.episodes[np.flatnonzero(swap_frames.swap_role)[0]]
    for index in np.flatnonzero(swap_frames.episodes == episode):
        view.set_to_state(swap_frames.states[index].astype(np.float64))
        assert np.array_equal(env.render(), swap_frames.images[index]), index
    env.close()


def test_without_swaps_the_dataset_and_its_record_are_as_before(tmp_path: Path) -> None:
    cfg = load_config("debug", [f"run_dir={tmp_path}"])
    frames = collect(cfg.env, cfg.data, seed=0, progress=False)
    assert "factor_swaps" not in frames.meta["data"], "datasets from before the setting still match"
    assert not frames.swap_role.any() and not frames.swap_factors.any()


def test_an_env_with_one_state_factor_cannot_swap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GoalEnvView, "state_factors", lambda self: {"state": slice(0, 4)})
    cfg = swap_config(tmp_path)
    with pytest.raises(DatasetError, match="at least two state_factors"):
        collect(cfg.env, cfg.data, seed=0, progress=False)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.frames_per_episode=9"], "frames_per_episode - 1 must be a multiple of 3"),
        (["data.factor_swaps=1.5"], "data.factor_swaps must be in"),
        (["data.factor_swaps=0", "vae.additivity_weight=10"], "set data.factor_swaps > 0 too"),
        (["vae.additivity_weight=-1"], "vae.additivity_weight must be finite and >= 0"),
        (["vae.kind=supervised", "vae.additivity_weight=1"], "needs vae.kind=beta_vae or cc_vae"),
        (["data.factor_swaps=0", "vae.orthogonality_weight=1"], "orthogonality_weight trains on factor"),
        (["vae.orthogonality_weight=nan"], "vae.orthogonality_weight must be finite and >= 0"),
        (["vae.kind=state", "vae.orthogonality_weight=1"], "orthogonality_weight needs vae.kind=beta_vae"),
        (["data.factor_swaps=0", "vae.balance_weight=1"], "balance_weight trains on factor"),
        (["vae.balance_weight=-2"], "vae.balance_weight must be finite and >= 0"),
    ],
)
def test_swap_settings_are_checked(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        swap_config(tmp_path, *overrides)


class Flatten(nn.Module):
    """An encoder whose z is the first pixels of the frame times ``scale``: additive in the images."""

    z_dim, context_dim = 5, 0

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    def encode(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.scale * x.flatten(1)[:, : self.z_dim + 2]


def additivity_loss(encoder: nn.Module, *frames: torch.Tensor) -> torch.Tensor:
    return swap_losses(encoder, *frames)["additivity"]


def test_the_additivity_loss_is_zero_for_a_code_that_adds_up_and_scale_free() -> None:
    generator = torch.Generator().manual_seed(0)
    start, first, other = (torch.rand(4, 3, 8, 8, generator=generator) for _ in range(3))
    added = first + other - start
    assert float(additivity_loss(Flatten(), start, first, other, added)) == pytest.approx(0.0, abs=1e-10)
    bent = added + 0.5 * torch.rand(4, 3, 8, 8, generator=generator)
    loss = float(additivity_loss(Flatten(), start, first, other, bent))
    assert loss > 0.01
    assert float(additivity_loss(Flatten(10.0), start, first, other, bent)) == pytest.approx(loss, rel=1e-4)


def test_the_orthogonality_loss_is_the_squared_cosine_whatever_the_moves_lengths() -> None:
    start = torch.zeros(2, 3, 8, 8)
    first, other, across = start.clone(), start.clone(), start.clone()
    first[:, 0, 0, 0] = 1.0
    other[:, 0, 0, 1] = 0.3  # orthogonal to first's move, and shorter
    across[:, 0, 0, :2] = torch.tensor([1.0, 1.0])  # 45 degrees from first's move
    for scale in (1.0, 10.0):
        encoder = Flatten(scale)
        losses = swap_losses(encoder, start, first, other, first + other)
        assert float(losses["orthogonality"]) == pytest.approx(0.0, abs=1e-10)
        assert float(losses["additivity"]) == pytest.approx(0.0, abs=1e-10)
        angled = swap_losses(encoder, start, first, across, first + across)["orthogonality"]
        assert float(angled) == pytest.approx(0.5, rel=0.03)  # cos^2 45 degrees, less the 1% floor
        # Parallel moves cost about 1 however short one of them is: shrinking a part does not pay.
        for length in (1.0, 0.5):
            parallel = swap_losses(encoder, start, first, length * first, (1 + length) * first)
            assert float(parallel["orthogonality"]) == pytest.approx(1.0, abs=0.04)


def pretrained_rows(cfg: Config, frames: FrameDataset, out_dir: Path) -> list[dict[str, str]]:
    """Pretrain on ``frames`` into ``out_dir``; the rows of its progress.csv."""
    pretrain(cfg, frames, out_dir, progress=False)
    with open(out_dir / "progress.csv") as file:
        return list(csv.DictReader(file))


def test_the_balance_loss_compares_the_factors_mean_squared_moves_scale_free() -> None:
    start = torch.zeros(4, 3, 8, 8)
    first, other = start.clone(), start.clone()
    first[:, 0, 0, 0] = torch.tensor([1.0, 2.0, 1.0, 2.0])
    other[:, 0, 0, 1] = torch.tensor([2.0, 1.0, 2.0, 1.0])
    # The first part holds the first factor in swaps 0 and 2: its moves are 1, 1, 1, 1 long (the others
    # 2 each), a ratio of mean squared moves of 1 / 4.
    takes = torch.tensor([True, False, True, False])
    for scale in (1.0, 10.0):
        losses = swap_losses(
            Flatten(scale), start, first, other, first + other, first_takes_first_factor=takes
        )
        assert float(losses["balance"]) == pytest.approx(np.log(4.0) ** 2, rel=1e-5)
    # Each factor moving 1.5 on average in squares: balanced.
    even = torch.tensor([True, True, False, False])
    assert float(
        swap_losses(Flatten(), start, first, other, first + other, first_takes_first_factor=even)["balance"]
    ) == pytest.approx(0.0, abs=1e-10)
    assert "balance" not in swap_losses(Flatten(), start, first, other, first + other)


def test_pretraining_with_the_balance_loss_logs_it_and_refuses_swaps_without_factors(
    tmp_path: Path, swap_frames: FrameDataset
) -> None:
    cfg = swap_config(tmp_path, "vae.kind=cc_vae", "vae.balance_weight=10")
    rows = pretrained_rows(cfg, swap_frames, tmp_path / "pretrain")
    assert all(float(row["train/balance"]) >= 0 and float(row["heldout/balance"]) >= 0 for row in rows)
    older = replace(swap_frames, swap_factors=np.zeros_like(swap_frames.swap_factors))
    with pytest.raises(ConfigError, match="before swaps recorded which factors they took"):
        pretrain(cfg, older, tmp_path / "older", progress=False)
    assert not (tmp_path / "older" / "last.pt").exists()


def test_pretraining_with_the_orthogonality_loss_alone_logs_both_held_out(
    tmp_path: Path, swap_frames: FrameDataset
) -> None:
    cfg = swap_config(tmp_path, "vae.kind=cc_vae", "vae.orthogonality_weight=100")
    rows = pretrained_rows(cfg, swap_frames, tmp_path / "pretrain")
    assert len(rows) == cfg.vae.epochs
    assert "train/additivity" not in rows[0], "only the losses that train are logged in training"
    for row in rows:
        assert 0 <= float(row["train/orthogonality"]) <= 1 and 0 <= float(row["heldout/orthogonality"]) <= 1
        assert float(row["heldout/additivity"]) >= 0


def test_pretraining_with_the_additivity_loss_logs_it(tmp_path: Path, swap_frames: FrameDataset) -> None:
    cfg = swap_config(tmp_path, "vae.kind=cc_vae", "vae.additivity_weight=100")
    rows = pretrained_rows(cfg, swap_frames, tmp_path / "pretrain")
    assert len(rows) == cfg.vae.epochs
    for row in rows:
        assert float(row["train/additivity"]) >= 0 and float(row["heldout/additivity"]) >= 0
        # the held-out loss that picks best.pt stays the VAE's own, without the additivity term
        parts = ("heldout/recon", "heldout/recon_context")
        own = sum(float(row[key]) for key in parts) + cfg.vae.beta * float(row["heldout/kl"])
        assert float(row["heldout/loss"]) == pytest.approx(own, rel=1e-4)


def test_the_additivity_loss_without_swaps_in_the_frames_is_refused(tmp_path: Path) -> None:
    cfg = swap_config(tmp_path, "vae.additivity_weight=1")
    frames = collect(load_config("debug").env, load_config("debug").data, seed=0, progress=False)
    with pytest.raises(ConfigError, match="holds none in training"):
        pretrain(cfg, frames, tmp_path / "pretrain", progress=False)
