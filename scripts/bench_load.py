"""The RIG training loop's env steps per second alone and beside one busy process, for two thread counts.

rig's agent loop takes the CPUs that other processes leave free, measured when it starts and every few
seconds, unless ``torch_threads`` says otherwise (``rig.threads``); before, it took torch's default of one
thread per core. This script measures both, each alone and with a busy
single-threaded process beside it (a spinning Python subprocess it starts before and stops after each
measurement), and prints, per thread count, the loaded / alone ratio, and the rule's speed alone against
the old default's. The targets of issue 30: loaded / alone >= 0.8 with the rule, and alone no more than 5%
slower than the old default.

Each measurement is ``scripts/bench_agent.py``'s ``rig`` side in a fresh process; the settings alternate
round by round so that machine noise hits them alike. Run it on an otherwise idle machine.

    python scripts/bench_load.py [--steps 500] [--rounds 3] [--old-threads N] [key=value ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_agent  # noqa: E402  the measurement itself

from rig.threads import usable_cpus  # noqa: E402

RULE = 0
"""``bench_agent``'s thread count for rig's rule"""

SPIN = "while True: pass"


@contextmanager
def busy_process(on: bool) -> Iterator[None]:
    """A single-threaded process spinning on a CPU for the duration of the block (when ``on``)."""
    if not on:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        yield
    finally:
        spinner.terminate()
        spinner.wait()


def threads_label(threads: int) -> str:
    return "free CPUs" if threads == RULE else f"{threads} thread(s)"


def rate(args: argparse.Namespace, threads: int, loaded: bool, seed: int) -> float:
    child = argparse.Namespace(
        steps=args.steps, threads=threads, algo="td3", device="cpu", overrides=args.overrides
    )
    with busy_process(loaded):
        output = bench_agent.run_child("rig", child, seed)
    return float(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=500, help="timed env steps per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--old-threads",
        type=int,
        default=usable_cpus(),
        help="the old default: one per CPU (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="config overrides (key=value)")
    args = parser.parse_args()
    settings = {"rule": RULE, "old": args.old_threads}
    cases = [(name, loaded) for name in settings for loaded in (False, True)]
    rates: dict[tuple[str, bool], list[float]] = {case: [] for case in cases}
    for round_index in range(args.rounds):
        for name, loaded in cases:
            rates[name, loaded].append(rate(args, settings[name], loaded, args.seed + round_index))
    medians = {case: float(np.median(values)) for case, values in rates.items()}
    print(f"td3 loop, {args.steps} timed steps, {args.rounds} alternating rounds, {usable_cpus()} CPUs")
    for (name, loaded), values in rates.items():
        where = "beside a busy process" if loaded else "alone"
        rounds = ", ".join(f"{value:.1f}" for value in values)
        print(
            f"{name:>4} ({threads_label(settings[name])}) {where:>21}: "
            f"{medians[name, loaded]:7.1f} env steps/s (median of {rounds})"
        )
    for name in settings:
        print(f"{name:>4}: beside / alone = {medians[name, True] / medians[name, False]:.3f}")
    print(f"alone: rule / old = {medians['rule', False] / medians['old', False]:.3f}")


if __name__ == "__main__":
    main()
