"""rig: goal-conditioned RL with imagined goals (RIG and CC-RIG) on MuJoCo pushing tasks."""

import envs  # noqa: F401  registers the envs and picks headless GL before mujoco loads

__version__ = "0.1.0"
