"""Every stage on every env rig ships, and on the docs' example env, at debug size.

RIG, the state oracle and Skew-Fit's online path run through collect, pretrain, train, evaluate, the
random baseline and the report; the report and the curve name each env's own goal metrics.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from rig.config import load_config
from rig.pipeline import read_stage_record, run_pipeline

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
FAST = ["device=cpu", "torch_threads=1"]
ENVS = {
    "rig/Push-v0": ([], ["puck_distance", "hand_distance"]),
    "rig/Door-v0": ([], ["angle_difference", "hand_distance"]),
    "rig/Pusher-v5": ([], ["puck_distance", "tip_distance"]),
    "rig/PointMaze_UMaze-v3": ([], ["goal_distance"]),
    "example/PointReach-v0": (["env.module=point_reach"], ["point_distance"]),
}
METHODS = {"rig": ("debug", []), "oracle": ("debug", ["vae.kind=state"]), "skewfit": ("debug_skewfit", [])}


@pytest.fixture(autouse=True, scope="module")
def example_on_path() -> None:
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))


def run(run_dir: Path, config: str, *overrides: str) -> dict[str, object]:
    cfg = load_config(config, [f"run_dir={run_dir}", *FAST, *overrides])
    return run_pipeline(cfg, progress=False)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_every_stage_runs_and_reports_the_envs_own_metrics(tmp_path: Path, env_id: str, method: str) -> None:
    if env_id == "rig/PointMaze_UMaze-v3":
        pytest.importorskip("gymnasium_robotics", reason="the robotics extra: pip install -e '.[robotics]'")
    env_overrides, metrics = ENVS[env_id]
    config, method_overrides = METHODS[method]
    evaluation = run(tmp_path, config, f"env.id={env_id}", *env_overrides, *method_overrides)

    assert [name for name, _ in evaluation["goal_metrics"]] == metrics  # type: ignore[attr-defined]
    for name in metrics:
        assert f"{name}_mean" in evaluation
    assert all(entry["done"] for entry in read_stage_record(tmp_path).values())
    with open(tmp_path / "agent" / "eval_curve.csv", newline="") as handle:
        columns = next(csv.reader(handle))
    assert columns == [
        "steps",
        *(c for name in metrics for c in (name, f"{name}_std")),
        "success_rate",
        "episodes",
    ]
    random = json.loads((tmp_path / "baselines" / "random.json").read_text())
    assert [name for name, _ in random["goal_metrics"]] == metrics
    report = (tmp_path / "report.md").read_text()
    titles = [f"final {name.replace('_', ' ')}" for name in metrics]
    positions = [report.index(title) for title in titles]
    assert positions == sorted(positions), "the headline metric comes first"
    assert (tmp_path / "learning_curves.png").stat().st_size > 0
    if method != "oracle":
        probes = json.loads((tmp_path / "pretrain" / "metrics.json").read_text())
        assert any(key.startswith("probe_r2_") for key in probes)


def test_an_env_without_snapshots_extends_its_run_from_a_fresh_episode(tmp_path: Path) -> None:
    """The example env takes no snapshots: a longer run resumes from the checkpoint, its interrupted
    episode restarted, and its curve goes on."""
    first = run(tmp_path, "debug", "env.id=example/PointReach-v0", "env.module=point_reach")
    longer = run(
        tmp_path, "debug", "env.id=example/PointReach-v0", "env.module=point_reach", "agent.total_steps=95"
    )
    assert (first["steps"], longer["steps"]) == (60, 95)
    with open(tmp_path / "agent" / "eval_curve.csv", newline="") as handle:
        steps = [int(row["steps"]) for row in csv.DictReader(handle)]
    assert steps == [0, 30, 60, 90, 95]
