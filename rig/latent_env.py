"""The latent goal env: a rendering image goal env (``rig.goal_env``) seen through a frozen representation.

The agent observes ``{"observation", "achieved_goal", "desired_goal"}``, all latents of the
representation (the encoder mean; ``[mu_z, c]`` for the CC-VAE). Goals come from one of two sources:

- ``GoalMode.TRAIN``: imagined, sampled from the representation's prior (for the CC-VAE with the context
  c of this episode's first frame);
- ``GoalMode.EVAL``: the env's real goal image (``goal_image()``, or the one ``reset`` returned), encoded.

Each step renders one frame and encodes it once, on the representation's device. The reward is the
negative latent distance (or its thresholded, sparse version) and ``compute_reward`` works on batches,
so stable-baselines3 can recompute it for relabelled goals. ``info`` passes the env's goal metrics (its
``goal_metrics``, e.g. ``puck_distance``) and ``is_success`` through, so evaluation measures real goal
reaching.

For the state oracle (``input_kind == "state"``) the observation is the env's own ``observation``, the goals
are its ``achieved_goal`` and ``desired_goal`` (through the identity representation's ``encode``), and the
real goal is the env's state goal; nothing needs rendering.
"""

from __future__ import annotations

import enum
from typing import Any, SupportsFloat, cast, get_args

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from envs.push import PushEnv
from rig.config import EnvConfig, Palette, RewardKind, RewardScale
from rig.envs import make_env, push_env
from rig.errors import UserError
from rig.goal_env import DEFAULT_METRIC, GoalEnvView, GoalMetric, goal_distance, goal_spaces
from rig.representation import RepresentationModule, images_to_tensor, tensor_to_images
from rig.representation.base import module_device

Array = np.ndarray
Obs = dict[str, Array]

REWARDS: tuple[RewardKind, ...] = get_args(RewardKind)
REWARD_SCALES: tuple[RewardScale, ...] = get_args(RewardScale)
ACTIVE_STD = 0.1
"""A dimension of z whose encoder means vary less than this (std over the frames) is an inactive unit:
``agent.reward_scale=goal_std`` leaves it out of the reward (the active-units criterion of Burda et al.,
2016: a variance of the encoder means above 0.01)."""


class InactiveLatentError(UserError, ValueError):
    """``agent.reward_scale=goal_std`` on a representation whose encoder uses no dimension of z."""


class GoalMode(enum.Enum):
    TRAIN = "train"
    """goals imagined from the representation's prior"""
    EVAL = "eval"
    """the env's real goal image, encoded"""


def latent_reward(
    achieved: Array,
    desired: Array,
    kind: RewardKind,
    sparse_threshold: float,
    weights: Array | None = None,
) -> Array:
    """-||achieved - desired|| (``latent_distance``) or -[distance > threshold] (``sparse``), batched.

    Works on single vectors and on batches of shape (..., latent_dim). ``weights`` (latent_dim,) multiply
    the difference before its norm (``reward_weights``); None weighs every dimension 1.
    """
    distance = latent_distance(achieved, desired, weights)
    if kind == "sparse":
        return (distance <= sparse_threshold).astype(np.float64) - 1.0
    return -distance


def latent_distance(achieved: Array, desired: Array, weights: Array | None = None) -> Array:
    """||weights * (achieved - desired)|| over the last axis, batched; the distance the reward pays."""
    difference = np.asarray(achieved, dtype=np.float64) - np.asarray(desired, dtype=np.float64)
    if weights is not None:
        difference = difference * weights
    # axis=-1 even for single vectors, so a batch row and the same single vector round identically.
    return np.linalg.norm(difference, axis=-1)


def reward_weights(representation: RepresentationModule, scale: RewardScale) -> Array | None:
    """The per-dimension weights of the reward's latent difference for ``agent.reward_scale``.

    ``none``: None (every dimension 1). ``goal_std``: 1 / std of the representation's fitted goal prior on
    each dimension of z, 0 where that std is below ``ACTIVE_STD``, and 1 on the context part (CC-VAE).
    """
    if scale not in REWARD_SCALES:
        raise ValueError(f"reward_scale must be one of {REWARD_SCALES}, got {scale!r}")
    if scale == "none":
        return None
    prior = getattr(representation, "goal_prior", None)
    if prior is None:
        raise ValueError(
            "reward_scale=goal_std divides by the std of a fitted goal prior, and this representation has "
            "none (fit it with set_goal_prior, as the train stage does for agent.goal_prior=fitted)"
        )
    std = np.asarray(prior[1], dtype=np.float64)
    active = std >= ACTIVE_STD
    if not active.any():
        raise InactiveLatentError(
            f"agent.reward_scale=goal_std weighs the dimensions of z the encoder uses, and it uses none "
            f"(goal std at most {std.max():.3g}, under {ACTIVE_STD}): pretrain longer (vae.epochs) or lower "
            "vae.beta in a new run_dir, or use agent.reward_scale=none"
        )
    context = np.ones(representation.latent_dim - representation.z_dim)
    return np.concatenate([np.where(active, 1.0 / std, 0.0), context])


def make_latent_env(
    env_cfg: EnvConfig,
    representation: RepresentationModule,
    mode: GoalMode | str,
    seed: int | None = None,
    palette: Palette | None = None,
    record: bool = False,
    reward: RewardKind = "latent_distance",
    sparse_threshold: float = 1.0,
    frames_in_info: bool = False,
    reward_scale: RewardScale = "none",
) -> LatentGoalEnv:
    """A ``LatentGoalEnv`` on a fresh env; with a state representation it renders only if ``record``."""
    render = record or representation.input_kind == "image"
    env = make_env(env_cfg, palette=palette, render=render)
    return LatentGoalEnv(
        env,
        representation,
        mode,
        reward,
        sparse_threshold,
        seed,
        frames_in_info,
        env_cfg.frame_stack,
        reward_scale,
    )


class LatentGoalEnv(gym.Wrapper[Obs, Array, Obs, Array]):
    """A goal env whose observations, goals and rewards live in the representation's latent space.

    Args:
        env: an image goal env under gymnasium wrappers, as made by ``rig.envs.make_env``; it must render
            (``render_mode="rgb_array"``) unless the representation works on states.
        representation: a frozen representation; it is put in eval mode and used without gradients.
        mode: where goals come from (``GoalMode`` or its value); ``set_mode`` switches it.
        reward: ``latent_distance`` or ``sparse``.
        sparse_threshold: latent distance under which the sparse reward counts the goal as reached.
        seed: seeds the prior samples; ``reset(seed=...)`` reseeds them along with the env.
        frames_in_info: put the frames behind the latents in each step's ``info`` (for online
            representation learning, ``rig.online.FrameReplayBuffer``): ``frame`` and ``state`` (the true
            achieved state) after every step, and ``start_frame`` and ``goal_frame`` at an episode's first.
        frame_stack: latents of the last ``frame_stack`` frames in ``observation``, newest first; at an
            episode's start the first frame's latent fills every slot. Image representations only.
        reward_scale: how the reward weighs the latent's dimensions (``reward_weights``), fixed from the
            representation's goal prior when the env is made.
    """

    def __init__(
        self,
        env: gym.Env[Obs, Array],
        representation: RepresentationModule,
        mode: GoalMode | str = GoalMode.TRAIN,
        reward: RewardKind = "latent_distance",
        sparse_threshold: float = 1.0,
        seed: int | None = None,
        frames_in_info: bool = False,
        frame_stack: int = 1,
        reward_scale: RewardScale = "none",
    ) -> None:
        super().__init__(env)
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        self.reward_weights = reward_weights(representation, reward_scale)
        """per-dimension weights of the reward's latent difference; None weighs every dimension 1"""
        if frame_stack < 1 or (frame_stack > 1 and representation.input_kind != "image"):
            raise ValueError(
                f"frame_stack must be 1, or above 1 for image representations; got {frame_stack}"
            )
        self.frame_stack = int(frame_stack)
        self.view = GoalEnvView(env)
        self.goal_metrics: tuple[GoalMetric, ...] = self.view.goal_metrics
        self.representation = representation.eval()
        self.uses_images = representation.input_kind == "image"
        self.renders = env.render_mode == "rgb_array"
        if self.uses_images and not self.renders:
            raise ValueError("an image representation needs an env made with render_mode='rgb_array'")
        self.device = module_device(representation)
        self.mode = GoalMode(mode)
        self.reward_kind = reward
        self.sparse_threshold = float(sparse_threshold)
        self.observation_space = _latent_space(  # type: ignore[assignment]
            representation.latent_dim, self._observation_dim(env)
        )
        # Episode goals and relabelling draws get separate streams, so the goals an agent sees do not
        # depend on how many relabelling batches were drawn in between.
        self._goal_generator = torch.Generator(device=self.device)
        self._relabel_generator = torch.Generator(device=self.device)
        self._seed_generators(seed)
        self.latent_goal = np.zeros(representation.latent_dim, dtype=np.float32)
        self._earlier_latents: list[Array] = []
        """the latents of the ``frame_stack - 1`` frames before the current one, newest first"""
        self.last_frame: Array | None = None
        self.achieved_state: Array | None = None
        """the env's own achieved goal (true state units) after the last reset or step"""
        self._goal_frame: Array | None = None
        self._decoded_goal: Array | None = None
        self._context_images: torch.Tensor | None = None
        self._context_latent: torch.Tensor | None = None
        self.frames_in_info = frames_in_info
        if frames_in_info and not self.renders:
            raise ValueError("frames_in_info needs an env made with render_mode='rgb_array'")
        self._start_frame: Array | None = None
        self._goal_pool: tuple[Array, Array] | None = None
        self._reset_info: dict[str, Any] = {}

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        if seed is not None:
            self._seed_generators(seed)
        state_obs, info = self.env.reset(seed=seed, options=options)
        self._reset_info = info
        self.achieved_state = np.array(state_obs["achieved_goal"], copy=True)
        self._goal_frame = self._decoded_goal = None
        frame = self._render()
        self._start_episode_context(frame)
        latent = self._latent_of(frame, state_obs)
        self._earlier_latents = [latent] * (self.frame_stack - 1)
        self.latent_goal = self._real_goal(state_obs) if self.mode is GoalMode.EVAL else self._imagined_goal()
        self._start_frame = frame
        return self._latent_obs(latent, state_obs), self._with_metrics(info, state_obs)

    def step(self, action: Array) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        state_obs, _, terminated, truncated, info = self.env.step(action)
        self.achieved_state = np.array(state_obs["achieved_goal"], copy=True)
        latent = self._latent_of(self._render(), state_obs)
        obs = self._latent_obs(latent, state_obs)
        if self.frame_stack > 1:
            self._earlier_latents = [latent, *self._earlier_latents[:-1]]
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        info = self._with_metrics(info, state_obs)
        info["latent_distance"] = float(self.reward_distance(obs["achieved_goal"], self.latent_goal))
        if self.frames_in_info:
            info.update(self._frame_info(state_obs))
        return obs, reward, terminated, truncated, info

    def render(self) -> Array | None:
        """The frame of the last step; rendering again would cost a second pass per step."""
        return None if self.last_frame is None else self.last_frame.copy()

    # ------------------------------------------------------------ goal-env interface
    def compute_reward(self, achieved_goal: Array, desired_goal: Array, info: Any) -> Array:
        """Batched reward of ``achieved_goal`` for ``desired_goal``; ``info`` is not needed."""
        return latent_reward(
            achieved_goal, desired_goal, self.reward_kind, self.sparse_threshold, self.reward_weights
        )

    def reward_distance(self, achieved: Array, desired: Array) -> Array:
        """The latent distance the reward pays, batched: weighted as ``reward_scale`` says."""
        return latent_distance(achieved, desired, self.reward_weights)

    def sample_prior_goals(self, latents: Array) -> Array:
        """One fresh imagined goal per row of ``latents``, each keeping that row's context part.

        The relabelling buffer calls this through the VecEnv, as it calls ``compute_reward``. For the CC-VAE
        only z is drawn from the prior and the row's own context c (its last ``context_dim`` entries) is kept.
        """
        latents = np.asarray(latents, dtype=np.float32)
        context_dim = self.representation.context_dim
        context = None
        if context_dim:
            context = torch.as_tensor(latents[:, -context_dim:], device=self.device)
        with torch.inference_mode():
            goals = self.representation.sample_prior(
                len(latents), context=context, generator=self._relabel_generator
            )
        return goals.cpu().numpy().astype(np.float32)

    def set_goal_pool(self, latents: Array, frames: Array) -> None:
        """Draw training goals uniformly from these latents (with their frames as the goal images) from the
        next reset on, instead of from the prior: Skew-Fit's exploration goals (``rig.online``)."""
        latents, frames = np.asarray(latents, dtype=np.float32), np.asarray(frames)
        if (
            latents.ndim != 2
            or latents.shape[1] != self.representation.latent_dim
            or len(latents) != len(frames)
        ):
            raise ValueError(
                f"a goal pool needs (N, {self.representation.latent_dim}) latents and N frames, "
                f"got {latents.shape} and {frames.shape}"
            )
        self._goal_pool = (latents, frames)

    def set_mode(self, mode: GoalMode | str) -> None:
        """Switch the goal source; it takes effect at the next reset."""
        self.mode = GoalMode(mode)

    # ---------------------------------------------------------------------- snapshots
    def get_snapshot(self) -> dict[str, Any]:
        """This env's full state mid-episode, for a checkpoint that continues bit-identically.

        It holds the inner env's snapshot (None when the env cannot take one), the episode counters of
        gymnasium's wrappers, this wrapper's goal and context, its generators, and the goal pool.
        ``restore_snapshot`` puts it into an env made with the same settings and representation.
        """
        wrappers = {
            type(layer).__name__: {name: getattr(layer, name) for name in fields}
            for layer, fields in self._stateful_wrappers()
        }
        return {
            "push": self.view.get_snapshot() if self.view.snapshots else None,
            "wrappers": wrappers,
            "mode": self.mode.value,
            "latent_goal": self.latent_goal.copy(),
            "earlier_latents": [latent.copy() for latent in self._earlier_latents],
            "last_frame": self.last_frame,
            "goal_frame": self._goal_frame,
            "decoded_goal": self._decoded_goal,
            "start_frame": self._start_frame,
            "context_images": None if self._context_images is None else self._context_images.cpu(),
            "context_latent": None if self._context_latent is None else self._context_latent.cpu(),
            "goal_pool": self._goal_pool,
            "goal_generator": self._goal_generator.get_state(),
            "relabel_generator": self._relabel_generator.get_state(),
        }

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        wrappers = snapshot["wrappers"]
        for layer, fields in self._stateful_wrappers():
            stored = wrappers.get(type(layer).__name__)
            if stored is None or set(stored) != set(fields):
                raise ValueError(f"the snapshot does not fit this env's {type(layer).__name__} wrapper")
            for name, value in stored.items():
                setattr(layer, name, value)
        if snapshot["push"] is not None:
            self.view.restore_snapshot(snapshot["push"])
        self.mode = GoalMode(snapshot["mode"])
        self.latent_goal = np.array(snapshot["latent_goal"], dtype=np.float32)
        # Snapshots from before frame stacking hold no earlier latents: those runs observe one frame.
        self._earlier_latents = [np.array(latent) for latent in snapshot.get("earlier_latents", [])]
        if len(self._earlier_latents) != self.frame_stack - 1:
            raise ValueError(
                f"the snapshot holds {len(self._earlier_latents) + 1} frames' latents; this env stacks "
                f"{self.frame_stack}"
            )
        self.last_frame, self._goal_frame = snapshot["last_frame"], snapshot["goal_frame"]
        self._decoded_goal, self._start_frame = snapshot["decoded_goal"], snapshot["start_frame"]
        context_images, context_latent = snapshot["context_images"], snapshot["context_latent"]
        self._context_images = None if context_images is None else context_images.to(self.device)
        self._context_latent = None if context_latent is None else context_latent.to(self.device)
        self._goal_pool = snapshot["goal_pool"]
        self._goal_generator.set_state(snapshot["goal_generator"])
        self._relabel_generator.set_state(snapshot["relabel_generator"])

    def _stateful_wrappers(self) -> list[tuple[gym.Wrapper[Any, Any, Any, Any], tuple[str, ...]]]:
        """The gymnasium wrappers between this env and the inner env that keep state across steps."""
        found = []
        layer = self.env
        while isinstance(layer, gym.Wrapper):
            fields = _WRAPPER_STATE.get(type(layer), ())
            if fields:
                found.append((layer, fields))
            layer = layer.env
        return found

    # ------------------------------------------------------------- for evaluation GIFs
    @property
    def goal_frame(self) -> Array:
        """The env's real goal image of this episode (the agent's goal in eval mode)."""
        if self._goal_frame is None:
            self._goal_frame = self.view.goal_image(self._reset_info)
        return self._goal_frame

    @property
    def decoded_goal(self) -> Array | None:
        """The latent goal decoded to an image; None for a representation without an image decoder (the
        state identity, the supervised encoder)."""
        if self.representation.output_kind != "image":
            return None
        if self._decoded_goal is None:
            with torch.inference_mode():
                latent = torch.as_tensor(self.latent_goal[None], device=self.device)
                self._decoded_goal = tensor_to_images(self.representation.decode(latent))[0]
        return self._decoded_goal

    # -------------------------------------------------------------------- internals
    def _seed_generators(self, seed: int | None) -> None:
        if seed is None:
            self._goal_generator.seed()
            self._relabel_generator.seed()
            return
        goal_seed, relabel_seed = np.random.SeedSequence(seed).generate_state(2)
        self._goal_generator.manual_seed(int(goal_seed))
        self._relabel_generator.manual_seed(int(relabel_seed))

    def _render(self) -> Array | None:
        self.last_frame = cast("Array | None", self.env.render()) if self.renders else None
        return self.last_frame

    def _start_episode_context(self, frame: Array | None) -> None:
        """The CC-VAE keeps the reset frame (and its latent c) as the context of the whole episode."""
        if self.representation.context_dim == 0:
            return
        assert frame is not None
        with torch.inference_mode():
            self._context_images = images_to_tensor(frame, self.device)
            self._context_latent = self.representation.encode_context(self._context_images)

    @property
    def push(self) -> PushEnv:
        """The inner ``PushEnv``, for the pusher-only tools (``rig.reward_geometry``)."""
        return push_env(self.env)

    @property
    def state_dim(self) -> int:
        """The size of the env's true state (its ``achieved_goal``), kept beside frames for diagnostics."""
        return int(goal_spaces(self.env)["achieved_goal"].shape[0])

    @property
    def can_snapshot(self) -> bool:
        """Whether the inner env takes snapshots, so that a resumed episode continues bit-identically."""
        return self.view.snapshots

    def _with_metrics(self, info: dict[str, Any], state_obs: Obs) -> dict[str, Any]:
        """``info`` with rig's default goal metric added when the env declares none."""
        if any(metric.name == DEFAULT_METRIC for metric in self.goal_metrics) and DEFAULT_METRIC not in info:
            return {**info, DEFAULT_METRIC: goal_distance(state_obs)}
        return dict(info)

    def _observation_dim(self, env: gym.Env[Any, Any]) -> int:
        """The state oracle observes the env's own observation; every other representation its latent."""
        if self.uses_images:
            return int(self.representation.latent_dim) * self.frame_stack
        return int(goal_spaces(env)["observation"].shape[0])

    def _latent_of(self, frame: Array | None, state_obs: Obs) -> Array:
        """The current latent: the encoded frame, or the encoded achieved state for a state representation."""
        if not self.uses_images:
            return self._encode_state(state_obs["achieved_goal"])
        assert frame is not None
        return self._encode(frame)

    def _encode(self, frame: Array) -> Array:
        with torch.inference_mode():
            images = images_to_tensor(frame, self.device)
            latent = self.representation.encode(
                images, context=self._context_images, context_latent=self._context_latent
            )
        return latent[0].cpu().numpy().astype(np.float32)

    def _encode_state(self, state: Array) -> Array:
        # The oracle goes through encode too (the identity, with its shape check): one code path for all.
        with torch.inference_mode():
            states = torch.as_tensor(np.asarray(state, dtype=np.float32)[None], device=self.device)
            latent = self.representation.encode(states)
        return latent[0].cpu().numpy().astype(np.float32)

    def _frame_info(self, state_obs: Obs) -> dict[str, Any]:
        assert self.last_frame is not None
        info: dict[str, Any] = {"frame": self.last_frame, "state": state_obs["achieved_goal"].copy()}
        if self._start_frame is not None:  # the episode's first step
            info["start_frame"], info["goal_frame"] = self._start_frame, self._training_goal_frame()
            self._start_frame = None
        return info

    def _training_goal_frame(self) -> Array:
        """This episode's goal image: a pool goal's frame, the decoded imagined goal, or the real one."""
        if self.mode is GoalMode.EVAL:
            return self.goal_frame
        if self._goal_frame is None:
            decoded = self.decoded_goal
            assert decoded is not None, "frames_in_info needs a representation that decodes images"
            self._goal_frame = decoded
        return self._goal_frame

    def _imagined_goal(self) -> Array:
        if self._goal_pool is not None:
            latents, frames = self._goal_pool
            index = int(torch.randint(len(latents), (1,), device=self.device, generator=self._goal_generator))
            self._goal_frame = frames[index]
            return latents[index].copy()
        with torch.inference_mode():
            goal = self.representation.sample_prior(
                1, context=self._context_latent, generator=self._goal_generator
            )
        return goal[0].cpu().numpy().astype(np.float32)

    def _real_goal(self, state_obs: Obs) -> Array:
        if not self.uses_images:
            return self._encode_state(state_obs["desired_goal"])
        return self._encode(self.goal_frame)

    def _latent_obs(self, latent: Array, state_obs: Obs) -> Obs:
        if self.uses_images:
            observation = (
                np.concatenate([latent, *self._earlier_latents]) if self._earlier_latents else latent
            )
        else:
            observation = np.asarray(state_obs["observation"], dtype=np.float32)
        return {
            "observation": observation,
            "achieved_goal": latent.copy(),
            "desired_goal": self.latent_goal.copy(),
        }


_WRAPPER_STATE: dict[type, tuple[str, ...]] = {
    gym.wrappers.TimeLimit: ("_elapsed_steps",),
    gym.wrappers.OrderEnforcing: ("_has_reset",),
    # Its checks ran on the first reset, step and render; a restored env must not redo them mid-episode.
    gym.wrappers.PassiveEnvChecker: (
        "checked_reset",
        "checked_step",
        "checked_render",
        "checked_data_reuse",
        "_previous_data",
    ),
}
"""The attributes of gymnasium's wrappers that a mid-episode snapshot must carry."""


def _latent_space(latent_dim: int, observation_dim: int) -> spaces.Dict:
    # Latents are unbounded (prior samples are Gaussian); SB3 only flattens these, never rescales them.
    goal = spaces.Box(-np.inf, np.inf, shape=(latent_dim,), dtype=np.float32)
    observation = spaces.Box(-np.inf, np.inf, shape=(observation_dim,), dtype=np.float32)
    return spaces.Dict({"observation": observation, "achieved_goal": goal, "desired_goal": goal})
