"""The core of rig's planar tasks: a mocap-driven hand moves one object on a table under a top-down camera.

``MocapHandEnv`` holds what the pusher (``envs.push``) and the door (``envs.door``) share: the step loop,
frames, rig's goal-env members, teleports, goal images and snapshots. A task's state is
``[hand_x, hand_y, *object]``; a subclass names the object's part of it and says how to place it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.mjtools import (
    check_render_mode,
    negative_distance,
    physics_preserved,
    restore_physics,
    save_physics,
)

Array = np.ndarray


@dataclass(frozen=True)
class Box2D:
    """An axis-aligned rectangle in the table plane."""

    low: tuple[float, float]
    high: tuple[float, float]

    def sample(self, rng: np.random.Generator) -> Array:
        return rng.uniform(self.low, self.high)

    def contains(self, xy: Array, tol: float = 1e-6) -> bool:
        return bool(np.all(xy >= np.asarray(self.low) - tol) and np.all(xy <= np.asarray(self.high) + tol))

    def clip(self, xy: Array) -> Array:
        return np.clip(xy, self.low, self.high)


class HandIds:
    """Indices every mocap-hand scene has (the hand's slide joints, the top-down camera), looked up once."""

    def __init__(self, model: mujoco.MjModel) -> None:
        hand_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "hand_x")
        self.hand_qpos = int(model.jnt_qposadr[hand_joint])
        self.camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "topview")


class MocapHandEnv(gym.Env[dict[str, Array], Array]):
    """A goal env whose 2-D action moves a mocap hand target; the goal also fixes where the hand should end.

    Subclasses set the class attributes below and ``self._ids`` (a ``HandIds``), and implement ``state``,
    ``sample_goal``, ``sample_state``, ``set_state``, ``goal_box``, ``_reset_scene``, ``_place_object``,
    ``_object_of``, ``_check_object_goal`` and ``_get_info``.

    Args:
        asset: the MJCF file of the scene.
        render_mode: ``"rgb_array"`` or ``None``.
        width, height: image size of ``render()`` and ``goal_image()``.
        action_scale: metres moved by the hand per unit of action.
        frame_skip: physics steps (0.01 s each) per env step.
        success_threshold: the task's success distance (its unit is the task's).
        state_space: the box of ``observation``, ``achieved_goal`` and ``desired_goal``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    hand_box: Box2D
    """where the hand can go"""
    hand_goal_box: Box2D
    """where hand goals lie"""
    state_names: tuple[str, ...]
    """the names of the state's entries, hand first"""
    reset_options: tuple[str, ...] = ("goal",)
    """the keys ``reset`` accepts in ``options``"""
    _ids: HandIds

    def __init__(
        self,
        asset: Path,
        render_mode: str | None,
        width: int,
        height: int,
        action_scale: float,
        frame_skip: int,
        success_threshold: float,
        state_space: spaces.Box,
    ) -> None:
        check_render_mode(render_mode)
        if int(width) <= 0 or int(height) <= 0:
            raise ValueError(f"width and height must be positive, got width={width}, height={height}")
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.action_scale = float(action_scale)
        self.frame_skip = int(frame_skip)
        self.success_threshold = float(success_threshold)

        self.model = mujoco.MjModel.from_xml_path(str(asset))
        self.model.vis.global_.offwidth = max(self.width, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(self.height, self.model.vis.global_.offheight)
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._scene_option = mujoco.MjvOption()
        self.goal = self.goal_box()[0]

        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {"observation": state_space, "achieved_goal": state_space, "desired_goal": state_space}
        )

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        """The task's start (``_reset_scene``); the goal is drawn (or given as ``options["goal"]``)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - set(self.reset_options)
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; valid: {list(self.reset_options)}")
        self._reset_scene(options)
        self.goal = self.sample_goal() if options.get("goal") is None else self._checked_goal(options["goal"])
        return self._get_obs(), self._get_info()

    def step(self, action: Array) -> tuple[dict[str, Array], float, bool, bool, dict[str, Any]]:
        delta = self._checked_action(action) * self.action_scale
        self.data.mocap_pos[0, :2] = self._hand_target(delta)
        for _ in range(self.frame_skip):
            mujoco.mj_step(self.model, self.data)
        # mj_step leaves positions computed before its last integration; renders must show the new state.
        mujoco.mj_kinematics(self.model, self.data)
        obs, info = self._get_obs(), self._get_info()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        terminated = bool(self.compute_terminated(obs["achieved_goal"], obs["desired_goal"], info))
        truncated = bool(self.compute_truncated(obs["achieved_goal"], obs["desired_goal"], info))
        return obs, reward, terminated, truncated, info

    def render(self) -> Array | None:
        if self.render_mode != "rgb_array":
            return None
        return self._render_frame()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------ goal-env interface
    def compute_reward(self, achieved_goal: Array, desired_goal: Array, info: Any) -> Array:
        """Negative Euclidean state distance; works on single goals and on batches."""
        return negative_distance(achieved_goal, desired_goal)

    def compute_terminated(self, achieved_goal: Array, desired_goal: Array, info: Any) -> Array:
        """Episodes never end early: the agent should stay at the goal once it gets there."""
        return np.zeros(np.shape(achieved_goal)[:-1], dtype=bool)

    def compute_truncated(self, achieved_goal: Array, desired_goal: Array, info: Any) -> Array:
        """Truncation comes from the ``TimeLimit`` wrapper (``max_episode_steps``)."""
        return np.zeros(np.shape(achieved_goal)[:-1], dtype=bool)

    # ----------------------------------------------------------- state and goal API
    @property
    def hand(self) -> Array:
        """The hand's current ``[x, y]``."""
        return self.data.qpos[self._ids.hand_qpos : self._ids.hand_qpos + 2].copy()

    @property
    def state(self) -> Array:
        """The current state vector (``state_names``)."""
        raise NotImplementedError

    def get_snapshot(self) -> dict[str, Any]:
        """Everything the rest of this episode depends on: physics, goal, the task's extras, random state.

        ``restore_snapshot`` of it in any env of the same class and settings continues bit-identically.
        """
        return {
            "physics": self._save_physics(),
            "goal": self.goal.copy(),
            **self._snapshot_extras(),
            "np_random": self.np_random.bit_generator.state,
        }

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        self._restore_snapshot_extras(snapshot)
        self._restore_physics(snapshot["physics"])
        self.goal = np.array(snapshot["goal"], dtype=np.float64)
        self.np_random.bit_generator.state = snapshot["np_random"]

    def sample_goal(self) -> Array:
        raise NotImplementedError

    def sample_state(self) -> Array:
        raise NotImplementedError

    def set_state(self, hand_xy: Array, obj: Any) -> None:
        """Teleport hand and object, at rest, and update the scene; ValueError if the state is invalid."""
        raise NotImplementedError

    def set_to_state(self, state: Array) -> None:
        """``set_state`` of a state vector (``state_names``), as ``sample_state`` returns."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (len(self.state_names),):
            raise ValueError(f"state must be {self._state_text()}, got shape {state.shape}")
        self.set_state(state[:2], self._object_of(state))

    def goal_box(self) -> tuple[Array, Array]:
        """The box ``sample_goal`` draws from: where the state oracle imagines goals."""
        raise NotImplementedError

    def goal_image(self) -> Array:
        """Render the scene with hand and object at the goal; the simulation state is left untouched."""
        with physics_preserved(self.model, self.data):
            self._place(self.goal[:2], self._object_of(self.goal))
            return self._render_frame()

    # ------------------------------------------------------------ what tasks fill in
    def _reset_scene(self, options: dict[str, Any]) -> None:
        """Place hand and object where an episode starts (``options`` as ``reset`` got them)."""
        raise NotImplementedError

    def _place_object(self, obj: Any) -> None:
        """Write the object's part of the state (as ``_object_of`` gives it) into ``qpos``."""
        raise NotImplementedError

    def _object_of(self, state: Array) -> Any:
        """The object's part of a state vector, as ``set_state`` takes it."""
        raise NotImplementedError

    def _check_object_goal(self, goal: Array) -> None:
        """ValueError if the object's part of a (finite, well-shaped) goal is out of range."""
        raise NotImplementedError

    def _get_info(self) -> dict[str, Any]:
        raise NotImplementedError

    def _hand_target(self, delta: Array) -> Array:
        """Where the mocap target goes for a step of ``delta`` (m): moved from where it was, in the box."""
        return self.hand_box.clip(self.data.mocap_pos[0, :2] + delta)

    def _snapshot_extras(self) -> dict[str, Any]:
        """What else than physics, goal and random state a snapshot must hold."""
        return {}

    def _restore_snapshot_extras(self, snapshot: dict[str, Any]) -> None:
        """Restore what ``_snapshot_extras`` saved; runs before the physics are restored."""

    # -------------------------------------------------------------------- internals
    def _place(self, hand_xy: Array, obj: Any) -> None:
        qpos, hand = self.data.qpos, self._ids.hand_qpos
        qpos[hand : hand + 2] = hand_xy
        self._place_object(obj)
        self.data.qvel[:] = 0.0
        self.data.mocap_pos[0, :2] = hand_xy
        mujoco.mj_forward(self.model, self.data)

    def _save_physics(self) -> Array:
        return save_physics(self.model, self.data)

    def _restore_physics(self, state: Array) -> None:
        restore_physics(self.model, self.data, state)

    def _render_frame(self) -> Array:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
        self._renderer.update_scene(self.data, camera=self._ids.camera, scene_option=self._scene_option)
        return self._renderer.render().copy()

    def _get_obs(self) -> dict[str, Array]:
        state = self.state.astype(np.float32)
        return {
            "observation": state,
            "achieved_goal": state.copy(),
            "desired_goal": self.goal.astype(np.float32),
        }

    def _checked_action(self, action: Array) -> Array:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        return np.clip(action, -1.0, 1.0)

    def _checked_goal(self, goal: Array) -> Array:
        goal = np.asarray(goal, dtype=np.float64)
        size = len(self.state_names)
        if goal.shape != (size,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"goal must be a finite {size}-vector {self._state_text()}, got {goal}")
        if not self.hand_goal_box.contains(goal[:2]):
            raise ValueError(f"hand goal {goal[:2]} is outside the hand-goal range {self.hand_goal_box}")
        self._check_object_goal(goal)
        return goal

    def _check_hand(self, hand_xy: Array) -> None:
        """ValueError if a (finite) hand position is outside the hand box."""
        if not self.hand_box.contains(hand_xy):
            raise ValueError(f"hand position {hand_xy} is outside the hand box {self.hand_box}")

    def _state_text(self) -> str:
        return f"[{', '.join(self.state_names)}]"
