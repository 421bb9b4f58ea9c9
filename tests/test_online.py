"""Online representation learning (Skew-Fit): the weights, the likelihood estimate, the frame buffer's
latent refresh, the env's frames and goal pool, resume, and the debug config end to end."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from test_agent import StopAt

from rig.agent import train
from rig.checkpoints import load_run, read_checkpoint_record
from rig.config import ConfigError, load_config
from rig.latent_env import GoalMode, make_latent_env
from rig.online import FrameReplayBuffer, OnlineVAE
from rig.pipeline import run_pipeline
from rig.representation import BetaVAE, images_to_tensor, load_representation
from rig.skew import coverage_entropy, effective_sample_size, log_likelihood, skew_weights


def debug_skewfit(*overrides: str):
    return load_config("debug_skewfit", list(overrides))


# ----------------------------------------------------------------------------- weights
def test_alpha_zero_gives_uniform_weights() -> None:
    log_p = np.array([-5000.0, -4000.0, -4500.0, -4999.0])
    np.testing.assert_allclose(skew_weights(log_p, 0.0), np.full(4, 0.25))


def test_alpha_minus_one_weights_are_inverse_to_a_known_density() -> None:
    density = np.array([0.5, 0.25, 0.125, 0.1, 0.025])
    weights = skew_weights(np.log(density), -1.0)
    expected = (1 / density) / (1 / density).sum()
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    # Halving the density doubles the weight: alpha -1 favours the rarest frame.
    assert weights.argmax() == density.argmin()


def test_alpha_between_skews_partially_and_cap_clips_the_rarest() -> None:
    log_p = np.log(np.array([0.9, 0.09, 0.009, 0.001]))
    half = skew_weights(log_p, -0.5)
    np.testing.assert_allclose(half, np.exp(-0.5 * log_p) / np.exp(-0.5 * log_p).sum())
    capped = skew_weights(log_p, -1.0, cap=1.5)
    uncapped = skew_weights(log_p, -1.0)
    assert capped[-1] < uncapped[-1] and math.isclose(capped.sum(), 1.0)
    # No weight exceeds 1.5 x uniform; those below the cap keep their ratios (inverse to the density).
    assert capped.max() == pytest.approx(1.5 / 4)
    assert capped[-1] == pytest.approx(capped[-2])
    np.testing.assert_allclose(capped[0] / capped[1], uncapped[0] / uncapped[1])


def test_weights_reject_what_they_cannot_use() -> None:
    with pytest.raises(ValueError, match="alpha"):
        skew_weights(np.zeros(3), -2.0)
    with pytest.raises(ValueError, match="non-finite"):
        skew_weights(np.array([0.0, np.nan]), -1.0)
    with pytest.raises(ValueError, match="cap"):
        skew_weights(np.zeros(3), -1.0, cap=0.5)


def test_effective_sample_size_and_coverage_entropy_bounds() -> None:
    assert effective_sample_size(np.full(8, 1 / 8)) == pytest.approx(8.0)
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    low, high = (-1.0, -1.0), (1.0, 1.0)
    grid = (np.stack(np.meshgrid(np.arange(10), np.arange(10)), -1).reshape(-1, 2) + 0.5) / 5 - 1
    assert coverage_entropy(grid, low, high, bins=10) == pytest.approx(math.log(100))
    assert coverage_entropy(np.zeros((50, 2)), low, high, bins=10) == pytest.approx(0.0)
    # Outside the box counts in the edge cells, not nowhere.
    assert coverage_entropy(np.array([[5.0, 5.0], [-5.0, -5.0]]), low, high) == pytest.approx(math.log(2))


# -------------------------------------------------------------------------- likelihood
def square_images(n: int, generator: torch.Generator) -> torch.Tensor:
    """Dark frames with one bright 8 px square near the centre: a family a small VAE learns fast."""
    images = torch.full((n, 3, 48, 48), 0.1)
    offsets = torch.randint(18, 24, (n, 2), generator=generator)
    for image, (row, col) in zip(images, offsets.tolist(), strict=True):
        image[:, row : row + 8, col : col + 8] = 0.9
    return images


def test_log_likelihood_is_finite_and_higher_for_frames_the_vae_reconstructs_better() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    vae = BetaVAE(z_dim=4, decoder="deconv", likelihood="bernoulli", beta=1.0)
    optimizer = torch.optim.Adam(vae.parameters(), lr=2e-3)
    for _ in range(60):
        loss, _ = vae.loss(square_images(32, generator))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    vae.eval()
    familiar = square_images(16, generator)
    strange = torch.rand((16, 3, 48, 48), generator=generator)
    log_familiar = log_likelihood(vae, familiar, samples=10, generator=generator)
    log_strange = log_likelihood(vae, strange, samples=10, generator=generator)
    assert torch.isfinite(log_familiar).all() and torch.isfinite(log_strange).all()
    assert log_familiar.min() > log_strange.max()
    # More draws tighten the bound on average (log-mean-exp of K draws >= their mean).
    one = log_likelihood(vae, familiar, samples=1, generator=torch.Generator().manual_seed(1))
    ten = log_likelihood(vae, familiar, samples=10, generator=torch.Generator().manual_seed(1))
    assert ten.mean() >= one.mean()
    with pytest.raises(TypeError, match="beta-VAE"):
        log_likelihood(torch.nn.Linear(2, 2), familiar)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ env and buffer
def test_env_puts_frames_in_info_and_draws_goals_from_a_pool() -> None:
    cfg = debug_skewfit()
    torch.manual_seed(0)
    vae = BetaVAE(z_dim=4, decoder="deconv").eval()
    env = make_latent_env(cfg.env, vae, GoalMode.TRAIN, seed=0, frames_in_info=True)
    env.reset(seed=0)
    _, _, _, _, first = env.step(env.action_space.sample())
    _, _, _, _, second = env.step(env.action_space.sample())
    assert first["frame"].shape == (48, 48, 3) and first["frame"].dtype == np.uint8
    assert {"start_frame", "goal_frame"} <= first.keys()
    assert "start_frame" not in second and "goal_frame" not in second
    np.testing.assert_array_equal(second["state"], env.push._get_obs()["achieved_goal"])
    latents = np.arange(12, dtype=np.float32).reshape(3, 4)
    frames = np.stack([np.full((48, 48, 3), value, np.uint8) for value in (10, 20, 30)])
    env.set_goal_pool(latents, frames)
    for _ in range(5):
        obs, _ = env.reset()
        _, _, _, _, info = env.step(env.action_space.sample())
        row = int(obs["desired_goal"][0]) // 4
        np.testing.assert_array_equal(obs["desired_goal"], latents[row])
        np.testing.assert_array_equal(info["goal_frame"], frames[row])
    with pytest.raises(ValueError, match="goal pool"):
        env.set_goal_pool(latents[:, :2], frames)
    env.close()


def assert_same_latents(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding: the encoder's sums round differently with the batch size."""
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def test_an_update_leaves_every_stored_latent_equal_to_a_fresh_encode(tmp_path: Path) -> None:
    cfg = debug_skewfit()
    torch.manual_seed(0)
    vae = BetaVAE(z_dim=4, decoder="deconv")
    result = train(cfg, vae, tmp_path, device="cpu", progress=False, callbacks=[StopAt(55)])
    buffer = result.model.replay_buffer
    assert isinstance(buffer, FrameReplayBuffer)
    trainer = OnlineVAE(cfg, vae, torch.device("cpu"))
    before = vae.encoder.mu.weight.detach().clone()
    metrics = trainer.update(buffer, env_steps=55)
    assert not torch.equal(before, vae.encoder.mu.weight), "the update trained the VAE"
    assert math.isfinite(metrics["online/vae_loss"]) and metrics["online/skew_alpha"] == -1.0
    stored = buffer.stored()
    fresh = trainer.encode(buffer.next_frames[:stored, 0])
    assert_same_latents(buffer.next_observations["achieved_goal"][:stored, 0], fresh)
    assert_same_latents(buffer.next_observations["observation"][:stored, 0], fresh)
    starts = sorted(pos for pos, _ in buffer.start_frames)
    assert starts == list(range(0, stored, cfg.env.max_episode_steps))
    for start in starts:
        episode = np.arange(start, min(start + cfg.env.max_episode_steps, stored))
        start_latent, goal_latent = trainer.encode(
            np.stack([buffer.start_frames[(start, 0)], buffer.goal_frames[(start, 0)]])
        )
        assert_same_latents(buffer.observations["observation"][start, 0], start_latent)
        assert_same_latents(buffer.observations["observation"][episode[1:], 0], fresh[episode[:-1]])
        goals = buffer.observations["desired_goal"][episode, 0]
        assert_same_latents(goals, np.tile(goal_latent, (len(episode), 1)))
    # The goal prior and the goal pool come from the updated VAE's latents of buffer frames.
    assert trainer.goal_pool is not None and len(trainer.goal_pool.latents) == cfg.online.goal_pool
    assert_same_latents(trainer.goal_pool.latents, trainer.encode(trainer.goal_pool.frames))
    assert vae.goal_prior is not None


def test_an_interrupted_online_run_resumes_with_its_vae_buffer_and_goal_pool(tmp_path: Path) -> None:
    cfg = debug_skewfit()
    torch.manual_seed(0)
    vae = BetaVAE(z_dim=4, decoder="deconv")
    initial = {name: tensor.clone() for name, tensor in vae.state_dict().items()}
    train(cfg, vae, tmp_path, device="cpu", progress=False, callbacks=[StopAt(45)])
    record = read_checkpoint_record(tmp_path)
    assert record.steps == 30 and record.online_state_path is not None
    saved = torch.load(record.online_state_path, weights_only=False)
    with open(record.replay_buffer_path, "rb") as handle:
        saved_buffer = pickle.load(handle)
    checked: dict[str, object] = {}

    class Inspect(BaseCallback):
        def _on_training_start(self) -> None:
            buffer = self.model.replay_buffer
            assert isinstance(buffer, FrameReplayBuffer)
            checked["stored"] = buffer.stored()
            checked["frames"] = buffer.next_frames[: buffer.stored()].copy()
            checked["latents"] = buffer.next_observations["achieved_goal"][: buffer.stored()].copy()
            checked["vae"] = {name: tensor.clone() for name, tensor in fresh.state_dict().items()}

        def _on_step(self) -> bool:
            return True

    fresh = BetaVAE(z_dim=4, decoder="deconv")
    fresh.load_state_dict(initial)  # the pretrain stage's product, as a resumed pipeline loads it
    resumed = train(cfg, fresh, tmp_path, device="cpu", progress=False, callbacks=[Inspect()])
    assert checked["stored"] == 30
    assert saved_buffer.next_frames.shape[0] == cfg.agent.buffer_size  # restored to full size
    np.testing.assert_array_equal(checked["frames"], saved_buffer.next_frames[:30])
    assert checked["frames"].std() > 0  # type: ignore[attr-defined]
    for name, tensor in saved["vae"].items():
        assert torch.equal(checked["vae"][name], tensor), name  # type: ignore[index]
    # The buffer's latents are those of the checkpointed VAE, not a refit from scratch.
    restored = BetaVAE(z_dim=4, decoder="deconv")
    restored.load_state_dict(saved["vae"])
    with torch.no_grad():
        expected = restored.encode(images_to_tensor(checked["frames"][:, 0])).numpy()  # type: ignore[index]
    assert_same_latents(checked["latents"][:, 0], expected)  # type: ignore[index]
    assert resumed.model.num_timesteps == cfg.agent.total_steps
    # Evaluation acts on the representation as trained online, not on the initial one.
    trained = load_run(tmp_path).representation
    final = read_checkpoint_record(tmp_path)
    assert final.online_representation_path is not None
    stored = load_representation(final.online_representation_path)
    for name, tensor in stored.state_dict().items():
        assert torch.equal(trained.state_dict()[name], tensor)
    assert any(not torch.equal(initial[name], tensor) for name, tensor in stored.state_dict().items())


# ------------------------------------------------------------------------------ config
def test_online_settings_are_checked_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="online.enabled needs vae.kind=beta_vae"):
        load_config("debug_skewfit", ["vae.kind=cc_vae", "vae.decoder=broadcast"])
    with pytest.raises(ConfigError, match="online.skew_alpha"):
        load_config("debug_skewfit", ["online.skew_alpha=0.5"])
    with pytest.raises(ConfigError, match="vae.epochs must be at least 1 unless online.enabled"):
        load_config("debug", ["vae.epochs=0"])


def test_skewfit_debug_config_runs_end_to_end(tmp_path: Path) -> None:
    cfg = debug_skewfit(f"run_dir={tmp_path}")
    evaluation = run_pipeline(cfg, progress=False)
    assert evaluation["steps"] == cfg.agent.total_steps
    progress = (tmp_path / "agent" / "logs" / "progress.csv").read_text()
    assert "online/goal_coverage_entropy" in progress and "online/vae_loss" in progress
    assert "online/probe_puck_r2" in progress
    report = (tmp_path / "report.md").read_text()
    assert "## Online representation" in report and (tmp_path / "online_representation.png").is_file()
    assert "Skew-Fit (alpha -1)" in report
    assert (tmp_path / "agent" / "online_reconstructions.png").is_file()
    assert "online VAE's reconstructions" in report and "exploration goal pool" in report


def test_online_settings_do_not_touch_the_keys_of_runs_that_do_not_use_them() -> None:
    from rig.pipeline import stage_keys

    plain, changed = load_config("debug"), load_config("debug", ["online.skew_cap=2.0", "online.batches=7"])
    assert stage_keys(plain) == stage_keys(changed)
    online = load_config("debug_skewfit")
    assert (
        stage_keys(online)["train"]
        != stage_keys(load_config("debug_skewfit", ["online.skew_cap=2.0"]))["train"]
    )
