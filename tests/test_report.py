"""The report: one run, several runs grouped by method, partial runs, and a real debug run."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image

from rig.config import load_config, to_yaml
from rig.errors import UserError
from rig.evaluate import EvalPoint, write_eval_curve
from rig.io import write_json
from rig.media import save_gif, save_png
from rig.report import build_report
from rig.report.runs import aggregate_curve
from rig.rundir import ReportDir

CURVES_NAME = ReportDir(Path()).learning_curves.name
CURVE_STEPS = (0, 250, 500, 750, 1000)


def write_run(
    path: Path,
    seed: int = 0,
    kind: str = "beta_vae",
    final: dict[str, float] | None = None,
    overrides: tuple[str, ...] = (),
    products: tuple[str, ...] = ("stages", "metrics", "grids", "curve", "eval", "random", "gifs"),
) -> Path:
    """A run directory in the formats ``rig run`` writes, holding only ``products`` beyond config.yaml."""
    cfg = load_config("debug", [f"seed={seed}", f"vae.kind={kind}", f"run_dir={path}", *overrides])
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(to_yaml(cfg))
    final = final or {"puck_distance_mean": 0.08, "hand_distance_mean": 0.04, "success_rate": 0.3}
    writers = {
        "stages": lambda: write_json(path / "stages.json", stage_record()),
        "metrics": lambda: write_json(path / "pretrain" / "metrics.json", vae_metrics()),
        "grids": lambda: write_grids(path / "pretrain", seed),
        "curve": lambda: write_eval_curve(path / "agent" / "eval_curve.csv", learning_curve(final, seed)),
        "eval": lambda: write_json(path / "eval.json", summary(final, steps=CURVE_STEPS[-1])),
        "random": lambda: write_json(path / "baselines" / "random.json", random_summary()),
        "gifs": lambda: write_gifs(path / "gifs", seed),
    }
    for product in products:
        writers[product]()
    return path


def stage_record() -> dict[str, dict[str, object]]:
    seconds = {"collect": 12.34, "pretrain": 95.0, "train": 3725.0, "evaluate": 4.5, "baselines": 2.25}
    return {name: {"key": f"k{name}", "done": True, "seconds": value} for name, value in seconds.items()}


def vae_metrics() -> dict[str, object]:
    return {
        "probe_r2_hand": 0.912,
        "probe_r2_puck": 0.734,
        "spearman": 0.801,
        "active_units": 3,
        "neg_elbo": 612.5,
        "mse": 0.0021,
        "kl_per_dim": [2.5, 1.25, 0.75, 0.0, 0.0, 0.0],
        "reward_geometry": {"latent_hand": 0.52, "latent_object": 0.17, "part_interaction": 0.99},
        "training": {"images_per_second": 4321.0, "train_seconds": 12.0},
    }


def summary(final: dict[str, float], steps: int) -> dict[str, float | int | str]:
    stds = {"puck_distance_std": 0.02, "hand_distance_std": 0.01, "success_std": 0.4}
    return {**final, **stds, "episodes": 20, "seed": 10_000, "steps": steps, "env_id": "rig/Push-v0"}


def random_summary() -> dict[str, float | int | str]:
    final = {"puck_distance_mean": 0.142, "hand_distance_mean": 0.117, "success_rate": 0.05}
    return summary(final, steps=0)


def learning_curve(final: dict[str, float], seed: int) -> list[EvalPoint]:
    """Distances falling from the random policy's level to ``final``, a little different per seed."""
    points = []
    for index, steps in enumerate(CURVE_STEPS):
        progress = index / (len(CURVE_STEPS) - 1)
        wobble = 0.004 * np.sin(index + seed)
        points.append(
            EvalPoint(
                steps=steps,
                values={
                    "puck_distance": 0.142 + (final["puck_distance_mean"] - 0.142) * progress + wobble,
                    "puck_distance_std": 0.02,
                    "hand_distance": 0.117 + (final["hand_distance_mean"] - 0.117) * progress - wobble,
                    "hand_distance_std": 0.01,
                },
                success_rate=final["success_rate"] * progress,
                episodes=20,
            )
        )
    return points


def write_grids(folder: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name in ("reconstructions.png", "prior_samples.png", "traversals.png"):
        save_png(folder / name, rng.integers(0, 256, size=(20, 40, 3), dtype=np.uint8))


def write_gifs(folder: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for index in range(2):
        save_gif(
            folder / f"eval_{index}.gif", list(rng.integers(0, 256, size=(3, 16, 48, 3), dtype=np.uint8))
        )


def image_targets(report: Path) -> list[Path]:
    targets = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report.read_text())
    return [report.parent / unquote(target) for target in targets]


def only_line(text: str, start: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(start)]
    assert len(lines) == 1, f"expected one line starting {start!r}, found {lines}"
    return lines[0]


def table_row(text: str, first_cell: str) -> str:
    return only_line(text, f"| {first_cell} |")


# ---------------------------------------------------------------------------------- tests


def test_single_run_report_shows_every_product(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "rig_seed0",
        final={"puck_distance_mean": 0.087, "hand_distance_mean": 0.046, "success_rate": 0.35},
    )

    report = build_report([run])

    assert report == run / "report.md"
    text = report.read_text()
    figures = (
        "0.912",
        "0.734",
        "0.801",
        "0.52 / 0.17 (0.99)",
        "3 / 6",
        "612.5",
        "2.50, 1.25, 0.75, 0.00, 0.00, 0.00",
    )
    for figure in (*figures, "4321"):
        assert figure in text, figure
    rig_row = table_row(text, "RIG (beta-VAE), TD3, rig/Push-v0")
    assert "| 0.087 | 0.046 | 0.35 |" in rig_row and "| 1,000 |" in rig_row
    assert "| 0.142 | 0.117 | 0.05 |" in table_row(text, "Random policy")
    timing = table_row(text, "`rig_seed0` | 12.3 s")
    assert "| 1 min 35 s | 1 h 02 min | 4.5 s |" in timing and timing.endswith("| 1 h 03 min |")
    assert "Missing" not in text
    targets = image_targets(report)
    names = {target.name for target in targets}
    assert {"reconstructions.png", "prior_samples.png", "traversals.png", CURVES_NAME} <= names
    assert {"eval_0.gif", "eval_1.gif"} <= names
    assert all(target.is_file() for target in targets), targets
    curves = np.asarray(Image.open(run / CURVES_NAME).convert("RGB"))
    assert curves.shape[0] >= 300 and curves.shape[1] >= 900
    assert curves.var() > 0


def test_runs_group_by_method_with_means_over_seeds(tmp_path: Path) -> None:
    finals = [
        {"puck_distance_mean": 0.081, "hand_distance_mean": 0.052, "success_rate": 0.30},
        {"puck_distance_mean": 0.119, "hand_distance_mean": 0.034, "success_rate": 0.55},
    ]
    seeds = [
        write_run(tmp_path / "sweep" / f"seed{i}", seed=i, final=final) for i, final in enumerate(finals)
    ]
    oracle_final = {"puck_distance_mean": 0.031, "hand_distance_mean": 0.021, "success_rate": 0.85}
    oracle = write_run(tmp_path / "sweep" / "oracle", kind="state", final=oracle_final)

    report = build_report([*seeds, oracle], tmp_path / "combined")

    assert report == tmp_path / "combined" / "report.md"
    text = report.read_text()
    rig_row = table_row(text, "RIG (beta-VAE), TD3, rig/Push-v0")
    assert "| 2 | 1,000 | 20 |" in rig_row
    for key in ("puck_distance_mean", "hand_distance_mean"):
        values = np.array([final[key] for final in finals])
        assert f"{values.mean():.3f} ± {values.std():.3f}" in rig_row, key
    success = np.array([final["success_rate"] for final in finals])
    assert f"{success.mean():.2f} ± {success.std():.2f}" in rig_row
    oracle_row = table_row(text, "Oracle (state), TD3, rig/Push-v0")
    assert "| 1 | 1,000 | 20 | 0.031 | 0.021 | 0.85 |" in oracle_row
    assert "| 3 | 0 | 20 | 0.142 ± 0.000 |" in table_row(text, "Random policy")
    assert (tmp_path / "combined" / CURVES_NAME).is_file()
    assert all(target.is_file() for target in image_targets(report))

    curves = [learning_curve(finals[0], 0), learning_curve(finals[1], 1)]
    band = aggregate_curve(curves, "puck_distance")
    per_seed = np.array([[point.puck_distance for point in curve] for curve in curves])
    np.testing.assert_allclose(band.mean, (per_seed[0] + per_seed[1]) / 2)
    np.testing.assert_allclose(band.std, np.abs(per_seed[0] - per_seed[1]) / 2)
    assert band.steps.tolist() == list(CURVE_STEPS) and band.seeds.tolist() == [2] * len(CURVE_STEPS)


def test_groups_of_one_method_with_other_settings_are_told_apart(tmp_path: Path) -> None:
    low = write_run(tmp_path / "beta1", overrides=("vae.beta=1.0",))
    high = write_run(tmp_path / "beta5", overrides=("vae.beta=5.0",))

    text = build_report([low, high], tmp_path / "out").read_text()

    assert "| RIG (beta-VAE), TD3, rig/Push-v0 [vae.beta=1.0] |" in text
    assert "| RIG (beta-VAE), TD3, rig/Push-v0 [vae.beta=5.0] |" in text


def test_partial_run_reports_what_is_missing(tmp_path: Path) -> None:
    run = write_run(tmp_path / "stopped", products=("stages", "curve"))

    text = build_report([run]).read_text()

    assert "**Missing**" in text
    for missing in ("`eval.json`", "`pretrain/metrics.json`", "`baselines/random.json`", "`gifs/eval_*.gif`"):
        assert missing in only_line(text, "- `stopped`:"), missing
    assert "No run has a final evaluation" in text
    assert "No run has VAE diagnostics" in text
    assert [target.name for target in image_targets(run / "report.md")] == [CURVES_NAME]


def test_run_with_only_its_config_still_gets_a_report(tmp_path: Path) -> None:
    run = write_run(tmp_path / "fresh", products=())

    text = build_report([run]).read_text()

    assert "No run has an evaluation curve" in text and "No run has a `stages.json`" in text
    assert "`stages.json` (stage times)" in text
    assert not (run / CURVES_NAME).exists()


@pytest.mark.parametrize("exists", [True, False], ids=["empty dir", "no dir"])
def test_a_directory_without_config_is_refused_by_name(tmp_path: Path, exists: bool) -> None:
    good = write_run(tmp_path / "good")
    bad = tmp_path / "not_a_run"
    if exists:
        bad.mkdir()

    with pytest.raises(UserError, match=re.escape(str(bad))):
        build_report([good, bad], tmp_path / "out")


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_torch_thread")
def test_report_of_a_real_debug_run(tmp_path: Path) -> None:
    from rig.pipeline import run_pipeline

    cfg = load_config("debug", [f"run_dir={tmp_path / 'debug'}", "torch_threads=1"])
    final = run_pipeline(cfg, progress=False, report=False)

    report = build_report([tmp_path / "debug"])

    text = report.read_text()
    assert f"{final['puck_distance_mean']:.3f}" in table_row(text, "RIG (beta-VAE), TD3, rig/Push-v0")
    assert "Missing" not in text
    names = {target.name for target in image_targets(report)}
    assert {"reconstructions.png", "traversals.png", CURVES_NAME, "eval_0.gif"} <= names
    assert all(target.is_file() for target in image_targets(report))


def test_the_online_table_splits_coverage_at_the_skew_start_and_averages_over_seeds() -> None:
    from types import SimpleNamespace

    from rig.report import MethodGroup
    from rig.report.online import online_summary_table

    config = load_config("debug_skewfit", ["online.skew_start_steps=1000"])
    group = MethodGroup("Skew-Fit", [SimpleNamespace(config=config)])  # type: ignore[list-item]
    coverage, hand, puck = "online/goal_coverage_entropy", "online/probe_hand_r2", "online/probe_puck_r2"
    seeds = [
        # Before step 1,000 the updates average to 1.0 and 2.0, from it on to 3.0 and 4.5.
        {
            coverage: [(500.0, 1.0), (1000.0, 2.0), (1500.0, 4.0)],
            hand: [(1500.0, 0.5), (500.0, 0.1)],
            puck: [(1500.0, 0.2)],
        },
        {coverage: [(0.0, 2.0), (2000.0, 5.0), (1000.0, 4.0)], hand: [(2000.0, 0.7)], puck: []},
    ]
    header, _, row, blank = online_summary_table([(group, seeds)])
    assert "before step 1,000" in header and blank == ""
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:2] == ["Skew-Fit", "2"]
    assert cells[2] == "1.50 ± 0.50"  # before: 1.0 and 2.0
    assert cells[3] == "3.75 ± 0.75"  # from then on: mean(2, 4) = 3 and mean(5, 4) = 4.5
    assert cells[4] == "4.50 ± 0.50"  # the last update of each seed by step: 4.0 at 1,500 and 5.0 at 2,000
    assert cells[5] == "0.60 ± 0.10"  # the last hand probe by step, not by order: 0.5 and 0.7
    assert cells[6] == "0.20"  # one seed logged a puck probe
