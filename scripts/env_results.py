"""One env's results over seeds: each method against the random policy, and the first against the others.

Each name given to ``--only`` is a directory under ``--out`` that holds one run (or archived record) per
seed, such as ``docs/results/rig_door/seed0`` to ``seed4``. The table gives, per method, the final value
of every goal metric the env declares and the success rate (mean ± sample std over seeds), the compared
metric per seed, and its ratio to the random policy's on the same goals with a 95% confidence interval.
The random policy is evaluated in every run on the same seeded goals with the same seeded actions, so
its value is one constant; the interval is the method's spread over seeds (``rig.stats.ratio_to_reference``).
Below the table, the first method against each other one: Welch's test and the 95% interval of the
difference of means (``rig.stats.welch_compare``), and the ratio of the means.

Every method must have been evaluated on the same goals, or the table is refused.

    python3 scripts/env_results.py --out docs/results --only rig_door,oracle_door
    python3 scripts/env_results.py --out docs/results --only rig_pointmaze,oracle_pointmaze \\
        --metric success_rate
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rig.report.runs import RunRecord, evaluation_goals, method_label, metric_title, read_run
from rig.rundir import RunDir
from rig.stats import ratio_to_reference, summarize, welch_compare

SUCCESS = "success_rate"


@dataclass(frozen=True)
class Method:
    name: str
    """the records' directory name under ``--out``"""
    runs: list[RunRecord]

    @property
    def label(self) -> str:
        config = self.runs[0].config
        skip = int(config.env.kwargs.get("frame_skip", 1))
        held = f", frame skip {skip}" if skip > 1 else ""
        stack = f", {config.env.frame_stack} frames" if config.env.frame_stack > 1 else ""
        return method_label(config).split(",")[0] + held + stack

    def finals(self, key: str) -> list[float]:
        return [float(run.final[key]) for run in self.runs if run.final is not None]

    def steps(self) -> str:
        found = sorted({run.trained_steps() or 0 for run in self.runs})
        return " / ".join(f"{steps:,}" for steps in found)


def read_method(out: Path, name: str) -> Method:
    found = sorted(path for path in (out / name).glob("*") if RunDir(path).is_run())
    runs = [run for run in map(read_run, found) if run.final is not None]
    if not runs:
        raise SystemExit(f"{out / name}: no evaluated run or record in it")
    return Method(name, runs)


def key_of(metric: str) -> str:
    return metric if metric == SUCCESS else f"{metric}_mean"


def stat(values: Sequence[float], digits: int) -> str:
    summary = summarize(values)
    return (
        f"{summary.mean:.{digits}f} ± {summary.std:.{digits}f}"
        if summary.n > 1
        else f"{summary.mean:.{digits}f}"
    )


def vs_random(values: Sequence[float], random: float) -> str:
    if random == 0.0:
        return "– (random 0)"
    if len(values) < 2:
        return f"{np.mean(values) / random:.2f}x"
    return ratio_to_reference(values, random).describe()


def against(first: Method, second: Method, metric: str, unit: str) -> str:
    a, b = first.finals(key_of(metric)), second.finals(key_of(metric))
    head = f"{first.label} − {second.label}, {metric.replace('_', ' ')}"
    if min(len(a), len(b)) < 2:
        return f"{head}: needs at least two seeds of each ({len(a)} and {len(b)})"
    ratio = f"; ratio of means {np.mean(a) / np.mean(b):.2f}x" if np.mean(b) != 0 else ""
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return f"{head}: each ends at one value on every seed ({a[0]:.4g} and {b[0]:.4g}), nothing to test"
    difference = welch_compare(a, b).describe(f" {unit}" if unit else "")
    return f"{head} ({len(a)} vs {len(b)} seeds): {difference}{ratio}"


def row(cells: list[str], columns: Sequence[str], values: Mapping[str, Sequence[float]], chosen: str,
        random: dict[str, float] | None) -> str:  # fmt: skip
    """A table row: ``cells``, then each column's mean ± std, and after the chosen one its per-seed values
    and its ratio to ``random`` (the random policy's own row passes ``None``)."""
    for name in columns:
        digits = 2 if name == SUCCESS else 3
        cells.append(stat(values[name], digits))
        if name == chosen and random is None:
            cells += ["", "1.00x"]
        elif name == chosen and random is not None:
            seeds = " / ".join(f"{value:.{digits}f}" for value in values[name])
            cells += [seeds, vs_random(values[name], random[name])]
    return "| " + " | ".join(cells) + " |"


def evaluated_on_one_set_of_goals(methods: Sequence[Method]) -> list[RunRecord]:
    runs = [run for method in methods for run in method.runs]
    goals = {evaluation_goals(run) for run in runs}
    if len(goals) != 1:
        raise SystemExit(f"the methods were evaluated on different goals: {sorted(map(str, goals))}")
    return runs


def table(out: Path, names: Sequence[str], metric: str | None = None) -> str:
    """The markdown table and comparisons of the methods ``names`` (records under ``out``)."""
    methods = [read_method(out, name) for name in names]
    runs = evaluated_on_one_set_of_goals(methods)
    metrics = runs[0].goal_metrics
    chosen = metric or next(iter(metrics))
    if chosen != SUCCESS and chosen not in metrics:
        raise SystemExit(f"unknown metric {chosen!r}: the env declares {list(metrics)} (and {SUCCESS})")
    columns = [*metrics, SUCCESS]
    randoms = [run.random_baseline for run in runs if run.random_baseline is not None]
    if not randoms:
        raise SystemExit("no random-policy baseline (baselines/random.json) in these records")
    random = {name: float(np.mean([r[key_of(name)] for r in randoms])) for name in columns}
    head = ["method", "records", "seeds", "env steps"]
    for name in columns:
        head.append("success" if name == SUCCESS else metric_title(name, metrics[name]))
        if name == chosen:
            head += ["per seed", "vs random (95% CI)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        cells = [method.label, f"`{method.name}`", str(len(method.runs)), method.steps()]
        finals = {name: method.finals(key_of(name)) for name in columns}
        lines.append(row(cells, columns, finals, chosen, random))
    baseline = {name: [value] for name, value in random.items()}
    lines.append(row(["random policy", "", "(same goals)", "–"], columns, baseline, chosen, None))
    episodes = runs[0].config.eval.episodes
    lines += [
        "",
        f"Mean ± sample std (ddof 1) over seeds, each seed's value its mean over the {episodes} seeded "
        f"goals; *vs random*: the mean {chosen.replace('_', ' ')} over the random policy's on the same "
        "goals (one value: its actions are seeded too), with the 95% t interval over seeds.",
    ]
    if len(methods) > 1:
        lines += [
            "",
            "Welch's test on the per-seed values, with the 95% interval of the difference of means:",
            "",
        ]
        lines += [f"- {against(methods[0], other, chosen, metrics.get(chosen, ''))}" for other in methods[1:]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results"), help="where the records are")
    parser.add_argument(
        "--only", required=True, help="comma-separated record directories, the first compared"
    )
    parser.add_argument("--metric", help=f"the compared metric (default: the env's headline; or {SUCCESS})")
    return parser


def docs_table(argv: Sequence[str], root: Path) -> str:
    """What the command line ``argv`` prints when run from ``root`` (``scripts/docs_tables.py`` keeps it)."""
    args = build_parser().parse_args(list(argv))
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    return table(args.out if args.out.is_absolute() else root / args.out, names, args.metric)


def main(argv: Sequence[str] | None = None) -> None:
    print(docs_table(sys.argv[1:] if argv is None else argv, Path.cwd()))


if __name__ == "__main__":
    main()
