"""Planar visual pushing: a mocap-driven hand pushes one object towards a goal on a table.

State and goal are ``[hand_x, hand_y, puck_x, puck_y]`` in metres, relative to the table centre,
which is also the puck's start. Images come from ``render()`` through a fixed top-down camera.
The geometry follows the published visual pusher (see ``REFERENCE.md`` in the project notes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from envs.appearance import PALETTES, SHAPES, Appearance, sample_appearance

ASSET = Path(__file__).parent / "assets" / "push.xml"
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


class PushEnv(gym.Env[dict[str, Array], Array]):
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

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    goal_metrics = {"puck_distance": "m", "hand_distance": "m"}
    """the distances in ``info`` that evaluation reports, the headline first (rig's env protocol)"""
    state_factors = {"hand": (0, 2), "puck": (2, 4)}
    """the parts of ``achieved_goal`` (``state``)"""

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
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        if int(width) <= 0 or int(height) <= 0:
            raise ValueError(f"width and height must be positive, got width={width}, height={height}")
        if palette not in PALETTES:
            raise ValueError(f"unknown palette {palette!r}; choose one of {sorted(PALETTES)}")
        unknown_shapes = set(shapes) - set(SHAPES)
        if not shapes or unknown_shapes:
            raise ValueError(f"shapes must be a non-empty subset of {SHAPES}, got {tuple(shapes)}")
        low, high = radius_range
        if not 0 < low <= high <= 0.06:
            raise ValueError(f"radius_range must satisfy 0 < low <= high <= 0.06, got {radius_range}")

        self.render_mode = render_mode
        self.width, self.height = int(width), int(height)
        self.action_scale = float(action_scale)
        self.frame_skip = int(frame_skip)
        self.success_threshold = float(success_threshold)
        self.random_puck_start = bool(random_puck_start)
        self.multi_object = bool(multi_object)
        self.palette = palette
        self.radius_range = (float(low), float(high))
        self.shapes = tuple(shapes)

        self.model = mujoco.MjModel.from_xml_path(str(ASSET))
        self.model.vis.global_.offwidth = max(self.width, self.model.vis.global_.offwidth)
        self.model.vis.global_.offheight = max(self.height, self.model.vis.global_.offheight)
        self.data = mujoco.MjData(self.model)
        self._ids = _ModelIds(self.model)
        self._renderer: mujoco.Renderer | None = None
        self._scene_option = mujoco.MjvOption()
        self._scene_option.geomgroup[_HIDDEN_GROUP] = 0

        self.appearance = Appearance(rgb=_PUSH_RGB, radius=PUCK_RADIUS, shape="cylinder")
        self._apply_appearance(self.appearance)
        self.goal = np.concatenate([HAND_GOAL_BOX.low, PUCK_GOAL_BOX.low]).astype(np.float64)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        state_space = spaces.Box(-0.3, 0.3, shape=(4,), dtype=np.float32)
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {"observation": state_space, "achieved_goal": state_space, "desired_goal": state_space}
        )

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"goal", "random_puck_start"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; valid: ['goal', 'random_puck_start']")
        if self.multi_object:
            self._apply_appearance(
                sample_appearance(self.np_random, self.palette, self.radius_range, self.shapes)
            )
        puck_xy = PUCK_START
        if options.get("random_puck_start", self.random_puck_start):
            puck_xy = self._sample_separated(PUCK_GOAL_BOX, HAND_START)
        self._place(HAND_START, puck_xy)
        if options.get("goal") is None:
            self.goal = self.sample_goal()
        else:
            self.goal = self._checked_goal(options["goal"])
        return self._get_obs(), self._get_info()

    def step(self, action: Array) -> tuple[dict[str, Array], float, bool, bool, dict[str, Any]]:
        delta = self._checked_action(action) * self.action_scale
        target = HAND_BOX.clip(self.data.mocap_pos[0, :2] + delta)
        self.data.mocap_pos[0, :2] = target
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
    def state(self) -> Array:
        """The current ``[hand_x, hand_y, puck_x, puck_y]``."""
        hand = self.data.qpos[self._ids.hand_qpos : self._ids.hand_qpos + 2]
        puck = self.data.qpos[self._ids.puck_qpos : self._ids.puck_qpos + 2]
        return np.concatenate([hand, puck])

    def get_snapshot(self) -> dict[str, Any]:
        """Everything the rest of this episode depends on: physics, goal, appearance and random state.

        ``restore_snapshot`` of it in any ``PushEnv`` of the same settings continues bit-identically.
        """
        return {
            "physics": self._save_physics(),
            "goal": self.goal.copy(),
            "appearance": {
                "rgb": tuple(self.appearance.rgb),
                "radius": self.appearance.radius,
                "shape": self.appearance.shape,
            },
            "np_random": self.np_random.bit_generator.state,
        }

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        appearance = snapshot["appearance"]
        self._apply_appearance(
            Appearance(tuple(appearance["rgb"]), appearance["radius"], appearance["shape"])
        )
        self._restore_physics(snapshot["physics"])
        self.goal = np.array(snapshot["goal"], dtype=np.float64)
        self.np_random.bit_generator.state = snapshot["np_random"]

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
        if not HAND_BOX.contains(hand_xy):
            raise ValueError(f"hand position {hand_xy} is outside the hand box {HAND_BOX}")
        reach = self._object_reach()
        if np.any(np.abs(puck_xy) > reach + 1e-6):
            raise ValueError(
                f"object position {puck_xy} is off the table: its centre must lie within +-{reach:.3f} m "
                f"of the table centre in x and y (the walls at {WALL_HALF_WIDTH} m less its radius)"
            )
        if np.linalg.norm(hand_xy - puck_xy) < self._contact_distance():
            raise ValueError(f"hand {hand_xy} and object {puck_xy} would overlap")
        self._place(hand_xy, puck_xy)

    def set_to_state(self, state: Array) -> None:
        """``set_state`` of a ``[hand_x, hand_y, puck_x, puck_y]`` vector, as ``sample_state`` returns."""
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (4,):
            raise ValueError(f"state must be [hand_x, hand_y, puck_x, puck_y], got shape {state.shape}")
        self.set_state(state[:2], state[2:])

    def goal_box(self) -> tuple[Array, Array]:
        """The box ``sample_goal`` draws from, ``[hand, puck]``: where the state oracle imagines goals."""
        return (
            np.concatenate([HAND_GOAL_BOX.low, PUCK_GOAL_BOX.low]),
            np.concatenate([HAND_GOAL_BOX.high, PUCK_GOAL_BOX.high]),
        )

    def goal_image(self) -> Array:
        """Render the scene with hand and object at the goal; the simulation state is left untouched."""
        saved = self._save_physics()
        try:
            self._place(self.goal[:2], self.goal[2:])
            return self._render_frame()
        finally:
            self._restore_physics(saved)

    # -------------------------------------------------------------------- internals
    def _place(self, hand_xy: Array, puck_xy: Array) -> None:
        ids, qpos = self._ids, self.data.qpos
        qpos[ids.hand_qpos : ids.hand_qpos + 2] = hand_xy
        qpos[ids.puck_qpos : ids.puck_qpos + 7] = [*puck_xy, PUCK_HALF_HEIGHT, 1.0, 0.0, 0.0, 0.0]
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
        self._renderer.update_scene(self.data, camera=self._ids.camera, scene_option=self._scene_option)
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
        info: dict[str, Any] = {
            "hand_distance": float(np.linalg.norm(state[:2] - self.goal[:2])),
            "puck_distance": float(np.linalg.norm(state[2:] - self.goal[2:])),
            "touch_distance": float(np.linalg.norm(state[:2] - state[2:])),
        }
        info["is_success"] = info["puck_distance"] < self.success_threshold
        if self.multi_object:
            info.update(self.appearance.as_info())
        return info

    def _checked_action(self, action: Array) -> Array:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        return np.clip(action, -1.0, 1.0)

    def _checked_goal(self, goal: Array) -> Array:
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (4,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"goal must be a finite 4-vector [hand_x, hand_y, puck_x, puck_y], got {goal}")
        if not HAND_GOAL_BOX.contains(goal[:2]):
            raise ValueError(f"hand goal {goal[:2]} is outside the hand-goal range {HAND_GOAL_BOX}")
        if not PUCK_GOAL_BOX.contains(goal[2:]):
            raise ValueError(f"puck goal {goal[2:]} is outside the puck-goal range {PUCK_GOAL_BOX}")
        if np.linalg.norm(goal[:2] - goal[2:]) < self._contact_distance():
            raise ValueError(f"goal {goal} puts hand and object on top of each other")
        return goal

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


class _ModelIds:
    """Indices into the compiled model, looked up once."""

    def __init__(self, model: mujoco.MjModel) -> None:
        hand_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "hand_x")
        puck_joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "puck")
        self.hand_qpos = int(model.jnt_qposadr[hand_joint])
        self.puck_qpos = int(model.jnt_qposadr[puck_joint])
        self.camera = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "topview")
        self.puck_geoms = {
            shape: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, f"puck_{shape}") for shape in SHAPES
        }
