"""Reproduce the README's method comparison: RIG, the state oracle, CC-RIG and RIG on the multi-object env.

Each method is one ``rig sweep`` over the seeds (Ray Tune, one trial per CPU core), written under
``--out``; finished stages are cached, so running the script again only redoes what is missing. Then it
prints one table over every trial and writes a combined report. Every method's final puck distance is
also given as a ratio to the random policy evaluated on the same goals in the same runs (lower is
better; 1.0 means no better than random).

    python scripts/reproduce_results.py                  # all four sweeps, 3 seeds: about 2.5 h on 2 cores
    python scripts/reproduce_results.py --only rig,oracle
    python scripts/reproduce_results.py --no-run         # tabulate sweeps that already ran

With ``--no-run``, trials that have no ``eval.json`` yet are listed as missing instead of being run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

METHODS = {
    # name: (config in configs/, what it is)
    "rig": ("default", "RIG, beta-VAE z 4, rig/Push-v0"),
    "oracle": ("oracle", "state oracle, rig/Push-v0"),
    "ccrig": ("ccrig", "CC-RIG, CC-VAE z 4 + c 4, multi-object, held-out colours"),
    "rig_multi": ("rig_multi", "RIG, beta-VAE z 8, multi-object, held-out colours"),
}
METRICS = (("puck_distance_mean", 3), ("hand_distance_mean", 3), ("success_rate", 2))


def run_sweep(config: str, seeds: str, out: Path) -> None:
    command = [sys.executable, "-m", "rig", "sweep", config, "--seeds", seeds, "--out", str(out)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def trial_dirs(sweep_dir: Path) -> list[Path]:
    """The run directory of every trial the sweep recorded, in its order; while a sweep is still running
    (no ``sweep.json`` yet), the run directories found in it."""
    record = sweep_dir / "sweep.json"
    if not record.is_file():
        return sorted(path.parent for path in sweep_dir.glob("*/config.yaml"))
    return [Path(trial["run_dir"]) for trial in json.loads(record.read_text())["trials"]]


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def mean_std(values: Sequence[float], digits: int) -> str:
    if not values:
        return "–"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def method_row(name: str, runs: list[Path]) -> tuple[list[str], float | None, float | None]:
    """Table cells of one method, and its mean puck distance and its random baseline's, for the ratio."""
    finals = [final for run in runs if (final := read_json(run / "eval.json")) is not None]
    randoms = [r for run in runs if (r := read_json(run / "baselines" / "random.json")) is not None]
    steps = sorted({int(final["steps"]) for final in finals})
    cells = [
        name,
        f"{len(finals)} of {len(runs)}",
        ", ".join(f"{s:,}" for s in steps) or "–",
        *(mean_std([float(f[key]) for f in finals], digits) for key, digits in METRICS),
    ]
    puck = float(np.mean([f["puck_distance_mean"] for f in finals])) if finals else None
    random_puck = float(np.mean([r["puck_distance_mean"] for r in randoms])) if randoms else None
    random_cells = [
        f"  random policy, same goals ({name})",
        str(len(randoms)),
        "0",
        *(mean_std([float(r[key]) for r in randoms], digits) for key, digits in METRICS),
    ]
    print_row(cells)
    if randoms:
        print_row(random_cells)
    return cells, puck, random_puck


def print_row(cells: Sequence[str]) -> None:
    print("| " + " | ".join(cells) + " |")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="one sweep directory per method")
    parser.add_argument("--only", default=",".join(METHODS), help=f"comma-separated, from {list(METHODS)}")
    parser.add_argument("--no-run", action="store_true", help="only tabulate sweeps that already ran")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {list(METHODS)}")

    if not args.no_run:
        for name in chosen:
            run_sweep(METHODS[name][0], args.seeds, args.out / name)

    print()
    print_row(["method", "seeds with a result", "env steps", "final puck (m)", "final hand (m)", "success"])
    print_row(["---"] * 6)
    ratios: list[str] = []
    all_runs: list[Path] = []
    for name in chosen:
        runs = trial_dirs(args.out / name)
        if not runs:
            print_row([name, "no sweep found in " + str(args.out / name), "", "", "", ""])
            continue
        all_runs += runs
        _, puck, random_puck = method_row(METHODS[name][1], runs)
        if puck is not None and random_puck:
            ratios.append(f"{METHODS[name][1]}: {puck:.3f} / {random_puck:.3f} = {puck / random_puck:.2f}x")
    print("\nfinal puck distance as a ratio to the random policy on the same goals (lower is better):")
    for line in ratios:
        print("  " + line)

    finished = [run for run in all_runs if (run / "eval.json").is_file()]
    if finished:
        from rig.report import build_report

        print(f"\ncombined report: {build_report(finished, args.out / 'report')}")


if __name__ == "__main__":
    main()
