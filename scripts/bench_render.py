"""Milliseconds per 48x48 frame of rig's envs: ``render()`` alone and ``goal_image()``, env by env.

Each measurement runs in a fresh process (two MuJoCo GL contexts in one process interfere) pinned to one
CPU core with Mesa limited to one thread. The envs alternate round by round so machine noise hits all
alike; the figures are medians over rounds.

    python3 scripts/bench_render.py [--frames 2000] [--rounds 5] [--envs rig/Push-v0 rig/Door-v0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ENVS = ("rig/Push-v0", "rig/Door-v0")


def measure(env_id: str, frames: int, seed: int) -> tuple[float, float]:
    """(ms per ``render()``, ms per ``goal_image()``) of ``env_id`` at 48x48, over random states."""
    import gymnasium as gym

    import envs  # noqa: F401

    env = gym.make(env_id, render_mode="rgb_array", width=48, height=48)
    inner = env.unwrapped
    env.reset(seed=seed)
    env.render()  # the first render builds the GL context; keep it out of the timing
    states = [inner.sample_state() for _ in range(frames)]
    render_seconds = 0.0
    for state in states:
        inner.set_to_state(state)
        start = time.perf_counter()
        frame = env.render()
        render_seconds += time.perf_counter() - start
    assert frame is not None and frame.shape == (48, 48, 3)
    start = time.perf_counter()
    for _ in range(frames):
        inner.goal_image()
    goal_seconds = time.perf_counter() - start
    return 1e3 * render_seconds / frames, 1e3 * goal_seconds / frames


def run_round(env_id: str, frames: int, seed: int) -> tuple[float, float]:
    # The child imports this checkout's envs, whatever is installed.
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "LP_NUM_THREADS": "1", "PYTHONPATH": path}
    command = [sys.executable, __file__, "--child", env_id, "--frames", str(frames), "--seed", str(seed)]
    core = str(min(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else None
    if core is not None:
        command = ["taskset", "-c", core, *command]
    output = subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stdout
    render_ms, goal_ms = output.strip().splitlines()[-1].split()
    return float(render_ms), float(goal_ms)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--frames", type=int, default=2000, help="frames per env per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS), help="env ids to compare")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        render_ms, goal_ms = measure(args.child, args.frames, args.seed)
        print(f"{render_ms} {goal_ms}")
        return
    times: dict[str, list[tuple[float, float]]] = {env_id: [] for env_id in args.envs}
    for round_index in range(args.rounds):
        for env_id in args.envs:
            times[env_id].append(run_round(env_id, args.frames, round_index))
    print(f"{args.rounds} alternating rounds of {args.frames} frames, one core, 48x48 RGB")
    for env_id, values in times.items():
        render_ms, goal_ms = np.median(np.array(values), axis=0)
        spread = f"min {min(v[0] for v in values):.3f}, max {max(v[0] for v in values):.3f}"
        print(f"{env_id:16s}: render {render_ms:.3f} ms/frame ({spread}); goal_image {goal_ms:.3f} ms")


if __name__ == "__main__":
    main()
