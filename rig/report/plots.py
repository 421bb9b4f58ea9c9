"""The report's learning curves: one line per method (mean over seeds, a band of one std), and the
random policy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rig.io import atomic_path
from rig.report.runs import PUSHER_METRICS, MethodGroup, aggregate_curve, metric_title, summaries_mean

SUCCESS_PANEL = ("success_rate", "success_rate", "success rate (the env's is_success)", "higher is better")


def curve_panels(metrics: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(curve column, eval.json key, axis label, hint) of each goal metric, then success."""
    panels = [
        (name, f"{name}_mean", metric_title(name, unit), "lower is better") for name, unit in metrics.items()
    ]
    return [*panels, SUCCESS_PANEL]


def plot_learning_curves(
    groups: Sequence[MethodGroup],
    randoms: dict[str, list[dict[str, Any]]],
    path: Path,
    metrics: dict[str, str] | None = None,
) -> None:
    """Each goal metric (puck and hand distance on the pushers) and the success rate against env steps,
    one line per method group."""
    panels = curve_panels(metrics or PUSHER_METRICS)
    figure = Figure(figsize=(5 * len(panels), 4.6), layout="constrained")
    axes = figure.subplots(1, len(panels))
    colours = [f"C{i % 10}" for i in range(len(groups))]
    for ax, (metric, random_key, ylabel, hint) in zip(axes, panels, strict=True):
        for group, colour in zip(groups, colours, strict=True):
            _draw_group(ax, group, metric, colour)
        _draw_random(ax, randoms, random_key)
        ax.set_xlabel("env steps", fontsize=11)
        ax.set_ylabel(ylabel, fontsize=11)
        ax.set_title(f"{ylabel.split(' (')[0]} ({hint})", fontsize=12)
        ax.grid(alpha=0.3)
        # Distances start at 0 m so runs read against each other; headroom keeps flat lines off the frame.
        ax.set_ylim(0.0, 1.02 if metric == "success_rate" else 1.1 * max(ax.dataLim.y1, 1e-3))
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=10)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def _draw_group(ax: Axes, group: MethodGroup, metric: str, colour: str) -> None:
    curves = [run.curve for run in group.runs if run.curve]
    if not curves:
        return
    band = aggregate_curve(curves, metric)
    label = group.label if len(curves) == 1 else f"{group.label} ({len(curves)} seeds)"
    ax.plot(band.steps, band.mean, color=colour, marker="o", markersize=3, linewidth=1.8, label=label)
    if len(curves) > 1:
        ax.fill_between(band.steps, band.mean - band.std, band.mean + band.std, color=colour, alpha=0.2)


def _draw_random(ax: Axes, randoms: dict[str, list[dict[str, Any]]], key: str) -> None:
    for index, (env_id, summaries) in enumerate(sorted(randoms.items())):
        mean, _, count = summaries_mean(summaries, key)
        if count == 0:
            continue
        label = "random policy" if len(randoms) == 1 else f"random policy ({env_id})"
        ax.axhline(mean, color="0.35", linestyle=(0, (5, 3 + 2 * index)), linewidth=1.5, label=label)
