"""What rig's adapters of MuJoCo envs written elsewhere share (``envs.gym_pusher``, ``envs.point_maze``).

``GoalAdapter`` wraps the env and reaches into its simulation (``sim``: the MuJoCo env that owns ``model``,
``data``, ``render_mode``, ``width`` and ``height``) for rig's frames, the distance reward, the goal image
and physics snapshots. An adapter says what its observations and info are, how the goal is shown and
what else its snapshots hold.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.mjtools import (
    CameraPose,
    FrameRenderer,
    negative_distance,
    physics_preserved,
    restore_physics,
    save_physics,
)

Array = np.ndarray


class GoalAdapter(gym.Wrapper[dict[str, Array], Array, Any, Array]):
    """An env with rig's frames from a fixed camera, the distance reward, a goal image and snapshots.

    Args:
        env: the env to adapt.
        sim: the MuJoCo env inside ``env`` (``env`` itself, or the one it drives).
        camera: where the frames are taken from.
    """

    def __init__(self, env: gym.Env[Any, Any], sim: Any, camera: CameraPose) -> None:
        super().__init__(env)
        self.sim = sim
        self.metadata = {**env.metadata, "render_modes": ["rgb_array"]}
        self._frames = FrameRenderer(sim.model, sim.width, sim.height, camera)

    # ----------------------------------------------------------------- gymnasium API
    def step(self, action: Array) -> tuple[dict[str, Array], float, bool, bool, dict[str, Any]]:
        env_obs, _, terminated, truncated, env_info = self.env.step(action)
        obs, info = self._adapted(env_obs, env_info)
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        return obs, reward, bool(terminated), bool(truncated), info

    def render(self) -> Array | None:
        if self.sim.render_mode != "rgb_array":
            return None
        return self._frames.render(self.sim.data)

    def close(self) -> None:
        self._frames.close()
        super().close()

    # ------------------------------------------------------------ rig's goal-env members
    def compute_reward(self, achieved_goal: Array, desired_goal: Array, info: Any) -> Array:
        """Negative distance of the achieved to the desired goal; works on single goals and on batches."""
        return negative_distance(achieved_goal, desired_goal)

    def goal_image(self) -> Array:
        """The frame of the scene posed at the goal (``_pose_goal``); the simulation is left untouched."""
        with physics_preserved(self.sim.model, self.sim.data):
            self._pose_goal()
            return self._frames.render(self.sim.data)

    def get_snapshot(self) -> dict[str, Any]:
        """Physics and the adapter's extras: ``restore_snapshot`` of it continues bit-identically."""
        return {"physics": save_physics(self.sim.model, self.sim.data), **self._snapshot_extras()}

    def restore_snapshot(self, snapshot: dict[str, Any]) -> None:
        restore_physics(self.sim.model, self.sim.data, snapshot["physics"])
        self._restore_snapshot_extras(snapshot)

    # --------------------------------------------------------- what adapters fill in
    def _adapted(self, env_obs: Any, env_info: dict[str, Any]) -> tuple[dict[str, Array], dict[str, Any]]:
        """rig's observation and info from those the env gave (by ``step``; adapters may reuse it)."""
        raise NotImplementedError

    def _pose_goal(self) -> None:
        """Put the scene as the goal image shows it (the state is restored afterwards)."""
        raise NotImplementedError

    def _snapshot_extras(self) -> dict[str, Any]:
        """What a snapshot holds besides the physics."""
        raise NotImplementedError

    def _restore_snapshot_extras(self, snapshot: dict[str, Any]) -> None:
        """Restore ``_snapshot_extras``; runs after the physics are restored."""
        raise NotImplementedError
