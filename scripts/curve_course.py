"""Does a method keep improving? Its learning curve over seeds, its best point and how far the end is from it.

Each argument group is one method: run directories of its seeds, evaluated on the same goals at the same
steps (``agent/eval_curve.csv``). For every evaluation step the script prints the mean of the metric over
the seeds and its standard error (sample std / sqrt(seeds)); then the best mean point, the final one, and
the difference final - best in units of the final point's standard error. A method "does not get worse
after its best point" when that difference is at most one standard error.

    python3 scripts/curve_course.py --method default runs/long/seed* --method teleported runs/tele/seed*
    python3 scripts/curve_course.py --method rig runs/rig/seed* --from 30000 --metric hand_distance
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rig.report import read_run
from rig.report.runs import matching_run_dirs

HIGHER_IS_BETTER = {"success_rate"}
"""metrics for which a larger value is the better one; every distance is better smaller"""


@dataclass(frozen=True)
class Course:
    """A method's mean curve over seeds."""

    steps: list[int]
    means: list[float]
    errors: list[float]
    """standard error of each mean: sample std over the seeds / sqrt(seeds); 0 for one seed"""
    best: int
    """index into ``steps`` of the best mean"""
    loss: float
    """how much worse the final mean is than the best (>= 0, in the metric's units)"""

    @property
    def loss_in_errors(self) -> float:
        """``loss`` over the final point's standard error (inf for a loss with no spread to weigh it)"""
        if self.errors[-1] > 0:
            return self.loss / self.errors[-1]
        return math.inf if self.loss > 0 else 0.0


def course(curves: Sequence[dict[int, float]], start: int, higher_is_better: bool) -> Course:
    """The mean curve of ``curves`` (steps -> value, one per seed) at the steps every seed has, from
    ``start`` on."""
    shared = set.intersection(*(set(curve) for curve in curves))
    steps = sorted(step for step in shared if step >= start)
    if not steps:
        raise ValueError(f"the seeds share no evaluation step at or after {start}")
    values = np.array([[curve[step] for step in steps] for curve in curves])
    means = values.mean(axis=0)
    spread = values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(steps))
    errors = spread / math.sqrt(len(curves))
    best = int(np.argmax(means) if higher_is_better else np.argmin(means))
    loss = means[best] - means[-1] if higher_is_better else means[-1] - means[best]
    return Course(steps, means.tolist(), errors.tolist(), best, float(loss))


def read_curves(paths: Sequence[Path], metric: str) -> list[dict[int, float]]:
    curves = []
    for path in paths:
        run = read_run(path)
        if not run.curve:
            raise ValueError(f"{path} has no learning curve (agent/eval_curve.csv)")
        curves.append({point.steps: float(getattr(point, metric)) for point in run.curve})
    return curves


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument(
        "--method", nargs="+", action="append", required=True, metavar=("NAME", "RUN"),
        help="a method's name, then the run directories of its seeds (globs allowed; repeat per method)",
    )  # fmt: skip
    parser.add_argument("--metric", default="puck_distance", help="curve metric (default puck_distance)")
    parser.add_argument("--from", dest="start", type=int, default=0, help="first env step shown (default 0)")
    return parser


def courses(args: argparse.Namespace, root: Path) -> list[tuple[str, int, Course]]:
    """(name, seeds, course) of each ``--method``; a ``ValueError`` naming the method for a bad one."""
    found = []
    for name, *patterns in args.method:
        paths = matching_run_dirs(patterns, root)
        if not paths:
            raise ValueError(f"{name}: no run directory matches {' '.join(patterns) or '(none given)'}")
        try:
            result = course(read_curves(paths, args.metric), args.start, args.metric in HIGHER_IS_BETTER)
        except (ValueError, AttributeError) as error:
            raise ValueError(f"{name}: {error}") from None
        found.append((name, len(paths), result))
    return found


def tables(metric: str, summaries: Sequence[tuple[str, int, Course]]) -> list[str]:
    lines = [
        f"{metric}, mean ± standard error over the seeds:",
        "",
        "| env steps | " + " | ".join(f"{name} ({seeds} seeds)" for name, seeds, _ in summaries) + " |",
        "|---|" + "---|" * len(summaries),
    ]
    for step in sorted({step for _, _, result in summaries for step in result.steps}):
        cells = []
        for _, _, result in summaries:
            if step in result.steps:
                index = result.steps.index(step)
                cells.append(f"{result.means[index]:.4f} ± {result.errors[index]:.4f}")
            else:
                cells.append("—")
        lines.append(f"| {step:,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| method | best point | final point | final worse by | in final standard errors | within one |",
        "|---|---|---|---|---|---|",
    ]
    for name, _, result in summaries:
        best = result.best
        lines.append(
            f"| {name} | {result.means[best]:.4f} at {result.steps[best]:,} | {result.means[-1]:.4f} at "
            f"{result.steps[-1]:,} | {result.loss:.4f} | {result.loss_in_errors:.2f} | "
            f"{'yes' if result.loss_in_errors <= 1 else 'no'} |"
        )
    return lines


def docs_table(argv: list[str], root: Path) -> str:
    """The tables the command line ``argv`` prints, read from ``root`` (``scripts/docs_tables.py``)."""
    args = build_parser().parse_args(argv)
    return "\n".join(tables(args.metric, courses(args, root)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summaries = courses(args, Path.cwd())
    except ValueError as error:
        parser.exit(2, f"curve_course.py: error: {error}\n")
    print("\n".join(tables(args.metric, summaries)))


if __name__ == "__main__":
    main()
