"""Reproduce the README's method comparisons: RIG (with the default [256, 256] networks and with the
reference's [400, 300]) and the oracle on rig/Push-v0; CC-RIG, RIG with a same-size beta-VAE and the
oracle on the multi-colour and multi-object pushers (held-out colours); and the Skew-Fit table at 100K
env steps (RIG on teleport and on random-only frames, online RIG, Skew-Fit, the oracle).

Each method is one ``rig sweep`` over the seeds (Ray Tune, one trial per CPU core), written under
``--out``; finished stages are cached, so running the script again only redoes what is missing. Then it
prints one table over every trial and writes a combined report. Every method's final puck distance is
also given as a ratio to the random policy evaluated on the same goals in the same runs (lower is
better; 1.0 means no better than random), and the pairs in ``COMPARISONS`` (the two networks, CC-RIG
against RIG on each multi-object env, Skew-Fit against RIG) are compared by Welch's t-test on the
per-seed final puck distances, with a 95% confidence interval of the difference.

    python scripts/reproduce_results.py                           # every method, 5 seeds
    python scripts/reproduce_results.py --only ccrig,rig_multicolor,oracle_multicolor
    python scripts/reproduce_results.py --no-run --out docs/results --only rig,rig_400x300
    python scripts/reproduce_results.py --seeds 0,1,2 \
        --only rig_100k,rig_random_data,rig_online,skewfit,oracle_100k
    python scripts/reproduce_results.py --no-run                  # tabulate sweeps that already ran
    python scripts/reproduce_results.py --no-run --out docs/results --only skewfit,rig_100k \
        --report docs/results/report_skewfit                      # the archived records, own report
    python scripts/reproduce_results.py --no-run --out docs/results --only ccrig,rig_multicolor \
        --markdown                                                # only the docs' table, nothing written

With ``--no-run``, trials that have no ``eval.json`` yet are listed as missing instead of being run.
``--markdown`` (with ``--no-run``) prints the table the docs show, one row per method with each seed's
final puck distance, and the Welch comparisons, and writes nothing; ``--brief`` shortens it to the
README's columns. The docs pages hold these tables between ``<!-- generated: COMMAND -->`` and
``<!-- end generated -->``; ``scripts/docs_tables.py`` rewrites them and a test checks them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from rig.report import MethodGroup, RunRecord, build_report, final_section, group_runs, read_run
from rig.rundir import ReportDir, RunDir
from rig.stats import welch_compare
from rig.sweep import SWEEP_FILE

HUNDRED_K = ("agent.total_steps=100000",)
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    # name (its sweep directory under --out): config in configs/, overrides
    "rig": ("default", ()),
    # The default with the reference's [400, 300] networks, the default until [256, 256] replaced it.
    "rig_400x300": ("default", ("agent.net_arch=[400,300]",)),
    "oracle": ("oracle", ()),
    "ccrig": ("ccrig", ()),
    "rig_multicolor": ("rig_multicolor", ()),
    "oracle_multicolor": ("oracle_multicolor", ()),
    "supervised_multicolor": ("supervised_multicolor", ()),
    "ccrig_multiobject": ("ccrig_multiobject", ()),
    "rig_multiobject": ("rig_multiobject", ()),
    "oracle_multiobject": ("oracle_multiobject", ()),
    # The default with the reference's networks, as its recorded results (and every other config) have.
    "rig_100k": ("default", (*HUNDRED_K, "agent.net_arch=[400,300]")),
    "rig_random_data": ("rig_random_data", ()),
    "rig_online": ("rig_online", ()),
    "skewfit": ("skewfit", ()),
    "oracle_100k": ("oracle", HUNDRED_K),
    # The default at 100K, and with imagined goals fitted to the teleported frames (RIG, Past 50,000 steps).
    "rig_long": ("default", HUNDRED_K),
    "rig_long_teleported": ("default", (*HUNDRED_K, "agent.goal_prior=teleported")),
    # The same agent on the supervised position encoder at 100K, the oracle on the default's networks at
    # 100K, and CC-RIG with the teleported goal prior.
    "supervised_long": ("supervised", HUNDRED_K),
    "oracle_long": ("oracle", (*HUNDRED_K, "agent.net_arch=[256,256]")),
    "ccrig_teleported": ("ccrig", ("agent.goal_prior=teleported",)),
    "rig_long_goal_std": ("default", (*HUNDRED_K, "agent.reward_scale=goal_std")),
    "ccrig_goal_std": ("ccrig", ("agent.reward_scale=goal_std",)),
}
LABELS = {
    "rig": "RIG, default ([256, 256] networks)",
    "rig_400x300": "RIG, [400, 300] networks",
    "oracle": "state oracle",
    "ccrig": "CC-RIG (CC-VAE z 8 + c 4)",
    "rig_multicolor": "RIG (beta-VAE z 12)",
    "oracle_multicolor": "state oracle",
    "supervised_multicolor": "RIG on the supervised position encoder",
    "ccrig_multiobject": "CC-RIG (CC-VAE z 8 + c 4)",
    "rig_multiobject": "RIG (beta-VAE z 12)",
    "oracle_multiobject": "state oracle",
    "rig_100k": "RIG, teleport + random frames",
    "rig_random_data": "RIG, random-action frames",
    "rig_online": "online RIG (skew alpha 0)",
    "skewfit": "Skew-Fit (skew alpha -1)",
    "oracle_100k": "state oracle",
    "rig_long": "RIG, default ([256, 256] networks)",
    "rig_long_teleported": "RIG, goals fitted to teleported frames",
    "supervised_long": "RIG on the supervised position encoder",
    "oracle_long": "state oracle, [256, 256] networks",
    "ccrig_teleported": "CC-RIG, goals fitted to teleported frames",
    "rig_long_goal_std": "RIG, reward scaled by the goal std",
    "ccrig_goal_std": "CC-RIG, reward scaled by the goal std",
}
"""How the docs' tables name each method."""
COMPARISONS = (
    ("rig", "rig_400x300"),
    ("ccrig", "rig_multicolor"),
    ("supervised_multicolor", "oracle_multicolor"),
    ("supervised_multicolor", "rig_multicolor"),
    ("ccrig_multiobject", "rig_multiobject"),
    ("skewfit", "rig_100k"),
    ("skewfit", "rig_random_data"),
    ("rig_long_teleported", "rig_long"),
    ("supervised_long", "rig_long"),
    ("supervised_long", "oracle_long"),
    ("rig_long", "oracle_long"),
    ("ccrig_teleported", "ccrig"),
    ("rig_long_goal_std", "rig_long"),
    ("rig_long_goal_std", "oracle_long"),
    ("ccrig_goal_std", "ccrig"),
)
"""(first, second) method pairs whose per-seed final puck distances are compared by Welch's t-test."""


def run_sweep(config: str, overrides: tuple[str, ...], seeds: str, out: Path) -> None:
    command = [sys.executable, "-m", "rig", "sweep", config, *overrides, "--seeds", seeds, "--out", str(out)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def trial_dirs(sweep_dir: Path) -> list[Path]:
    """The run directory of every trial the sweep recorded, in its order; while a sweep is still running
    (no ``sweep.json`` yet), the run directories found in it."""
    record = sweep_dir / SWEEP_FILE
    if not record.is_file():
        return sorted(path for path in sweep_dir.glob("*") if RunDir(path).is_run())
    return [Path(trial["run_dir"]) for trial in json.loads(record.read_text())["trials"]]


def random_ratio(group: MethodGroup) -> str | None:
    """The group's mean final puck distance over its random baseline's, on the same goals in the same runs."""
    finals = [run.final["puck_distance_mean"] for run in group.runs if run.final]
    randoms = [run.random_baseline["puck_distance_mean"] for run in group.runs if run.random_baseline]
    if not finals or not randoms:
        return None
    puck, random_puck = float(np.mean(finals)), float(np.mean(randoms))
    return f"{group.label}: {puck:.3f} / {random_puck:.3f} = {puck / random_puck:.2f}x"


def seed_finals(run_dirs: list[Path]) -> list[float]:
    """Each finished trial's final puck distance (its mean over the evaluation goals)."""
    finals = []
    for path in run_dirs:
        final = read_run(path).final
        if final:
            finals.append(float(final["puck_distance_mean"]))
    return finals


def compare(first: str, second: str, finals: dict[str, list[float]]) -> str:
    if len(finals.get(first, [])) < 2 or len(finals.get(second, [])) < 2:
        return f"{first} - {second}: needs at least two finished seeds of each"
    result = welch_compare(finals[first], finals[second])
    return (
        f"{first} - {second} (final puck distance, {result.first.n} vs {result.second.n} seeds): "
        + result.describe(" m")
    )


def _stat(values: list[float], digits: int = 3) -> str:
    """Mean ± std over seeds (ddof 0, as the report gives them)."""
    if not values:
        return "–"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def _final(runs: list[RunRecord], key: str, baseline: bool = False) -> list[float]:
    summaries = [run.random_baseline if baseline else run.final for run in runs]
    return [float(summary[key]) for summary in summaries if summary and key in summary]


def markdown_table(out: Path, chosen: list[str], brief: bool = False) -> str:
    """The docs' table of the methods ``chosen`` from the run records under ``out``, in that order: one row
    per method (its env, seeds, steps, final distances, each seed's puck distance, ratio to the random
    policy on the same goals, success), one per env for the random policy, then the Welch comparisons."""
    head = ["method", "config", "env", "seeds", "env steps", "final puck distance (m)"]
    head += (
        ["vs random", "success"] if brief else ["per seed", "vs random", "final hand distance (m)", "success"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    randoms: dict[str, list[RunRecord]] = {}
    finals: dict[str, list[float]] = {}
    for name in chosen:
        runs = [read_run(path) for path in trial_dirs(out / name)]
        runs = [run for run in runs if run.final]
        if not runs:
            missing = [LABELS[name], f"`{name}`", "", "0", "", "no records", *[""] * (len(head) - 6)]
            lines.append("| " + " | ".join(missing) + " |")
            continue
        env = runs[0].config.env.id
        randoms.setdefault(env, []).extend(runs)
        finals[name] = puck = _final(runs, "puck_distance_mean")
        random_puck = float(np.mean(_final(runs, "puck_distance_mean", baseline=True)))
        steps = runs[0].trained_steps() or 0
        cells = [LABELS[name], f"`{name}`", f"`{env}`", str(len(runs)), f"{steps:,}", _stat(puck)]
        ratio = f"{np.mean(puck) / random_puck:.2f}x"
        success = _stat(_final(runs, "success_rate"), 2)
        if brief:
            cells += [ratio, success]
        else:
            per_seed = " / ".join(f"{value:.3f}" for value in puck)
            cells += [per_seed, ratio, _stat(_final(runs, "hand_distance_mean")), success]
        lines.append("| " + " | ".join(cells) + " |")
    if not brief:
        for env, runs in randoms.items():
            puck = float(np.mean(_final(runs, "puck_distance_mean", baseline=True)))
            hand = float(np.mean(_final(runs, "hand_distance_mean", baseline=True)))
            success = float(np.mean(_final(runs, "success_rate", baseline=True)))
            cells = ["random policy", "", f"`{env}`", "(same goals)", "–", f"{puck:.3f}", "", "1.00x"]
            lines.append("| " + " | ".join([*cells, f"{hand:.3f}", f"{success:.2f}"]) + " |")
    lines += [
        "",
        "Mean ± std over seeds (ddof 0); *vs random*: the mean final puck distance over the random "
        "policy's on the same goals in the same runs.",
    ]
    pairs = [(first, second) for first, second in COMPARISONS if first in chosen and second in chosen]
    if pairs and not brief:
        lines += [
            "",
            "Welch's test on the per-seed final puck distances (negative: the first ends closer):",
            "",
        ]
        lines += [f"- {compare(first, second, finals)}" for first, second in pairs]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="one sweep directory per method")
    parser.add_argument("--only", default=",".join(METHODS), help=f"comma-separated, from {list(METHODS)}")
    parser.add_argument("--no-run", action="store_true", help="only tabulate sweeps that already ran")
    parser.add_argument(
        "--report", type=Path, help="where the combined report goes (default: report/ under --out)"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="with --no-run: print the docs' table only, write nothing"
    )
    parser.add_argument("--brief", action="store_true", help="with --markdown: the README's columns only")
    return parser


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The arguments and the chosen methods; an unknown method or option is a usage error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    if args.markdown and not args.no_run:
        parser.error("--markdown tabulates records only: pass --no-run too")
    return args, chosen


def docs_table(argv: list[str], root: Path) -> str:
    """What the command line ``argv`` prints when run from ``root``: a ``--no-run ... --markdown`` table
    (``scripts/docs_tables.py`` keeps these in the docs)."""
    args, chosen = parse(list(argv))
    if not args.markdown:
        raise ValueError(f"not a generated table's command line: {argv}")
    out = args.out if args.out.is_absolute() else root / args.out
    return markdown_table(out, chosen, args.brief)


def main(argv: list[str] | None = None) -> None:
    args, chosen = parse(argv)
    if args.markdown:
        print(markdown_table(args.out, chosen, args.brief))
        return
    if not args.no_run:
        for name in chosen:
            run_sweep(*METHODS[name], args.seeds, args.out / name)
    tabulate(args.out, chosen, args.report or ReportDir.inside(args.out).root)


def tabulate(out: Path, chosen: list[str], report: Path) -> None:
    """Print the final table, ratios to random and comparisons of every chosen sweep; write the report."""
    run_dirs: list[Path] = []
    finals: dict[str, list[float]] = {}
    for name in chosen:
        found = trial_dirs(out / name)
        if not found:
            print(f"{name}: no sweep found in {out / name}")
        run_dirs += found
        finals[name] = seed_finals(found)
    if not run_dirs:
        return
    runs = [read_run(path) for path in run_dirs]
    groups = group_runs(runs)
    print("\n".join(final_section(runs, groups)))
    print("final puck distance as a ratio to the random policy on the same goals (lower is better):")
    for line in filter(None, map(random_ratio, groups)):
        print("  " + line)
    pairs = [(first, second) for first, second in COMPARISONS if first in chosen and second in chosen]
    if pairs:
        print("method against method (negative: the first ends closer to the goal):")
        for first, second in pairs:
            print("  " + compare(first, second, finals))
    print(f"\ncombined report: {build_report(run_dirs, report)}")


if __name__ == "__main__":
    main()
