"""Run directories in, ``report.md`` and the figures it shows out.

One run gets its report in its own directory. Several runs (seeds, or RIG against the oracle) are grouped
by method: runs whose configs differ only in ``seed`` (and in where and on how many threads they ran) form
one group. A group's learning curve is the mean over its seeds, with a shaded band of plus or minus one
standard deviation across seeds (population std, ``ddof=0``); its final numbers are the mean and std of
the seeds' own means.

The report shows what the run directories hold and lists what they lack, so it can be built from a run
that stopped early. Figures are drawn on matplotlib ``Figure`` objects, never through pyplot, so no
display or global backend is involved.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rig.config import Config, ConfigError, flat_settings, load_config
from rig.errors import CorruptFileError
from rig.evaluate import EvalPoint, read_eval_curve
from rig.io import atomic_path, write_text
from rig.rundir import ReportDir, RunDir
from rig.stages import STAGE_NAMES

ONLINE_PANELS = (
    ("online/goal_coverage_entropy", "goal coverage entropy (nats)", "higher: goals spread wider"),
    ("online/probe_hand_r2", "hand probe R^2", "higher is better"),
    ("online/probe_puck_r2", "puck probe R^2", "higher is better"),
)
"""Columns of an online run's ``progress.csv`` plotted against env steps (``rig.online``)."""
MAX_GIFS = 3
"""Rollout GIFs shown per run."""
SEED_ONLY_KEYS = ("seed", "run_dir", "device", "torch_threads")
"""Config keys that may differ between runs of one method (the last three do not change results)."""
REPRESENTATION_NAMES = {"beta_vae": "RIG (beta-VAE)", "cc_vae": "CC-RIG (CC-VAE)", "state": "Oracle (state)"}
GRIDS = (
    ("reconstructions", "Reconstructions: each row of held-out frames above its reconstructions."),
    (
        "prior_samples",
        "Prior samples: decoded z ~ N(0, I) (CC-VAE: one context frame, then its samples).",
    ),
    ("traversals", "Traversals: one row per latent dim, from -3 to +3 prior std, the others fixed."),
    ("heldout_reconstructions", "Held-out colours: frames above their reconstructions."),
    ("heldout_prior_samples", "Held-out colours: a context frame, then prior samples under it."),
)
"""The VAE grids (``PretrainDir`` properties) with their captions, in the order the report shows them."""
REQUIRED_GRIDS = GRIDS[:3]
FINAL_METRICS = (
    ("puck_distance_mean", "final puck distance (m)", 3),
    ("hand_distance_mean", "final hand distance (m)", 3),
    ("success_rate", "success rate", 2),
)
CURVE_PANELS = (
    ("puck_distance", "puck_distance_mean", "final puck distance (m)", "lower is better"),
    ("hand_distance", "hand_distance_mean", "final hand distance (m)", "lower is better"),
    ("success_rate", "success_rate", "success rate (puck < 0.05 m)", "higher is better"),
)


class CurveBand(NamedTuple):
    """A metric against env steps, averaged over the seeds that reached each step."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    seeds: np.ndarray


@dataclass
class RunRecord:
    """What one run directory holds; ``None`` or empty for each product it lacks."""

    path: Path
    label: str
    config: Config
    stages: dict[str, Any] | None
    pretrain_metrics: dict[str, Any] | None
    curve: list[EvalPoint]
    final: dict[str, Any] | None
    random_baseline: dict[str, Any] | None
    checkpoint_steps: int | None
    gifs: list[Path]
    problems: list[str] = field(default_factory=list)
    """files that exist but could not be read"""
    archived: bool = False
    """the directory is an archived record (``scripts/archive_runs.py``): no images or GIFs are expected"""

    @property
    def is_oracle(self) -> bool:
        return self.config.vae.is_oracle

    @property
    def layout(self) -> RunDir:
        return RunDir(self.path)

    def grids(self) -> list[tuple[Path, str]]:
        pretrain = self.layout.pretrain_dir
        found = [(getattr(pretrain, name), caption) for name, caption in GRIDS]
        return [(path, caption) for path, caption in found if path.is_file()]

    def trained_steps(self) -> int | None:
        """Env steps the evaluated agent was trained for, from the newest record that says."""
        if self.final is not None and _integer(self.final.get("steps")) is not None:
            return _integer(self.final["steps"])
        if self.checkpoint_steps is not None:
            return self.checkpoint_steps
        return self.curve[-1].steps if self.curve else None


@dataclass
class MethodGroup:
    """Runs of one method that differ only by seed."""

    label: str
    runs: list[RunRecord]


# ---------------------------------------------------------------------------------- entry point


def build_report(
    run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``report.md`` and its figures for ``run_dirs``; returns the report's path.

    ``out_dir`` defaults to the run directory for one run, and to ``report/`` in the run directories'
    common parent for several (``runs/sweep/seed_*`` gives ``runs/sweep/report``). Images that do not lie
    under ``out_dir`` are copied into ``out_dir/report_files`` so the markdown renders from there.
    Raises a ``UserError`` for an argument that is not a run directory (no ``config.yaml``).
    """
    paths = _unique_paths(run_dirs)
    if not paths:
        raise ValueError("build_report needs at least one run directory")
    labels = run_labels(paths)
    runs = [read_run(path, label) for path, label in zip(paths, labels, strict=True)]
    target = Path(out_dir) if out_dir is not None else default_out_dir(paths)
    target.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    lines = [
        *_header(runs, groups),
        *_missing_section(runs),
        *_config_section(runs),
        *_timing_section(runs),
        *_representation_section(runs, groups, target),
        *_curves_section(runs, groups, target),
        *_online_section(groups, target),
        *_rollouts_section(groups, target),
        *final_section(runs, groups),
    ]
    report = ReportDir(target).markdown
    write_text(report, "\n".join(lines).rstrip() + "\n")
    return report


def default_out_dir(paths: Sequence[Path]) -> Path:
    return ReportDir.for_runs(paths).root


def _unique_paths(run_dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    seen: dict[Path, Path] = {}
    for run_dir in run_dirs:
        seen.setdefault(Path(run_dir).resolve(), Path(run_dir))
    return list(seen.values())


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Short names for runs: the directory name for one run, else the path below the common parent."""
    if len(paths) == 1:
        return [paths[0].resolve().name]
    resolved = [p.resolve() for p in paths]
    parent = Path(os.path.commonpath(resolved))
    labels = [p.relative_to(parent).as_posix() for p in resolved]
    return [label if label != "." else p.name for label, p in zip(labels, resolved, strict=True)]


# ---------------------------------------------------------------------------------- reading runs


def read_run(path: str | os.PathLike[str], label: str | None = None) -> RunRecord:
    """Everything the report uses from a run directory; only ``config.yaml`` is required."""
    run = RunDir(path)
    run.require_run()
    try:
        config = load_config(run.config)
    except ConfigError as error:
        raise CorruptFileError(f"{run.root}: config.yaml does not fit the config schema: {error}") from error
    problems: list[str] = []
    checkpoint = _read_json(run, run.agent.checkpoint, problems) or {}
    return RunRecord(
        path=run.root,
        label=label or run.root.resolve().name,
        config=config,
        stages=_read_json(run, run.stages, problems),
        pretrain_metrics=_read_json(run, run.pretrain_metrics, problems),
        curve=_read_curve(run, problems),
        final=_read_json(run, run.eval, problems),
        random_baseline=_read_json(run, run.random_baseline, problems),
        checkpoint_steps=_integer(checkpoint.get("steps")),
        gifs=run.eval_gifs(),
        problems=problems,
        archived=run.is_archived(),
    )


def _name(run: RunDir, path: Path) -> str:
    """``path`` as the report names it: relative to its run directory."""
    return path.relative_to(run.root).as_posix()


def _read_json(run: RunDir, path: Path, problems: list[str]) -> dict[str, Any] | None:
    """The JSON object in ``path``; ``None`` when absent, and a note in ``problems`` when unreadable."""
    name = _name(run, path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problems.append(f"`{name}` could not be read ({error})")
        return None
    if not isinstance(data, dict):
        problems.append(f"`{name}` does not hold a JSON object")
        return None
    return data


def _read_curve(run: RunDir, problems: list[str]) -> list[EvalPoint]:
    try:
        return read_eval_curve(run.agent.eval_curve)
    except (OSError, UnicodeDecodeError, KeyError, ValueError, TypeError) as error:
        problems.append(f"`{_name(run, run.agent.eval_curve)}` could not be read ({error!r})")
        return []


def _finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (JSON may hold anything)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return float(value)
    return None


def _integer(value: Any) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)


def missing_products(run: RunRecord) -> list[str]:
    """What a finished run would hold that this one lacks, one phrase each."""
    missing = [] if run.stages is not None else [f"`{_name(run.layout, run.layout.stages)}` (stage times)"]
    missing += _missing_representation(run)
    missing += _missing_agent(run)
    return missing + run.problems


def _missing_representation(run: RunRecord) -> list[str]:
    if run.is_oracle:
        return []
    layout = run.layout
    metrics = f"`{_name(layout, layout.pretrain_metrics)}` (VAE diagnostics)"
    missing = [] if run.pretrain_metrics is not None else [metrics]
    if run.archived:
        return missing
    required = [getattr(layout.pretrain_dir, name) for name, _ in REQUIRED_GRIDS]
    grids = [grid for grid in required if not grid.is_file()]
    if grids:
        missing.append("the VAE grids " + ", ".join(f"`{_name(layout, grid)}`" for grid in grids))
    return missing


def _missing_agent(run: RunRecord) -> list[str]:
    layout = run.layout
    expected = [
        (bool(run.curve), f"`{_name(layout, layout.agent.eval_curve)}` (learning curves)"),
        (run.final is not None, f"`{_name(layout, layout.eval)}` (final evaluation)"),
        (run.random_baseline is not None, f"`{_name(layout, layout.random_baseline)}` (random baseline)"),
        (
            bool(run.gifs) or run.config.eval.gifs == 0 or run.archived,
            f"`{_name(layout, layout.gifs)}/eval_*.gif` (rollout GIFs)",
        ),
    ]
    return [what for present, what in expected if not present]


# ---------------------------------------------------------------------------------- grouping


def method_label(config: Config) -> str:
    representation = REPRESENTATION_NAMES.get(config.vae.kind, config.vae.kind)
    if config.online.enabled:
        alpha = config.online.skew_alpha
        representation = f"Skew-Fit (alpha {alpha:g})" if alpha < 0 else "online RIG (alpha 0)"
    return f"{representation}, {config.agent.algo.upper()}, {config.env.id}"


def group_runs(runs: Sequence[RunRecord]) -> list[MethodGroup]:
    """Runs whose configs match except for ``SEED_ONLY_KEYS``, in the order they were given.

    Groups of the same method label that differ in other settings are told apart by those settings.
    """
    by_key: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_key.setdefault(_method_key(run.config), []).append(run)
    members = list(by_key.values())
    labels = [method_label(group[0].config) for group in members]
    for label in set(labels):
        clashing = [i for i, other in enumerate(labels) if other == label]
        if len(clashing) > 1:
            for index, suffix in zip(clashing, _distinguishing(members, clashing), strict=True):
                labels[index] = f"{label} [{suffix}]"
    return [MethodGroup(label, group) for label, group in zip(labels, members, strict=True)]


def _method_key(config: Config) -> str:
    flat = flat_settings(config)
    return json.dumps({k: v for k, v in flat.items() if k not in SEED_ONLY_KEYS}, sort_keys=True)


def _distinguishing(members: list[list[RunRecord]], indices: list[int]) -> list[str]:
    flats = [flat_settings(members[i][0].config) for i in indices]
    keys = sorted(k for k in flats[0] if k not in SEED_ONLY_KEYS and len({repr(f[k]) for f in flats}) > 1)
    return [", ".join(f"{k}={flat[k]}" for k in keys) for flat in flats]


# ---------------------------------------------------------------------------------- numbers


def aggregate_curve(curves: Sequence[Sequence[EvalPoint]], metric: str) -> CurveBand:
    """Mean and std over the curves at every evaluated step; a step counts the curves that reached it."""
    by_step: dict[int, list[float]] = defaultdict(list)
    for curve in curves:
        for point in curve:
            by_step[point.steps].append(float(getattr(point, metric)))
    steps = np.array(sorted(by_step), dtype=np.int64)
    values = [np.array(by_step[int(s)]) for s in steps]
    return CurveBand(
        steps=steps,
        mean=np.array([v.mean() for v in values]),
        std=np.array([v.std() for v in values]),
        seeds=np.array([len(v) for v in values], dtype=np.int64),
    )


def _summaries_mean(summaries: Sequence[dict[str, Any]], key: str) -> tuple[float, float, int]:
    found = [_finite(s.get(key)) for s in summaries]
    values = np.array([value for value in found if value is not None])
    if len(values) == 0:
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std()), len(values)


def _number(value: Any, digits: int) -> str:
    number = _finite(value)
    return "—" if number is None else f"{number:.{digits}f}"


def _mean_std(summaries: Sequence[dict[str, Any]], key: str, digits: int) -> str:
    mean, std, count = _summaries_mean(summaries, key)
    if count == 0:
        return "—"
    return _number(mean, digits) if count == 1 else f"{_number(mean, digits)} ± {_number(std, digits)}"


def _duration(value: Any) -> str:
    seconds = _finite(value)
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _span(values: Sequence[int | None]) -> str:
    known = sorted({v for v in values if v is not None})
    if not known:
        return "—"
    return f"{known[0]:,}" if len(known) == 1 else f"{known[0]:,}–{known[-1]:,}"


# ---------------------------------------------------------------------------------- markdown


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _link(out_dir: Path, file: Path, run: RunRecord) -> str:
    """A markdown-ready path to ``file`` relative to ``out_dir``, copying it there when it lies outside."""
    source = file.resolve()
    root = out_dir.resolve()
    if not source.is_relative_to(root):
        target = ReportDir(root).assets / run.label / file.relative_to(run.path)
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        source = target
    return quote(source.relative_to(root).as_posix())


def _header(runs: Sequence[RunRecord], groups: Sequence[MethodGroup]) -> list[str]:
    title = f"# rig report: {runs[0].label}" if len(runs) == 1 else f"# rig report: {len(runs)} runs"
    lines = [title, ""]
    for group in groups:
        seeds = ", ".join(str(run.config.seed) for run in group.runs)
        where = ", ".join(f"`{run.label}`" for run in group.runs)
        lines.append(f"- **{group.label}**: seed{'s' if len(group.runs) > 1 else ''} {seeds} ({where})")
    archived = [run for run in runs if run.archived]
    if archived:
        which = "all runs" if len(archived) == len(runs) else ", ".join(f"`{run.label}`" for run in archived)
        lines += [
            "",
            "Archived records (`scripts/archive_runs.py`), with their tables and curves but not the VAE grids"
            f" or rollout GIFs, which the archive does not keep: {which}.",
        ]
    return [*lines, ""]


def _missing_section(runs: Sequence[RunRecord]) -> list[str]:
    notes = [(run, missing_products(run)) for run in runs]
    notes = [(run, missing) for run, missing in notes if missing]
    if not notes:
        return []
    lines = ["**Missing** (the run stopped early, or the stage has not run yet):", ""]
    lines += [f"- `{run.label}`: " + "; ".join(missing) for run, missing in notes]
    return [*lines, ""]


def _representation_size(config: Config) -> str:
    if config.vae.is_oracle:
        return "4 (hand and puck x, y)"
    if config.vae.kind == "cc_vae":
        return f"z {config.vae.z_dim} + context {config.vae.context_dim}"
    return f"z {config.vae.z_dim}"


def _config_section(runs: Sequence[RunRecord]) -> list[str]:
    header = ["run", "env", "representation", "size", "beta", "algo", "total env steps", "seed"]
    rows = [
        [
            f"`{run.label}`",
            f"`{run.config.env.id}`",
            REPRESENTATION_NAMES.get(run.config.vae.kind, run.config.vae.kind),
            _representation_size(run.config),
            "—" if run.is_oracle else f"{run.config.vae.beta:g}",
            run.config.agent.algo.upper(),
            f"{run.config.agent.total_steps:,}",
            str(run.config.seed),
        ]
        for run in runs
    ]
    return ["## Configuration", "", *_table(header, rows)]


def _timing_section(runs: Sequence[RunRecord]) -> list[str]:
    timed = [run for run in runs if run.stages is not None]
    if not timed:
        return ["## Stage times", "", "No run has a `stages.json`.", ""]
    names = [s for s in STAGE_NAMES if any(s in (r.stages or {}) for r in timed)]
    names += sorted({s for r in timed for s in r.stages or {}} - set(names))
    rows = [_timing_row(run, names) for run in timed]
    note = (
        "Wall-clock time of each stage, summed over resumed attempts. A dash: the stage has not run "
        "(the oracle collects no frames); *unfinished*: it started but has not completed."
    )
    return ["## Stage times", "", *_table(["run", *names, "total"], rows), note, ""]


def _timing_row(run: RunRecord, names: Sequence[str]) -> list[str]:
    entries = {name: (run.stages or {}).get(name) for name in names}
    seconds = {name: _stage_seconds(entry) for name, entry in entries.items()}
    cells = []
    for name in names:
        entry = entries[name]
        unfinished = isinstance(entry, dict) and entry.get("done") is False
        cells.append(_duration(seconds[name]) + (" *unfinished*" if unfinished else ""))
    total = sum(value for value in seconds.values() if value is not None)
    return [f"`{run.label}`", *cells, _duration(total)]


def _stage_seconds(entry: Any) -> float | None:
    if isinstance(entry, dict) and isinstance(entry.get("seconds"), (int, float)):
        return float(entry["seconds"])
    return None


def _representation_section(
    runs: Sequence[RunRecord], groups: Sequence[MethodGroup], out_dir: Path
) -> list[str]:
    lines = ["## Representation", ""]
    learned = [run for run in runs if not run.is_oracle]
    if not learned:
        return [*lines, "Every run uses the true state (the oracle); there is no VAE to diagnose.", ""]
    lines += _vae_metrics_table(learned)
    lines += _heldout_colour_table(learned)
    for group in groups:
        lines += _grid_images(group, out_dir, several=len(groups) > 1)
    return lines


def _vae_metrics_table(runs: Sequence[RunRecord]) -> list[str]:
    measured = [run for run in runs if run.pretrain_metrics is not None]
    if not measured:
        return ["No run has VAE diagnostics (`pretrain/metrics.json`).", ""]
    header = ["run", "probe R² hand", "probe R² puck", "probe R² puck (z only)", "Spearman"]
    header += ["reward share hand / object (interaction)", "active units", "held-out −ELBO"]
    header += ["KL per dim (nats)", "images/s"]
    rows = [_vae_metrics_row(run, run.pretrain_metrics or {}) for run in measured]
    notes = [
        "Probe R²: a linear probe from the latent to the true positions, fitted on training frames and "
        "scored on held-out frames. Spearman: rank correlation of latent with true-state distances. "
        "Reward share: how much of the latent distance from the reset scene to a real goal image moving "
        "only the hand, or only the object, to its goal removes, on teleported scenes; interaction is 1 "
        "when the two add up as in the true state, and above 1 when each part's code depends on the other "
        "(`rig/reward_geometry.py`). "
        "Active units: latent dims whose posterior mean varies across frames (variance > 0.01). "
        "Images/s: pretraining throughput.",
        "",
    ]
    return _table(header, rows) + notes


def _vae_metrics_row(run: RunRecord, metrics: dict[str, Any]) -> list[str]:
    training = metrics.get("training") if isinstance(metrics.get("training"), dict) else {}
    kl = metrics.get("kl_per_dim")
    kl_text = ", ".join(_number(v, 2) for v in kl) if isinstance(kl, list) else "—"
    units = metrics.get("active_units")
    return [
        f"`{run.label}`",
        _number(metrics.get("probe_r2_hand"), 3),
        _number(metrics.get("probe_r2_puck"), 3),
        _number(metrics.get("probe_r2_puck_z_only"), 3),
        _number(metrics.get("spearman"), 3),
        _reward_shares(metrics.get("reward_geometry")),
        f"{units} / {run.config.vae.z_dim}" if isinstance(units, int) else "—",
        _number(metrics.get("neg_elbo"), 1),
        kl_text,
        _number((training or {}).get("images_per_second"), 0),
    ]


def _reward_shares(geometry: object) -> str:
    if not isinstance(geometry, dict):
        return "—"
    hand, part, interaction = (
        geometry.get(key) for key in ("latent_hand", "latent_object", "part_interaction")
    )
    return f"{_number(hand, 2)} / {_number(part, 2)} ({_number(interaction, 2)})"


HELDOUT_COLOUR_COLUMNS = (
    ("probe_r2_hand", "probe R² hand (z)", 3),
    ("probe_r2_puck", "probe R² object (z)", 3),
    ("knn_probe_r2_puck", "5-NN R² object (z)", 3),
    ("spearman_within_episode", "Spearman within episode", 3),
    ("object_recon_mse", "object reconstruction MSE", 4),
    ("prior_colour_match", "prior colour match", 2),
)


def _heldout_colour_table(runs: Sequence[RunRecord]) -> list[str]:
    rows = []
    for run in runs:
        heldout = (run.pretrain_metrics or {}).get("heldout_colours")
        if isinstance(heldout, dict):
            cells = [_number(heldout.get(key), digits) for key, _, digits in HELDOUT_COLOUR_COLUMNS]
            rows.append([f"`{run.label}`", *cells, _reward_shares(heldout.get("reward_geometry"))])
    if not rows:
        return []
    header = [
        "run",
        *(title for _, title, _ in HELDOUT_COLOUR_COLUMNS),
        "reward share hand / object (interaction)",
    ]
    intro = [
        "### Held-out object colours",
        "",
        "Frames of colours never seen in training. Probes read positions from z (the whole latent of a "
        "beta-VAE, mu_z without the context c of a CC-VAE), fitted on training frames. Spearman within "
        "episode: rank correlation of representation distances with true-state distances over pairs of "
        "frames of one episode, as the latent reward compares them.",
        "",
    ]
    return intro + _table(header, rows)


def _grid_images(group: MethodGroup, out_dir: Path, several: bool) -> list[str]:
    shown = next((run for run in group.runs if run.grids()), None)
    if shown is None:
        return []
    lines = [f"### VAE grids: {group.label}" + (f" (`{shown.label}`)" if several else ""), ""]
    for path, caption in shown.grids():
        lines += [f"![{path.stem}]({_link(out_dir, path, shown)})", "", f"*{caption}*", ""]
    return lines


def _curves_section(runs: Sequence[RunRecord], groups: Sequence[MethodGroup], out_dir: Path) -> list[str]:
    lines = ["## Learning curves", ""]
    if not any(run.curve for run in runs):
        return [*lines, "No run has an evaluation curve (`agent/eval_curve.csv`) yet.", ""]
    curves = ReportDir(out_dir).learning_curves
    plot_learning_curves(groups, random_baselines(runs), curves)
    episodes = sorted({point.episodes for run in runs for point in run.curve})
    caption = (
        f"Periodic evaluations on real goal images ({', '.join(map(str, episodes))} episodes each): "
        "the env's own puck and hand distances at the episode's last step, and the share of episodes "
        "ending with the puck within 0.05 m of its goal."
    )
    if any(len(group.runs) > 1 for group in groups):
        caption += " Lines: mean over seeds; shaded: ± 1 std across seeds (ddof=0)."
    if any(run.random_baseline for run in runs):
        caption += " Dashed: the random policy on the same goals."
    return [*lines, f"![learning curves]({quote(curves.name)})", "", caption, ""]


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
    return _table(header, rows)


def _online_section(groups: Sequence[MethodGroup], out_dir: Path) -> list[str]:
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
                    f"![{what}]({_link(out_dir, path, run)})",
                    "",
                    f"{group.label}, {run.label}: {what}.",
                    "",
                ]
    return lines


def random_baselines(runs: Sequence[RunRecord]) -> dict[str, list[dict[str, Any]]]:
    """The runs' random-policy results by env id (a random policy's result depends on the env only)."""
    by_env: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if run.random_baseline is not None:
            by_env[run.config.env.id].append(run.random_baseline)
    return dict(by_env)


def plot_learning_curves(
    groups: Sequence[MethodGroup], randoms: dict[str, list[dict[str, Any]]], path: Path
) -> None:
    """Puck distance, hand distance and success rate against env steps, one line per method group."""
    figure = Figure(figsize=(15, 4.6), layout="constrained")
    axes = figure.subplots(1, len(CURVE_PANELS))
    colours = [f"C{i % 10}" for i in range(len(groups))]
    for ax, (metric, random_key, ylabel, hint) in zip(axes, CURVE_PANELS, strict=True):
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
        mean, _, count = _summaries_mean(summaries, key)
        if count == 0:
            continue
        label = "random policy" if len(randoms) == 1 else f"random policy ({env_id})"
        ax.axhline(mean, color="0.35", linestyle=(0, (5, 3 + 2 * index)), linewidth=1.5, label=label)


def _rollouts_section(groups: Sequence[MethodGroup], out_dir: Path) -> list[str]:
    lines = ["## Rollouts", ""]
    filmed = [(group, next((run for run in group.runs if run.gifs), None)) for group in groups]
    if all(run is None for _, run in filmed):
        return [*lines, "No rollout GIFs (`gifs/eval_*.gif`) yet.", ""]
    for group, run in filmed:
        if run is None:
            continue
        panels = "agent | goal image" + ("" if run.is_oracle else " | decoded latent goal")
        lines += [f"**{group.label}** (`{run.label}`; left to right: {panels})", ""]
        lines += [
            " ".join(
                f"![rollout {i}]({_link(out_dir, gif, run)})" for i, gif in enumerate(run.gifs[:MAX_GIFS])
            )
        ]
        lines.append("")
    return lines


def final_section(runs: Sequence[RunRecord], groups: Sequence[MethodGroup]) -> list[str]:
    lines = ["## Final evaluation", ""]
    if not any(run.final for run in runs) and not any(run.random_baseline for run in runs):
        return [*lines, "No run has a final evaluation (`eval.json`) or random baseline yet.", ""]
    header = ["method", "seeds", "env steps", "episodes per seed", *(title for _, title, _ in FINAL_METRICS)]
    rows = [_final_row(group) for group in groups]
    randoms = random_baselines(runs)
    for env_id, summaries in sorted(randoms.items()):
        name = "Random policy" if len(randoms) == 1 else f"Random policy, {env_id}"
        on_env = sum(run.config.env.id == env_id for run in runs)
        rows.append(_summary_row(name, summaries, on_env, "0"))
    note = (
        "Final evaluation on seeded real goals, the same goals for every method on an env. With several "
        "seeds: mean ± std over the seeds' means (ddof=0). Seeds: runs with a result (of the runs given, "
        "when some lack one); the random policy's row counts the runs' baselines."
    )
    return [*lines, *_table(header, rows), note, ""]


def _final_row(group: MethodGroup) -> list[str]:
    summaries = [run.final for run in group.runs if run.final is not None]
    steps = _span([run.trained_steps() for run in group.runs if run.final is not None])
    return _summary_row(group.label, summaries, len(group.runs), steps)


def _summary_row(name: str, summaries: Sequence[dict[str, Any]], runs: int, steps: str) -> list[str]:
    episodes = _span([_integer(s.get("episodes")) for s in summaries])
    cells = [_mean_std(summaries, key, digits) for key, _, digits in FINAL_METRICS]
    seeds = str(len(summaries)) if len(summaries) == runs else f"{len(summaries)} of {runs}"
    return [name, seeds, steps, episodes, *cells]
