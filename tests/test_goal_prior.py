"""Imagined goals fitted to the teleported frames (``agent.goal_prior=teleported``): the record, the fit, the
refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rig.cli import main
from rig.config import ConfigError, load_config
from rig.data import FrameDataset, collect
from rig.pipeline import run_pipeline
from rig.pretrain import fit_goal_prior, make_representation
from rig.representation import load_representation
from rig.representation.inference import contexts_of, encode_dataset
from tests.datasets import drop_arrays

FAST = ["device=cpu", "torch_threads=1"]


def debug(run_dir: Path, *overrides: str):
    return load_config("debug", [f"run_dir={run_dir}", *FAST, *overrides])


@pytest.fixture
def frames(debug_frames: FrameDataset) -> FrameDataset:
    return debug_frames


def test_the_dataset_records_which_frames_were_teleported(frames: FrameDataset, tmp_path: Path) -> None:
    reset = frames.context_index == np.arange(len(frames))
    assert not frames.teleported[reset].any(), "a reset frame shows the reset state, not a drawn one"
    moved = np.linalg.norm(frames.states[:, 2:], axis=1)
    for episode in np.unique(frames.episodes):
        rows = np.flatnonzero((frames.episodes == episode) & ~reset)
        # An episode is teleported throughout or not at all; random actions seldom move the puck at all.
        assert len(set(frames.teleported[rows].tolist())) == 1
    assert 0 < frames.teleported.mean() < 1
    assert moved[frames.teleported].mean() > 0.05 > moved[~frames.teleported & ~reset].mean()
    # None without teleporting, and none among the frames of a factor swap.
    none = debug(tmp_path, "data.teleport_fraction=0")
    assert not collect(none.env, none.data, seed=0, progress=False).teleported.any()
    swaps = debug(tmp_path, "data.factor_swaps=1")
    assert not collect(swaps.env, swaps.data, seed=0, progress=False).teleported.any()


def test_the_teleported_prior_is_fitted_to_the_teleported_training_frames_only(
    frames: FrameDataset, tmp_path: Path
) -> None:
    cfg = debug(tmp_path)
    rep = make_representation(cfg.vae, cfg.env.image_size).eval()
    chosen = np.flatnonzero(frames.teleported & ~frames.heldout)
    z = encode_dataset(rep, frames.images[chosen], contexts_of(rep, frames, chosen))[:, : rep.z_dim]
    mean, std = fit_goal_prior(rep, frames, teleported=True)
    np.testing.assert_allclose(mean, z.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, z.std(axis=0), rtol=1e-5, atol=1e-6)
    every_mean, _ = fit_goal_prior(rep, frames)
    assert not np.allclose(mean, every_mean), "the random-action and reset frames move the fit"


def test_the_teleported_prior_refuses_frames_that_record_none(frames: FrameDataset, tmp_path: Path) -> None:
    cfg = debug(tmp_path)
    rep = make_representation(cfg.vae, cfg.env.image_size).eval()
    older = replace(frames, teleported=np.zeros_like(frames.teleported))
    with pytest.raises(ConfigError, match="records none .* or use agent.goal_prior=fitted"):
        fit_goal_prior(rep, older, teleported=True)
    few = np.zeros_like(frames.teleported)
    few[np.flatnonzero(frames.teleported & ~frames.heldout)[:5]] = True
    with pytest.raises(ConfigError, match="has 5: raise data.teleport_fraction"):
        fit_goal_prior(rep, replace(frames, teleported=few), teleported=True)


def test_the_teleported_prior_needs_teleporting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set data.teleport_fraction > 0 too"):
        debug(tmp_path, "agent.goal_prior=teleported", "data.teleport_fraction=0")
    # The state oracle collects no frames, and imagines its goals in the env's goal box anyway.
    debug(tmp_path, "agent.goal_prior=teleported", "data.teleport_fraction=0", "vae.kind=state")


def test_an_agent_trains_on_goals_fitted_to_the_teleported_frames(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_pipeline(debug(run_dir, "agent.goal_prior=teleported"), progress=False, report=False)
    dataset = FrameDataset.load(run_dir / "data" / "frames.npz")
    pretrained = load_representation(run_dir / "pretrain" / "best.pt")
    mean, std = fit_goal_prior(pretrained, dataset, teleported=True)
    with_agent = load_representation(run_dir / "agent" / "representation.pt")
    assert with_agent.config_dict()["goal_mean"] == pytest.approx(mean)
    assert with_agent.config_dict()["goal_std"] == pytest.approx(std)
    assert with_agent.config_dict()["goal_mean"] != pytest.approx(fit_goal_prior(pretrained, dataset)[0])


@pytest.mark.parametrize(
    "dropped, override, message",
    [
        (["teleported"], "agent.goal_prior=teleported", "records none"),
        (["actions", "acted"], "vae.inverse_weight=1", "collected before actions were recorded"),
    ],
)
def test_frames_without_a_record_a_setting_needs_are_refused_before_pretraining(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dropped: list[str], override: str, message: str
) -> None:
    run_dir = tmp_path / "run"
    assert main(["collect", "debug", f"run_dir={run_dir}", *FAST]) == 0
    path = run_dir / "data" / "frames.npz"
    drop_arrays(path, dropped)
    kept = path.read_bytes()
    capsys.readouterr()
    assert main(["run", "debug", f"run_dir={run_dir}", override, *FAST]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error
    assert not (run_dir / "pretrain").exists(), "refused before any stage ran"
    assert path.read_bytes() == kept, "the frames are kept"


def test_a_reward_scale_on_a_vae_that_uses_no_dimension_is_one_line_and_keeps_the_pretraining(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The debug VAE (two epochs on 200 frames) has not yet moved its encoder means off 0 on any dim."""
    run_dir = tmp_path / "run"
    assert main(["run", "debug", f"run_dir={run_dir}", "agent.reward_scale=goal_std", *FAST]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("rig run: agent.reward_scale=goal_std"), last
    assert "uses none" in last and "agent.reward_scale=none" in last, last
    pretrained = load_representation(run_dir / "pretrain" / "best.pt")
    _, std = fit_goal_prior(pretrained, FrameDataset.load(run_dir / "data" / "frames.npz"))
    assert max(std) < 0.1
    assert main(["run", "debug", f"run_dir={run_dir}", *FAST]) == 0, "the same run goes on without the scale"
