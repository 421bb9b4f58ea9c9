"""How a representation's colour generalisation moves with its pretraining budget: epochs and frames.

Each run directory is a pretraining (``rig pretrain``, or a whole run) on an env whose object changes
colour. A pretraining extended to a larger ``vae.epochs`` keeps the diagnostics of every budget it finished
(``pretrain/metrics_epochs<N>.json``), so one run gives a point per budget. Runs are grouped into series by
their frames (``data.num_frames``, ``data.frames_per_episode``) and KL warm-up; a point is one (series,
epochs) over the seeds there, with images seen = epochs x training frames, the budget in gradient steps.

The table gives mean ± sample std over seeds of what ``rig pretrain`` measures on held-out colours: the
reward's part interaction (1 for a code in which hand and object move the latent independently, as on
``rig/Push-v0``), the share of the latent distance paid for moving the object (the true state pays about
0.22) and the hand, and the linear and 5-NN probes of the positions. ``--plot`` draws the interaction, the
non-additivity, the object share and the object probes against images seen.

    python scripts/pretrain_trend.py runs/cc_trend/seed* runs/cc_frames50k/seed* --plot trend.png
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rig.config import flat_settings
from rig.diagnostics.metrics import colour_generalisation
from rig.io import atomic_path
from rig.report.runs import matching_run_dirs
from rig.rundir import RunDir
from rig.stages import stored_config
from rig.stats import summarize

COLUMNS = (
    ("part_interaction", "part interaction"),
    ("part_cosine", "cosine hand / object moves"),
    ("part_nonadditivity", "non-additivity"),
    ("latent_object", "object share"),
    ("latent_hand", "hand share"),
    ("probe_r2_hand", "linear R² hand"),
    ("probe_r2_puck", "linear R² object"),
    ("knn_probe_r2_hand", "5-NN R² hand"),
    ("knn_probe_r2_puck", "5-NN R² object"),
    ("spearman", "Spearman"),
)


@dataclass(frozen=True)
class Point:
    """One run's diagnostics after one budget."""

    series: str
    epochs: int
    train_frames: int
    seed: int
    metrics: dict[str, float]

    @property
    def images(self) -> int:
        return self.epochs * self.train_frames


BUDGET_KEYS = ("vae.epochs", "vae.kl_warmup_epochs", "data.num_frames", "data.frames_per_episode", "seed")
"""the settings that may differ within a series (the budget and the seed); the rest must agree"""


def series_of(run_dir: Path) -> tuple[str, int, int, dict[str, object]]:
    """The series label of a run, its training frames, its seed and the settings a series must share."""
    cfg = stored_config(run_dir)
    frames = cfg.data.num_frames
    train = round(frames * (1 - cfg.data.heldout_fraction))
    label = (
        f"{cfg.vae.kind}, {frames:,} frames, {cfg.data.frames_per_episode} per episode, "
        f"KL warm-up {cfg.vae.kl_warmup_epochs} epochs"
    )
    shared = {
        key: value
        for key, value in flat_settings(cfg).items()
        if key.startswith(("vae.", "data.", "env.")) and key not in BUDGET_KEYS
    }
    return label, train, cfg.seed, shared


def read_points(run_dirs: list[Path]) -> list[Point]:
    """Every finished budget of every run; a run with none, or a series whose runs differ in more than
    the budget and the seed, is an error."""
    points = []
    settings: dict[str, tuple[Path, dict[str, object]]] = {}
    for run_dir in run_dirs:
        label, train, seed, shared = series_of(run_dir)
        first, expected = settings.setdefault(label, (run_dir, shared))
        differing = sorted(
            key for key in expected.keys() | shared.keys() if expected.get(key) != shared.get(key)
        )
        if differing:
            raise SystemExit(
                f"pretrain_trend.py: {run_dir} and {first} differ in {', '.join(differing)}; give one series "
                "per call, or runs that differ only in their budget and seed"
            )
        pretrain = RunDir(run_dir).pretrain_dir
        budgets = pretrain.budgets()
        if not budgets and pretrain.metrics.is_file():  # pretrained before budgets were kept
            summary = json.loads(pretrain.metrics.read_text())
            budgets = {int(summary["training"]["epochs"]): pretrain.metrics}
        if not budgets:
            raise SystemExit(f"pretrain_trend.py: {run_dir} holds no finished pretraining")
        for epochs, path in budgets.items():
            measured = colour_generalisation(json.loads(path.read_text()))
            if measured is None:
                raise SystemExit(f"pretrain_trend.py: {path} measured no held-out colours")
            points.append(Point(label, epochs, train, seed, measured))
    return points


def grouped(points: list[Point]) -> dict[tuple[str, int], list[Point]]:
    groups: dict[tuple[str, int], list[Point]] = defaultdict(list)
    for point in points:
        groups[(point.series, point.epochs)].append(point)
    return dict(sorted(groups.items(), key=lambda item: (item[0][0], item[0][1])))


def cell(values: list[float]) -> str:
    summary = summarize(values)
    return f"{summary.mean:.3f} ± {summary.std:.3f}" if summary.n > 1 else f"{summary.mean:.3f}"


def table(points: list[Point]) -> list[str]:
    header = ["frames", "epochs", "images seen (M)", "seeds", *(title for _, title in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (series, epochs), group in grouped(points).items():
        cells = [
            cell([point.metrics[key] for point in group]) if all(key in p.metrics for p in group) else "—"
            for key, _ in COLUMNS
        ]
        seeds = ", ".join(str(point.seed) for point in sorted(group, key=lambda p: p.seed))
        images = group[0].images / 1e6
        lines.append(f"| {series} | {epochs} | {images:.2f} | {seeds} | " + " | ".join(cells) + " |")
    return lines


def per_seed(points: list[Point]) -> list[str]:
    lines = []
    for (series, epochs), group in grouped(points).items():
        values = ", ".join(
            f"seed {p.seed}: {p.metrics['part_interaction']:.3f}" for p in sorted(group, key=lambda p: p.seed)
        )
        lines.append(f"{series}, {epochs} epochs: part interaction {values}")
    return lines


def plot(points: list[Point], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("part_interaction", "reward part interaction", 1.0, "additive orthogonal parts"),
        ("part_nonadditivity", "non-additivity of the parts' moves", 0.03, "default VAE on Push-v0"),
        ("latent_object", "object share of the latent distance", None, None),
        ("probe_r2_puck", "linear probe R² of the object", None, None),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(3.9 * len(panels), 3.6))
    by_series: dict[str, list[tuple[int, list[Point]]]] = defaultdict(list)
    for (series, _), group in grouped(points).items():
        by_series[series].append((group[0].images, group))
    for axis, (key, title, reference, reference_label) in zip(axes, panels, strict=True):
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("images seen in training (millions)")
        if not any(key in p.metrics for p in points):
            axis.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axis.transAxes)
            continue
        for series, budgets in by_series.items():
            measured = [(count, group) for count, group in budgets if all(key in p.metrics for p in group)]
            images = [count / 1e6 for count, _ in measured]
            summaries = [summarize([p.metrics[key] for p in group]) for _, group in measured]
            axis.errorbar(
                images,
                [s.mean for s in summaries],
                yerr=[s.std for s in summaries],
                marker="o",
                capsize=3,
                label=series,
            )
        if key == "latent_object":
            shares = [p.metrics["true_object"] for p in points if "true_object" in p.metrics]
            true_share = summarize(shares).mean
            axis.axhline(true_share, color="grey", linestyle="--", label=f"true state ({true_share:.2f})")
        elif reference is not None:
            axis.axhline(reference, color="grey", linestyle="--", label=reference_label)
        axis.set_xscale("log")
        ticks = sorted({point.images / 1e6 for point in points})
        axis.set_xticks(ticks, [f"{tick:.2f}" for tick in ticks])
        axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for axis in axes[1:]:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    figure.suptitle("held-out colours: mean ± std over seeds", fontsize=10)
    figure.tight_layout(rect=(0, 0.14, 1, 1))
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("runs", nargs="+", help="pretraining run directories (glob patterns allowed)")
    parser.add_argument("--plot", type=Path, help="write the trend as a PNG here")
    return parser


def run_dirs(patterns: list[str], root: Path) -> list[Path]:
    """The run directories ``patterns`` name below ``root``, globs expanded in order; none is an error."""
    found = matching_run_dirs(patterns, root)
    if not found:
        raise SystemExit(f"pretrain_trend.py: no run directory matches {' '.join(patterns)}")
    return found


def docs_table(argv: list[str], root: Path) -> str:
    """The table the command line ``argv`` prints, read from ``root`` (``scripts/docs_tables.py``)."""
    args = build_parser().parse_args(argv)
    return "\n".join(table(read_points(run_dirs(args.runs, root))))


def main() -> None:
    args = build_parser().parse_args()
    points = read_points(run_dirs(args.runs, Path.cwd()))
    print("\n".join(table(points)))
    print()
    print("\n".join(per_seed(points)))
    if args.plot is not None:
        plot(points, args.plot)
        print(f"\nwrote {args.plot}")


if __name__ == "__main__":
    main()
