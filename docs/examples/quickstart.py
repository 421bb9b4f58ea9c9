"""rig's Python API in one script: train a run, load its agent, evaluate it, encode frames, imagine goals.

    python3 docs/examples/quickstart.py                                  # RIG, the default config (~13 min)
    python3 docs/examples/quickstart.py debug run_dir=runs/api_debug     # every stage in seconds
    python3 docs/examples/quickstart.py ccrig seed=1                     # any config and overrides

The first argument is a config (a name in configs/ or a path), the rest are ``key=value`` overrides, as for
``rig run``. Running it again reuses the finished stages of the run directory.
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
import numpy as np

import rig
from rig.envs import make_env


def frame(env: gym.Env[Any, Any]) -> np.ndarray:
    """The env's current image, (H, W, 3) uint8."""
    image = env.render()
    assert isinstance(image, np.ndarray)
    return image


def describe(metrics: dict[str, Any]) -> str:
    """The final distances (mean over the goals) and the success rate of an evaluation."""
    distances = [f"{name} {metrics[name + '_mean']:.3f}" for name, _ in metrics["goal_metrics"]]
    return ", ".join(distances) + f", success {metrics['success_rate']:.0%}"


def main(argv: list[str]) -> None:
    config, *overrides = argv or ["default"]
    cfg = rig.load_config(config, overrides)

    final = rig.run(cfg)  # collect, pretrain, train, evaluate, baselines, report: whatever is not done yet
    print(f"{cfg.run_dir}: {describe(final)}")

    run = rig.load_run(cfg.run_dir)
    rep = run.representation
    print(f"agent: {type(run.policy).__name__} after {run.steps} env steps on {rep.latent_dim}-d latents")

    # Other goals than the run's own evaluation: 5 episodes from seed 123 (the same goals for any agent).
    metrics = run.evaluate(episodes=5, seed=123)
    print(f"5 other goals: {describe(metrics)}")

    if rep.input_kind == "image":
        env = make_env(run.config.env)  # a rendering env of the run's id and image size
        env.reset(seed=0)
        first = frame(env)  # the episode's first frame: a CC-VAE's context
        frames = [first]
        for _ in range(7):
            env.step(env.action_space.sample())
            frames.append(frame(env))
        env.close()
        batch = np.stack(frames)
        contexts = np.repeat(first[None], len(batch), axis=0) if rep.context_dim else None
        latents = run.encode(batch, contexts)
        print(f"encoded {len(batch)} frames of shape {batch.shape[1:]} into {latents.shape[1]}-d latents")

        goals = run.sample_goals(4, seed=0, context=first if rep.context_dim else None)
        images = run.decode(goals)
        print(f"imagined {len(goals)} goals; decoded to images of shape {images.shape[1:]}")


if __name__ == "__main__":
    main(sys.argv[1:])
