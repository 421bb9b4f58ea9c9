"""rig/Door-v0: the checkers, goals and goal images, teleports, snapshots, physics and the scripted opener."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from env_checks import (
    assert_actions_are_clipped,
    assert_batched_reward_matches_rows_and_steps,
    assert_gymnasium_checker_passes,
    assert_sb3_checker_passes,
    steps_until_truncated,
)

import envs  # noqa: F401  registers rig/Door-v0
from envs.door import (
    ANGLE_GOAL_RANGE,
    ANGLE_RANGE,
    CONTACT_DISTANCE,
    HAND_BOX,
    HAND_GOAL_BOX,
    HAND_START,
    DoorEnv,
    door_distance,
    from_door_frame,
)
from envs.scripted import scripted_door_action
from rig.goal_env import GoalEnvView, check_goal_env


def make(**kwargs: Any) -> gym.Env[Any, Any]:
    kwargs = {"render_mode": "rgb_array", "width": 48, "height": 48, **kwargs}
    return gym.make("rig/Door-v0", **kwargs)


def test_gymnasium_and_sb3_checkers_pass() -> None:
    assert_gymnasium_checker_passes(make())
    assert_sb3_checker_passes(make())


def test_rig_goal_env_protocol() -> None:
    env = make()
    check_goal_env(env, 48)
    view = GoalEnvView(env)
    assert view.renders_goal and view.teleports and view.snapshots
    assert [metric.name for metric in view.goal_metrics] == ["angle_difference", "hand_distance"]
    assert view.state_factors() == {"hand": slice(0, 2), "door": slice(2, 3)}
    low, high = view.goal_box()
    np.testing.assert_array_equal(low, [*HAND_GOAL_BOX.low, ANGLE_GOAL_RANGE[0]])
    np.testing.assert_array_equal(high, [*HAND_GOAL_BOX.high, ANGLE_GOAL_RANGE[1]])


def test_default_episode_length_is_50() -> None:
    assert steps_until_truncated(make()) == 50


def test_info_distances_and_success_threshold() -> None:
    env = make().unwrapped
    for goal_angle, success in ((0.05, True), (0.2, False)):
        obs, info = env.reset(seed=0, options={"goal": np.array([0.0, -0.12, goal_angle])})
        state, goal = obs["observation"].astype(np.float64), obs["desired_goal"].astype(np.float64)
        assert info["angle_difference"] == pytest.approx(abs(state[2] - goal_angle), abs=1e-6)
        assert info["hand_distance"] == pytest.approx(np.linalg.norm(state[:2] - goal[:2]), abs=1e-6)
        assert info["is_success"] is success
        np.testing.assert_allclose(state, [*HAND_START, 0.0], atol=1e-9)


def test_seeded_resets_reproduce_start_and_goal() -> None:
    first, second = make().unwrapped, make().unwrapped
    goals = []
    for seed in range(30):
        obs_a, _ = first.reset(seed=seed)
        obs_b, _ = second.reset(seed=seed)
        for key in obs_a:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])
        np.testing.assert_array_equal(first.render(), second.render())
        goal = obs_a["desired_goal"]
        assert HAND_GOAL_BOX.contains(goal[:2], tol=1e-6)
        assert ANGLE_GOAL_RANGE[0] - 1e-6 <= goal[2] <= ANGLE_GOAL_RANGE[1] + 1e-6
        goals.append(goal)
    assert len(np.unique(np.array(goals), axis=0)) == 30


def test_goal_image_is_the_goal_state_rendered_and_leaves_the_state_untouched() -> None:
    env = make().unwrapped
    env.reset(seed=2)
    for _ in range(5):
        env.step(np.array([0.4, 1.0]))
    physics, before = env._save_physics(), env.render()
    goal_frame = env.goal_image()
    np.testing.assert_array_equal(env._save_physics(), physics)
    np.testing.assert_array_equal(env.render(), before)
    assert not np.array_equal(goal_frame, before)
    env.set_to_state(env.goal)
    np.testing.assert_array_equal(env.render(), goal_frame)


def test_frames_show_the_door_angle_and_the_hand() -> None:
    env = make().unwrapped
    env.reset(seed=0)
    hand = np.array([0.1, -0.14])
    frames = []
    for angle in np.linspace(*ANGLE_GOAL_RANGE, 5):
        env.set_state(hand, float(angle))
        frames.append(env.render())
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            assert _changed_pixels(frames[i], frames[j]) > 10, f"door angles {i} and {j} look alike"
    env.set_state(np.array([-0.1, -0.14]), float(ANGLE_GOAL_RANGE[1]))
    assert _changed_pixels(env.render(), frames[-1]) > 10


def _changed_pixels(a: np.ndarray, b: np.ndarray) -> int:
    return int((np.abs(a.astype(int) - b.astype(int)).sum(axis=-1) > 30).sum())


def test_sample_state_is_valid_and_set_to_state_places_it_at_rest() -> None:
    env = make().unwrapped
    env.reset(seed=0)
    for _ in range(50):
        state = env.sample_state()
        assert HAND_BOX.contains(state[:2])
        assert ANGLE_GOAL_RANGE[0] <= state[2] <= ANGLE_GOAL_RANGE[1]
        env.set_to_state(state)
        np.testing.assert_allclose(env.state, state, atol=1e-12)
        assert env.data.ncon == 0, "a sampled state must not start in contact"
    obs, *_ = env.step(np.zeros(2))
    np.testing.assert_allclose(obs["observation"], state, atol=1e-4)


@pytest.mark.parametrize(
    "state, message",
    [
        (np.array([0.3, 0.0, 0.2]), "hand box"),
        (np.array([0.0, -0.13, -0.2]), "hinge range"),
        (np.array([0.0, -0.13, 1.2]), "hinge range"),
        (np.array([0.0, -0.05, 0.0]), "inside the door"),
        (np.array([np.nan, -0.13, 0.0]), "finite"),
        (np.array([0.0, -0.13]), "shape"),
    ],
)
def test_set_to_state_refuses_invalid_states(state: np.ndarray, message: str) -> None:
    env = make().unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.set_to_state(state)


@pytest.mark.parametrize(
    "goal, message",
    [
        (np.array([0.0, 0.1, 0.3]), "hand goal"),
        (np.array([0.0, -0.12, 0.9]), "goal range"),
        (np.array([0.0, -0.12]), "3-vector"),
    ],
)
def test_bad_goals_raise(goal: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make().unwrapped.reset(seed=0, options={"goal": goal})


def test_snapshot_restores_mid_episode_bit_identically() -> None:
    def continue_from(env: DoorEnv, steps: int) -> tuple[np.ndarray, np.ndarray]:
        states, frames = [], []
        for _ in range(steps):
            obs, *_ = env.step(env.np_random.uniform(-1, 1, size=2))
            states.append(obs["observation"])
            frames.append(env.render())
        states.append(env.reset()[0]["desired_goal"])  # the generator carries on into the next goal
        return np.array(states), np.array(frames)

    env = make().unwrapped
    env.reset(seed=5)
    for _ in range(8):
        env.step(scripted_door_action(env))
    snapshot = env.get_snapshot()
    expected = continue_from(env, 12)
    fresh = make().unwrapped
    fresh.reset(seed=99)
    fresh.restore_snapshot(snapshot)
    actual = continue_from(fresh, 12)
    np.testing.assert_array_equal(actual[0], expected[0])
    np.testing.assert_array_equal(actual[1], expected[1])


def test_batched_reward_matches_per_row_and_step_rewards() -> None:
    assert_batched_reward_matches_rows_and_steps(make())


def test_hand_stays_in_its_box_door_in_its_range_and_out_of_the_hand() -> None:
    """Random bang-bang actions from random states: the hand presses the door against both stops."""
    env = make().unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for step in range(600):
        if step % 100 == 0:
            env.set_to_state(env.sample_state())
        obs, *_ = env.step(rng.choice([-1.0, 1.0], size=2))
        assert env.observation_space.contains(obs)
        assert HAND_BOX.contains(env.hand, tol=5e-3)
        assert ANGLE_RANGE[0] - 0.02 <= env.angle <= ANGLE_RANGE[1] + 0.02
        penetration = min((contact.dist for contact in env.data.contact[: env.data.ncon]), default=0.0)
        assert penetration > -0.005, f"the hand went {-penetration:.4f} m into the door"


def test_door_stays_where_the_hand_leaves_it() -> None:
    env = make().unwrapped
    env.reset(seed=0)
    env.set_state(from_door_frame(np.array([0.16, -CONTACT_DISTANCE - 0.005]), 0.0), 0.0)
    for _ in range(4):
        env.step(np.array([0.0, 1.0]))
    assert env.angle > 0.2, "pushing the handle from the front opens the door"
    for _ in range(2):
        env.step(-np.array([0.0, 1.0]))  # step back off the door
    opened = env.angle
    for _ in range(20):
        env.step(np.zeros(2))
    assert env.angle == pytest.approx(opened, abs=1e-4)
    assert door_distance(env.hand, env.angle) > CONTACT_DISTANCE


def test_actions_outside_bounds_are_clipped_and_bad_actions_raise() -> None:
    big = make().unwrapped
    assert_actions_are_clipped(big, make().unwrapped)
    for action in (np.zeros(3), np.array([np.nan, 0.0])):
        with pytest.raises(ValueError, match="action"):
            big.step(action)


def _run(env: gym.Env[Any, Any], policy: Any) -> dict[str, Any]:
    info: dict[str, Any] = {}
    truncated = False
    while not truncated:
        *_, truncated, info = env.step(policy())
    return info


def test_scripted_opener_reaches_most_goals_and_random_actions_few() -> None:
    env = make(render_mode=None)
    scripted, random = [], []
    for seed in range(20):
        env.reset(seed=seed)
        info = _run(env, lambda: scripted_door_action(env.unwrapped))
        scripted.append(info["is_success"])
        if info["is_success"]:
            assert info["hand_distance"] < 0.02
        env.reset(seed=seed)
        env.action_space.seed(seed)
        random.append(_run(env, env.action_space.sample)["is_success"])
    assert np.mean(scripted) >= 0.8, f"scripted opener reached {np.mean(scripted):.0%} of goals"
    assert np.mean(random) <= 0.4, f"random actions reached {np.mean(random):.0%} of goals"


def test_scripted_opener_also_closes_the_door() -> None:
    env = make(render_mode=None)
    for seed, goal_angle in ((0, 0.05), (1, 0.3)):
        env.reset(seed=seed, options={"goal": np.array([0.05, -0.12, goal_angle])})
        env.unwrapped.set_to_state(np.array([*HAND_START, 0.8]))
        info = _run(env, lambda: scripted_door_action(env.unwrapped))
        assert info["is_success"], f"closing from 0.8 to {goal_angle} rad left {info['angle_difference']:.3f}"
