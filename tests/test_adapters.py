"""Envs written by others behind rig's env protocol: rig/Pusher-v5 and rig/PointMaze_UMaze-v3."""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  registers the ids
from envs.gym_pusher import GOAL_BOX, MIN_GOAL_SEPARATION
from rig.goal_env import GoalEnvView, check_goal_env

PUSHER = "rig/Pusher-v5"
MAZE = "rig/PointMaze_UMaze-v3"
ADAPTERS = [PUSHER, MAZE]


def _needs_extra(env_id: str) -> None:
    if env_id == MAZE:
        pytest.importorskip(
            "gymnasium_robotics", reason='the robotics extra is not installed (pip install -e ".[robotics]")'
        )


def make(env_id: str, size: int = 48, **kwargs: Any) -> gym.Env:
    _needs_extra(env_id)
    return gym.make(env_id, render_mode="rgb_array", width=size, height=size, **kwargs)


def adapter(env: gym.Env) -> Any:
    """The adapter wrapper under gymnasium's own wrappers (TimeLimit, OrderEnforcing, checker)."""
    while not hasattr(type(env), "goal_image"):
        env = env.env  # type: ignore[attr-defined]
    return env


def red_pixels(frame: np.ndarray) -> int:
    """Pixels of the targets' colour: strongly red, little green or blue."""
    rgb = frame.astype(int)
    return int(
        np.sum((rgb[..., 0] > 120) & (rgb[..., 0] > 2 * rgb[..., 1]) & (rgb[..., 0] > 2 * rgb[..., 2]))
    )


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_protocol_check(env_id: str) -> None:
    env = make(env_id)
    check_goal_env(env, 48)
    view = GoalEnvView(env)
    assert view.renders_goal and view.teleports and view.snapshots


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_gymnasium_and_sb3_checkers(env_id: str) -> None:
    env = adapter(make(env_id))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports problems as warnings
        warnings.filterwarnings("ignore", message=".*different from the unwrapped version.*")
        # Pusher-v5 keeps its own torque range, [-2, 2]
        warnings.filterwarnings("ignore", message=".*symmetric and normalized space.*")
        # both envs bound their observations by +-inf, as gymnasium's MuJoCo envs do
        warnings.filterwarnings("ignore", message=".*observation space m[a-z]+imum value is .*infinity.*")
        gym_check_env(env, skip_render_check=False)
    sb3_check_env(env, warn=True)


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_seeded_resets_reproduce_start_and_goal(env_id: str) -> None:
    env = make(env_id)
    first, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    again, _ = env.reset(seed=7)
    for key in ("observation", "desired_goal"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["desired_goal"], other["desired_goal"])


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_goal_image_is_the_goal_state_rendered_and_leaves_the_state(env_id: str) -> None:
    env = make(env_id)
    obs, _ = env.reset(seed=3)
    wrapped = adapter(env)
    before = wrapped.get_snapshot()["physics"]
    frame_before = env.render()
    goal_image = wrapped.goal_image()
    np.testing.assert_array_equal(wrapped.get_snapshot()["physics"], before)
    np.testing.assert_array_equal(env.render(), frame_before)
    # At reset the arm is in the pose the goal image shows it in; the point has nothing else to place.
    wrapped.set_to_state(obs["desired_goal"])
    np.testing.assert_array_equal(env.render(), goal_image)
    assert not np.array_equal(goal_image, frame_before)


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_frames_show_the_scene_without_the_target_marker(env_id: str) -> None:
    env = make(env_id)
    env.reset(seed=0)
    wrapped = adapter(env)
    frames = [env.render(), wrapped.goal_image()]
    for _ in range(10):
        env.step(env.action_space.sample())
        frames.append(env.render())
    for frame in frames:
        assert frame.shape == (48, 48, 3) and frame.dtype == np.uint8
        assert red_pixels(frame) == 0
        assert frame.mean() > 40 and frame.std() > 10  # lit, not one flat colour
    # The marker would show: drawing it again brings red pixels back.
    frames_renderer = wrapped._frames
    frames_renderer._option.geomgroup[5] = 1
    frames_renderer._option.sitegroup[5] = 1
    assert red_pixels(env.render()) > 0


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_teleport_places_at_rest_and_validates(env_id: str) -> None:
    env = make(env_id)
    env.reset(seed=1)
    wrapped = adapter(env)
    for _ in range(5):
        state = wrapped.sample_state()
        wrapped.set_to_state(state)
        obs, *_ = env.step(np.zeros(env.action_space.shape))
        np.testing.assert_allclose(obs["achieved_goal"], state, atol=0.02)
    bad_states = [np.zeros(3), np.array([np.nan, 0.0]), np.array([5.0, 5.0])]
    if env_id == MAZE:
        bad_states.append(np.array([0.0, 0.0]))  # the wall between the U's arms
    for bad in bad_states:
        with pytest.raises(ValueError):
            wrapped.set_to_state(bad)


def test_pusher_camera_distance_enlarges_the_puck_and_is_checked() -> None:
    def puck_pixels(**kwargs: Any) -> int:
        env = make(PUSHER, **kwargs)
        env.reset(seed=0)
        frame = env.render()
        env.close()
        return int(np.all(frame > 240, axis=-1).sum())  # the white puck; nothing else is that bright

    far, default = puck_pixels(camera_distance=1.15), puck_pixels()
    assert far > 0 and default > 1.5 * far  # from 0.8 m against 1.15 m: (1.15 / 0.8)^2 = 2.07 times the area
    with pytest.raises(ValueError, match="camera_distance must be positive"):
        make(PUSHER, camera_distance=0.0)


def test_maze_frames_show_the_ball_at_every_goal() -> None:
    def ball_pixels(frame: np.ndarray) -> int:
        return int(np.all(frame > 200, axis=-1).sum())  # the white ball; walls and floor are darker

    env = make(MAZE)
    wrapped = adapter(env)
    for seed in range(12):  # goals in every free cell: the frame holds them all, the ball well drawn
        env.reset(seed=seed)
        assert ball_pixels(wrapped.goal_image()) >= 15 and ball_pixels(env.render()) >= 15


def test_maze_draws_the_ball_and_frames_the_maze_as_asked() -> None:
    def frame(**kwargs: Any) -> np.ndarray:
        env = make(MAZE, **kwargs)
        env.reset(seed=0)
        image = env.render()
        env.close()
        return image

    own_colour = frame(ball_rgba=None)
    assert np.all(own_colour > 200, axis=-1).sum() == 0  # the env's dark green ball
    wide, near = frame(framing="whole_maze"), frame()
    assert 0 < np.all(wide > 200, axis=-1).sum() < 0.6 * np.all(near > 200, axis=-1).sum()
    with pytest.raises(ValueError, match="framing must be one of"):
        make(MAZE, framing="corridor")
    with pytest.raises(ValueError, match="ball_rgba must be 4 numbers"):
        make(MAZE, ball_rgba=[1.0, 1.0, 2.0, 1.0])


def test_maze_frame_skip_holds_the_action_for_that_many_physics_steps() -> None:
    skipping, single = make(MAZE, frame_skip=4), make(MAZE)
    skipping.reset(seed=3)
    single.reset(seed=3)
    action = np.array([0.3, -0.2])
    for _ in range(3):
        skipped = skipping.step(action)[0]
        for _ in range(4):
            stepped = single.step(action)[0]
        for key in skipped:  # the ball stays below the env's 5 m/s clip, so the physics is the same
            np.testing.assert_array_equal(skipped[key], stepped[key])
    assert np.linalg.norm(skipped["observation"][2:]) > 0.1
    assert adapter(skipping).point_env.dt == pytest.approx(0.04)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="frame_skip must be a whole number"):
            make(MAZE, frame_skip=bad)


def test_pusher_teleport_refuses_the_arm_position() -> None:
    env = make(PUSHER)
    env.reset(seed=0)
    wrapped = adapter(env)
    data = wrapped.pusher.data
    data.qpos[:7] = [0.64, 0.9, 0.0, -1.0, 0.0, -0.6, 0.0]  # the hand down on the table, in the region
    wrapped.set_to_state(wrapped.sample_state())  # places the puck clear of the arm
    tip = data.xpos[wrapped._ids.tip_body][:2].copy()
    assert np.all(tip >= GOAL_BOX[0]) and np.all(tip <= GOAL_BOX[1])
    before = wrapped.get_snapshot()["physics"]
    with pytest.raises(ValueError, match="overlaps the arm"):
        wrapped.set_to_state(tip)
    np.testing.assert_array_equal(wrapped.get_snapshot()["physics"], before)
    for _ in range(20):
        assert not wrapped._overlaps_arm(wrapped.sample_state())


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_batched_reward_matches_steps(env_id: str) -> None:
    env = make(env_id)
    env.reset(seed=2)
    achieved, desired, rewards, infos = [], [], [], []
    for _ in range(6):
        obs, reward, _, _, info = env.step(env.action_space.sample())
        achieved.append(obs["achieved_goal"])
        desired.append(obs["desired_goal"])
        rewards.append(reward)
        infos.append(info)
        headline = next(iter(GoalEnvView(env).goal_metrics)).name
        assert reward == pytest.approx(-info[headline])
    batched = env.get_wrapper_attr("compute_reward")(np.stack(achieved), np.stack(desired), infos)
    np.testing.assert_allclose(batched, rewards)


@pytest.mark.parametrize("env_id", ADAPTERS)
def test_snapshot_restores_bit_identically(env_id: str) -> None:
    env = make(env_id)
    env.reset(seed=4)
    wrapped = adapter(env)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(8, *env.action_space.shape))
    for action in actions[:3]:
        env.step(action)
    snapshot = wrapped.get_snapshot()
    first = [env.step(action)[0] for action in actions[3:]] + [wrapped.sample_state()]
    wrapped.restore_snapshot(snapshot)
    second = [env.step(action)[0] for action in actions[3:]] + [wrapped.sample_state()]
    for a, b in zip(first[:-1], second[:-1], strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(first[-1], second[-1])


def test_pusher_goals_lie_in_the_region_apart_from_the_start() -> None:
    env = make(PUSHER)
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        goal, puck = obs["desired_goal"], obs["achieved_goal"]
        assert np.all(goal >= GOAL_BOX[0]) and np.all(goal <= GOAL_BOX[1])
        assert np.linalg.norm(goal - puck) > MIN_GOAL_SEPARATION
        assert info["tip_distance"] == 0.0 and not info["is_success"]
    low, high = env.get_wrapper_attr("goal_box")()
    np.testing.assert_array_equal(low, GOAL_BOX[0])
    np.testing.assert_array_equal(high, GOAL_BOX[1])
    with pytest.raises(ValueError, match="outside"):
        env.reset(options={"goal": [0.0, 0.0]})


def test_pusher_keeps_the_env_action_and_observation() -> None:
    env = make(PUSHER)
    assert env.action_space.shape == (7,) and float(env.action_space.high[0]) == 2.0
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped._get_obs()  # type: ignore[attr-defined]
    np.testing.assert_allclose(obs["observation"], raw[:20])
    np.testing.assert_allclose(raw[20:22], obs["desired_goal"])  # the env sees the drawn target


def test_maze_episodes_keep_their_goal_and_do_not_terminate() -> None:
    env = make(MAZE, max_episode_steps=40)
    obs, _ = env.reset(seed=5)
    wrapped = adapter(env)
    wrapped.set_to_state(obs["desired_goal"])
    steps, truncated = 0, False
    while not truncated:
        next_obs, _, terminated, truncated, info = env.step(np.zeros(2))
        assert not terminated and info["is_success"]
        np.testing.assert_array_equal(next_obs["desired_goal"], obs["desired_goal"])
        steps += 1
    assert steps == 40
    assert gym.spec(MAZE).max_episode_steps == 300
    low, high = env.get_wrapper_attr("goal_box")()
    np.testing.assert_allclose(low, [-1.25, -1.25])
    np.testing.assert_allclose(high, [1.25, 1.25])


def test_maze_registration_needs_no_robotics_import() -> None:
    spec = gym.spec(MAZE)
    assert spec.entry_point == "envs.point_maze:make_point_maze"
    source = importlib.util.find_spec("envs.point_maze")
    assert source is not None and source.origin is not None
    with open(source.origin, encoding="utf-8") as file:
        top_level = [line for line in file if line.startswith(("import ", "from "))]
    assert not any("gymnasium_robotics" in line for line in top_level)


def test_maze_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)
    monkeypatch.setitem(sys.modules, "gymnasium_robotics.envs.maze.point_maze", None)
    with pytest.raises(gym.error.DependencyNotInstalled, match=r'pip install -e "\.\[robotics\]"'):
        gym.make(MAZE)
