"""The agent stage: building the agent, training end to end, checkpoints, resume, evaluation and baselines."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from rig.agent import TrainResult, make_agent, make_training_env, train
from rig.checkpoints import load_run, read_checkpoint_record
from rig.config import Config, ConfigError, VAEConfig, load_config
from rig.device import resolve_device
from rig.errors import CorruptFileError
from rig.evaluate import (
    RandomPolicy,
    RepresentationMismatchError,
    evaluate_policy_on_goals,
    evaluate_random_policy,
    read_eval_curve,
)
from rig.latent_env import GoalMode, make_latent_env
from rig.pretrain import make_representation
from rig.relabel import ImaginedGoalReplayBuffer
from rig.representation import (
    CCVAE,
    BetaVAE,
    RepresentationModule,
    images_to_tensor,
    load_representation,
    save_representation,
)
from rig.rundir import RunDir
from rig.stages import evaluate_run


def state_representation() -> RepresentationModule:
    """The oracle's identity representation, as the pretrain stage makes it (prior = the goal boxes)."""
    return make_representation(VAEConfig(kind="state"), image_size=48)


@dataclass
class TrainedDebugRun:
    cfg: Config
    representation: BetaVAE
    result: TrainResult
    summary: dict[str, object]
    run: RunDir


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedDebugRun:
    cfg = load_config("debug")
    torch.manual_seed(0)
    representation = BetaVAE(z_dim=4)
    run = RunDir(tmp_path_factory.mktemp("run"))
    result = train(cfg, representation, run.agent.root, device="cpu", progress=False)
    return TrainedDebugRun(cfg, representation, result, evaluate_run(run.root), run)


def test_debug_config_trains_and_evaluates_end_to_end(debug_run: TrainedDebugRun) -> None:
    agent_dir, run_dir = debug_run.result.agent_dir, debug_run.run.root
    assert agent_dir == debug_run.run.agent.root
    assert debug_run.result.model.num_timesteps == debug_run.cfg.agent.total_steps
    assert [point.steps for point in read_eval_curve(agent_dir / "eval_curve.csv")] == [0, 30, 60]
    assert read_checkpoint_record(agent_dir).steps == 60
    stored = json.loads((run_dir / "eval.json").read_text())
    for key in ("puck_distance_mean", "puck_distance_std", "hand_distance_mean", "hand_distance_std"):
        assert np.isfinite(stored[key])
    assert 0.0 <= stored["success_rate"] <= 1.0
    assert stored["episodes"] == debug_run.cfg.eval.episodes and stored["seed"] == debug_run.cfg.eval.seed
    assert (run_dir / "gifs" / "eval_0.gif").stat().st_size > 0
    assert "eval/puck_distance" in (agent_dir / "logs" / "progress.csv").read_text().splitlines()[0]
    assert list((agent_dir / "logs").glob("events.out.tfevents.*"))


def test_agent_and_representation_round_trip_give_identical_actions(debug_run: TrainedDebugRun) -> None:
    loaded = load_run(debug_run.result.agent_dir)
    env = make_latent_env(debug_run.cfg.env, loaded.representation, GoalMode.EVAL, seed=0)
    obs, _ = env.reset(seed=7)
    observations = [obs]
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
        observations.append(obs)
    batch = {key: np.stack([o[key] for o in observations]) for key in obs}
    frame = images_to_tensor(env.render())
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.representation.encode(frame), debug_run.representation.encode(frame), rtol=0, atol=0
        )
    trained_actions, _ = debug_run.result.model.predict(batch, deterministic=True)
    loaded_actions, _ = loaded.model.predict(batch, deterministic=True)
    np.testing.assert_array_equal(loaded_actions, trained_actions)
    assert loaded.steps == debug_run.cfg.agent.total_steps


class StopAt(BaseCallback):
    """Stops training once ``steps`` env steps are done, as an interruption would."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def _on_step(self) -> bool:
        return self.num_timesteps < self.steps


class RecordStart(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.start: tuple[int, int] | None = None

    def _on_training_start(self) -> None:
        self.start = (self.num_timesteps, self.model.replay_buffer.size())  # type: ignore[union-attr]

    def _on_step(self) -> bool:
        return True


def assert_same_weights(first: nn.Module, second: nn.Module) -> None:
    ours, theirs = first.state_dict(), second.state_dict()
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]), name


CC_RIG_DEBUG = ["env.id=rig/PushMultiObject-v0", "env.eval_palette=heldout", "vae.kind=cc_vae"]


def _debug_vae(config: str) -> RepresentationModule:
    torch.manual_seed(0)
    if config == "debug_skewfit":
        return BetaVAE(z_dim=4, decoder="deconv")
    return CCVAE(z_dim=3, context_dim=2) if config == "debug_ccrig" else BetaVAE(z_dim=4)


@pytest.mark.parametrize("config", ["debug", "debug_ccrig", "debug_skewfit"])
def test_an_interrupted_run_continues_bit_identically(tmp_path: Path, config: str) -> None:
    # Checkpoints every 25 steps of 10-step episodes: the one resumed from falls mid-episode.
    if config == "debug_ccrig":  # objects drawn anew each episode, and the episode's context
        cfg = load_config("debug", [*CC_RIG_DEBUG, "eval.every=25"])
    else:
        cfg = load_config(config, ["eval.every=25"])
    whole = train(cfg, _debug_vae(config), tmp_path / "whole", device="cpu", progress=False)
    train(cfg, _debug_vae(config), tmp_path / "cut", device="cpu", progress=False, callbacks=[StopAt(35)])
    assert read_checkpoint_record(tmp_path / "cut").steps == 25
    torch.manual_seed(123)  # a resumed process starts from other random states; the checkpoint restores them
    np.random.seed(123)
    resumed = train(cfg, _debug_vae(config), tmp_path / "cut", device="cpu", progress=False)

    assert resumed.model.num_timesteps == whole.model.num_timesteps == cfg.agent.total_steps
    assert_same_weights(whole.model.policy, resumed.model.policy)
    ours, theirs = whole.model.replay_buffer, resumed.model.replay_buffer
    assert ours is not None and theirs is not None
    for key in ours.observations:
        np.testing.assert_array_equal(ours.observations[key], theirs.observations[key])  # type: ignore[index]
    np.testing.assert_array_equal(ours.actions, theirs.actions)
    np.testing.assert_array_equal(ours.ep_length, theirs.ep_length)  # type: ignore[attr-defined]
    assert whole.eval_curve == resumed.eval_curve
    if config == "debug_skewfit":  # the online VAE went on training on the same frames and batches
        np.testing.assert_array_equal(ours.next_frames, theirs.next_frames)  # type: ignore[attr-defined]
        vaes = [
            load_representation(read_checkpoint_record(tmp_path / run).trained_representation_path)
            for run in ("whole", "cut")
        ]
        assert_same_weights(*vaes)


def test_a_damaged_training_state_stops_the_resume_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    cfg = load_config("debug")
    train(cfg, _debug_vae("debug"), tmp_path, device="cpu", progress=False, callbacks=[StopAt(45)])
    record = read_checkpoint_record(tmp_path)
    assert record.training_state_path is not None
    record.training_state_path.write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFileError, match="training_state_000000030.pt"):
        train(cfg, _debug_vae("debug"), tmp_path, device="cpu", progress=False)
    assert record.agent_path.is_file() and record.replay_buffer_path.is_file()
    assert read_checkpoint_record(tmp_path).steps == 30


def test_resume_continues_steps_with_the_replay_buffer(tmp_path: Path) -> None:
    cfg = load_config("debug")
    torch.manual_seed(0)
    representation = BetaVAE(z_dim=4)
    interrupted = train(cfg, representation, tmp_path, device="cpu", progress=False, callbacks=[StopAt(45)])
    assert interrupted.model.num_timesteps == 45
    probe = RecordStart()
    resumed = train(cfg, representation, tmp_path, device="cpu", progress=False, callbacks=[probe])
    # The last checkpoint was at step 30, with the 30 transitions collected so far.
    assert probe.start == (30, 30)
    assert resumed.model.num_timesteps == 60
    assert resumed.model.replay_buffer is not None and resumed.model.replay_buffer.size() == 60
    assert [point.steps for point in resumed.eval_curve] == [0, 30, 60]
    changed = load_config("debug", ["agent.batch_size=64"])
    with pytest.raises(ValueError, match="agent.batch_size"):
        train(changed, representation, tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="representation differs"):
        train(cfg, BetaVAE(z_dim=4), tmp_path, device="cpu", progress=False)


def test_agent_settings_come_from_config() -> None:
    overrides = [
        "agent.action_noise=0.3",
        "agent.policy_delay=3",
        "agent.batch_size=16",
        "agent.net_arch=[24,16]",
    ]
    cfg = load_config("debug", overrides)
    model = make_agent(cfg, make_training_env(cfg, BetaVAE(z_dim=4)), "cpu")
    assert isinstance(model, TD3)
    assert model.policy_delay == 3 and model.batch_size == 16 and model.gamma == cfg.agent.gamma
    assert model.action_noise is not None and np.allclose(model.action_noise._sigma, 0.3)
    assert [layer.out_features for layer in model.actor.mu if isinstance(layer, nn.Linear)] == [24, 16, 2]
    assert isinstance(model.replay_buffer, ImaginedGoalReplayBuffer)
    np.testing.assert_allclose(model.replay_buffer.goal_fractions, [0.1, 0.5, 0.4])
    with pytest.raises(ConfigError, match="learning_starts"):
        load_config("debug", ["agent.learning_starts=5"])


def test_state_oracle_trains_on_the_same_code_path_with_sac(tmp_path: Path) -> None:
    cfg = load_config("debug", ["vae.kind=state", "agent.algo=sac", "agent.total_steps=40"])
    result = train(cfg, state_representation(), RunDir(tmp_path).agent.root, device="cpu", progress=False)
    assert isinstance(result.model, SAC)
    assert result.model.observation_space["observation"].shape == (4,)  # type: ignore[index]
    assert [point.steps for point in result.eval_curve] == [0, 30, 40]
    summary = evaluate_run(tmp_path, episodes=2, gifs=1)
    assert summary["episodes"] == 2 and (tmp_path / "gifs" / "eval_0.gif").is_file()


def test_cc_rig_trains_on_multi_object_env_and_evaluates_on_heldout_colours(tmp_path: Path) -> None:
    cfg = load_config("debug", [*CC_RIG_DEBUG, "agent.total_steps=30"])
    torch.manual_seed(0)
    result = train(
        cfg, CCVAE(z_dim=3, context_dim=2), RunDir(tmp_path).agent.root, device="cpu", progress=False
    )
    assert result.model.observation_space["observation"].shape == (5,)  # type: ignore[index]
    assert [point.steps for point in result.eval_curve] == [0, 30]
    summary = evaluate_run(tmp_path, episodes=2, gifs=0)
    assert summary["palette"] == "heldout" and summary["env_id"] == "rig/PushMultiObject-v0"


def test_random_baseline_faces_the_same_seeded_goals() -> None:
    cfg = load_config("debug")
    representation = state_representation()
    baseline = evaluate_random_policy(cfg.env, representation, episodes=3, seed=5)
    again = evaluate_policy_on_goals(
        RandomPolicy(make_latent_env(cfg.env, representation, "eval").action_space, 5),  # type: ignore[arg-type]
        cfg.env,
        representation,
        episodes=3,
        seed=5,
    )
    assert baseline.outcomes == again.outcomes and len(baseline.outcomes) == 3
    assert set(baseline.summary()) >= {"puck_distance_mean", "hand_distance_mean", "success_rate"}


def test_evaluating_a_mismatched_representation_names_the_mismatch(
    debug_run: TrainedDebugRun, tmp_path: Path
) -> None:
    bigger = replace(debug_run.cfg.env, image_size=64)
    with pytest.raises(RepresentationMismatchError, match="48 px images but env.image_size is 64"):
        evaluate_run(debug_run.run.root, env_cfg=bigger)
    run_dir = tmp_path / "run"
    shutil.copytree(debug_run.run.root, run_dir)
    save_representation(RunDir(run_dir).agent.representation, BetaVAE(z_dim=3))
    with pytest.raises(RepresentationMismatchError, match="4-d latents but the representation gives 3-d"):
        evaluate_run(run_dir)


def test_auto_device_is_cuda_only_when_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
