"""rig's MuJoCo pushing environments, registered with gymnasium on import.

``gymnasium.make("rig/Push-v0")`` is the single-puck visual pusher. ``"rig/PushMultiColor-v0"`` redraws the
puck's colour at every reset and keeps its size and shape (the CC-RIG paper's multi-colour pusher);
``"rig/PushMultiObject-v0"`` redraws colour, size and shape (a harder setting). ``"rig/Door-v0"`` is the
door-opening task: the hand swings a hinged door to a goal angle (Skew-Fit's door, in the plane).
``"rig/Pusher-v5"`` is gymnasium's 7-joint Pusher made goal-conditioned, and ``"rig/PointMaze_UMaze-v3"``
gymnasium-robotics' U-maze (the ``robotics`` extra), both adapted to rig's env protocol (``rig.goal_env``).
"""

from __future__ import annotations

import os
import sys


def _default_headless_gl() -> None:
    """Pick EGL for MuJoCo when nothing is set and there is no display; must run before importing mujoco."""
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if sys.platform.startswith("linux") and "MUJOCO_GL" not in os.environ and not has_display:
        os.environ["MUJOCO_GL"] = "egl"


_default_headless_gl()

import gymnasium  # noqa: E402

from envs.door import DoorEnv  # noqa: E402
from envs.push import PUCK_RADIUS, PushEnv  # noqa: E402

__all__ = ["DoorEnv", "PushEnv"]

gymnasium.register(id="rig/Push-v0", entry_point="envs.push:PushEnv", max_episode_steps=50)
gymnasium.register(
    id="rig/PushMultiColor-v0",
    entry_point="envs.push:PushEnv",
    max_episode_steps=50,
    kwargs={"multi_object": True, "radius_range": (PUCK_RADIUS, PUCK_RADIUS), "shapes": ("cylinder",)},
)
gymnasium.register(
    id="rig/PushMultiObject-v0",
    entry_point="envs.push:PushEnv",
    max_episode_steps=50,
    kwargs={"multi_object": True},
)
gymnasium.register(id="rig/Door-v0", entry_point="envs.door:DoorEnv", max_episode_steps=50)
# Envs written by others, adapted to rig's env protocol (rig.goal_env). Their modules load only when made.
gymnasium.register(id="rig/Pusher-v5", entry_point="envs.gym_pusher:make_goal_pusher", max_episode_steps=100)
# Needs the "robotics" extra (gymnasium-robotics); without it, making the env says how to install it.
gymnasium.register(
    id="rig/PointMaze_UMaze-v3", entry_point="envs.point_maze:make_point_maze", max_episode_steps=300
)
