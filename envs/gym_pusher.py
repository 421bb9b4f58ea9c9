"""gymnasium's ``Pusher-v5`` as an image goal env for rig: ``gymnasium.make("rig/Pusher-v5")``.

A 7-joint arm pushes a white cylinder (the puck, radius 0.05 m) across a table. gymnasium's env fixes
the target at world ``(0.45, -0.05)``; this adapter draws a new target at every reset and speaks rig's
env protocol (``rig.goal_env``) around the unmodified ``PusherEnv``:

- **observations** (float64): ``observation`` is the env's 23-D observation without its last three
  entries (the target's position, which ``desired_goal`` carries and hindsight relabelling replaces):
  joint angles (7), joint velocities (7), fingertip xyz (3) and puck xyz (3), in metres and radians.
  ``achieved_goal`` is the puck's xy, ``desired_goal`` the target's xy (world frame, metres).
- **goals**: uniform in ``GOAL_BOX`` (x in [0.25, 0.65], y in [-0.35, -0.05]; the region where the env
  starts the puck, which the fingertip reaches at table height, and whose top edge holds the env's own
  fixed target), at least ``MIN_GOAL_SEPARATION`` (0.17 m, the env's own start-to-target gap) from the
  puck's start. Drawn from the env's ``np_random``: a seeded reset reproduces start and goal.
- **actions**: the env's 7 joint torques in [-2, 2]; 0.05 s per step (5 physics steps).
- **reward**: ``-puck_distance`` (the xy distance of puck to target); ``compute_reward`` is batched.
  The env's shaped terms stay in ``info`` (``reward_dist``, ``reward_near``, ``reward_ctrl``).
- **info**: ``puck_distance`` (m), ``tip_distance`` (m, fingertip to where it is in the goal image),
  ``tip_puck_distance`` (m), ``is_success`` (``puck_distance < success_threshold``, 0.05 m by default).
- **frames**: a fixed top-down camera over the table (``CAMERA``), 0.8 m above the puck region, which it
  frames with the arm's reach and, along the bottom edge, the arm's reset pose; the red target disc is
  never drawn. No shadows, no multisampling. The puck is about 7 px across at 48 px (54 pixels at seed
  0's start); from 1.15 m (5 px, 22 pixels) a beta-VAE leaves it out of its code altogether.
- **goal image**: the puck at the target and the arm in its reset pose (all joints 0, stretched out
  along the table's near edge). The reset pose is fixed, clear of the puck region and seen at the
  start of every episode, so a goal image shows the goal and nothing of the current episode's arm.
  A latent (image) reward then also pays for bringing the arm back to that pose after the push.
- **teleporting**: ``sample_state`` / ``set_to_state`` place the puck, at rest, anywhere in
  ``GOAL_BOX`` clear of the arm; the arm keeps its pose and all velocities are zeroed.
- **snapshots**: physics (``mj_getState``), target and random generator.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.pusher_v5 import PusherEnv

from envs.adapter import GoalAdapter
from envs.mjtools import CameraPose, check_render_mode, checked_xy, hide_geom, physics_preserved

Array = np.ndarray
GOAL_BOX = (np.array([0.25, -0.35]), np.array([0.65, -0.05]))
"""where targets are drawn and the puck is teleported: (low, high) in world xy, metres"""
MIN_GOAL_SEPARATION = 0.17
"""smallest target distance from the puck's start, in metres (Pusher-v5's own start-to-target gap)"""
SUCCESS_THRESHOLD = 0.05
CAMERA = CameraPose(lookat=(0.45, -0.33, -0.325), distance=0.8, elevation=-90.0, azimuth=90.0)
"""top-down: image right is +x, image up is +y; the table's near edge (y = -0.5) and the arm's reset
pose (y = -0.6) lie along the bottom of the frame"""
OBSERVATION_DIM = 20


class GoalPusher(GoalAdapter):
    """``PusherEnv`` with a drawn target, dict observations, rig's frames and rig's goal-env members."""

    goal_metrics = {"puck_distance": "m", "tip_distance": "m"}
    """the distances in ``info`` that evaluation reports, the headline first (rig's env protocol)"""
    state_factors = {"puck": (0, 2)}

    def __init__(
        self, env: PusherEnv, success_threshold: float = SUCCESS_THRESHOLD, camera: CameraPose = CAMERA
    ) -> None:
        if success_threshold <= 0:
            raise ValueError(f"success_threshold must be positive, got {success_threshold}")
        super().__init__(env, env, camera)
        self.success_threshold = float(success_threshold)
        self.pusher = env
        model = env.model
        self._ids = _PusherIds(model)
        hide_geom(model, self._ids.target_geom)
        self.arm_home = model.qpos0[:7].copy()
        """the arm's reset pose, which the goal image shows"""
        self.goal = self._target_xy()
        self.observation_space = spaces.Dict(  # type: ignore[assignment]
            {
                "observation": spaces.Box(-np.inf, np.inf, shape=(OBSERVATION_DIM,), dtype=np.float64),
                "achieved_goal": spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64),
                "desired_goal": spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float64),
            }
        )

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        """The env's reset (arm at rest in its reset pose, puck drawn), then a target drawn or given.

        ``options={"goal": [x, y]}`` sets the target instead of drawing it.
        """
        options = dict(options or {})
        unknown = set(options) - {"goal"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; valid: ['goal']")
        _, env_info = self.env.reset(seed=seed)
        goal = options.get("goal")
        self._set_target(self._sample_goal() if goal is None else self._checked_goal(goal))
        return self._get_obs(), {**env_info, **self._get_info()}

    # ------------------------------------------------------------ rig's goal-env members
    def goal_box(self) -> tuple[Array, Array]:
        return GOAL_BOX[0].copy(), GOAL_BOX[1].copy()

    def sample_state(self) -> Array:
        """A puck position drawn uniformly from ``GOAL_BOX`` clear of the arm as it is now."""
        rng = self.pusher.np_random
        for _ in range(1000):
            puck_xy = rng.uniform(*GOAL_BOX)
            if not self._overlaps_arm(puck_xy):
                return puck_xy
        raise RuntimeError("could not place the puck clear of the arm in 1000 draws")

    def set_to_state(self, state: Array) -> None:
        """Put the puck at ``state`` (xy in ``GOAL_BOX``) and everything at rest; the arm keeps its pose."""
        puck_xy = checked_xy(state, "the state (puck xy)")
        low, high = GOAL_BOX
        if np.any(puck_xy < low - 1e-9) or np.any(puck_xy > high + 1e-9):
            raise ValueError(f"puck position {puck_xy.tolist()} is outside the puck region {_box_text()}")
        if self._overlaps_arm(puck_xy):
            raise ValueError(f"puck position {puck_xy.tolist()} overlaps the arm")
        self._place_puck(puck_xy)

    # ---------------------------------------------------------------- adapter's parts
    def _adapted(self, env_obs: Array, env_info: dict[str, Any]) -> tuple[dict[str, Array], dict[str, Any]]:
        # gymnasium's step leaves body positions from before the last physics step; bring them up to date.
        mujoco.mj_kinematics(self.pusher.model, self.pusher.data)
        return self._get_obs(), {**env_info, **self._get_info()}

    def _pose_goal(self) -> None:
        """The puck at the target and the arm at rest in its reset pose."""
        self.pusher.data.qpos[:7] = self.arm_home
        self._place_puck(self.goal)

    def _snapshot_extras(self) -> dict[str, Any]:
        """The target and the random state."""
        return {"goal": self.goal.copy(), "np_random": self.pusher.np_random.bit_generator.state}

    def _restore_snapshot_extras(self, snapshot: dict[str, Any]) -> None:
        self.goal = np.array(snapshot["goal"], dtype=np.float64)
        self.pusher.np_random.bit_generator.state = snapshot["np_random"]

    # -------------------------------------------------------------------- internals
    def _sample_goal(self) -> Array:
        rng, puck_xy = self.pusher.np_random, self._puck_xy()
        for _ in range(1000):
            goal = rng.uniform(*GOAL_BOX)
            if np.linalg.norm(goal - puck_xy) > MIN_GOAL_SEPARATION:
                return goal
        raise RuntimeError(f"could not draw a target {MIN_GOAL_SEPARATION} m from the puck at {puck_xy}")

    def _checked_goal(self, goal: Array) -> Array:
        goal = checked_xy(goal, "the goal")
        if np.any(goal < GOAL_BOX[0] - 1e-9) or np.any(goal > GOAL_BOX[1] + 1e-9):
            raise ValueError(f"goal {goal.tolist()} is outside the goal region {_box_text()}")
        return goal

    def _set_target(self, goal: Array) -> None:
        self.goal = np.asarray(goal, dtype=np.float64).copy()
        ids, data = self._ids, self.pusher.data
        data.qpos[ids.target_qpos] = self.goal - ids.target_home
        data.qvel[ids.target_qvel] = 0.0
        mujoco.mj_forward(self.pusher.model, data)

    def _place_puck(self, puck_xy: Array) -> None:
        ids, data = self._ids, self.pusher.data
        data.qpos[ids.puck_qpos] = puck_xy - ids.puck_home
        data.qvel[:] = 0.0
        mujoco.mj_forward(self.pusher.model, data)

    def _overlaps_arm(self, puck_xy: Array) -> bool:
        """Whether the puck at ``puck_xy`` would penetrate the arm as it is now; the state is untouched."""
        model, data = self.pusher.model, self.pusher.data
        with physics_preserved(model, data):
            self._place_puck(puck_xy)
            for contact in data.contact[: data.ncon]:
                bodies = {int(model.geom_bodyid[contact.geom1]), int(model.geom_bodyid[contact.geom2])}
                if self._ids.puck_body in bodies and 0 not in bodies and contact.dist < 0:
                    return True
            return False

    def _puck_xy(self) -> Array:
        return self._ids.puck_home + self.pusher.data.qpos[self._ids.puck_qpos]

    def _target_xy(self) -> Array:
        return self._ids.target_home + self.pusher.data.qpos[self._ids.target_qpos]

    def _tip(self) -> Array:
        return self.pusher.data.xpos[self._ids.tip_body].copy()

    def _get_obs(self) -> dict[str, Array]:
        data, ids = self.pusher.data, self._ids
        observation = np.concatenate(
            [data.qpos[:7], data.qvel[:7], data.xpos[ids.tip_body], data.xpos[ids.puck_body]]
        )
        return {
            "observation": observation.astype(np.float64),
            "achieved_goal": self._puck_xy().astype(np.float64),
            "desired_goal": self.goal.astype(np.float64),
        }

    def _get_info(self) -> dict[str, Any]:
        puck_xy, tip = self._puck_xy(), self._tip()
        puck = self.pusher.data.xpos[self._ids.puck_body]
        puck_distance = float(np.linalg.norm(puck_xy - self.goal))
        return {
            "puck_distance": puck_distance,
            "tip_distance": float(np.linalg.norm(tip - self._ids.tip_home)),
            "tip_puck_distance": float(np.linalg.norm(tip - puck)),
            "is_success": puck_distance < self.success_threshold,
        }


def _box_text() -> str:
    low, high = GOAL_BOX
    return f"x in [{low[0]}, {high[0]}], y in [{low[1]}, {high[1]}]"


class _PusherIds:
    """Addresses in PusherEnv's model, looked up once by name."""

    def __init__(self, model: mujoco.MjModel) -> None:
        def qpos(joint: str) -> int:
            return int(model.jnt_qposadr[model.joint(joint).id])

        def qvel(joint: str) -> int:
            return int(model.jnt_dofadr[model.joint(joint).id])

        self.puck_body = model.body("object").id
        self.tip_body = model.body("tips_arm").id
        target_body = model.body("goal").id
        self.target_geom = int(model.body_geomadr[target_body])
        # [x, y] order; the slide joints' zero is the body's position in the XML
        self.puck_qpos = np.array([qpos("obj_slidex"), qpos("obj_slidey")])
        self.target_qpos = np.array([qpos("goal_slidex"), qpos("goal_slidey")])
        self.target_qvel = np.array([qvel("goal_slidex"), qvel("goal_slidey")])
        self.puck_home = model.body_pos[self.puck_body, :2].copy()
        self.target_home = model.body_pos[target_body, :2].copy()
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)
        self.tip_home = data.xpos[self.tip_body].copy()
        """the fingertip in the arm's reset pose (qpos0), where the goal image shows it"""


def make_goal_pusher(
    render_mode: str | None = None,
    width: int = 48,
    height: int = 48,
    success_threshold: float = SUCCESS_THRESHOLD,
    camera_distance: float = CAMERA.distance,
    **pusher_kwargs: Any,
) -> GoalPusher:
    """The entry point of ``rig/Pusher-v5``: gymnasium's ``PusherEnv`` (given ``pusher_kwargs``), adapted.
    ``camera_distance`` (metres) moves the top-down camera along its axis: nearer shows less, larger."""
    check_render_mode(render_mode)
    if not camera_distance > 0:
        raise ValueError(f"camera_distance must be positive, got {camera_distance}")
    env = PusherEnv(render_mode=render_mode, width=int(width), height=int(height), **pusher_kwargs)
    camera = replace(CAMERA, distance=float(camera_distance))
    return GoalPusher(env, success_threshold=success_threshold, camera=camera)
