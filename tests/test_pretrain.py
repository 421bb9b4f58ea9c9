"""Pretraining: end to end on the debug config, reproducibility, resume, and the NaN guard."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rig.config import Config, load_config
from rig.data import FrameDataset, collect
from rig.pretrain import NonFiniteLossError, pretrain
from rig.representation import load_representation, read_checkpoint
from rig.stages import collect_stage, pretrain_stage


def debug_config(tmp_path: Path, *overrides: str) -> Config:
    return load_config("debug", [f"run_dir={tmp_path / 'run'}", "device=cpu", *overrides])


@pytest.fixture(scope="module")
def frames() -> FrameDataset:
    cfg = load_config("debug")
    return collect(cfg.env, cfg.data, seed=0, progress=False)


@pytest.mark.parametrize("kind, env_id", [("beta_vae", "rig/Push-v0"), ("cc_vae", "rig/PushMultiObject-v0")])
def test_debug_collect_and_pretrain_end_to_end(tmp_path: Path, kind: str, env_id: str) -> None:
    cfg = debug_config(tmp_path, f"vae.kind={kind}", f"env.id={env_id}")
    collect_stage(cfg, progress=False)
    result = pretrain_stage(cfg, progress=False)
    out = Path(cfg.run_dir) / "pretrain"
    for name in (
        "best.pt",
        "last.pt",
        "progress.csv",
        "metrics.json",
        "reconstructions.png",
        "prior_samples.png",
        "traversals.png",
    ):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").iterdir()), "no TensorBoard events"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("probe_r2_hand", "probe_r2_puck", "spearman", "active_units", "neg_elbo", "mse"):
        assert np.isfinite(metrics[key]), key
    assert metrics["training"]["images_per_second"] > 0
    geometry = metrics["reward_geometry"]  # on the run's evaluation goals, in the training palette
    assert geometry["goals"] > 0 and geometry["latent_both"] == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(geometry["part_interaction"])
    if kind == "cc_vae":
        assert "heldout_colours" in metrics
        assert metrics["heldout_colours"]["reward_geometry"]["latent_both"] == pytest.approx(1.0, abs=1e-5)
    rows = (out / "progress.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + cfg.vae.epochs and "heldout/loss" in rows[0]
    reloaded = load_representation(result.checkpoint)
    assert type(reloaded) is type(result.representation)


def test_same_seed_same_weights(tmp_path: Path, frames: FrameDataset) -> None:
    cfg = debug_config(tmp_path)
    first = pretrain(cfg, frames, tmp_path / "a", progress=False).representation.state_dict()
    second = pretrain(cfg, frames, tmp_path / "b", progress=False).representation.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


def assert_interrupted_pretraining_resumes_exactly(
    cfg: Config, frames: FrameDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pretraining ``cfg`` (3 epochs) straight through and stopped in epoch 2 then resumed from ``last.pt``
    end with the same weights and the same best epoch."""
    straight = pretrain(cfg, frames, tmp_path / "straight", progress=False).representation.state_dict()

    from rig import pretrain as module

    original = module._Trainer._train_epoch

    def interrupt_at_epoch_two(self: module._Trainer, epoch: int) -> dict[str, float]:
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(module._Trainer, "_train_epoch", interrupt_at_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, frames, tmp_path / "resumed", progress=False)
    assert read_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    monkeypatch.setattr(module._Trainer, "_train_epoch", original)
    resumed = pretrain(cfg, frames, tmp_path / "resumed", progress=False)
    assert resumed.metrics["training"]["epochs"] == 3
    state = resumed.representation.state_dict()
    best_epoch = read_checkpoint(tmp_path / "straight" / "best.pt")["epoch"]
    assert read_checkpoint(tmp_path / "resumed" / "best.pt")["epoch"] == best_epoch
    assert all(torch.equal(straight[key], state[key]) for key in straight)


def test_interrupted_pretraining_resumes_to_the_same_weights(
    tmp_path: Path, frames: FrameDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_interrupted_pretraining_resumes_exactly(
        debug_config(tmp_path, "vae.epochs=3"), frames, tmp_path, monkeypatch
    )


def test_interrupted_pretraining_with_hue_augmentation_resumes_to_the_same_weights(
    tmp_path: Path, frames: FrameDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation angles come from the random state that ``last.pt`` keeps."""
    cfg = debug_config(tmp_path, "vae.epochs=3", "vae.kind=cc_vae", "vae.z_augment=hue")
    assert_interrupted_pretraining_resumes_exactly(cfg, frames, tmp_path, monkeypatch)


def test_kl_warmup_ramps_training_beta_and_judges_heldout_at_full_beta(
    tmp_path: Path, frames: FrameDataset
) -> None:
    cfg = debug_config(tmp_path, "vae.epochs=4", "vae.kl_warmup_epochs=3", "vae.beta=0.5")
    pretrain(cfg, frames, tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    weights = [float(row["train/kl_weight"]) for row in rows]
    assert weights == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    for row, weight in zip(rows, weights, strict=True):
        train = float(row["train/recon"]) + weight * 0.5 * float(row["train/kl"])
        assert float(row["train/loss"]) == pytest.approx(train, rel=1e-4)
        heldout = float(row["heldout/recon"]) + 0.5 * float(row["heldout/kl"])
        assert float(row["heldout/loss"]) == pytest.approx(heldout, rel=1e-4)


def test_on_epoch_hook_sees_every_epoch_with_its_heldout_loss(tmp_path: Path, frames: FrameDataset) -> None:
    seen: list[tuple[int, float]] = []
    result = pretrain(
        debug_config(tmp_path, "vae.epochs=3"),
        frames,
        tmp_path / "run",
        progress=False,
        on_epoch=lambda epoch, model, loss: seen.append((epoch, loss)),
    )
    assert [epoch for epoch, _ in seen] == [0, 1, 2]
    assert result.metrics["training"]["best_heldout_loss"] == pytest.approx(min(loss for _, loss in seen))


def test_resuming_with_other_settings_is_refused(tmp_path: Path, frames: FrameDataset) -> None:
    pretrain(debug_config(tmp_path), frames, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="other settings"):
        pretrain(debug_config(tmp_path, "vae.z_dim=3"), frames, tmp_path / "run", progress=False)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, frames: FrameDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = debug_config(tmp_path, "vae.epochs=3")
    from rig.representation import BetaVAE

    original = BetaVAE.loss
    calls = {"n": 0}
    batches_per_epoch = -(-len(frames.split(heldout=False)) // cfg.vae.batch_size)

    def poisoned(
        self: BetaVAE,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        kl_weight: float = 1.0,
        targets: torch.Tensor | None = None,
    ):
        loss, metrics = original(self, x, context, kl_weight, targets)
        if self.training:
            calls["n"] += 1
            if calls["n"] > batches_per_epoch:  # the second epoch goes bad
                return loss * float("nan"), metrics
        return loss, metrics

    monkeypatch.setattr(BetaVAE, "loss", poisoned)
    with pytest.raises(NonFiniteLossError, match="epoch 1"):
        pretrain(cfg, frames, tmp_path / "run", progress=False)
    checkpoint = read_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint["epoch"] == 0
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values())
    load_representation(tmp_path / "run" / "best.pt")


def test_interrupted_pretraining_with_the_swap_losses_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The swaps each batch adds are drawn from the epoch's generator, so a resumed run draws the same."""
    swap = [
        "data.factor_swaps=0.5",
        "vae.additivity_weight=50",
        "vae.orthogonality_weight=20",
        "vae.balance_weight=5",
    ]
    cfg = debug_config(tmp_path, "vae.epochs=3", *swap)
    swaps = collect(cfg.env, cfg.data, seed=0, progress=False)
    assert_interrupted_pretraining_resumes_exactly(cfg, swaps, tmp_path, monkeypatch)
