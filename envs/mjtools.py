"""MuJoCo helpers shared by rig's envs and the adapters of envs written elsewhere.

Fast frames, physics snapshots, the distance reward and argument checks.

Frames: gymnasium's MuJoCo renderer keeps the model's default 4096 px shadow map and 4x multisampling,
which cost tens of milliseconds per frame under software GL (EGL on Mesa llvmpipe). ``FrameRenderer``
switches both off before its GL context is made and reuses that one context for every frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mujoco
import numpy as np

Array = np.ndarray
HIDDEN_GROUP = 5
"""the geom and site group that ``FrameRenderer`` never draws (MuJoCo has groups 0-5)"""


@dataclass(frozen=True)
class CameraPose:
    """A free camera: the point it looks at, its distance, and its angles in degrees."""

    lookat: tuple[float, float, float]
    distance: float
    elevation: float
    azimuth: float

    def camera(self) -> mujoco.MjvCamera:
        camera = mujoco.MjvCamera()
        camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        camera.lookat[:] = self.lookat
        camera.distance = self.distance
        camera.elevation = self.elevation
        camera.azimuth = self.azimuth
        return camera


def disable_slow_rendering(model: mujoco.MjModel) -> None:
    """No shadow map and no multisampling; takes effect for GL contexts made afterwards."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0


def hide_geom(model: mujoco.MjModel, geom_id: int) -> None:
    model.geom_group[geom_id] = HIDDEN_GROUP


def hide_site(model: mujoco.MjModel, site_id: int) -> None:
    model.site_group[site_id] = HIDDEN_GROUP


class FrameRenderer:
    """RGB frames of ``model`` from a fixed free camera, without shadows, multisampling or hidden groups."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, pose: CameraPose) -> None:
        disable_slow_rendering(model)
        model.vis.global_.offwidth = max(int(width), model.vis.global_.offwidth)
        model.vis.global_.offheight = max(int(height), model.vis.global_.offheight)
        self.model = model
        self.width, self.height = int(width), int(height)
        self.pose = pose
        self._camera = pose.camera()
        self._option = mujoco.MjvOption()
        self._option.geomgroup[HIDDEN_GROUP] = 0
        self._option.sitegroup[HIDDEN_GROUP] = 0
        self._renderer: mujoco.Renderer | None = None

    def render(self, data: mujoco.MjData) -> Array:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, height=self.height, width=self.width)
        self._renderer.update_scene(data, camera=self._camera, scene_option=self._option)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def save_physics(model: mujoco.MjModel, data: mujoco.MjData) -> Array:
    """The integration state (positions, velocities, controls, time, ...), as ``mj_getState`` gives it."""
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    return state


def restore_physics(model: mujoco.MjModel, data: mujoco.MjData, state: Array) -> None:
    mujoco.mj_setState(model, data, np.asarray(state, dtype=np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
    mujoco.mj_forward(model, data)


@contextmanager
def physics_preserved(model: mujoco.MjModel, data: mujoco.MjData) -> Iterator[None]:
    """Run the body on the simulation, then put its integration state back (``save_physics`` and after)."""
    saved = save_physics(model, data)
    try:
        yield
    finally:
        restore_physics(model, data, saved)


def negative_distance(achieved_goal: Array, desired_goal: Array) -> Array:
    """The distance reward: minus the Euclidean distance of the goals' last axis; single or batched."""
    difference = np.asarray(achieved_goal, dtype=np.float64) - np.asarray(desired_goal, dtype=np.float64)
    return -np.linalg.norm(difference, axis=-1)


def check_render_mode(render_mode: str | None) -> None:
    """ValueError unless ``render_mode`` is one rig's envs support (``None`` or ``"rgb_array"``)."""
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")


def checked_xy(value: Array, what: str) -> Array:
    """``value`` as a finite float64 2-vector; ValueError naming ``what`` otherwise."""
    xy = np.asarray(value, dtype=np.float64)
    if xy.shape != (2,) or not np.all(np.isfinite(xy)):
        raise ValueError(f"{what} must be a finite [x, y] vector, got {np.asarray(value).tolist()}")
    return xy
