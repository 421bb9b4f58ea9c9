"""The env protocol: what rig refuses, in one line, and what it accepts, including the docs' example env."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rig.config import ConfigError, EnvConfig, VAEConfig, load_config
from rig.envs import check_env_config, make_env
from rig.goal_env import DEFAULT_METRIC, EnvProtocolError, GoalEnvView, check_goal_env
from rig.latent_env import GoalMode, make_latent_env
from rig.pretrain import make_representation

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
sys.path.insert(0, str(EXAMPLES))
from point_reach import PointReachEnv  # noqa: E402


class NoRewardEnv(PointReachEnv):
    compute_reward = None  # type: ignore[assignment]


class UnbatchedRewardEnv(PointReachEnv):
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        return np.asarray(-float(np.linalg.norm(np.ravel(achieved_goal)[:2] - np.ravel(desired_goal)[:2])))


class FixedSizeFramesEnv(PointReachEnv):
    """Ignores the requested frame size."""

    def __init__(self, render_mode: str | None = None, width: int = 48, height: int = 48) -> None:
        super().__init__(render_mode, 32, 32)


class FlatObservationEnv(PointReachEnv):
    def __init__(self, render_mode: str | None = None, width: int = 48, height: int = 48) -> None:
        super().__init__(render_mode, width, height)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,))  # type: ignore[assignment]


class NoSuccessEnv(PointReachEnv):
    def _info(self) -> dict[str, Any]:
        return {"point_distance": float(np.linalg.norm(self._position() - self.goal))}


class GoalImageAtResetEnv(PointReachEnv):
    """Hands the goal image out at reset (as OGBench does), with no goal_image() and no goal metrics."""

    goal_image = None  # type: ignore[assignment]
    goal_metrics = None  # type: ignore[assignment]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        return obs, {**info, "goal_image": PointReachEnv.goal_image(self)}


ENVS = {
    "test/NoReward-v0": NoRewardEnv,
    "test/UnbatchedReward-v0": UnbatchedRewardEnv,
    "test/FixedSizeFrames-v0": FixedSizeFramesEnv,
    "test/FlatObservation-v0": FlatObservationEnv,
    "test/NoSuccess-v0": NoSuccessEnv,
    "test/GoalImageAtReset-v0": GoalImageAtResetEnv,
}
for env_id, env_class in ENVS.items():
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=env_class, max_episode_steps=10)


def env_config(env_id: str, **overrides: Any) -> EnvConfig:
    return EnvConfig(id=env_id, max_episode_steps=10, **overrides)


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("test/NoReward-v0", "has no compute_reward"),
        ("test/UnbatchedReward-v0", "compute_reward on a batch of 3 goals must return 3 rewards"),
        ("test/FixedSizeFrames-v0", r"render\(\) must be a uint8 frame of shape \(48, 48, 3\)"),
        ("test/FlatObservation-v0", "observations must be a gymnasium Dict with keys observation"),
        ("test/NoSuccess-v0", "'is_success'"),
    ],
)
def test_an_env_that_lacks_a_member_is_refused_naming_it(env_id: str, message: str) -> None:
    with pytest.raises(EnvProtocolError, match=message) as caught:
        check_env_config(env_config(env_id))
    assert "\n" not in str(caught.value) and env_id in str(caught.value)


def test_the_pushers_and_the_example_env_pass_the_check() -> None:
    for env_id in ("rig/Push-v0", "rig/PushMultiColor-v0", "example/PointReach-v0"):
        check_env_config(env_config(env_id))


def test_an_env_that_gives_its_goal_image_at_reset_runs_and_reports_the_default_metric() -> None:
    cfg = env_config("test/GoalImageAtReset-v0")
    check_env_config(cfg)
    env = make_latent_env(cfg, make_representation(VAEConfig(), 48), GoalMode.EVAL, seed=3)
    try:
        _, info = env.reset(seed=3)
        inner = env.unwrapped
        assert isinstance(inner, PointReachEnv)
        np.testing.assert_array_equal(env.goal_frame, PointReachEnv.goal_image(inner))
        assert [metric.name for metric in env.goal_metrics] == [DEFAULT_METRIC]
        _, _, _, _, info = env.step(np.zeros(2, np.float32))
        assert info[DEFAULT_METRIC] == pytest.approx(float(np.linalg.norm(inner._position() - inner.goal)))
    finally:
        env.close()


def test_the_view_reports_capabilities_and_defaults() -> None:
    push = GoalEnvView(make_env(env_config("rig/Push-v0")))
    example = GoalEnvView(make_env(env_config("example/PointReach-v0")))
    assert push.teleports and push.snapshots and push.renders_goal
    assert not example.teleports and not example.snapshots and example.renders_goal
    assert [metric.name for metric in push.goal_metrics] == ["puck_distance", "hand_distance"]
    assert example.state_factors() == {"state": slice(0, 2)}
    low, high = example.goal_box()
    np.testing.assert_allclose(high, -low)
    with pytest.raises(EnvProtocolError, match="no goal image"):
        GoalEnvView(make_env(env_config("test/GoalImageAtReset-v0"))).goal_image(reset_info={})


def test_check_goal_env_refuses_frames_when_the_env_does_not_render() -> None:
    env = gym.make("example/PointReach-v0", width=48, height=48)
    with pytest.raises(EnvProtocolError, match="render_mode='rgb_array'"):
        check_goal_env(env, 48)


def test_an_unknown_env_id_or_module_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'rig/Psh-v0' is not a registered gymnasium id.*did you mean"):
        load_config("debug", ["env.id=rig/Psh-v0"])
    with pytest.raises(ConfigError, match="env.module 'no_such_module' does not import"):
        load_config("debug", ["env.id=my/Env-v0", "env.module=no_such_module"])


def test_env_kwargs_reach_the_env_and_a_refused_one_is_named() -> None:
    cfg = load_config("debug", ["env.kwargs={frame_skip: 5}"])
    assert make_env(cfg.env).unwrapped.frame_skip == 5  # type: ignore[attr-defined]
    bad = load_config("debug", ["env.kwargs={no_such_argument: 1}"])
    with pytest.raises(EnvProtocolError, match="no_such_argument"):
        make_env(bad.env)
    refused_value = load_config("debug", ["env.kwargs={shapes: [triangle]}"])
    with pytest.raises(EnvProtocolError, match=r"gymnasium.make\('rig/Push-v0'\) failed: shapes must be"):
        make_env(refused_value.env)


def test_rig_refuses_a_broken_env_in_one_line_before_any_stage(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "rig",
        "run",
        "debug",
        "env.id=test/NoSuccess-v0",
        "env.module=tests.test_goal_env",
    ]
    result = subprocess.run(
        [*command, f"run_dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("rig run: ") and "'is_success'" in last
    assert not (tmp_path / "run" / "data").exists()
