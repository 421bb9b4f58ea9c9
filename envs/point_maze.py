"""gymnasium-robotics' ``PointMaze_UMaze-v3`` as an image goal env for rig: ``rig/PointMaze_UMaze-v3``.

Needs the optional extra: ``pip install -e ".[robotics]"`` (gymnasium-robotics >= 1.4). The module
imports gymnasium-robotics only when the env is made, so ``import envs`` works without it.

A force-actuated point (a ball, collision radius 0.1 m) moves in a U-shaped maze of 1 m cells
(7 free cells, walls in between). The env is already a goal env; this adapter keeps its dynamics,
spaces and goal distribution and adds what rig's env protocol (``rig.goal_env``) asks for:

- **observations** (float64, the env's own): ``observation`` = ball xy and velocity (4-D),
  ``achieved_goal`` = ball xy, ``desired_goal`` = goal xy (metres, maze centre at the origin).
- **goals and starts**: the env's own: a free cell's centre plus uniform noise in [-0.25, 0.25] m per
  axis, the start at least 0.5 m from the goal, drawn from the env's ``np_random`` (seeded resets
  reproduce both). ``goal_box()`` is the box around all of them, x and y in [-1.25, 1.25] for the U-maze
  (it also covers the wall between the U's arms, where no goal is drawn).
- **actions**: the env's 2-D force in [-1, 1], held for ``frame_skip`` physics steps of 0.01 s (the env's
  own is 1; gymnasium-robotics fixes it, the adapter sets it after construction).
- **episodes**: ``continuing_task=True`` and ``reset_target=False``: an episode never terminates on
  reaching the goal and the goal never moves, so episodes have a fixed length and the agent should reach
  the goal and stay there, as in rig's other envs. 300 steps by default (the env's own limit).
- **reward**: ``-goal_distance`` (m), batched, instead of the env's sparse 0/1, like rig's other envs.
- **info**: ``goal_distance`` (m) and ``is_success`` (the env's ``success``: distance <= 0.45 m).
- **frames**: a fixed top-down camera that frames the free cells and 0.1 m of the walls around them
  (the outer ring of walls is out of view, so the ball is drawn as large as the maze allows); the ball
  is drawn white (``BALL_RGBA``) and the red goal ball is never drawn.
  No shadows, no multisampling.
- **goal image**: the ball placed at the goal, at rest, rendered; the state is restored after.
- **teleporting**: ``sample_state`` / ``set_to_state`` put the ball, at rest, anywhere in the maze
  where it clears every wall.
- **snapshots**: physics (``mj_getState``), goal, reset position and both random generators.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import mujoco
import numpy as np
from gymnasium.error import DependencyNotInstalled

from envs.adapter import GoalAdapter
from envs.mjtools import CameraPose, check_render_mode, checked_xy, hide_site

Array = np.ndarray
BALL_RADIUS = 0.1
"""the collision radius of the point (its sphere is drawn with radius 0.2)"""
SUCCESS_DISTANCE = 0.45
"""the env's own success radius, in metres"""
Framing = Literal["free_cells", "whole_maze"]
FRAMINGS: tuple[str, ...] = get_args(Framing)
BALL_RGBA = (1.0, 1.0, 1.0, 1.0)
"""the colour the ball is drawn in: white, where the env draws it dark green, of nearly the brightness
of the dark blue floor; a VAE trained on those frames left the ball out of its code"""
CAMERA_MARGIN = 0.1
"""how much of the walls around the free cells the frame shows, in metres"""


class GoalPointMaze(GoalAdapter):
    """A gymnasium-robotics ``PointMazeEnv`` with rig's frames, goal image, teleports and snapshots."""

    goal_metrics = {"goal_distance": "m"}
    """the distances in ``info`` that evaluation reports (rig's env protocol)"""
    state_factors = {"point": (0, 2)}

    def __init__(
        self, env: Any, ball_rgba: Sequence[float] | None = BALL_RGBA, framing: Framing = "free_cells"
    ) -> None:
        super().__init__(env, env.point_env, _camera(env.maze, env.point_env.model, framing))
        self.maze_env = env
        self.point_env = env.point_env
        hide_site(self.point_env.model, env.target_site_id)
        if ball_rgba is not None:
            model = self.point_env.model
            model.site_rgba[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "particle_site")] = ball_rgba
        self._walls = _wall_boxes(env.maze)

    # ----------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._adapted(obs, info)

    # ------------------------------------------------------------ rig's goal-env members
    def goal_box(self) -> tuple[Array, Array]:
        """The box around every goal the env can draw (cell centres +- the position noise)."""
        maze = self.maze_env.maze
        centres = np.asarray(maze.unique_goal_locations, dtype=np.float64)
        noise = self.maze_env.position_noise_range * maze.maze_size_scaling
        return centres.min(axis=0) - noise, centres.max(axis=0) + noise

    def sample_state(self) -> Array:
        """A ball position drawn uniformly from the maze's free space (clear of every wall)."""
        rng = self.maze_env.np_random
        half = np.array([self.maze_env.maze.x_map_center, self.maze_env.maze.y_map_center])
        for _ in range(10_000):
            xy = rng.uniform(-half, half)
            if self._clear_of_walls(xy):
                return xy
        raise RuntimeError("could not draw a free position in the maze in 10000 draws")

    def set_to_state(self, state: Array) -> None:
        """Put the ball, at rest, at ``state`` (xy); ValueError if it would overlap a wall."""
        xy = checked_xy(state, "the state (ball xy)")
        if not self._clear_of_walls(xy):
            raise ValueError(f"ball position {xy.tolist()} is inside or touching a wall of the maze")
        self._place(xy)

    # ---------------------------------------------------------------- adapter's parts
    def _adapted(
        self, env_obs: dict[str, Array], env_info: dict[str, Any]
    ) -> tuple[dict[str, Array], dict[str, Any]]:
        """The env's own observation; its info with rig's metrics."""
        return env_obs, self._with_metrics(env_obs, env_info)

    def _pose_goal(self) -> None:
        """The ball at rest at the goal."""
        self._place(np.asarray(self.maze_env.goal, dtype=np.float64))

    def _snapshot_extras(self) -> dict[str, Any]:
        """Goal, reset position and both random states."""
        maze_env = self.maze_env
        return {
            "goal": np.array(maze_env.goal, dtype=np.float64),
            "reset_pos": np.array(maze_env.reset_pos, dtype=np.float64),
            "np_random": maze_env.np_random.bit_generator.state,
            "point_np_random": self.point_env.np_random.bit_generator.state,
        }

    def _restore_snapshot_extras(self, snapshot: dict[str, Any]) -> None:
        maze_env = self.maze_env
        maze_env.goal = np.array(snapshot["goal"], dtype=np.float64)
        maze_env.reset_pos = np.array(snapshot["reset_pos"], dtype=np.float64)
        maze_env.update_target_site_pos()
        maze_env.np_random.bit_generator.state = snapshot["np_random"]
        self.point_env.np_random.bit_generator.state = snapshot["point_np_random"]

    # -------------------------------------------------------------------- internals
    def _place(self, xy: Array) -> None:
        data = self.point_env.data
        data.qpos[:2] = xy
        data.qvel[:] = 0.0
        mujoco.mj_forward(self.point_env.model, data)

    def _clear_of_walls(self, xy: Array) -> bool:
        """Whether a ball at ``xy`` lies inside the maze and at least its radius from every wall block."""
        low, high = self._walls
        gap = np.maximum(np.maximum(low - xy, xy - high), 0.0)
        inside = bool(np.all(np.abs(xy) < [self.maze_env.maze.x_map_center, self.maze_env.maze.y_map_center]))
        return inside and bool(np.all(np.linalg.norm(gap, axis=1) >= BALL_RADIUS))

    def _with_metrics(self, obs: dict[str, Array], info: dict[str, Any]) -> dict[str, Any]:
        distance = float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]))
        return {**info, "goal_distance": distance, "is_success": bool(info["success"])}


def _wall_boxes(maze: Any) -> tuple[Array, Array]:
    """The xy (low, high) corners of every wall cell, one row per wall."""
    half = 0.5 * maze.maze_size_scaling
    centres = [
        maze.cell_rowcol_to_xy(np.array([i, j]))
        for i, row in enumerate(maze.maze_map)
        for j, cell in enumerate(row)
        if cell == 1
    ]
    centres_array = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    return centres_array - half, centres_array + half


def _camera(maze: Any, model: mujoco.MjModel, framing: Framing) -> CameraPose:
    """Straight down, just far enough for the framed cells to fill the frame. ``free_cells``: every free
    cell and the tops of the walls around them, ``CAMERA_MARGIN`` deep; the outer ring of walls is left
    out, so the ball is as large as the maze allows (about 6 px across at 48 px in the U-maze).
    ``whole_maze``: every cell, outer walls included (the ball about 3 px across)."""
    cells = [
        maze.cell_rowcol_to_xy(np.array([i, j]))
        for i, row in enumerate(maze.maze_map)
        for j, cell in enumerate(row)
        if framing == "whole_maze" or cell != 1
    ]
    centres = np.asarray(cells, dtype=np.float64)
    low, high = centres.min(axis=0), centres.max(axis=0)
    middle = 0.5 * (low + high)
    margin = CAMERA_MARGIN if framing == "free_cells" else 0.0
    half_extent = 0.5 * float(np.max(high - low)) + 0.5 * maze.maze_size_scaling + margin
    wall_top = maze.maze_height * maze.maze_size_scaling
    distance = half_extent / np.tan(np.radians(model.vis.global_.fovy / 2)) + wall_top
    lookat = (float(middle[0]), float(middle[1]), 0.0)
    return CameraPose(lookat=lookat, distance=float(distance), elevation=-90.0, azimuth=90.0)


def _checked_rgba(rgba: Sequence[float]) -> tuple[float, ...]:
    values = np.asarray(rgba, dtype=np.float64)
    if values.shape != (4,) or not np.all((values >= 0.0) & (values <= 1.0)):
        raise ValueError(f"ball_rgba must be 4 numbers in [0, 1] (red, green, blue, alpha), got {list(rgba)}")
    return tuple(float(value) for value in values)


def make_point_maze(
    render_mode: str | None = None,
    width: int = 48,
    height: int = 48,
    ball_rgba: Sequence[float] | None = BALL_RGBA,
    framing: Framing = "free_cells",
    frame_skip: int = 1,
    **maze_kwargs: Any,
) -> GoalPointMaze:
    """The entry point of ``rig/PointMaze_UMaze-v3``: gymnasium-robotics' ``PointMazeEnv``, adapted.

    ``ball_rgba`` is the colour the ball is drawn in (``None``: the env's own dark green); ``framing`` is
    what the camera frames (``free_cells`` or ``whole_maze``, see ``_camera``); ``frame_skip`` is how many
    0.01 s physics steps one action is held for (MuJoCo's ``frame_skip``; the env's own is 1, at which the
    ball moves about half a pixel between frames). ``maze_kwargs`` go to ``PointMazeEnv`` (e.g.
    ``maze_map``); the episode settings are fixed.
    """
    try:
        from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv
    except ImportError:
        raise DependencyNotInstalled(
            'rig/PointMaze_UMaze-v3 needs gymnasium-robotics: run pip install -e ".[robotics]"'
        ) from None
    check_render_mode(render_mode)
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {list(FRAMINGS)}, got {framing!r}")
    if ball_rgba is not None:
        ball_rgba = _checked_rgba(ball_rgba)
    if isinstance(frame_skip, bool) or not isinstance(frame_skip, int) or frame_skip < 1:
        raise ValueError(f"frame_skip must be a whole number of physics steps, at least 1: {frame_skip!r}")
    env = PointMazeEnv(
        render_mode=render_mode,
        width=int(width),
        height=int(height),
        continuing_task=True,
        reset_target=False,
        **maze_kwargs,
    )
    env.point_env.frame_skip = frame_skip  # PointEnv passes 1 to MujocoEnv and takes no keyword for it
    return GoalPointMaze(env, ball_rgba, framing)
