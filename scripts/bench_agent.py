"""Env steps per second of the RIG training loop against the loop as it was before, the state oracle or
CC-RIG, side by side.

Sides (``--sides FIRST,SECOND`` prints FIRST / SECOND; the default is ``rig,before``):

- ``rig``: the default config through ``make_training_env`` + ``make_agent``: ``rig.td3.LeanTD3``, fused
  Adam, [256, 256] networks, batch 128, one update per env step. It renders a 48x48 frame and encodes it
  with a beta-VAE at every step, and draws prior goals from the VAE when relabelling.
- ``before``: the same loop with the settings rig had before ``LeanTD3``: stable-baselines3's own
  ``TD3.train`` and ``HerReplayBuffer.sample``, Adam without the fused kernel, and the reference's
  [400, 300] networks (``before:agent.net_arch=[256,256]`` gives it the default's).
- ``oracle``: ``rig`` on the true state; goals are drawn from the goal boxes, nothing is rendered.
- ``ccrig``: ``configs/ccrig.yaml``'s CC-VAE on rig/PushMultiColor-v0, which adds the context encoding
  of each episode's first frame.
- ``skewfit``: ``configs/skewfit.yaml``: ``rig`` plus the online VAE (``rig.online``): frames kept in the
  replay buffer, and every ``online.update_every`` env steps a VAE update (scoring, training batches,
  re-encoding every stored frame, refitting the goals). Time at least ``online.update_every`` steps
  (``--steps 4000`` holds two updates) for its amortised cost. The buffer holds only the bench's few
  thousand frames, so the re-encoding, which grows with the buffer, costs less than late in a real run.

Config overrides after the options apply to every side, or to one side with its name and a colon:
``agent.net_arch=[400,300]`` measures both loops with the reference's networks,
``before:agent.net_arch=[256,256]`` both with the default's. The VAEs are untrained: weights do not
change speed.

Each measurement runs in a fresh process (one MuJoCo GL context per process), and the two sides alternate
round by round so machine noise hits both alike; the ratio of the medians is the figure to quote.

``--profile`` instead times the first side once without and once under torch.profiler, in one process,
and prints the profiler's table and how much of an unprofiled env step the matrix products take.

    python scripts/bench_agent.py [--steps 1000] [--rounds 3] [--threads 1] [--algo td3]
        [--sides rig,before] [--profile] [key=value ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SIDES = ("rig", "before", "oracle", "ccrig", "skewfit")
CONFIGS = {"ccrig": "ccrig", "skewfit": "skewfit"}
"""the config file of each side that does not use the default"""
WARMUP_UPDATES = 100
"""gradient steps taken before timing, so that lazy initialisation stays out of the measurement"""
BEFORE_NET_ARCH = "[400,300]"
"""the networks of the loop before (the reference's; the default is now [256, 256])"""
MATRIX_PRODUCTS = ("aten::addmm", "aten::mm", "aten::bmm")
"""the profiler's names of the ops that run the networks' matrix products"""


def measure(
    side: str,
    steps: int,
    threads: int,
    algo: str,
    device: str,
    seed: int,
    overrides: list[str],
    profile: bool = False,
) -> float:
    """Training-loop env steps per second of one side, after the random-action phase and a warm-up.

    With ``profile``, a second stretch of ``steps`` runs under torch.profiler and its summary is printed.
    """
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from rig.agent import make_agent, make_training_env
    from rig.callbacks import FollowFreeCpus
    from rig.config import VAEConfig, load_config
    from rig.online import OnlineRepresentationCallback, OnlineVAE
    from rig.pretrain import make_representation
    from rig.representation import BetaVAE
    from rig.threads import AgentThreads

    torch.set_num_threads(max(1, threads))
    if side == "before":
        use_stock_training_loop()
    # A short random phase: its steps skip the updates, which are what is being compared.
    settings = [f"agent.algo={algo}", "agent.learning_starts=200", f"seed={seed}"]
    if side == "before":
        settings.append(f"agent.net_arch={BEFORE_NET_ARCH}")
    for override in overrides:
        key, equals, value = override.partition("=")
        target, _, key = key.rpartition(":")
        if target in ("", side):
            settings.append(key + equals + value)
    cfg = load_config(CONFIGS.get(side), settings)
    vae_cfg = VAEConfig(kind="state") if side == "oracle" else cfg.vae
    representation = make_representation(vae_cfg, cfg.env.image_size).to(device)
    model = make_agent(cfg, make_training_env(cfg, representation), device)
    callbacks: list[BaseCallback] = []
    if threads == 0:  # rig's rule, as the train stage applies it
        callbacks.append(FollowFreeCpus(AgentThreads(0, online=cfg.online.enabled)))
    if cfg.online.enabled:
        assert isinstance(representation, BetaVAE)
        callbacks.append(OnlineRepresentationCallback(OnlineVAE(cfg, representation, torch.device(device))))
    # The first VAE update (online.first_batches) falls in this untimed warm-up.
    model.learn(cfg.agent.learning_starts + WARMUP_UPDATES, callback=callbacks)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False, callback=callbacks)
    seconds = time.perf_counter() - start
    if profile:
        with torch.profiler.profile() as profiler:
            model.learn(steps, reset_num_timesteps=False, callback=callbacks)
        print_profile(profiler, seconds / steps, steps)
    return steps / seconds


def print_profile(profiler: torch.profiler.profile, step_seconds: float, steps: int) -> None:
    """The profiler's op table and the matrix products' share of an unprofiled env step."""
    averages = profiler.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=15))
    per_step = {event.key: event.self_cpu_time_total / 1e3 / steps for event in averages}  # ms
    products = sum(per_step.get(name, 0.0) for name in MATRIX_PRODUCTS)
    print(f"unprofiled env step: {step_seconds * 1e3:.2f} ms ({steps} steps)")
    print(f"torch ops under the profiler, self time: {sum(per_step.values()):.2f} ms per env step")
    print(
        f"matrix products ({', '.join(MATRIX_PRODUCTS)}): {products:.2f} ms per env step, "
        f"{products / (step_seconds * 1e3):.0%} of the unprofiled step"
    )


def use_stock_training_loop() -> None:
    """Puts back, in this process only, the training loop rig had before ``rig.td3``."""
    from stable_baselines3 import TD3, HerReplayBuffer

    import rig.agent
    from rig.relabel import ImaginedGoalReplayBuffer

    rig.agent.LeanTD3 = TD3  # type: ignore[misc,assignment]
    rig.agent.optimizer_kwargs = lambda device: {}
    ImaginedGoalReplayBuffer.sample = HerReplayBuffer.sample  # type: ignore[method-assign]


def run_child(side: str, args: argparse.Namespace, seed: int, profile: bool = False) -> str:
    """One measurement of ``side`` in a fresh process; what it printed, the rate on the last line."""
    command = [sys.executable, __file__, "--child", side, "--seed", str(seed)]
    command += ["--steps", str(args.steps), "--threads", str(args.threads), "--algo", args.algo]
    command += ["--device", args.device, *args.overrides, *(["--profile"] if profile else [])]
    result = subprocess.run(command, env=dict(os.environ), check=True, capture_output=True, text=True)
    return result.stdout.strip()


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--steps", type=int, default=1000, help="timed env steps per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads on both sides; 0: rig's rule, the CPUs other processes leave free",
    )
    parser.add_argument("--algo", choices=("td3", "sac"), default="td3")
    parser.add_argument("--device", default="cpu", help="torch device of agent and VAE on both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", default="rig,before", help=f"two of {SIDES}: the first over the second")
    parser.add_argument(
        "overrides", nargs="*", help="config overrides (key=value) for every side, or SIDE:key=value for one"
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile the first side's loop once instead of timing both"
    )
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rate = measure(
            args.child,
            args.steps,
            args.threads,
            args.algo,
            args.device,
            args.seed,
            args.overrides,
            args.profile,
        )
        print(rate)
        return
    sides = [side.strip() for side in args.sides.split(",")]
    if len(sides) != 2 or len(set(sides)) != 2 or not set(sides) <= set(SIDES):
        parser.error(f"--sides must name two different sides of {SIDES}, got {args.sides!r}")
    if args.profile:
        # The child's last line is its rate, which the summary above it already gives.
        print(run_child(sides[0], args, args.seed, profile=True).rsplit("\n", 1)[0])
        return
    rates: dict[str, list[float]] = {side: [] for side in sides}
    for round_index in range(args.rounds):
        for side in sides:
            output = run_child(side, args, args.seed + round_index)
            rates[side].append(float(output.splitlines()[-1]))
    medians = {side: float(np.median(values)) for side, values in rates.items()}
    print(
        f"{args.algo}, batch 128, 1 gradient step per env step, {args.steps} timed steps, "
        f"{args.rounds} alternating rounds, {args.threads} torch thread(s), device {args.device}"
    )
    for side, values in rates.items():
        rounds = ", ".join(f"{value:.1f}" for value in values)
        print(f"{side:>7}: {medians[side]:7.1f} env steps/s (median of {rounds})")
    first, second = sides
    print(f"  ratio: {first} / {second} = {medians[first] / medians[second]:.3f}")


if __name__ == "__main__":
    main()
