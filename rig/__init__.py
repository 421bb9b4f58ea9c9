"""rig: goal-conditioned RL from images with imagined goals (RIG, CC-RIG, Skew-Fit) on MuJoCo envs.

The Python API (``rig.api``) is exported here: ``rig.load_config``, ``rig.run``, ``rig.run_stage``,
``rig.load_run`` and ``rig.Run``. It is imported on first use, so that ``import rig`` (and the ``rig``
command) stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import envs  # noqa: F401  registers the envs and picks headless GL before mujoco loads

if TYPE_CHECKING:
    from rig.api import Run, load_config, load_run, run, run_stage

__version__ = "0.1.0"
__all__ = ["Run", "__version__", "load_config", "load_run", "run", "run_stage"]
_API = ("Run", "load_config", "load_run", "run", "run_stage")


def __getattr__(name: str) -> Any:
    if name in _API:
        from rig import api

        return getattr(api, name)
    raise AttributeError(f"module 'rig' has no attribute {name!r}")
