"""Visual door opening: a mocap-driven hand swings a hinged door to a goal angle, then moves to a goal.

The planar counterpart of Skew-Fit's door task (``SawyerDoorHookEnv``): the door is hinged on a vertical
axis, so the fixed top-down camera sees its angle as the direction of a bar. The hand opens it by pushing
its handle end from the front (the side the hand starts on) and closes it by going round the free end and
pushing from behind. The hinge is damped and springless, so the door stays where it is left.

State and goal are ``[hand_x, hand_y, door_angle]``: metres relative to the table centre, and radians
from closed (0) counter-clockwise, opening away from the hand's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.push import Box2D

ASSET = Path(__file__).parent / "assets" / "door.xml"
Array = np.ndarray

HINGE = np.array([-0.13, -0.05])
"""where the door's vertical hinge axis meets the table"""
DOOR_LENGTH = 0.18
"""hinge axis to the door's free end (m)"""
DOOR_HALF_WIDTH = 0.014
"""half the door's thickness at its thickest, the handle (m)"""
ANGLE_RANGE = (0.0, 0.9)
"""the hinge's limits (rad): closed, and a little past the widest goal"""
ANGLE_GOAL_RANGE = (0.0, 0.83)
"""door-angle goals (rad), Skew-Fit's door range"""
HAND_BOX = Box2D((-0.16, -0.16), (0.16, 0.16))
HAND_GOAL_BOX = Box2D((-0.10, -0.16), (0.10, -0.10))
"""hand goals lie in front of the door, clear of it at every angle"""
HAND_START = np.array([0.0, -0.13])
HAND_RADIUS = 0.025
CONTACT_DISTANCE = HAND_RADIUS + DOOR_HALF_WIDTH
"""closest distance (m) between the hand's centre and the door's mid-plane without overlap"""
# Keeps sampled hand positions a few millimetres off the door, so that a teleported state starts
# without interpenetration.
CLEARANCE = 0.005
STATE_LOW = np.array([-0.2, -0.2, -0.1])
STATE_HIGH = np.array([0.2, 0.2, 1.0])


class DoorEnv(gym.Env[dict[str, Array], Array]):
    """Swing a door to a goal angle with a 2-D hand; the goal also fixes where the hand should end.

    Args:
        render_mode: ``"rgb_array"`` or ``None``.
        width, height: image size of ``render()`` and ``goal_image()``.
        action_scale: metres moved by the hand per unit of action.
        frame_skip: physics steps (0.01 s each) per env step.
        success_threshold: door-angle difference (rad) counted as success.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    goal_metrics = {"angle_difference": "rad", "hand_distance": "m"}
    """the distances in ``info`` that evaluation reports, the headline first (rig's env protocol)"""
    state_factors = {"hand": (0, 2), "door": (2, 3)}
    """the parts of ``achieved_goal`` (``state``)"""

    def __init__(
        self,
        render_mode: str | None = None,
        width: int = 48,
        height: int = 48,
        action_scale: float = 0.02,
        frame_skip: int = 10,
        success_threshold: float = 0.1,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if int(width) <= 0 or int(height) <= 0:
            raise ValueError(f"width and height must be positive, got width={width}, height={height}")
        if not success_threshold > 0.0:
            raise ValueError(f"success_threshold must be positive, got {success_threshold}")
        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.action_scale = float(action_scale)
        self.frame_skip = int(frame_skip)
        self.success_threshold = float(success_threshold)

        self.model = mujoco.MjModel.from_xml_path(str(ASSET))
        self.model.vis.global_.offwidth = max(self.width, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(self.height, self.model.vis.global_.offheight)
        self.data = mujoco.MjData(self.model)
        self._ids = _ModelIds(self.model)
        self._renderer: mujoco.Renderer | None = None
        self.goal = np.array([*HAND_GOAL_BOX.low, ANGLE_GOAL_RANGE[0]], dtype=np.float64)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        state_space = spaces.Box(
            STATE_LOW.astype(np.float32), STATE_HIGH.astype(np.float32), dtype=np.float32
        )
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {"observation": state_space, "achieved_goal": state_space, "desired_goal": state_space}
        )

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        """Hand at ``HAND_START``, door closed; the goal is drawn (or given as ``options["goal"]``)."""
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"goal"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; valid: ['goal']")
        self._place(HAND_START, ANGLE_RANGE[0])
        self.goal = self.sample_goal() if options.get("goal") is None else self._checked_goal(options["goal"])
        return self._get_obs(), self._get_info()

    def step(self, action: Array) -> tuple[dict[str, Array], float, bool, bool, dict[str, Any]]:
        # The hand's target is set from where the hand is, not from the last target: pressed against the
        # door (or the door against its stop), the target is never more than one step ahead, so the hand
        # cannot be pulled through the door.
        delta = self._checked_action(action) * self.action_scale
        self.data.mocap_pos[0, :2] = HAND_BOX.clip(self.hand + delta)
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
        """Negative Euclidean distance of ``[hand_x, hand_y, angle]`` (m and rad); batched or single."""
        diff = np.asarray(achieved_goal, dtype=np.float64) - np.asarray(desired_goal, dtype=np.float64)
        return -np.linalg.norm(diff, axis=-1)

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
    def angle(self) -> float:
        """The door's current angle (rad)."""
        return float(self.data.qpos[self._ids.hinge_qpos])

    @property
    def state(self) -> Array:
        """The current ``[hand_x, hand_y, door_angle]``."""
        return np.array([*self.hand, self.angle])

    def get_snapshot(self) -> dict[str, Any]:
        """Everything the rest of this episode depends on: physics, goal and random state.

        ``restore_snapshot`` of it in any ``DoorEnv`` of the same settings continues bit-identically.
        """
        return {
            "physics": self._save_physics(),
            "goal": self.goal.copy(),
            "np_random": self.np_random.bit_generator.state,
        }

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        self._restore_physics(np.asarray(snapshot["physics"], dtype=np.float64))
        self.goal = np.array(snapshot["goal"], dtype=np.float64)
        self.np_random.bit_generator.state = snapshot["np_random"]

    def sample_goal(self) -> Array:
        """A goal drawn uniformly from the hand-goal box and the door-angle goal range."""
        hand = HAND_GOAL_BOX.sample(self.np_random)
        return np.array([*hand, self.np_random.uniform(*ANGLE_GOAL_RANGE)])

    def sample_state(self) -> Array:
        """A random valid state: door angle in the goal range, hand anywhere in its box clear of the door."""
        angle = float(self.np_random.uniform(*ANGLE_GOAL_RANGE))
        for _ in range(1000):
            hand = HAND_BOX.sample(self.np_random)
            if door_distance(hand, angle) >= CONTACT_DISTANCE + CLEARANCE:
                return np.array([*hand, angle])
        raise RuntimeError(f"could not place the hand clear of the door at angle {angle}")

    def set_state(self, hand_xy: Array, angle: float) -> None:
        """Teleport hand and door, at rest, and update the scene; ValueError if the state is invalid."""
        hand_xy = np.asarray(hand_xy, dtype=np.float64)
        if hand_xy.shape != (2,) or not np.all(np.isfinite([*hand_xy, angle])):
            raise ValueError(f"hand_xy must be a finite 2-vector and angle finite, got {hand_xy}, {angle}")
        if not HAND_BOX.contains(hand_xy):
            raise ValueError(f"hand position {hand_xy} is outside the hand box {HAND_BOX}")
        if not ANGLE_RANGE[0] <= angle <= ANGLE_RANGE[1]:
            raise ValueError(f"door angle {angle} is outside the hinge range {ANGLE_RANGE}")
        if door_distance(hand_xy, angle) < CONTACT_DISTANCE:
            raise ValueError(f"hand {hand_xy} would be inside the door at angle {angle}")
        self._place(hand_xy, angle)

    def set_to_state(self, state: Array) -> None:
        """``set_state`` of a ``[hand_x, hand_y, door_angle]`` vector, as ``sample_state`` returns."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (3,):
            raise ValueError(f"state must be [hand_x, hand_y, door_angle], got shape {state.shape}")
        self.set_state(state[:2], float(state[2]))

    def goal_box(self) -> tuple[Array, Array]:
        """The box ``sample_goal`` draws from, ``[hand, angle]``: where the state oracle imagines goals."""
        return (
            np.array([*HAND_GOAL_BOX.low, ANGLE_GOAL_RANGE[0]]),
            np.array([*HAND_GOAL_BOX.high, ANGLE_GOAL_RANGE[1]]),
        )

    def goal_image(self) -> Array:
        """Render the scene with hand and door at the goal; the simulation state is left untouched."""
        saved = self._save_physics()
        try:
            self._place(self.goal[:2], float(self.goal[2]))
            return self._render_frame()
        finally:
            self._restore_physics(saved)

    # -------------------------------------------------------------------- internals
    def _place(self, hand_xy: Array, angle: float) -> None:
        ids, qpos = self._ids, self.data.qpos
        qpos[ids.hand_qpos : ids.hand_qpos + 2] = hand_xy
        qpos[ids.hinge_qpos] = angle
        self.data.qvel[:] = 0.0
        self.data.mocap_pos[0, :2] = hand_xy
        mujoco.mj_forward(self.model, self.data)

    def _save_physics(self) -> Array:
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def _restore_physics(self, state: Array) -> None:
        mujoco.mj_setState(self.model, self.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)

    def _render_frame(self) -> Array:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
        self._renderer.update_scene(self.data, camera=self._ids.camera)
        return self._renderer.render().copy()

    def _get_obs(self) -> dict[str, Array]:
        state = self.state.astype(np.float32)
        return {
            "observation": state,
            "achieved_goal": state.copy(),
            "desired_goal": self.goal.astype(np.float32),
        }

    def _get_info(self) -> dict[str, Any]:
        state = self.state
        angle_difference = float(abs(state[2] - self.goal[2]))
        return {
            "angle_difference": angle_difference,
            "hand_distance": float(np.linalg.norm(state[:2] - self.goal[:2])),
            "is_success": angle_difference < self.success_threshold,
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
        if goal.shape != (3,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"goal must be a finite 3-vector [hand_x, hand_y, door_angle], got {goal}")
        if not HAND_GOAL_BOX.contains(goal[:2]):
            raise ValueError(f"hand goal {goal[:2]} is outside the hand-goal range {HAND_GOAL_BOX}")
        if not ANGLE_GOAL_RANGE[0] <= goal[2] <= ANGLE_GOAL_RANGE[1]:
            raise ValueError(f"door-angle goal {goal[2]} is outside the goal range {ANGLE_GOAL_RANGE}")
        return goal


def door_frame(point: Array, angle: float) -> Array:
    """``point`` in the door's frame: ``[along the door from the hinge, across it towards its back]``.

    The back is the side the door opens towards (counter-clockwise); the front is where the hand starts.
    """
    offset = np.asarray(point, dtype=np.float64) - HINGE
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-np.sin(angle), np.cos(angle)])
    return np.array([offset @ along, offset @ across])


def from_door_frame(local: Array, angle: float) -> Array:
    """The table point at ``local = [along, across]`` in the door's frame at ``angle``."""
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-np.sin(angle), np.cos(angle)])
    return HINGE + local[0] * along + local[1] * across


def door_distance(point: Array, angle: float) -> float:
    """Distance from ``point`` to the door's mid-line segment (hinge to free end) at ``angle``."""
    along, across = door_frame(point, angle)
    return float(np.hypot(along - np.clip(along, 0.0, DOOR_LENGTH), across))


class _ModelIds:
    """Indices into the compiled model, looked up once."""

    def __init__(self, model: mujoco.MjModel) -> None:
        hand_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "hand_x")
        hinge_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "hinge")
        self.hand_qpos = int(model.jnt_qposadr[hand_joint])
        self.hinge_qpos = int(model.jnt_qposadr[hinge_joint])
        self.camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "topview")
