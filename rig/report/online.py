"""The report's online section: an online run's representation diagnostics (``online/*`` in
``agent/logs/progress.csv``) against env steps, as a figure and a table."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
from matplotlib.figure import Figure

from rig.io import atomic_path
from rig.report.markdown import link, table
from rig.report.runs import MethodGroup, RunRecord
from rig.rundir import ReportDir, RunDir

ONLINE_PANELS = (
    ("online/goal_coverage_entropy", "goal coverage entropy (nats)", "higher: goals spread wider"),
    ("online/probe_hand_r2", "hand probe R^2", "higher is better"),
    ("online/probe_puck_r2", "puck probe R^2", "higher is better"),
)
"""Columns of an online run's ``progress.csv`` plotted against env steps (``rig.online``)."""


def online_progress(run: RunRecord) -> dict[str, list[tuple[float, float]]]:
    """(env step, value) pairs of each ``ONLINE_PANELS`` column in the run's ``agent/logs/progress.csv``."""
    path = RunDir(run.path).agent.progress
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    if not run.config.online.enabled or not path.is_file():
        return series
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key, _, _ in ONLINE_PANELS:
                value = _float_or_none(row.get(key))
                step = _float_or_none(row.get("step"))
                if value is not None and step is not None:
                    series[key].append((step, value))
    return series


def _float_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) else None


def online_summary_table(
    online: Sequence[tuple[MethodGroup, Sequence[dict[str, list[tuple[float, float]]]]]],
) -> list[str]:
    """Per method, the online diagnostics as numbers: coverage before and after skewing starts, and the
    last update's coverage and probes; each a per-seed value, then mean ± std over seeds (ddof=0).

    Skewing starts at ``online.skew_start_steps``; online RIG (alpha 0) is split at the same step, so
    that the columns compare like with like.
    """
    coverage, hand, puck = (key for key, _, _ in ONLINE_PANELS)

    def cell(values: Sequence[float | None]) -> str:
        found = np.array([value for value in values if value is not None])
        if len(found) == 0:
            return "—"
        if len(found) == 1:
            return f"{found[0]:.2f}"
        return f"{found.mean():.2f} ± {found.std():.2f}"

    def mean_of(series: list[tuple[float, float]], start: int, before: bool) -> float | None:
        values = [value for step, value in series if (step < start) == before]
        return float(np.mean(values)) if values else None

    def last(series: list[tuple[float, float]]) -> float | None:
        return max(series)[1] if series else None

    rows = []
    for group, per_run in online:
        start = group.runs[0].config.online.skew_start_steps
        rows.append(
            [
                group.label,
                str(len(per_run)),
                cell([mean_of(series.get(coverage, []), start, True) for series in per_run]),
                cell([mean_of(series.get(coverage, []), start, False) for series in per_run]),
                cell([last(series.get(coverage, [])) for series in per_run]),
                cell([last(series.get(hand, [])) for series in per_run]),
                cell([last(series.get(puck, [])) for series in per_run]),
            ]
        )
    start_steps = sorted({group.runs[0].config.online.skew_start_steps for group, _ in online})
    header = [
        "method",
        "seeds",
        f"coverage entropy before step {', '.join(f'{s:,}' for s in start_steps)} (mean of updates)",
        "coverage entropy from then on (mean of updates)",
        "coverage entropy, last update",
        "hand probe R^2, last update",
        "puck probe R^2, last update",
    ]
    return table(header, rows)


def online_section(groups: Sequence[MethodGroup], out_dir: Path) -> list[str]:
    online = [(group, [online_progress(run) for run in group.runs]) for group in groups]
    online = [(group, series) for group, series in online if any(series)]
    if not online:
        return []
    figure = Figure(figsize=(15, 4.2), layout="constrained")
    axes = figure.subplots(1, len(ONLINE_PANELS))
    for index, (group, per_run) in enumerate(online):
        for ax, (key, ylabel, hint) in zip(axes, ONLINE_PANELS, strict=True):
            by_step: dict[float, list[float]] = defaultdict(list)
            for series in per_run:
                for step, value in series.get(key, []):
                    by_step[step].append(value)
            if by_step:
                steps = sorted(by_step)
                ax.plot(
                    steps,
                    [np.mean(by_step[step]) for step in steps],
                    color=f"C{index % 10}",
                    marker="o",
                    markersize=3,
                    label=group.label if len(per_run) == 1 else f"{group.label} ({len(per_run)} seeds)",
                )
            ax.set_xlabel("env steps")
            ax.set_title(f"{ylabel} ({hint})", fontsize=11)
    axes[0].legend(fontsize=8)
    plot = ReportDir(out_dir).online_representation
    with atomic_path(plot) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    caption = (
        "Online representation learning, measured after every VAE update (mean over seeds): the entropy of "
        "the exploration goals' true puck positions on a 10 x 10 grid over the puck-goal box (its maximum "
        "is log 100 = 4.6), and linear probes of hand and puck position on 400 teleported frames that only "
        "measure the VAE."
    )
    lines = [
        "## Online representation",
        "",
        f"![online representation]({quote(plot.name)})",
        "",
        caption,
        "",
        *online_summary_table(online),
    ]
    for group, _ in online:
        run = group.runs[0]
        agent = RunDir(run.path).agent
        for path, what in (
            (agent.online_reconstructions, "probe frames above the online VAE's reconstructions at the end"),
            (agent.online_goal_pool, "frames of the last exploration goal pool"),
        ):
            if path.is_file():
                lines += [
                    f"![{what}]({link(out_dir, path, run)})",
                    "",
                    f"{group.label}, {run.label}: {what}.",
                    "",
                ]
    return lines
