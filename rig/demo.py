"""A random-policy demo: roll out episodes and write a GIF and a frame grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rig.config import Config
from rig.envs import make_env
from rig.media import image_grid, save_gif, save_png
from rig.rundir import RunDir


def run_demo(cfg: Config, episodes: int = 4) -> dict[str, Path]:
    """Roll out a uniformly random policy and save what it saw, with each episode's goal image."""
    env = make_env(cfg.env)
    env.action_space.seed(cfg.seed)
    gif_frames, grid_rows = [], []
    for episode in range(episodes):
        env.reset(seed=cfg.seed + episode)
        goal = env.unwrapped.goal_image()  # type: ignore[attr-defined]
        frames = [env.render()]
        truncated = terminated = False
        while not (truncated or terminated):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            frames.append(env.render())
        gif_frames += [np.concatenate([frame, goal], axis=1) for frame in frames]
        picks = np.linspace(0, len(frames) - 1, 7).round().astype(int)
        grid_rows += [frames[i] for i in picks] + [goal]
    env.close()
    run = RunDir(cfg.run_dir)
    paths = {"gif": run.demo_gif, "grid": run.demo_grid}
    save_gif(paths["gif"], gif_frames, fps=10, scale=4)
    save_png(paths["grid"], image_grid(grid_rows, ncols=8), scale=3)
    return paths
