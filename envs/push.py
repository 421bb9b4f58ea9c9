"""Planar visual pushing: a mocap-driven hand pushes one object towards a goal on a table.

State and goal are ``[hand_x, hand_y, puck_x, puck_y]`` in metres, relative to the table centre,
which is also the puck's start. Images come from ``render()`` through a fixed top-down camera.
The geometry follows the published visual pusher (see ``REFERENCE.md`` in the project notes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces

from envs.appearance import PALETTES, SHAPES, Appearance, sample_appearance
from envs.mocap import Box2D, HandIds, MocapHandEnv

ASSET = Path(__file__).parent / "assets" / "push.xml"
Array = np.ndarray

HAND_BOX = Box2D((-0.10, -0.10), (0.10, 0.10))
HAND_GOAL_BOX = Box2D((-0.10, -0.05), (0.10, 0.05))
PUCK_GOAL_BOX = Box2D((-0.15, -0.10), (0.15, 0.10))
WALL_HALF_WIDTH = 0.23
"""half the side of the table inside the walls (push.xml: walls at 0.245, 0.015 thick)"""
HAND_START = np.array([0.0, -0.09])
PUCK_START = np.array([0.0, 0.0])
HAND_RADIUS = 0.025
PUCK_RADIUS = 0.04
PUCK_HALF_HEIGHT = 0.015
# Keeps sampled hand and puck positions a few millimetres apart, so that a teleported state
# starts without interpenetration.
CLEARANCE = 0.005
TABLE_HALF_WIDTH = 0.25
"""The top-down camera sees the table square [-0.25, 0.25]^2 metres, walls included: its height times the
tangent of half its field of view in ``assets/push.xml`` (``tests/test_envs.py`` checks the two agree)."""
TABLE_RGB = np.array([219.0, 219.0, 209.0]) / 255.0
"""The table as rendered, in [0, 1]: the 8-bit colour of the ``table`` geom's material in ``assets/push.xml``
(``tests/test_envs.py`` checks the two agree)."""


class PushEnv(MocapHandEnv):
    """Push a puck to a goal with a 2-D hand; the goal also fixes where the hand should end.

    Args:
        render_mode: ``"rgb_array"`` or ``None``.
        width, height: image size of ``render()`` and ``goal_image()``.
        action_scale: metres moved by the hand target per unit of action.
        frame_skip: physics steps (0.01 s each) per env step.
        success_threshold: puck-to-goal distance in metres counted as success.
        random_puck_start: start the puck uniformly in the puck-goal box instead of the centre.
        multi_object: draw the object's colour, size and shape anew at every reset.
        palette: ``"train"`` or ``"heldout"`` colour palette for ``multi_object``.
        radius_range: object radius (half width for boxes) range for ``multi_object``.
        shapes: object shapes to draw from for ``multi_object``.
    """

    goal_metrics = {"puck_distance": "m", "hand_distance": "m"}
    """the distances in ``info`` that evaluation reports, the headline first (rig's env protocol)"""
    state_factors = {"hand": (0, 2), "puck": (2, 4)}
    """the parts of ``achieved_goal`` (``state``)"""
    hand_box = HAND_BOX
    hand_goal_box = HAND_GOAL_BOX
    state_names = ("hand_x", "hand_y", "puck_x", "puck_y")
    reset_options = ("goal", "random_puck_start")
    _ids: _ModelIds

    def __init__(
        self,
        render_mode: str | None = None,
        width: int = 48,
        height: int = 48,
        action_scale: float = 0.02,
        frame_skip: int = 10,
        success_threshold: float = 0.05,
        random_puck_start: bool = False,
        multi_object: bool = False,
        palette: str = "train",
        radius_range: tuple[float, float] = (0.035, 0.05),
        shapes: tuple[str, ...] = SHAPES,
    ) -> None:
        state_space = spaces.Box(-0.3, 0.3, shape=(4,), dtype=np.float32)
        super().__init__(
            ASSET, render_mode, width, height, action_scale, frame_skip, success_threshold, state_space
        )
        if palette not in PALETTES:
            raise ValueError(f"unknown palette {palette!r}; choose one of {sorted(PALETTES)}")
        unknown_shapes = set(shapes) - set(SHAPES)
        if not shapes or unknown_shapes:
            raise ValueError(f"shapes must be a non-empty subset of {SHAPES}, got {tuple(shapes)}")
        low, high = radius_range
        if not 0 < low <= high <= 0.06:
            raise ValueError(f"radius_range must satisfy 0 < low <= high <= 0.06, got {radius_range}")
        self.random_puck_start = bool(random_puck_start)
        self.multi_object = bool(multi_object)
        self.palette = palette
        self.radius_range = (float(low), float(high))
        self.shapes = tuple(shapes)

        self._ids = _ModelIds(self.model)
        self._scene_option.geomgroup[_HIDDEN_GROUP] = 0
        self.appearance = Appearance(rgb=_PUSH_RGB, radius=PUCK_RADIUS, shape="cylinder")
        self._apply_appearance(self.appearance)

    # ----------------------------------------------------------- state and goal API
    @property
    def state(self) -> Array:
        """The current ``[hand_x, hand_y, puck_x, puck_y]``."""
        hand = self.data.qpos[self._ids.hand_qpos : self._ids.hand_qpos + 2]
        puck = self.data.qpos[self._ids.puck_qpos : self._ids.puck_qpos + 2]
        return np.concatenate([hand, puck])

    def sample_goal(self) -> Array:
        """A goal drawn uniformly from the goal boxes, with hand and object not overlapping."""
        puck_goal = PUCK_GOAL_BOX.sample(self.np_random)
        hand_goal = self._sample_separated(HAND_GOAL_BOX, puck_goal)
        return np.concatenate([hand_goal, puck_goal])

    def sample_state(self) -> Array:
        """A random valid state: hand anywhere in its box, object anywhere in the puck-goal box."""
        puck_xy = PUCK_GOAL_BOX.sample(self.np_random)
        return np.concatenate([self._sample_separated(HAND_BOX, puck_xy), puck_xy])

    def set_state(self, hand_xy: Array, puck_xy: Array) -> None:
        """Teleport hand and object, at rest, and update the scene."""
        hand_xy, puck_xy = np.asarray(hand_xy, dtype=np.float64), np.asarray(puck_xy, dtype=np.float64)
        if hand_xy.shape != (2,) or puck_xy.shape != (2,) or not np.all(np.isfinite([*hand_xy, *puck_xy])):
            raise ValueError(f"hand_xy and puck_xy must be finite 2-vectors, got {hand_xy}, {puck_xy}")
        self._check_hand(hand_xy)
        reach = self._object_reach()
        if np.any(np.abs(puck_xy) > reach + 1e-6):
            raise ValueError(
                f"object position {puck_xy} is off the table: its centre must lie within +-{reach:.3f} m "
                f"of the table centre in x and y (the walls at {WALL_HALF_WIDTH} m less its radius)"
            )
        if np.linalg.norm(hand_xy - puck_xy) < self._contact_distance():
            raise ValueError(f"hand {hand_xy} and object {puck_xy} would overlap")
        self._place(hand_xy, puck_xy)

    def goal_box(self) -> tuple[Array, Array]:
        """The box ``sample_goal`` draws from, ``[hand, puck]``: where the state oracle imagines goals."""
        return (
            np.concatenate([HAND_GOAL_BOX.low, PUCK_GOAL_BOX.low]),
            np.concatenate([HAND_GOAL_BOX.high, PUCK_GOAL_BOX.high]),
        )

    # ------------------------------------------------------------------ the task's parts
    def _reset_scene(self, options: dict[str, Any]) -> None:
        if self.multi_object:
            self._apply_appearance(
                sample_appearance(self.np_random, self.palette, self.radius_range, self.shapes)
            )
        puck_xy = PUCK_START
        if options.get("random_puck_start", self.random_puck_start):
            puck_xy = self._sample_separated(PUCK_GOAL_BOX, HAND_START)
        self._place(HAND_START, puck_xy)

    def _place_object(self, puck_xy: Array) -> None:
        puck = self._ids.puck_qpos
        self.data.qpos[puck : puck + 7] = [*puck_xy, PUCK_HALF_HEIGHT, 1.0, 0.0, 0.0, 0.0]

    def _object_of(self, state: Array) -> Array:
        return state[2:]

    def _check_object_goal(self, goal: Array) -> None:
        if not PUCK_GOAL_BOX.contains(goal[2:]):
            raise ValueError(f"puck goal {goal[2:]} is outside the puck-goal range {PUCK_GOAL_BOX}")
        if np.linalg.norm(goal[:2] - goal[2:]) < self._contact_distance():
            raise ValueError(f"goal {goal} puts hand and object on top of each other")

    def _snapshot_extras(self) -> dict[str, Any]:
        """The appearance: restored first, since it changes the model the physics run on."""
        appearance = self.appearance
        return {
            "appearance": {
                "rgb": tuple(appearance.rgb),
                "radius": appearance.radius,
                "shape": appearance.shape,
            }
        }

    def _restore_snapshot_extras(self, snapshot: dict[str, Any]) -> None:
        appearance = snapshot["appearance"]
        self._apply_appearance(
            Appearance(tuple(appearance["rgb"]), appearance["radius"], appearance["shape"])
        )

    # -------------------------------------------------------------------- internals
    def _get_info(self) -> dict[str, Any]:
        state = self.state
        info: dict[str, Any] = {
            "hand_distance": float(np.linalg.norm(state[:2] - self.goal[:2])),
            "puck_distance": float(np.linalg.norm(state[2:] - self.goal[2:])),
            "touch_distance": float(np.linalg.norm(state[:2] - state[2:])),
        }
        info["is_success"] = info["puck_distance"] < self.success_threshold
        if self.multi_object:
            info.update(self.appearance.as_info())
        return info

    @property
    def contact_distance(self) -> float:
        """Closest centre distance (m) at which hand and this episode's object do not overlap."""
        return self._contact_distance()

    def _object_reach(self) -> float:
        """How far from the table centre, in x and y, the object's centre can be at rest inside the walls."""
        return WALL_HALF_WIDTH - self.appearance.radius

    def _contact_distance(self) -> float:
        """Closest centre distance at which hand and object do not overlap."""
        footprint = self.appearance.radius * (np.sqrt(2.0) if self.appearance.shape == "box" else 1.0)
        return HAND_RADIUS + float(footprint)

    def _sample_separated(self, box: Box2D, other_xy: Array) -> Array:
        """Sample from ``box`` until the point clears ``other_xy`` by the contact distance."""
        min_distance = self._contact_distance() + CLEARANCE
        for _ in range(1000):
            xy = box.sample(self.np_random)
            if np.linalg.norm(xy - other_xy) >= min_distance:
                return xy
        raise RuntimeError(f"could not place a point in {box} clear of {other_xy}")

    def _apply_appearance(self, appearance: Appearance) -> None:
        """Show the geom of the drawn shape with the drawn colour and size; hide and disable the other."""
        self.appearance = appearance
        model, ids = self.model, self._ids
        for shape, geom in ids.puck_geoms.items():
            active = shape == appearance.shape
            model.geom_rgba[geom, :3] = appearance.rgb
            model.geom_group[geom] = 0 if active else _HIDDEN_GROUP
            model.geom_contype[geom] = 1 if active else 0
            model.geom_conaffinity[geom] = 1 if active else 0
            radius, height = appearance.radius, PUCK_HALF_HEIGHT
            is_box = shape == "box"
            model.geom_size[geom] = (radius, radius, height) if is_box else (radius, height, 0.0)
            # The broad phase reads these bounds, so they must follow the size.
            model.geom_rbound[geom] = float(np.sqrt((1 + is_box) * radius**2 + height**2))
            model.geom_aabb[geom] = [0.0, 0.0, 0.0, radius, radius, height]


_HIDDEN_GROUP = 3
_PUSH_RGB = (0.15, 0.35, 0.9)


class _ModelIds(HandIds):
    """Indices into the compiled model, looked up once."""

    def __init__(self, model: mujoco.MjModel) -> None:
        super().__init__(model)
        puck_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "puck")
        self.puck_qpos = int(model.jnt_qposadr[puck_joint])
        self.puck_geoms = {
            shape: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"puck_{shape}") for shape in SHAPES
        }
