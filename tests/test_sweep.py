"""rig sweep: grid parsing, trial names and outcomes without Ray, then small sweeps on a local Ray."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.config import ConfigError
from rig.rundir import RunDir
from rig.sweep import (
    INSTALL_HINT,
    SWEEP_FILE,
    Grid,
    SweepError,
    Trial,
    TrialReport,
    TrialStatus,
    collect_outcomes,
    format_table,
    make_trials,
    parse_grid,
    parse_seeds,
    plan_sweep,
    run_sweep,
    split_values,
    trial_name,
    write_summary,
)

FAST = ["vae.epochs=1", "data.num_frames=100"]
"""On top of configs/debug.yaml: a whole trial in a few seconds."""


# ------------------------------------------------------------------------------ the grid
def test_split_values_keeps_commas_inside_brackets_and_quotes() -> None:
    assert split_values("0.5,1,4") == ["0.5", "1", "4"]
    assert split_values("[64,64],[32]") == ["[64,64]", "[32]"]
    assert split_values("[64,64]") == ["[64,64]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert split_values("{a: 1, b: 2}") == ["{a: 1, b: 2}"]
    with pytest.raises(ValueError, match="unbalanced"):
        split_values("[64,64")


def test_parse_grid_axes_and_plain_overrides() -> None:
    grid = parse_grid(["vae.beta=0.5,1", "agent.net_arch=[64,64]", "agent.algo=sac", "vae.z_dim=[2],[4]"])
    assert grid.axes == {"vae.beta": ["0.5", "1"], "vae.z_dim": ["[2]", "[4]"]}
    assert grid.overrides == ["agent.net_arch=[64,64]", "agent.algo=sac"]
    assert grid.given_keys() == {"vae.beta", "vae.z_dim", "agent.net_arch", "agent.algo"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["vae.beta"], "must look like key=value"),
        (["=1,2"], "must look like key=value"),
        (["vae.beta=1,2", "vae.beta=3"], "given twice"),
        (["seed=1,2"], "--seeds"),
        (["run_dir=/tmp/x"], "--out"),
        (["vae.beta=1,,2"], "empty value"),
        (["vae.beta=1,2,1"], "repeats 1"),
    ],
)
def test_parse_grid_rejects(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_grid(items)


def test_parse_seeds() -> None:
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds(" 3 ") == [3]
    with pytest.raises(ValueError, match="comma-separated integers"):
        parse_seeds("0,one")
    with pytest.raises(ValueError, match="repeats 0"):
        parse_seeds("0,1,0")


# ------------------------------------------------------------------------------ trials
def test_trial_names_are_readable_and_filesystem_safe() -> None:
    assert trial_name([], 3) == "seed=3"
    assert trial_name([("vae.beta", "0.5")], 0) == "vae.beta=0.5_seed=0"
    assert trial_name([("agent.net_arch", "[64, 64]")], 1) == "agent.net_arch=64-64_seed=1"
    assert trial_name([("env.id", "rig/Push-v0")], 1) == "env.id=rig-Push-v0_seed=1"
    assert trial_name([("agent.net_arch", "[]")], 1) == "agent.net_arch=empty_seed=1"
    long = trial_name([("agent.net_arch", "[" + ",".join(["400"] * 40) + "]")], 0)
    assert len(long) <= 100
    assert long != trial_name([("agent.net_arch", "[" + ",".join(["400"] * 41) + "]")], 0)


def test_make_trials_is_the_product_of_axes_and_seeds(tmp_path: Path) -> None:
    grid = parse_grid(["vae.beta=0.5,1", "agent.algo=sac", "vae.kind=beta_vae,cc_vae"])
    trials = make_trials(grid, [0, 1], tmp_path, defaults=["torch_threads=1"])
    assert len(trials) == 2 * 2 * 2
    assert len({t.name for t in trials}) == len(trials)
    first = trials[0]
    assert first.name == "vae.beta=0.5_vae.kind=beta_vae_seed=0"
    expected = ("torch_threads=1", "agent.algo=sac", "vae.beta=0.5", "vae.kind=beta_vae", "seed=0")
    assert first.overrides == expected
    assert first.run_dir == tmp_path / first.name
    assert [t.seed for t in trials[:2]] == [0, 1]


def test_values_that_sanitise_alike_get_distinct_names(tmp_path: Path) -> None:
    trials = make_trials(Grid(axes={"env.id": ["a/b", "a b"]}), [0], tmp_path)
    assert len({t.name for t in trials}) == 2
    assert all(t.run_dir.name == t.name for t in trials)


def test_plan_sweep_validates_every_trial_and_sets_run_dirs(tmp_path: Path) -> None:
    planned = plan_sweep("debug", ["vae.beta=0.5,2", "agent.net_arch=[16,16]"], [0, 1], tmp_path / "s")
    assert len(planned) == 4
    for trial, cfg in planned:
        assert Path(cfg.run_dir) == trial.run_dir
        assert trial.run_dir.is_absolute() and trial.run_dir.parent == (tmp_path / "s").resolve()
        assert cfg.torch_threads == 1  # the sweep's default: trials share the cores
        assert cfg.agent.net_arch == [16, 16]
        assert cfg.seed == trial.seed
    assert sorted(cfg.vae.beta for _, cfg in planned) == [0.5, 0.5, 2.0, 2.0]
    own_threads = plan_sweep("debug", ["torch_threads=2"], [0], tmp_path / "t")
    assert own_threads[0][1].torch_threads == 2


def test_unknown_key_fails_before_ray_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # were Ray reached, this would be a SweepError
    with pytest.raises(ConfigError, match=r"unknown config key 'vae\.betta'.*'vae\.beta'"):
        run_sweep("debug", ["vae.betta=1,2"], [0, 1], tmp_path / "sweep")
    with pytest.raises(ConfigError, match="trial vae.kind=nope_seed=0: .*vae.kind"):
        run_sweep("debug", ["vae.kind=beta_vae,nope"], [0], tmp_path / "sweep")
    with pytest.raises(ConfigError, match="trial env.id=rig-Missing-v0_seed=0: .*env.id"):
        run_sweep("debug", ["env.id=rig/Push-v0,rig/Missing-v0"], [0], tmp_path / "sweep")
    assert not (tmp_path / "sweep").exists()


def test_missing_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SweepError, match='pip install "rig\\[ray\\]"'):
        run_sweep("debug", [], [0], tmp_path / "sweep")
    assert "pip install -e" in INSTALL_HINT


# ------------------------------------------------------------------------------ outcomes
def _trial(name: str, tmp_path: Path) -> Trial:
    return Trial(name, 0, (), ("seed=0",), tmp_path / name)


def test_outcomes_table_and_summary(tmp_path: Path) -> None:
    trials = [_trial(name, tmp_path) for name in ("good", "bad", "lost", "stopped")]
    ray_text = (
        "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=1)\n  File x\nValueError: device='cuda' asked for"
    )
    reports = {
        "good": TrialReport({"puck_distance_mean": 0.0432, "success_rate": 0.5}, None, "/ray/good"),
        "bad": TrialReport({}, RuntimeError(ray_text), "/ray/bad"),
        "stopped": TrialReport({}, None, "/ray/stopped"),
    }
    outcomes = collect_outcomes(trials, reports)
    assert [o.status for o in outcomes] == [TrialStatus.SUCCEEDED] + [TrialStatus.FAILED] * 3
    assert outcomes[1].error == "ValueError: device='cuda' asked for"
    assert outcomes[1].traceback is not None and "\x1b" not in outcomes[1].traceback
    assert outcomes[2].error == "Ray returned no result for this trial"
    assert outcomes[3].error == "stopped before its final evaluation"

    table = format_table(outcomes).splitlines()
    assert table[0].split() == ["trial", "status", "puck", "distance", "(m)", "success", "error"]
    assert table[1].split() == ["good", "succeeded", "0.043", "50%"]
    assert table[2].split()[:4] == ["bad", "failed", "-", "-"] and table[2].endswith("asked for")

    summary = json.loads(write_summary(tmp_path, "debug", ["vae.beta=1,2"], [0], outcomes).read_text())
    assert (summary["succeeded"], summary["failed"]) == (1, 3)
    assert summary["config"].endswith("configs/debug.yaml")
    bad = summary["trials"][1]
    assert bad["status"] == "failed" and bad["error"].startswith("ValueError") and bad["metrics"] == {}
    assert summary["trials"][0]["metrics"]["puck_distance_mean"] == 0.0432


# ------------------------------------------------------------------------------ on a local Ray
@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One small local Ray instance for this module's sweeps (starting Ray takes seconds)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
    )
    try:
        yield
    finally:
        ray.shutdown()


def _summary(sweep_dir: Path) -> dict[str, dict[str, object]]:
    trials = json.loads((sweep_dir / SWEEP_FILE).read_text())["trials"]
    return {trial["name"]: trial for trial in trials}


@pytest.mark.usefixtures("local_ray")
def test_two_seed_sweep_on_local_ray(tmp_path: Path) -> None:
    import ray

    sweep_dir = tmp_path / "sweep"
    result = run_sweep("debug", FAST, [0, 1], sweep_dir)

    assert [o.trial.name for o in result.succeeded] == ["seed=0", "seed=1"] and not result.failed
    summary = _summary(sweep_dir)
    assert {name: trial["status"] for name, trial in summary.items()} == {
        "seed=0": "succeeded",
        "seed=1": "succeeded",
    }
    for name in ("seed=0", "seed=1"):
        run_dir = sweep_dir / name
        final = json.loads((run_dir / "eval.json").read_text())
        assert summary[name]["metrics"] == final
        assert summary[name]["run_dir"] == str(run_dir.resolve())
        assert str(summary[name]["ray_path"]).startswith(str((sweep_dir / "ray").resolve()))
    assert result.report == sweep_dir.resolve() / "report.md" and result.report.is_file()
    assert ray.is_initialized()  # a Ray that the sweep did not start is left running


@pytest.mark.usefixtures("local_ray")
def test_failed_trial_is_recorded_and_the_others_kept(tmp_path: Path) -> None:
    # The config is valid; the trial fails at run time because this process holds its run directory.
    sweep_dir = tmp_path / "sweep"
    with RunDir(sweep_dir / "seed=1").lock():
        result = run_sweep("debug", FAST, [0, 1], sweep_dir)

    assert [o.trial.name for o in result.succeeded] == ["seed=0"]
    failed = _summary(sweep_dir)["seed=1"]
    assert failed["status"] == "failed" and failed["metrics"] == {}
    assert "is in use by another rig process" in str(failed["error"])
    assert "rig/pipeline.py" in str(failed["traceback"])
    assert (sweep_dir / "seed=0" / "eval.json").is_file()
    assert result.report is not None and result.report.is_file()


@pytest.mark.usefixtures("local_ray")
def test_sweep_where_every_trial_fails_raises_after_writing(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    with RunDir(sweep_dir / "seed=0").lock(), pytest.raises(SweepError, match="all 1 trials failed"):
        run_sweep("debug", FAST, [0], sweep_dir)
    assert {trial["status"] for trial in _summary(sweep_dir).values()} == {"failed"}
    assert not (sweep_dir / "report.md").exists()
