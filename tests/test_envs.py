"""The pushing environments: API conformance, images, goals, seeding, physics and bad input."""

from __future__ import annotations

import colorsys

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

import envs  # noqa: F401
from envs.appearance import PALETTES
from envs.push import (
    ASSET,
    HAND_BOX,
    HAND_GOAL_BOX,
    PUCK_GOAL_BOX,
    PUCK_RADIUS,
    TABLE_HALF_WIDTH,
    TABLE_RGB,
    WALL_HALF_WIDTH,
    PushEnv,
)
from envs.scripted import scripted_action

ENV_IDS = ["rig/Push-v0", "rig/PushMultiColor-v0", "rig/PushMultiObject-v0"]


def make(env_id: str = "rig/Push-v0", **kwargs) -> gym.Env:
    return gym.make(env_id, render_mode="rgb_array", **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    assert_gymnasium_checker_passes(make(env_id))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_check_env(env_id: str) -> None:
    assert_sb3_checker_passes(make(env_id))


def test_episode_length_default_and_configurable() -> None:
    for steps, kwargs in ((50, {}), (7, {"max_episode_steps": 7})):
        assert steps_until_truncated(make(**kwargs)) == steps


def test_batched_reward_matches_step_and_single_calls() -> None:
    assert_batched_reward_matches_rows_and_steps(make())


def test_info_distances_match_state() -> None:
    env = make()
    obs, info = env.reset(seed=3)
    state, goal = obs["observation"].astype(np.float64), obs["desired_goal"].astype(np.float64)
    assert info["hand_distance"] == pytest.approx(np.linalg.norm(state[:2] - goal[:2]), abs=1e-6)
    assert info["puck_distance"] == pytest.approx(np.linalg.norm(state[2:] - goal[2:]), abs=1e-6)
    assert info["touch_distance"] == pytest.approx(np.linalg.norm(state[:2] - state[2:]), abs=1e-6)
    assert info["is_success"] == (info["puck_distance"] < 0.05)


def test_image_shape_dtype_and_custom_size() -> None:
    env = make()
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (48, 48, 3) and frame.dtype == np.uint8
    wide = make(width=64, height=32)
    wide.reset(seed=0)
    assert wide.render().shape == (32, 64, 3)


def test_puck_corners_and_hand_moves_change_the_image() -> None:
    env = make().unwrapped
    env.reset(seed=0)
    hand = np.array([0.0, -0.09])
    env.set_state(hand, np.zeros(2))
    centre = env.render()
    corners = [np.array([x, y]) for x in PUCK_GOAL_BOX_X for y in PUCK_GOAL_BOX_Y]
    images = []
    for corner in corners:
        env.set_state(np.array([0.0, 0.0]) if abs(corner[1]) > 0.05 else hand, corner)
        images.append(env.render())
    for corner, image in zip(corners, images, strict=True):
        assert _changed_pixels(image, centre) > 20, f"puck at {corner} looks like puck at centre"
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert _changed_pixels(images[i], images[j]) > 20
    env.set_state(np.array([0.08, -0.09]), np.zeros(2))
    assert _changed_pixels(env.render(), centre) > 10


PUCK_GOAL_BOX_X = (PUCK_GOAL_BOX.low[0], PUCK_GOAL_BOX.high[0])
PUCK_GOAL_BOX_Y = (PUCK_GOAL_BOX.low[1], PUCK_GOAL_BOX.high[1])


def _changed_pixels(a: np.ndarray, b: np.ndarray) -> int:
    return int((np.abs(a.astype(int) - b.astype(int)).sum(axis=-1) > 30).sum())


def test_hand_and_puck_have_distinct_colours() -> None:
    env = make().unwrapped
    env.reset(seed=0)
    env.set_state(np.array([-0.08, -0.08]), np.array([0.1, 0.08]))
    frame = env.render().astype(int)
    hand_pixel = frame[_pixel(-0.08, -0.08, 48)]
    puck_pixel = frame[_pixel(0.1, 0.08, 48)]
    table_pixel = frame[_pixel(0.0, 0.0, 48)]
    assert np.abs(hand_pixel - puck_pixel).sum() > 100
    assert np.abs(hand_pixel - table_pixel).sum() > 100
    assert np.abs(puck_pixel - table_pixel).sum() > 100


def _pixel(x: float, y: float, size: int) -> tuple[int, int]:
    """Row and column of table point (x, y) for the top-down camera that spans [-0.25, 0.25]^2."""
    col = int((x + 0.25) / 0.5 * size)
    row = int((0.25 - y) / 0.5 * size)
    return row, col


def test_goal_image_restores_state_exactly_and_shows_goal() -> None:
    env = make().unwrapped
    env.reset(seed=4)
    for _ in range(5):
        env.step(np.array([0.3, 1.0]))
    qpos, qvel, mocap = env.data.qpos.copy(), env.data.qvel.copy(), env.data.mocap_pos.copy()
    before = env.render()
    goal_frame = env.goal_image()
    np.testing.assert_array_equal(env.data.qpos, qpos)
    np.testing.assert_array_equal(env.data.qvel, qvel)
    np.testing.assert_array_equal(env.data.mocap_pos, mocap)
    np.testing.assert_array_equal(env.render(), before)
    env.set_state(env.goal[:2], env.goal[2:])
    np.testing.assert_array_equal(env.render(), goal_frame)


def test_goal_option_and_goal_sampling_ranges() -> None:
    env = make().unwrapped
    goal = np.array([0.05, 0.02, -0.1, -0.08])
    obs, _ = env.reset(seed=0, options={"goal": goal})
    np.testing.assert_allclose(obs["desired_goal"], goal, atol=1e-7)
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        assert HAND_GOAL_BOX.contains(obs["desired_goal"][:2])
        assert PUCK_GOAL_BOX.contains(obs["desired_goal"][2:])


def test_random_puck_start_option() -> None:
    env = make().unwrapped
    fixed, _ = env.reset(seed=0)
    np.testing.assert_allclose(fixed["observation"][2:], 0.0, atol=1e-6)
    moved, _ = env.reset(seed=0, options={"random_puck_start": True})
    assert np.linalg.norm(moved["observation"][2:]) > 1e-3
    assert PUCK_GOAL_BOX.contains(moved["observation"][2:])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory_and_images(env_id: str) -> None:
    def rollout(seed: int) -> tuple[np.ndarray, np.ndarray]:
        env = make(env_id)
        obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        states, frames = [obs["observation"]], [env.render()]
        for _ in range(15):
            obs, *_ = env.step(env.action_space.sample())
            states.append(obs["observation"])
            frames.append(env.render())
        states.append(obs["desired_goal"])
        return np.array(states), np.array(frames)

    states_a, frames_a = rollout(7)
    states_b, frames_b = rollout(7)
    states_c, _ = rollout(8)
    np.testing.assert_array_equal(states_a, states_b)
    np.testing.assert_array_equal(frames_a, frames_b)
    assert not np.array_equal(states_a, states_c)


def test_hand_stays_in_its_box_and_puck_on_the_table() -> None:
    env = make(max_episode_steps=300).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        obs, *_ = env.step(rng.choice([-1.0, 1.0], size=2))
        hand, puck = obs["observation"][:2], obs["observation"][2:]
        assert HAND_BOX.contains(hand, tol=5e-3)
        assert np.all(np.abs(puck) < 0.23)
        assert env.observation_space.contains(obs)


def test_actions_outside_bounds_are_clipped() -> None:
    assert_actions_are_clipped(make().unwrapped, make().unwrapped)


def test_scripted_controller_pushes_puck_to_goals() -> None:
    env = gym.make("rig/Push-v0", max_episode_steps=100)
    successes = []
    for seed in range(20):
        env.reset(seed=seed)
        for _ in range(100):
            _, _, _, truncated, info = env.step(scripted_action(env.unwrapped))
            if truncated:
                break
        successes.append(info["is_success"])
    assert np.mean(successes) >= 0.8, f"scripted pusher succeeded in {np.mean(successes):.0%} of trials"


def _hsv(rgb: np.ndarray) -> tuple[float, float, float]:
    """(hue in degrees, saturation, value) of an RGB colour in [0, 1]."""
    hue, saturation, value = colorsys.rgb_to_hsv(*np.asarray(rgb, dtype=float))
    return hue * 360.0, saturation, value


def _drawn_colours(palette: str, seeds: range, env_id: str = "rig/PushMultiObject-v0") -> np.ndarray:
    env = make(env_id, palette=palette).unwrapped
    return np.array([env.reset(seed=seed)[1]["object_rgb"] for seed in seeds])


def test_palettes_split_the_hue_circle_into_train_and_heldout_bands() -> None:
    train, heldout = PALETTES["train"], PALETTES["heldout"]
    for hue in np.arange(0.0, 360.0, 0.25):
        assert train.contains_hue(hue) != heldout.contains_hue(hue), f"hue {hue} in both or neither"
    for low, high in [(45.0, 75.0), (165.0, 195.0), (285.0, 315.0)]:
        assert heldout.contains_hue(low) and heldout.contains_hue(high - 0.01)
        assert train.contains_hue(low - 0.01) and train.contains_hue(high)
    assert heldout.contains_hue(60.0 + 360.0) and train.contains_hue(-10.0)


@pytest.mark.parametrize("env_id", ["rig/PushMultiColor-v0", "rig/PushMultiObject-v0"])
@pytest.mark.parametrize("palette, other", [("train", "heldout"), ("heldout", "train")])
def test_multi_object_colours_stay_in_their_palette_and_vary_continuously(
    palette: str, other: str, env_id: str
) -> None:
    colours = _drawn_colours(palette, range(200), env_id)
    hsv = np.array([_hsv(rgb) for rgb in colours])
    hues = hsv[:, 0]
    assert all(PALETTES[palette].contains_hue(hue) for hue in hues)
    assert not any(PALETTES[other].contains_hue(hue) for hue in hues)
    assert len(np.unique(colours, axis=0)) == len(colours), "colours are continuous, not a short list"
    for low, high in PALETTES[palette].hue_ranges:  # both halves of every range are drawn
        middle = (low + high) / 2
        assert ((hues >= low) & (hues < middle)).any() and ((hues >= middle) & (hues < high)).any()
    assert (hsv[:, 1] >= 0.75).all() and (hsv[:, 1] <= 0.95).all()
    assert (hsv[:, 2] >= 0.8).all() and (hsv[:, 2] <= 0.95).all()
    chroma = colours.max(axis=1) - colours.min(axis=1)
    assert chroma.min() >= 0.6 and chroma.max() <= 0.95 * 0.95 + 1e-9


def test_palette_hues_are_uniform_over_the_total_arc() -> None:
    rng = np.random.default_rng(0)
    for palette in PALETTES.values():
        hues = np.array([_hsv(np.array(palette.sample(rng)))[0] for _ in range(6000)])
        arc = sum(high - low for low, high in palette.hue_ranges)
        for low, high in palette.hue_ranges:
            share = ((hues >= low) & (hues < high)).mean()
            assert share == pytest.approx((high - low) / arc, abs=0.03)
        # Every range edge is a multiple of 15 degrees: hues uniform within their ranges are uniform mod 15.
        histogram, _ = np.histogram(hues % 15.0, bins=3, range=(0.0, 15.0))
        assert histogram.min() > 0.9 * histogram.mean()


def test_multi_object_appearance_is_seeded_and_draws_shapes_and_sizes() -> None:
    first, second = make("rig/PushMultiObject-v0").unwrapped, make("rig/PushMultiObject-v0").unwrapped
    _, info = first.reset(seed=7)
    _, again = second.reset(seed=7)
    assert np.array_equal(info["object_rgb"], again["object_rgb"])
    assert (info["object_radius"], info["object_shape"]) == (again["object_radius"], again["object_shape"])
    assert not np.array_equal(second.reset(seed=8)[1]["object_rgb"], info["object_rgb"])
    seen_shapes, radii = set(), []
    for seed in range(30):
        _, info = first.reset(seed=seed)
        seen_shapes.add(info["object_shape"])
        radii.append(info["object_radius"])
    assert seen_shapes == {"cylinder", "box"}
    assert 0.035 <= min(radii) < max(radii) <= 0.05


@pytest.mark.parametrize("palette", ["train", "heldout"])
def test_multi_colour_env_draws_only_the_colour(palette: str) -> None:
    """rig/PushMultiColor-v0 is the CC-RIG paper's pusher: a new colour every reset, the default puck."""
    env = make("rig/PushMultiColor-v0", palette=palette).unwrapped
    colours = []
    for seed in range(40):
        _, info = env.reset(seed=seed)
        assert (info["object_shape"], info["object_radius"]) == ("cylinder", PUCK_RADIUS)
        assert PALETTES[palette].contains_hue(_hsv(info["object_rgb"])[0])
        colours.append(info["object_rgb"])
    assert len(np.unique(np.array(colours), axis=0)) == 40
    assert env._contact_distance() == pytest.approx(make("rig/Push-v0").unwrapped._contact_distance())


def test_multi_object_colour_shows_in_the_frame() -> None:
    env = make("rig/PushMultiObject-v0").unwrapped
    for seed in range(6):
        _, info = env.reset(seed=seed)
        centre = env.render()[_pixel(0.0, 0.0, 48)].astype(float) / 255.0
        # The lighting renders a top face at its material colour.
        np.testing.assert_allclose(centre, info["object_rgb"], atol=0.03)


def test_box_object_is_pushed_by_contact() -> None:
    env = make("rig/PushMultiObject-v0", shapes=("box",)).unwrapped
    env.reset(seed=0)
    for _ in range(20):
        obs, *_ = env.step(np.array([0.0, 1.0]))
    assert obs["observation"][3] > 0.05


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"width": 0}, "width"),
        ({"height": 0}, "height"),
        ({"palette": "neon"}, "palette"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PushEnv(**kwargs)


@pytest.mark.parametrize(
    "action", [np.zeros(3), np.zeros((1, 2)), np.array([np.nan, 0.0]), np.array([0.0, np.inf])]
)
def test_bad_actions_raise(action: np.ndarray) -> None:
    env = make().unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize(
    "goal, message",
    [
        (np.array([0.5, 0.0, 0.0, 0.0]), "hand goal"),
        (np.array([0.0, 0.0, 0.3, 0.0]), "puck goal"),
        (np.array([0.0, 0.0, 0.0, 0.0]), "top of each other"),
        (np.array([0.0, 0.0, 0.0]), "4-vector"),
    ],
)
def test_bad_goals_raise(goal: np.ndarray, message: str) -> None:
    env = make().unwrapped
    with pytest.raises(ValueError, match=message):
        env.reset(seed=0, options={"goal": goal})


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("puck", [np.array([0.3, 0.0]), np.array([0.0, -0.25]), np.array([0.2, 0.2])])
def test_set_state_refuses_an_object_off_the_table(env_id: str, puck: np.ndarray) -> None:
    env = make(env_id).unwrapped
    env.reset(seed=0)
    reach = WALL_HALF_WIDTH - env.appearance.radius
    with pytest.raises(ValueError, match=rf"off the table: its centre must lie within \+-{reach:.3f} m"):
        env.set_state(np.array([0.0, -0.09]), puck)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_set_state_keeps_the_observation_in_its_space_up_to_the_walls(env_id: str) -> None:
    env = make(env_id).unwrapped
    env.reset(seed=0)
    reach = WALL_HALF_WIDTH - env.appearance.radius
    for corner in ([reach, reach], [-reach, reach], [reach, -reach], [-reach, -reach]):
        env.set_state(np.array([0.0, 0.0]), np.array(corner))
        obs, *_ = env.step(np.zeros(2))
        assert env.observation_space.contains(obs), corner


def test_unknown_reset_option_raises() -> None:
    with pytest.raises(ValueError, match="unknown reset options"):
        make().unwrapped.reset(seed=0, options={"goall": np.zeros(4)})


def test_table_constants_match_the_scene() -> None:
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(ASSET))
    camera = model.camera("topview")
    seen = camera.pos[2] * np.tan(np.radians(model.cam_fovy[camera.id]) / 2)
    assert seen == pytest.approx(TABLE_HALF_WIDTH, abs=1e-4)
    table = model.geom("table").rgba[:3]
    assert np.array_equal(np.round(table * 255.0), TABLE_RGB * 255.0)
    env = PushEnv(render_mode="rgb_array", width=48, height=48)
    env.reset(seed=0)
    corner = env.render()[8, 40]  # x = 0.17, y = 0.17: bare table, far from hand, puck and walls
    env.close()
    assert np.array_equal(corner, TABLE_RGB * 255.0)
