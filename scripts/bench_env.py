"""Env steps per second with a 48x48 render each step, rig/Push-v0 against gymnasium's Pusher-v5.

Each measurement runs in a fresh process (two MuJoCo GL contexts in one process interfere) pinned
to one CPU core with Mesa limited to one thread. The two envs alternate round by round so machine
noise hits both alike; the ratio is the figure to quote.

    python scripts/bench_env.py [--steps 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ENVS = {"rig": "rig/Push-v0", "pusher": "Pusher-v5"}


def measure(env_id: str, steps: int, seed: int) -> float:
    """Steps per second of ``env_id``, render included, after one warm-up episode."""
    import gymnasium as gym

    import envs  # noqa: F401

    env = gym.make(env_id, render_mode="rgb_array", width=48, height=48)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    env.render()  # the first render builds the GL context; keep it out of the timing
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        frame = env.render()
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    assert frame is not None and frame.shape == (48, 48, 3)
    return steps / elapsed


def run_round(name: str, steps: int, seed: int) -> float:
    environment = {**os.environ, "LP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--child", name, "--steps", str(steps), "--seed", str(seed)]
    core = str(min(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else None
    if core is not None:
        command = ["taskset", "-c", core, *command]
    output = subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--steps", type=int, default=2000, help="rig steps per round; Pusher-v5 runs a tenth")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=sorted(ENVS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(measure(ENVS[args.child], args.steps, args.seed))
        return
    rates: dict[str, list[float]] = {name: [] for name in ENVS}
    for round_index in range(args.rounds):
        rates["rig"].append(run_round("rig", args.steps, round_index))
        rates["pusher"].append(run_round("pusher", max(args.steps // 10, 50), round_index))
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    print(f"{args.rounds} alternating rounds, one core, one 48x48 RGB render per step")
    for name, values in rates.items():
        spread = f"min {min(values):.0f}, max {max(values):.0f}"
        print(f"{ENVS[name]:12s}: {medians[name]:7.0f} steps/s (median; {spread})")
    print(f"ratio       : {medians['rig'] / medians['pusher']:7.1f}x")


if __name__ == "__main__":
    main()
