"""Two methods over seeds at one env step: per-seed metrics, mean ± std, and Welch's test of the difference.

Each method is a list of run directories (one per seed). The metric is read from each run's learning
curve (``agent/eval_curve.csv``) at ``--step``, so a longer run can be compared at a shorter budget: the
point at 50,000 steps of a 75,000-step run is what a 50,000-step run of the same settings evaluates.
Both methods must have been evaluated on the same goals (``eval.seed``, ``eval.episodes`` and the env),
or the comparison is refused.

The second method can instead be given as recorded per-seed values of the metric at that step
(``--second-values``), for a baseline whose run directories are gone but whose figures were written down
(the README's tables). Its goals cannot be checked then: give values measured on the same goals.

    python scripts/compare_seeds.py --first runs/after/seed=* --second ../base/runs/base/seed=* \\
        --step 50000 [--metric hand_distance] [--names new,before]
    python scripts/compare_seeds.py --first runs/new/seed* --second-values 0.037 0.046 0.048 0.031 0.040 \\
        --step 50000 --names new,default
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rig.report import RunRecord, read_run
from rig.report.runs import evaluation_goals
from rig.stats import summarize, welch_compare

SUCCESS = "success_rate"


def metric_at(run: RunRecord, step: int, metric: str) -> float:
    points = [point for point in run.curve if point.steps == step]
    if not points:
        steps = [point.steps for point in run.curve]
        raise SystemExit(f"{run.path} has no evaluation at step {step} (its curve has {steps})")
    point = points[-1]
    if metric != SUCCESS and metric not in point.metric_names:
        raise SystemExit(
            f"{run.path} records no {metric!r}: its metrics are {[*point.metric_names, SUCCESS]}"
        )
    return float(getattr(point, metric))


def read_method(paths: Sequence[str]) -> list[RunRecord]:
    runs = [read_run(Path(path)) for path in paths]
    if not runs:
        raise SystemExit("a method needs at least one run directory")
    return runs


def no_worse(names: Sequence[str], first: float, second: float, error: float, metric: str) -> str:
    """Whether the first mean is no worse than the second's by more than one standard error of the second."""
    if metric == SUCCESS:  # higher is better
        bound, holds, test = second - error, first >= second - error, ">= {} mean - one standard error"
    else:
        bound, holds, test = second + error, first <= second + error, "<= {} mean + one standard error"
    verdict = "holds" if holds else "does not hold"
    return f"{names[0]} mean {test.format(names[1])} ({bound:.4f}): {verdict}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--first", nargs="+", required=True, help="run directories of the first method")
    baseline = parser.add_mutually_exclusive_group(required=True)
    baseline.add_argument("--second", nargs="+", help="run directories of the second method")
    baseline.add_argument(
        "--second-values",
        nargs="+",
        type=float,
        metavar="VALUE",
        help="the second method's recorded per-seed values of the metric at --step (goals not checked)",
    )
    parser.add_argument("--step", type=int, required=True, help="env step of the compared evaluation")
    parser.add_argument(
        "--metric", help=f"a goal metric of the env, or {SUCCESS} (default: the env's headline metric)"
    )
    parser.add_argument("--names", default="first,second", help="two labels, comma-separated")
    args = parser.parse_args(argv)
    names = args.names.split(",")
    if len(names) != 2:
        parser.error("--names takes two labels")
    methods = {names[0]: read_method(args.first)}
    if args.second is not None:
        methods[names[1]] = read_method(args.second)
    goals = {evaluation_goals(run) for runs in methods.values() for run in runs}
    if len(goals) != 1:
        raise SystemExit(f"the runs were evaluated on different goals (eval.seed, episodes, env): {goals}")
    metric = args.metric or next(iter(methods[names[0]][0].goal_metrics))
    values: dict[str, list[float]] = {}
    labels: dict[str, list[str]] = {}
    print(
        f"{metric} at step {args.step}, goals (eval.seed, episodes, env, env kwargs, palette, horizon) "
        f"{goals.pop()}"
    )
    for name, runs in methods.items():
        values[name] = [metric_at(run, args.step, metric) for run in runs]
        labels[name] = [f"seed {run.config.seed}" for run in runs]
    if args.second_values is not None:
        values[names[1]] = list(args.second_values)
        labels[names[1]] = [f"value {index}" for index in range(len(args.second_values))]
        print(f"{names[1]}: recorded values, not read from runs; their goals were not checked")
    for name in names:
        seeds = ", ".join(
            f"{label}: {value:.4f}" for label, value in zip(labels[name], values[name], strict=True)
        )
        summary = summarize(values[name])
        print(
            f"{name:>8}: {summary.mean:.4f} ± {summary.std:.4f} (standard error "
            f"{summary.standard_error:.4f}, max {max(values[name]):.4f}, n {summary.n}; {seeds})"
        )
    first, second = values[names[0]], values[names[1]]
    if min(len(first), len(second)) >= 2:
        comparison = welch_compare(first, second)
        print(f"{names[0]} - {names[1]}: {comparison.describe()}")
        error = comparison.second.standard_error
        print(no_worse(names, comparison.first.mean, comparison.second.mean, error, metric))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
