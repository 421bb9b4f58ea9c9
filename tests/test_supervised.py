"""The supervised state encoder (vae.kind=supervised): standardised targets, learning positions from images,
checkpoints, imagined goals, and every stage of a run on it with an exact pretraining resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_pipeline import debug_settings
from test_pretrain import assert_interrupted_pretraining_resumes_exactly, debug_config

from rig.cli import main
from rig.config import load_config
from rig.data import FrameDataset, collect
from rig.diagnostics.probes import r_squared
from rig.pipeline import read_stage_record
from rig.pretrain import fit_goal_prior, make_representation
from rig.representation import (
    BetaVAE,
    Representation,
    SupervisedEncoder,
    load_representation,
    save_representation,
)
from rig.rundir import RunDir
from rig.stages import collect_stage, pretrain_stage

SIZE = 48


def two_squares(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Black frames with a grey 6 px "hand" and an 8 px "puck" of a random colour at random places, and
    their states [hand_x, hand_y, puck_x, puck_y]: the squares' centres, in units of the frame's side."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 3, SIZE, SIZE)
    corners = torch.randint(0, SIZE - 8, (n, 2, 2), generator=generator)  # (frame, square, row / column)
    colours = torch.rand(n, 3, generator=generator) * 0.7 + 0.3
    for image, ((hand_row, hand_col), (puck_row, puck_col)), colour in zip(
        images, corners.tolist(), colours, strict=True
    ):
        image[:, hand_row : hand_row + 6, hand_col : hand_col + 6] = 0.5
        image[:, puck_row : puck_row + 8, puck_col : puck_col + 8] = colour[:, None, None]
    centres = corners.float() + torch.tensor([[3.0], [4.0]])
    states = torch.stack([centres[:, 0, 1], centres[:, 0, 0], centres[:, 1, 1], centres[:, 1, 0]], dim=1)
    return images, states / SIZE


# --- the representation ---


def test_it_follows_the_protocol_with_the_state_as_its_latent() -> None:
    model = SupervisedEncoder(state_dim=3, coord_channels=True)
    assert isinstance(model, Representation)
    assert (model.latent_dim, model.z_dim, model.context_dim) == (3, 3, 0)
    assert (model.input_kind, model.output_kind) == ("image", "state")
    images, _ = two_squares(5, seed=0)
    assert model.encode(images).shape == (5, 3)
    assert model.encode_context(images).shape == (5, 0)
    with pytest.raises(ValueError, match="no context"):
        model.encode(images, images)
    with pytest.raises(RuntimeError, match="no KL"):
        model.kl_per_dim(images)


def test_standardisation_uses_the_training_states_and_decode_undoes_it() -> None:
    states = np.random.default_rng(0).normal([0.1, -0.2, 3.0], [0.05, 2.0, 0.0], size=(200, 3))
    model = SupervisedEncoder(state_dim=3)
    model.fit_standardisation(states)
    torch.testing.assert_close(model.state_mean, torch.tensor(states.mean(axis=0), dtype=torch.float32))
    assert model.state_std[:2].tolist() == pytest.approx(states.std(axis=0)[:2], rel=1e-6)
    assert model.state_std[2].item() == pytest.approx(1e-6), "a constant dim keeps a floor, not a zero std"
    targets = torch.as_tensor(states, dtype=torch.float32)
    standardised = model.standardise(targets)
    torch.testing.assert_close(standardised[:, :2].mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardised[:, :2].std(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.decode(standardised), targets, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="shape"):
        model.fit_standardisation(states[:, :2])


def test_loss_is_the_mean_squared_error_of_standardised_targets() -> None:
    images, states = two_squares(16, seed=0)
    model = SupervisedEncoder(state_dim=4)
    model.fit_standardisation(states.numpy())
    torch.nn.init.zeros_(model.encoder.head.weight)
    torch.nn.init.zeros_(model.encoder.head.bias)
    # A prediction of 0 everywhere is the training mean; standardised targets have unit mean square.
    loss, metrics = model.loss(images, targets=states)
    assert loss.item() == pytest.approx(1.0, rel=1e-5) and metrics["loss"] == pytest.approx(loss.item())
    with pytest.raises(ValueError, match="targets"):
        model.loss(images)
    with pytest.raises(ValueError, match="batch sizes"):
        model.loss(images, targets=states[:3])
    with pytest.raises(ValueError, match="targets=None"):
        BetaVAE().loss(images, targets=states)


def test_it_learns_positions_it_has_not_seen() -> None:
    torch.manual_seed(0)
    images, states = two_squares(1024, seed=0)
    test_images, test_states = two_squares(64, seed=1)
    model = SupervisedEncoder(state_dim=4, coord_channels=True)
    model.fit_standardisation(states.numpy())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = model.loss(images, targets=states)[0].item()
    batches = torch.randint(0, len(images), (250, 32), generator=torch.Generator().manual_seed(0))
    for index in batches:
        loss, _ = model.loss(images[index], targets=states[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.loss(images, targets=states)[0].item() < 0.2 * first
    with torch.no_grad():
        predicted = model.decode(model.encode(test_images)).numpy()
    truth = test_states.numpy()
    assert r_squared(truth[:, :2], predicted[:, :2]) > 0.5, "hand"
    assert r_squared(truth[:, 2:], predicted[:, 2:]) > 0.5, "puck"


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    images, states = two_squares(6, seed=0)
    model = SupervisedEncoder(state_dim=4, hidden_dim=32, coord_channels=True)
    model.fit_standardisation(states.numpy())
    model.set_goal_prior([0.1, 0.2, 0.3, 0.4], [1.0, 0.5, 0.25, 2.0])
    save_representation(tmp_path / "supervised.pt", model)
    loaded = load_representation(tmp_path / "supervised.pt", expected={"coord_channels": True})
    assert type(loaded) is SupervisedEncoder and loaded.config_dict() == model.config_dict()
    assert torch.equal(loaded.state_mean, model.state_mean) and torch.equal(loaded.state_std, model.state_std)
    latent = model.encode(images)
    assert torch.equal(loaded.encode(images), latent)
    assert torch.equal(loaded.decode(latent), model.decode(latent))
    draws = [rep.sample_prior(5, generator=torch.Generator().manual_seed(1)) for rep in (model, loaded)]
    assert torch.equal(*draws)


def test_imagined_goals_are_standard_normal_until_a_goal_prior_is_set() -> None:
    model = SupervisedEncoder(state_dim=4)
    model.fit_standardisation(np.random.default_rng(0).normal(5.0, 3.0, size=(100, 4)))
    before = model.sample_prior(20_000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(before, torch.randn(20_000, 4, generator=torch.Generator().manual_seed(0)))
    mean, std = [1.0, -2.0, 0.0, 0.5], [0.1, 2.0, 1.0, 0.01]
    model.set_goal_prior(mean, std)
    after = model.sample_prior(20_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(after, before * torch.tensor(std) + torch.tensor(mean))
    model.set_goal_prior(None, None)
    assert torch.equal(model.sample_prior(20_000, generator=torch.Generator().manual_seed(0)), before)
    with pytest.raises(ValueError, match="no context"):
        model.sample_prior(2, torch.zeros(1, 4))


# --- through the pipeline ---


@pytest.fixture(scope="module")
def frames() -> FrameDataset:
    cfg = debug_config(Path("unused"), "vae.kind=supervised")
    return collect(cfg.env, cfg.data, seed=0, progress=False)


def test_pretraining_standardises_by_the_training_frames_and_resumes_exactly(
    tmp_path: Path, frames: FrameDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = debug_config(tmp_path, "vae.kind=supervised", "vae.epochs=3", "torch_threads=1")
    assert_interrupted_pretraining_resumes_exactly(cfg, frames, tmp_path, monkeypatch)
    model = load_representation(tmp_path / "resumed" / "last.pt")
    train = frames.states[frames.split(heldout=False)].astype(np.float64)
    assert isinstance(model, SupervisedEncoder) and model.latent_dim == frames.states.shape[1]
    assert model.state_mean.tolist() == pytest.approx(train.mean(axis=0), abs=1e-6)
    assert model.state_std.tolist() == pytest.approx(train.std(axis=0), rel=1e-5)


def test_a_debug_run_goes_through_every_stage_without_image_grids(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = ["vae.kind=supervised", "torch_threads=1", "device=cpu", f"run_dir={run_dir}"]
    assert main(["run", "debug", *overrides]) == 0
    record = read_stage_record(run_dir)
    assert set(record) == {"collect", "pretrain", "train", "evaluate", "baselines"}
    assert all(entry["done"] for entry in record.values())
    run = RunDir(run_dir)
    pretrain = run.pretrain_dir
    assert pretrain.best.is_file() and pretrain.last.is_file() and run.eval.is_file() and run.eval_gifs()
    assert not any(
        path.exists() for path in (pretrain.reconstructions, pretrain.prior_samples, pretrain.traversals)
    )
    metrics = json.loads(pretrain.metrics.read_text())
    for key in ("regression_rmse_hand", "regression_rmse_puck", "probe_r2_puck", "spearman"):
        assert np.isfinite(metrics[key]), key
    assert "neg_elbo" not in metrics and "kl_per_dim" not in metrics
    assert metrics["reward_geometry"]["latent_both"] == pytest.approx(1.0, abs=1e-5)
    # The agent's imagined goals are fitted to the encoder's readings of the training frames.
    with_agent = load_representation(run.agent.representation)
    mean, _ = fit_goal_prior(load_representation(pretrain.best), FrameDataset.load(run.frames))
    assert with_agent.config_dict()["goal_mean"] == pytest.approx(mean)
    report = run.report.markdown.read_text()
    assert "Supervised (state from frames)" in report and "held-out regression error" in report
    assert "Missing" not in report and "decoded latent goal" not in report


def test_on_held_out_colours_it_reports_its_regression_error_and_no_grids(tmp_path: Path) -> None:
    overrides = [f"run_dir={tmp_path}", "device=cpu", "torch_threads=1", *debug_settings()]
    cfg = load_config("supervised_multicolor", overrides)
    collect_stage(cfg, progress=False)
    held = pretrain_stage(cfg, progress=False).metrics["heldout_colours"]
    for key in ("regression_rmse_hand", "regression_rmse_puck", "probe_r2_puck", "spearman_within_episode"):
        assert np.isfinite(held[key]), key
    assert "prior_colour_match" not in held and "object_recon_mse" not in held
    pretrain = RunDir(tmp_path).pretrain_dir
    assert not pretrain.heldout_reconstructions.exists() and not pretrain.heldout_prior_samples.exists()


def test_settings_only_check_that_the_encoder_fits_the_image_size() -> None:
    cfg = debug_config(Path("unused"), "vae.kind=supervised", "vae.decoder=slots", "vae.z_dim=3")
    model = make_representation(cfg.vae, cfg.env.image_size)
    assert isinstance(model, SupervisedEncoder) and model.coord_channels == cfg.vae.coord_channels
    with pytest.raises(ValueError, match="too small"):
        make_representation(cfg.vae, 20)
