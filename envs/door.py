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

import mujoco
import numpy as np
from gymnasium import spaces

from envs.mocap import Box2D, HandIds, MocapHandEnv

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


class DoorEnv(MocapHandEnv):
    """Swing a door to a goal angle with a 2-D hand; the goal also fixes where the hand should end.

    Args:
        render_mode: ``"rgb_array"`` or ``None``.
        width, height: image size of ``render()`` and ``goal_image()``.
        action_scale: metres moved by the hand per unit of action.
        frame_skip: physics steps (0.01 s each) per env step.
        success_threshold: door-angle difference (rad) counted as success.
    """

    goal_metrics = {"angle_difference": "rad", "hand_distance": "m"}
    """the distances in ``info`` that evaluation reports, the headline first (rig's env protocol)"""
    state_factors = {"hand": (0, 2), "door": (2, 3)}
    """the parts of ``achieved_goal`` (``state``)"""
    hand_box = HAND_BOX
    hand_goal_box = HAND_GOAL_BOX
    state_names = ("hand_x", "hand_y", "door_angle")
    _ids: _ModelIds

    def __init__(
        self,
        render_mode: str | None = None,
        width: int = 48,
        height: int = 48,
        action_scale: float = 0.02,
        frame_skip: int = 10,
        success_threshold: float = 0.1,
    ) -> None:
        state_space = spaces.Box(
            STATE_LOW.astype(np.float32), STATE_HIGH.astype(np.float32), dtype=np.float32
        )
        super().__init__(
            ASSET, render_mode, width, height, action_scale, frame_skip, success_threshold, state_space
        )
        if not success_threshold > 0.0:
            raise ValueError(f"success_threshold must be positive, got {success_threshold}")
        self._ids = _ModelIds(self.model)

    # ----------------------------------------------------------- state and goal API
    @property
    def angle(self) -> float:
        """The door's current angle (rad)."""
        return float(self.data.qpos[self._ids.hinge_qpos])

    @property
    def state(self) -> Array:
        """The current ``[hand_x, hand_y, door_angle]``."""
        return np.array([*self.hand, self.angle])

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
        self._check_hand(hand_xy)
        if not ANGLE_RANGE[0] <= angle <= ANGLE_RANGE[1]:
            raise ValueError(f"door angle {angle} is outside the hinge range {ANGLE_RANGE}")
        if door_distance(hand_xy, angle) < CONTACT_DISTANCE:
            raise ValueError(f"hand {hand_xy} would be inside the door at angle {angle}")
        self._place(hand_xy, angle)

    def goal_box(self) -> tuple[Array, Array]:
        """The box ``sample_goal`` draws from, ``[hand, angle]``: where the state oracle imagines goals."""
        return (
            np.array([*HAND_GOAL_BOX.low, ANGLE_GOAL_RANGE[0]]),
            np.array([*HAND_GOAL_BOX.high, ANGLE_GOAL_RANGE[1]]),
        )

    # ------------------------------------------------------------------ the task's parts
    def _reset_scene(self, options: dict[str, Any]) -> None:
        """Hand at ``HAND_START``, door closed."""
        self._place(HAND_START, ANGLE_RANGE[0])

    def _hand_target(self, delta: Array) -> Array:
        # The hand's target is set from where the hand is, not from the last target: pressed against the
        # door (or the door against its stop), the target is never more than one step ahead, so the hand
        # cannot be pulled through the door.
        return HAND_BOX.clip(self.hand + delta)

    def _place_object(self, angle: float) -> None:
        self.data.qpos[self._ids.hinge_qpos] = angle

    def _object_of(self, state: Array) -> float:
        return float(state[2])

    def _check_object_goal(self, goal: Array) -> None:
        if not ANGLE_GOAL_RANGE[0] <= goal[2] <= ANGLE_GOAL_RANGE[1]:
            raise ValueError(f"door-angle goal {goal[2]} is outside the goal range {ANGLE_GOAL_RANGE}")

    # -------------------------------------------------------------------- internals
    def _get_info(self) -> dict[str, Any]:
        state = self.state
        angle_difference = float(abs(state[2] - self.goal[2]))
        return {
            "angle_difference": angle_difference,
            "hand_distance": float(np.linalg.norm(state[:2] - self.goal[:2])),
            "is_success": angle_difference < self.success_threshold,
        }


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


class _ModelIds(HandIds):
    """Indices into the compiled model, looked up once."""

    def __init__(self, model: mujoco.MjModel) -> None:
        super().__init__(model)
        hinge_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "hinge")
        self.hinge_qpos = int(model.jnt_qposadr[hinge_joint])
