"""The latent goal env: spaces, batched rewards, goal sources, and one render + encode per step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_checker import check_env

from rig.agent import make_training_env
from rig.config import ConfigError, EnvConfig, VAEConfig, load_config
from rig.envs import make_env
from rig.errors import UserError
from rig.latent_env import (
    ACTIVE_STD,
    GoalMode,
    InactiveLatentError,
    LatentGoalEnv,
    latent_reward,
    make_latent_env,
    reward_weights,
)
from rig.pretrain import make_representation
from rig.representation import CCVAE, BetaVAE, RepresentationModule, images_to_tensor


def state_representation() -> RepresentationModule:
    """The oracle's identity representation, as the pretrain stage makes it (prior = the goal boxes)."""
    return make_representation(VAEConfig(kind="state"), image_size=48)


BUILDERS: dict[str, Callable[[], RepresentationModule]] = {
    "beta_vae": lambda: BetaVAE(z_dim=4),
    "cc_vae": lambda: CCVAE(z_dim=3, context_dim=2),
    "state": state_representation,
}


@pytest.fixture(scope="module")
def env_cfg() -> EnvConfig:
    return load_config("debug").env


def build(kind: str) -> RepresentationModule:
    torch.manual_seed(0)
    return BUILDERS[kind]()


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_wrapper_passes_sb3_check_env(kind: str, env_cfg: EnvConfig) -> None:
    env = make_latent_env(env_cfg, build(kind), GoalMode.TRAIN, seed=0)
    check_env(env, warn=True)
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    assert all(value.shape == (env.representation.latent_dim,) for value in obs.values())


def test_reward_is_negative_latent_distance_on_batches(env_cfg: EnvConfig) -> None:
    env = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    rng = np.random.default_rng(0)
    achieved, desired = rng.normal(size=(64, 4)), rng.normal(size=(64, 4))
    rewards = env.compute_reward(achieved, desired, [{}] * 64)
    np.testing.assert_allclose(rewards, -np.linalg.norm(achieved - desired, axis=1), rtol=1e-12)
    assert rewards.shape == (64,)
    assert env.compute_reward(achieved[7], desired[7], {}) == rewards[7]


def test_sparse_reward_thresholds_latent_distance_on_batches() -> None:
    rng = np.random.default_rng(1)
    achieved, desired = rng.normal(size=(256, 6)), rng.normal(size=(256, 6))
    distance = np.linalg.norm(achieved - desired, axis=1)
    threshold = float(np.median(distance))
    rewards = latent_reward(achieved, desired, "sparse", threshold)
    np.testing.assert_array_equal(rewards, -(distance > threshold).astype(np.float64))
    assert set(np.unique(rewards)) == {-1.0, 0.0}
    assert latent_reward(achieved[0], achieved[0], "sparse", threshold) == 0.0


def test_step_reward_uses_the_configured_sparse_reward(env_cfg: EnvConfig) -> None:
    env = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0, reward="sparse")
    env.reset(seed=0)
    obs, reward, *_ = env.step(np.zeros(2, dtype=np.float32))
    distance = np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])
    assert reward == -float(distance > env.sparse_threshold)


def vae_with_goal_std(std: list[float]) -> BetaVAE:
    vae = build("beta_vae")
    assert isinstance(vae, BetaVAE)
    vae.set_goal_prior([0.3] * len(std), std)
    return vae


def test_goal_std_reward_divides_active_dims_by_their_std_and_drops_inactive_ones(env_cfg: EnvConfig) -> None:
    vae = vae_with_goal_std([2.0, 0.5, ACTIVE_STD / 2, 1.0])
    env = make_latent_env(env_cfg, vae, GoalMode.TRAIN, seed=0, reward_scale="goal_std")
    weights = np.array([0.5, 2.0, 0.0, 1.0])
    np.testing.assert_array_equal(env.reward_weights, weights)
    rng = np.random.default_rng(2)
    achieved, desired = rng.normal(size=(64, 4)), rng.normal(size=(64, 4))
    rewards = env.compute_reward(achieved, desired, None)
    np.testing.assert_allclose(rewards, -np.linalg.norm((achieved - desired) * weights, axis=1), rtol=1e-12)
    assert env.compute_reward(achieved[5], desired[5], {}) == rewards[5]
    inactive_only = achieved.copy()
    inactive_only[:, 2] += 10.0
    np.testing.assert_array_equal(env.compute_reward(inactive_only, achieved, None), 0.0)
    # A step pays the same reward, and reports the distance it paid for.
    env.reset(seed=0)
    obs, reward, *_, info = env.step(np.zeros(2, dtype=np.float32))
    expected = np.linalg.norm((obs["achieved_goal"] - obs["desired_goal"]) * weights)
    assert reward == pytest.approx(-expected) and info["latent_distance"] == pytest.approx(expected)


def test_goal_std_keeps_the_cc_vae_context_at_weight_one() -> None:
    cc_vae = build("cc_vae")
    assert isinstance(cc_vae, CCVAE)
    cc_vae.set_goal_prior([0.0] * 3, [0.25, 0.01, 2.0])
    np.testing.assert_array_equal(reward_weights(cc_vae, "goal_std"), [4.0, 0.0, 0.5, 1.0, 1.0])
    assert reward_weights(cc_vae, "none") is None


def test_goal_std_needs_a_fitted_prior_with_an_active_unit() -> None:
    with pytest.raises(ValueError, match="has none"):
        reward_weights(build("beta_vae"), "goal_std")
    with pytest.raises(ValueError, match="has none"):
        reward_weights(build("state"), "goal_std")
    with pytest.raises(InactiveLatentError, match="uses none") as caught:
        reward_weights(vae_with_goal_std([0.05, 0.02, 0.01, 0.09]), "goal_std")
    assert isinstance(caught.value, UserError), "the rig command prints it as one line"
    with pytest.raises(ValueError, match="reward_scale must be one of"):
        reward_weights(build("beta_vae"), "unit")  # type: ignore[arg-type]


def test_the_training_env_takes_the_configured_reward_scale() -> None:
    cfg = load_config("debug", ["agent.reward_scale=goal_std"])
    vae = vae_with_goal_std([2.0, 0.5, 1.0, 0.01])
    vec_env = make_training_env(cfg, vae)
    achieved, desired = np.ones((3, 4)), np.zeros((3, 4))
    rewards = vec_env.env_method("compute_reward", achieved, desired, None)[0]
    np.testing.assert_allclose(rewards, -np.linalg.norm([0.5, 2.0, 1.0, 0.0]))
    plain = make_training_env(load_config("debug"), vae)
    np.testing.assert_allclose(plain.env_method("compute_reward", achieved, desired, None)[0], -2.0)


@pytest.mark.parametrize(
    "overrides",
    [["vae.kind=state"], ["agent.goal_prior=standard"], ["online.enabled=true", "vae.epochs=0"]],
)
def test_goal_std_is_refused_where_no_prior_is_fitted_to_the_frames(overrides: list[str]) -> None:
    load_config("debug", overrides)  # valid without the scale
    with pytest.raises(ConfigError, match="agent.reward_scale=goal_std scales the reward"):
        load_config("debug", ["agent.reward_scale=goal_std", *overrides])


@pytest.mark.parametrize("kind", ["beta_vae", "cc_vae"])
def test_eval_mode_goal_is_the_encoded_goal_image(kind: str, env_cfg: EnvConfig) -> None:
    representation = build(kind)
    env = make_latent_env(env_cfg, representation, GoalMode.EVAL, seed=0)
    obs, _ = env.reset(seed=3)
    assert env.last_frame is not None
    context = images_to_tensor(env.last_frame) if kind == "cc_vae" else None
    goal_image = env.push.goal_image()
    with torch.no_grad():
        expected = representation.encode(images_to_tensor(goal_image), context=context)[0].numpy()
    np.testing.assert_allclose(obs["desired_goal"], expected, atol=1e-6)
    env.set_mode(GoalMode.TRAIN)
    obs, _ = env.reset(seed=3)
    assert not np.allclose(obs["desired_goal"], expected, atol=1e-3)


def test_oracle_sees_true_state_and_real_state_goal(env_cfg: EnvConfig) -> None:
    env = make_latent_env(env_cfg, build("state"), GoalMode.EVAL, seed=0)
    obs, _ = env.reset(seed=4)
    obs, *_ = env.step(np.array([0.5, 0.5], dtype=np.float32))
    np.testing.assert_allclose(obs["observation"], env.push.state, atol=1e-6)
    np.testing.assert_allclose(obs["desired_goal"], env.push.goal, atol=1e-6)


def test_imagined_goals_are_standard_normal_and_seeded(env_cfg: EnvConfig) -> None:
    env = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    goals = np.stack([env.reset(seed=index)[0]["desired_goal"] for index in range(300)])
    assert goals.shape == (300, 4)
    assert np.abs(goals.mean(axis=0)).max() < 4 / np.sqrt(300)
    assert np.abs(goals.std(axis=0) - 1).max() < 0.15
    again = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    np.testing.assert_array_equal(again.reset(seed=5)[0]["desired_goal"], goals[5])
    relabel_goals = env.sample_prior_goals(np.zeros((20_000, 4), dtype=np.float32))
    assert relabel_goals.shape == (20_000, 4) and relabel_goals.dtype == np.float32
    assert np.abs(relabel_goals.mean(axis=0)).max() < 0.03
    assert np.abs(relabel_goals.std(axis=0) - 1).max() < 0.03


def test_state_prior_goals_lie_in_the_goal_boxes(env_cfg: EnvConfig) -> None:
    representation = build("state")
    env = make_latent_env(env_cfg, representation, GoalMode.TRAIN, seed=0)
    goals = env.sample_prior_goals(np.zeros((5_000, 4), dtype=np.float32))
    assert np.all(goals >= representation.low.numpy()) and np.all(goals <= representation.high.numpy())


def test_cc_vae_imagined_goals_keep_the_episode_context(env_cfg: EnvConfig) -> None:
    representation = build("cc_vae")
    env = make_latent_env(env_cfg, representation, GoalMode.TRAIN, seed=0)
    obs, _ = env.reset(seed=2)
    assert env.last_frame is not None
    with torch.no_grad():
        context = representation.encode_context(images_to_tensor(env.last_frame))[0].numpy()
    np.testing.assert_allclose(obs["desired_goal"][3:], context, atol=1e-6)
    for _ in range(3):
        obs, *_ = env.step(np.array([1.0, 1.0], dtype=np.float32))
    np.testing.assert_allclose(obs["observation"][3:], context, atol=1e-6)
    latents = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    relabelled = env.sample_prior_goals(latents)
    np.testing.assert_array_equal(relabelled[:, 3:], latents[:, 3:])
    assert not np.allclose(relabelled[:, :3], latents[:, :3])


def test_each_step_renders_once_and_encodes_once(env_cfg: EnvConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    representation = build("cc_vae")
    env = make_latent_env(env_cfg, representation, GoalMode.TRAIN, seed=0)
    env.reset(seed=0)
    calls = {"render": 0, "encode": 0}

    def counting(name: str, method: Callable[..., object]) -> Callable[..., object]:
        def wrapped(*args: object, **kwargs: object) -> object:
            calls[name] += 1
            return method(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(env.env, "render", counting("render", env.env.render))
    monkeypatch.setattr(representation, "encode", counting("encode", representation.encode))
    for _ in range(5):
        env.step(np.zeros(2, dtype=np.float32))
    assert calls == {"render": 5, "encode": 5}


@pytest.mark.parametrize("mode", [GoalMode.TRAIN, GoalMode.EVAL])
def test_cc_vae_context_is_encoded_once_per_episode(
    mode: GoalMode, env_cfg: EnvConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    representation = build("cc_vae")
    assert isinstance(representation, CCVAE)
    calls = {"context_encoder": 0}
    original = representation.context_encoder.forward

    def counting(images: torch.Tensor) -> torch.Tensor:
        calls["context_encoder"] += len(images)
        return original(images)

    monkeypatch.setattr(representation.context_encoder, "forward", counting)
    env = make_latent_env(env_cfg, representation, mode, seed=0)
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        for _ in range(env_cfg.max_episode_steps):
            obs, *_ = env.step(np.ones(2, dtype=np.float32))
    assert calls["context_encoder"] == 2
    # The cached context gives the same latent as encoding the context again.
    assert env.last_frame is not None and env._context_images is not None
    with torch.no_grad():
        fresh = representation.encode(images_to_tensor(env.last_frame), context=env._context_images)
    np.testing.assert_allclose(obs["observation"], fresh[0].numpy(), atol=1e-6)


def test_info_passes_the_true_distances_through(env_cfg: EnvConfig) -> None:
    env = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    env.reset(seed=1)
    _, _, _, _, info = env.step(np.array([0.0, 1.0], dtype=np.float32))
    state, goal = env.push.state, env.push.goal
    assert info["puck_distance"] == pytest.approx(np.linalg.norm(state[2:] - goal[2:]))
    assert info["hand_distance"] == pytest.approx(np.linalg.norm(state[:2] - goal[:2]))
    assert info["is_success"] == (info["puck_distance"] < env.push.success_threshold)


def test_achieved_state_follows_the_env_through_reset_and_steps(env_cfg: EnvConfig) -> None:
    env = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    assert env.achieved_state is None
    env.reset(seed=3)
    np.testing.assert_allclose(env.achieved_state, env.push.state)
    for _ in range(3):
        env.step(np.array([1.0, -1.0], dtype=np.float32))
        np.testing.assert_allclose(env.achieved_state, env.push.state)


def test_frame_stack_observes_the_latents_of_the_last_frames_newest_first(env_cfg: EnvConfig) -> None:
    stacked = make_latent_env(replace(env_cfg, frame_stack=3), build("beta_vae"), GoalMode.TRAIN, seed=0)
    assert stacked.observation_space["observation"].shape == (12,)
    assert stacked.observation_space["desired_goal"].shape == (4,)
    obs, _ = stacked.reset(seed=2)
    latents = [obs["achieved_goal"]] * 3  # the first frame's latent fills every slot
    np.testing.assert_array_equal(obs["observation"], np.concatenate(latents))
    for _ in range(3):
        obs, *_ = stacked.step(np.array([1.0, 0.5], dtype=np.float32))
        latents.insert(0, obs["achieved_goal"])
        np.testing.assert_array_equal(obs["observation"], np.concatenate(latents[:3]))
    assert not np.array_equal(latents[0], latents[1])  # the hand moved, so the slots differ
    single = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    obs, _ = single.reset(seed=2)
    np.testing.assert_array_equal(obs["observation"], obs["achieved_goal"])


def test_frame_stack_snapshot_continues_identically_and_must_fit(env_cfg: EnvConfig) -> None:
    stacked = make_latent_env(replace(env_cfg, frame_stack=2), build("beta_vae"), GoalMode.TRAIN, seed=0)
    stacked.reset(seed=1)
    stacked.step(np.array([1.0, 0.0], dtype=np.float32))
    snapshot = stacked.get_snapshot()
    actions = [np.array([0.0, 1.0], dtype=np.float32), np.array([-1.0, 0.5], dtype=np.float32)]
    first = [stacked.step(action)[0]["observation"] for action in actions]
    stacked.restore_snapshot(snapshot)
    second = [stacked.step(action)[0]["observation"] for action in actions]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    single = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    single.reset(seed=1)
    with pytest.raises(ValueError, match="holds 2 frames' latents; this env stacks 1"):
        single.restore_snapshot(snapshot)
    with pytest.raises(ValueError, match="frame_stack must be 1"):
        make_latent_env(replace(env_cfg, frame_stack=2), build("state"), GoalMode.TRAIN, seed=0)


def test_roll_out_records_every_step_of_one_episode(env_cfg: EnvConfig) -> None:
    from rig.evaluate import roll_out

    env = make_latent_env(env_cfg, build("beta_vae"), GoalMode.TRAIN, seed=0)
    rollout = roll_out(lambda obs: np.array([1.0, -0.5], dtype=np.float32), env, seed=6)
    steps = env_cfg.max_episode_steps
    assert len(rollout.observations) == len(rollout.actions) == len(rollout.rewards) == steps
    assert len(rollout.achieved) == steps + 1  # the reset's, then one per step
    np.testing.assert_allclose(rollout.achieved[-1], env.push.state)
    assert not np.array_equal(rollout.achieved[0], rollout.achieved[-1])  # the hand moved
    rewards = [-info["latent_distance"] for info in rollout.infos]
    np.testing.assert_allclose(rollout.rewards, rewards, rtol=1e-5)


def test_image_representation_needs_a_rendering_env(env_cfg: EnvConfig) -> None:
    with pytest.raises(ValueError, match="render_mode"):
        LatentGoalEnv(make_env(env_cfg, render=False), build("beta_vae"))
