"""Rendering speed of the adapted envs against the same envs with gymnasium's default rendering.

    python3 -m scripts.bench_adapters --frames 100 --rounds 3

For each env it times frames (``render()`` alone) and steps (``step`` + ``render``), alternating the
default and the adapter over ``--rounds`` rounds, and prints the median of the rounds. The default side
is gymnasium's own env and renderer (shadows, 4x multisampling, its default camera); the adapter side is
rig's ``rig/...`` id (no shadows, no multisampling, its own camera). PointMaze rows are skipped
without gymnasium-robotics.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym

import envs  # noqa: F401  sets MUJOCO_GL and registers the rig/ ids


def _frames_per_second(env: gym.Env[Any, Any], frames: int, step: bool) -> float:
    env.reset(seed=0)
    env.render()  # the first frame makes the GL context; not timed
    start = time.perf_counter()
    for _ in range(frames):
        if step:
            env.step(env.action_space.sample())
        env.render()
    return frames / (time.perf_counter() - start)


def _median_rates(make: Callable[[], gym.Env[Any, Any]], frames: int, rounds: int, step: bool) -> float:
    env = make()
    try:
        return statistics.median(_frames_per_second(env, frames, step) for _ in range(rounds))
    finally:
        env.close()


def _cases() -> list[tuple[str, int, str, str]]:
    """(label, size, default id, adapter id)."""
    cases = [("Pusher", 96, "Pusher-v5", "rig/Pusher-v5"), ("Pusher", 48, "Pusher-v5", "rig/Pusher-v5")]
    if importlib.util.find_spec("gymnasium_robotics") is not None:
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        cases.append(("PointMaze_UMaze", 48, "PointMaze_UMaze-v3", "rig/PointMaze_UMaze-v3"))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="frames timed per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement (median reported)")
    args = parser.parse_args()
    print("| env | px | what | gymnasium default | rig adapter | speed-up | adapter ms/frame |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, size, default_id, adapter_id in _cases():
        for step in (False, True):
            rates = []
            for env_id in (default_id, adapter_id):

                def make(env_id: str = env_id, size: int = size) -> gym.Env[Any, Any]:
                    return gym.make(env_id, render_mode="rgb_array", width=size, height=size)

                rates.append(_median_rates(make, args.frames, args.rounds, step))
            what = "steps/s (step + render)" if step else "frames/s (render)"
            print(
                f"| {label} | {size} | {what} | {rates[0]:.1f} | {rates[1]:.1f} | "
                f"{rates[1] / rates[0]:.1f}x | {1e3 / rates[1]:.2f} |"
            )


if __name__ == "__main__":
    main()
