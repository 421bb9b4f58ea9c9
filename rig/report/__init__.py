"""Run directories in, ``report.md`` and the figures it shows out.

One run gets its report in its own directory. Several runs (seeds, or RIG against the oracle) are grouped
by method: runs whose configs differ only in ``seed`` (and in where and on how many threads they ran) form
one group. A group's learning curve is the mean over its seeds, with a shaded band of plus or minus one
standard deviation across seeds (population std, ``ddof=0``); its final numbers are the mean and std of
the seeds' own means.

The report shows what the run directories hold and lists what they lack, so it can be built from a run
that stopped early. Figures are drawn on matplotlib ``Figure`` objects, never through pyplot, so no
display or global backend is involved.

The report is built here from its sections; ``runs`` reads the run directories, ``markdown`` formats,
``plots`` draws the learning curves and ``online`` the online section.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rig.config import Config
from rig.io import write_text
from rig.report.markdown import duration, link, mean_std, number, span, table
from rig.report.online import online_section
from rig.report.plots import plot_learning_curves
from rig.report.runs import (
    REPRESENTATION_NAMES,
    MethodGroup,
    RunRecord,
    goal_metrics,
    group_runs,
    integer,
    metric_title,
    missing_products,
    random_baselines,
    read_run,
    run_labels,
    unique_paths,
)
from rig.rundir import ReportDir
from rig.stages import STAGE_NAMES

MAX_GIFS = 3
"""Rollout GIFs shown per run."""


def final_metrics(runs: Sequence[RunRecord]) -> list[tuple[str, str, int]]:
    """The final table's columns: (eval.json key, title, digits) of each goal metric, then success."""
    columns = [(f"{name}_mean", metric_title(name, unit), 3) for name, unit in goal_metrics(runs).items()]
    return [*columns, ("success_rate", "success rate", 2)]


def build_report(
    run_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``report.md`` and its figures for ``run_dirs``; returns the report's path.

    ``out_dir`` defaults to the run directory for one run, and to ``report/`` in the run directories'
    common parent for several (``runs/sweep/seed_*`` gives ``runs/sweep/report``). Images that do not lie
    under ``out_dir`` are copied into ``out_dir/report_files`` so the markdown renders from there.
    Raises a ``UserError`` for an argument that is not a run directory (no ``config.yaml``).
    """
    paths = unique_paths(run_dirs)
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
        *online_section(groups, target),
        *_rollouts_section(groups, target),
        *final_section(runs, groups),
    ]
    report = ReportDir(target).markdown
    write_text(report, "\n".join(lines).rstrip() + "\n")
    return report


def default_out_dir(paths: Sequence[Path]) -> Path:
    return ReportDir.for_runs(paths).root


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
        return "the true state"
    if config.vae.kind == "supervised":
        return "the state, standardised"
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
            f"{run.config.vae.beta:g}" if run.config.vae.decodes_images else "—",
            run.config.agent.algo.upper(),
            f"{run.config.agent.total_steps:,}",
            str(run.config.seed),
        ]
        for run in runs
    ]
    return ["## Configuration", "", *table(header, rows)]


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
    return ["## Stage times", "", *table(["run", *names, "total"], rows), note, ""]


def _timing_row(run: RunRecord, names: Sequence[str]) -> list[str]:
    entries = {name: (run.stages or {}).get(name) for name in names}
    seconds = {name: _stage_seconds(entry) for name, entry in entries.items()}
    cells = []
    for name in names:
        entry = entries[name]
        unfinished = isinstance(entry, dict) and entry.get("done") is False
        cells.append(duration(seconds[name]) + (" *unfinished*" if unfinished else ""))
    total = sum(value for value in seconds.values() if value is not None)
    return [f"`{run.label}`", *cells, duration(total)]


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
    lines += _regression_table(learned)
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
    return table(header, rows) + notes


def _vae_metrics_row(run: RunRecord, metrics: dict[str, Any]) -> list[str]:
    training = metrics.get("training") if isinstance(metrics.get("training"), dict) else {}
    kl = metrics.get("kl_per_dim")
    kl_text = ", ".join(number(v, 2) for v in kl) if isinstance(kl, list) else "—"
    units = metrics.get("active_units")
    return [
        f"`{run.label}`",
        number(metrics.get("probe_r2_hand"), 3),
        number(metrics.get("probe_r2_puck"), 3),
        number(metrics.get("probe_r2_puck_z_only"), 3),
        number(metrics.get("spearman"), 3),
        _reward_shares(metrics.get("reward_geometry")),
        f"{units} / {run.config.vae.z_dim}" if isinstance(units, int) else "—",
        number(metrics.get("neg_elbo"), 1),
        kl_text,
        number((training or {}).get("images_per_second"), 0),
    ]


def _reward_shares(geometry: object) -> str:
    if not isinstance(geometry, dict):
        return "—"
    hand, part, interaction = (
        geometry.get(key) for key in ("latent_hand", "latent_object", "part_interaction")
    )
    return f"{number(hand, 2)} / {number(part, 2)} ({number(interaction, 2)})"


REGRESSION_RMSE = "regression_rmse_"
"""the prefix of the supervised encoder's per-part error in its pretraining metrics"""


def _regression_table(runs: Sequence[RunRecord]) -> list[str]:
    """The supervised encoders' error on held-out frames, per state part (their ``regression_*`` metrics,
    ``rig.diagnostics.metrics.regression_metrics``)."""
    measured = [(run, run.pretrain_metrics or {}) for run in runs]
    measured = [(run, metrics) for run, metrics in measured if _regression_parts(metrics)]
    if not measured:
        return []
    parts = _regression_parts(measured[0][1])
    rows = [
        [
            f"`{run.label}`",
            *(number(metrics.get(f"{REGRESSION_RMSE}{part}"), 4) for part in parts),
            *(number(metrics.get(f"regression_r2_{part}"), 3) for part in parts),
        ]
        for run, metrics in measured
    ]
    header = ["run", *(f"RMSE {part}" for part in parts), *(f"R² {part}" for part in parts)]
    intro = [
        "### Supervised encoders: held-out regression error",
        "",
        "The encoder trained to regress the true state from the frames: root mean squared error of the "
        "state it reads from held-out frames, in the state's units (metres on the pushers), and the R² of "
        "that reading itself (no probe fitted).",
        "",
    ]
    return intro + table(header, rows)


def _regression_parts(metrics: dict[str, Any]) -> list[str]:
    return [key.removeprefix(REGRESSION_RMSE) for key in metrics if key.startswith(REGRESSION_RMSE)]


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
            cells = [number(heldout.get(key), digits) for key, _, digits in HELDOUT_COLOUR_COLUMNS]
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
    return intro + table(header, rows)


def _grid_images(group: MethodGroup, out_dir: Path, several: bool) -> list[str]:
    shown = next((run for run in group.runs if run.grids()), None)
    if shown is None:
        return []
    lines = [f"### VAE grids: {group.label}" + (f" (`{shown.label}`)" if several else ""), ""]
    for path, caption in shown.grids():
        lines += [f"![{path.stem}]({link(out_dir, path, shown)})", "", f"*{caption}*", ""]
    return lines


def _curves_section(runs: Sequence[RunRecord], groups: Sequence[MethodGroup], out_dir: Path) -> list[str]:
    lines = ["## Learning curves", ""]
    if not any(run.curve for run in runs):
        return [*lines, "No run has an evaluation curve (`agent/eval_curve.csv`) yet.", ""]
    curves = ReportDir(out_dir).learning_curves
    plot_learning_curves(groups, random_baselines(runs), curves, goal_metrics(runs))
    episodes = sorted({point.episodes for run in runs for point in run.curve})
    names = ", ".join(name.replace("_", " ") for name in goal_metrics(runs))
    caption = (
        f"Periodic evaluations on real goal images ({', '.join(map(str, episodes))} episodes each): "
        f"the env's own goal metrics ({names}) at the episode's last step, and the share of episodes "
        "the env counts as a success at their last step (on the pushers: the puck within 0.05 m of its goal)."
    )
    if any(len(group.runs) > 1 for group in groups):
        caption += " Lines: mean over seeds; shaded: ± 1 std across seeds (ddof=0)."
    if any(run.random_baseline for run in runs):
        caption += " Dashed: the random policy on the same goals."
    return [*lines, f"![learning curves]({quote(curves.name)})", "", caption, ""]


def _rollouts_section(groups: Sequence[MethodGroup], out_dir: Path) -> list[str]:
    lines = ["## Rollouts", ""]
    filmed = [(group, next((run for run in group.runs if run.gifs), None)) for group in groups]
    if all(run is None for _, run in filmed):
        return [*lines, "No rollout GIFs (`gifs/eval_*.gif`) yet.", ""]
    for group, run in filmed:
        if run is None:
            continue
        panels = "agent | goal image" + (" | decoded latent goal" if run.config.vae.decodes_images else "")
        lines += [f"**{group.label}** (`{run.label}`; left to right: {panels})", ""]
        lines += [
            " ".join(
                f"![rollout {i}]({link(out_dir, gif, run)})" for i, gif in enumerate(run.gifs[:MAX_GIFS])
            )
        ]
        lines.append("")
    return lines


def final_section(runs: Sequence[RunRecord], groups: Sequence[MethodGroup]) -> list[str]:
    lines = ["## Final evaluation", ""]
    if not any(run.final for run in runs) and not any(run.random_baseline for run in runs):
        return [*lines, "No run has a final evaluation (`eval.json`) or random baseline yet.", ""]
    columns = final_metrics(runs)
    header = ["method", "seeds", "env steps", "episodes per seed", *(title for _, title, _ in columns)]
    rows = [_final_row(group, columns) for group in groups]
    randoms = random_baselines(runs)
    for env_id, summaries in sorted(randoms.items()):
        name = "Random policy" if len(randoms) == 1 else f"Random policy, {env_id}"
        on_env = sum(run.config.env.id == env_id for run in runs)
        rows.append(_summary_row(name, summaries, on_env, "0", columns))
    note = (
        "Final evaluation on seeded real goals, the same goals for every method on an env. With several "
        "seeds: mean ± std over the seeds' means (ddof=0). Seeds: runs with a result (of the runs given, "
        "when some lack one); the random policy's row counts the runs' baselines."
    )
    return [*lines, *table(header, rows), note, ""]


def _final_row(group: MethodGroup, columns: Sequence[tuple[str, str, int]]) -> list[str]:
    summaries = [run.final for run in group.runs if run.final is not None]
    steps = span([run.trained_steps() for run in group.runs if run.final is not None])
    return _summary_row(group.label, summaries, len(group.runs), steps, columns)


def _summary_row(
    name: str,
    summaries: Sequence[dict[str, Any]],
    runs: int,
    steps: str,
    columns: Sequence[tuple[str, str, int]],
) -> list[str]:
    episodes = span([integer(s.get("episodes")) for s in summaries])
    cells = [mean_std(summaries, key, digits) for key, _, digits in columns]
    seeds = str(len(summaries)) if len(summaries) == runs else f"{len(summaries)} of {runs}"
    return [name, seeds, steps, episodes, *cells]
