"""A complete image goal env for rig, to copy and change: a red point in a walled square reaches a goal.

It has only what rig requires (``rig.goal_env``): gymnasium's API with goal-env dict observations, a batched
``compute_reward``, ``render()`` frames of the requested size, ``is_success`` in ``info``, and a way to
show the goal: ``goal_image()``. It declares its goal metric, and leaves out the optional capabilities
(teleporting, snapshots): rig then collects frames with random actions only, and a resumed run restarts
the interrupted episode.

Run RIG on it from the folder that holds this file:

    python3 -m rig run env.id=example/PointReach-v0 env.module=point_reach run_dir=runs/point_reach
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

SCENE = """
<mujoco>
  <visual><quality shadowsize="0" offsamples="0"/><global offwidth="256" offheight="256"/></visual>
  <worldbody>
    <light pos="0 0 2" castshadow="false"/>
    <camera name="top" pos="0 0 0.55" xyaxes="1 0 0 0 1 0"/>
    <geom type="plane" size="0.25 0.25 0.01" rgba="0.85 0.85 0.8 1"/>
    <body name="point" mocap="true" pos="0 0 0.02">
      <geom type="sphere" size="0.03" rgba="0.9 0.1 0.1 1" contype="0" conaffinity="0"/>
    </body>
  </worldbody>
</mujoco>
"""
HALF_WIDTH = 0.18
"""the point and its goals stay in [-HALF_WIDTH, HALF_WIDTH]^2 (metres)"""
STEP = 0.02
"""metres moved per unit of action"""
SUCCESS_DISTANCE = 0.03


class PointReachEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    goal_metrics = {"point_distance": "m"}

    def __init__(self, render_mode: str | None = None, width: int = 48, height: int = 48) -> None:
        self.render_mode, self.width, self.height = render_mode, width, height
        self.model = mujoco.MjModel.from_xml_string(SCENE)
        self.data = mujoco.MjData(self.model)
        self._renderer: mujoco.Renderer | None = None
        box = spaces.Box(-HALF_WIDTH, HALF_WIDTH, shape=(2,), dtype=np.float32)
        self.observation_space = spaces.Dict({"observation": box, "achieved_goal": box, "desired_goal": box})
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.goal = np.zeros(2)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self._place(np.zeros(2))
        self.goal = self.np_random.uniform(-HALF_WIDTH, HALF_WIDTH, size=2)
        return self._obs(), self._info()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        move = np.clip(action, -1.0, 1.0) * STEP
        self._place(np.clip(self._position() + move, -HALF_WIDTH, HALF_WIDTH))
        obs = self._obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], {}))
        return obs, reward, False, False, self._info()

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        return -np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
        self._renderer.update_scene(self.data, camera="top")
        return self._renderer.render().copy()

    def goal_image(self) -> np.ndarray:
        """The scene with the point at the goal; the point is put back afterwards."""
        position = self._position()
        self._place(self.goal)
        try:
            frame = self.render()
        finally:
            self._place(position)
        assert frame is not None, "goal images need render_mode='rgb_array'"
        return frame

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _place(self, xy: np.ndarray) -> None:
        self.data.mocap_pos[0, :2] = xy
        mujoco.mj_forward(self.model, self.data)

    def _position(self) -> np.ndarray:
        return self.data.mocap_pos[0, :2].copy()

    def _obs(self) -> dict[str, np.ndarray]:
        position = self._position().astype(np.float32)
        goal = self.goal.astype(np.float32)
        return {"observation": position, "achieved_goal": position.copy(), "desired_goal": goal}

    def _info(self) -> dict[str, Any]:
        distance = float(np.linalg.norm(self._position() - self.goal))
        return {"point_distance": distance, "is_success": distance < SUCCESS_DISTANCE}


gym.register("example/PointReach-v0", entry_point=PointReachEnv, max_episode_steps=50)
