"""The run directory: extending a finished run, refusing to delete work, --overwrite, and the lock."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.checkpoints import read_checkpoint_record
from rig.cli import main
from rig.config import load_config
from rig.evaluate import read_eval_curve
from rig.pipeline import SettingsChangedError, read_stage_record, run_pipeline
from rig.rundir import RunDir, RunDirInUseError

FAST = ["device=cpu", "torch_threads=1"]
IN_USE = "is in use by another rig process"


def debug(run_dir: Path, *overrides: str):
    return load_config("debug", [f"run_dir={run_dir}", *FAST, *overrides])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished debug run (60 steps, evaluated every 30); tests work on copies of it."""
    run_dir = tmp_path_factory.mktemp("runs") / "finished"
    run_pipeline(debug(run_dir), progress=False, report=False)
    return run_dir


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> RunDir:
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return RunDir(copy)


def mtimes(*paths: Path) -> list[int]:
    return [path.stat().st_mtime_ns for path in paths]


def progress_rows(run: RunDir) -> list[dict[str, str]]:
    with open(run.agent.progress, newline="") as handle:
        return list(csv.DictReader(handle))


def test_extending_total_steps_through_rig_run_resumes_training(run: RunDir) -> None:
    curve_before = read_eval_curve(run.agent.eval_curve)
    rows_before = progress_rows(run)
    kept = mtimes(run.frames, run.representation, run.random_baseline)
    assert main(["run", "debug", f"run_dir={run.root}", *FAST, "agent.total_steps=90"]) == 0

    curve = read_eval_curve(run.agent.eval_curve)
    assert [point.steps for point in curve_before] == [0, 30, 60]
    assert curve[:3] == curve_before, "the curve continues, it does not restart at 0"
    assert [point.steps for point in curve] == [0, 30, 60, 90]
    assert progress_rows(run)[: len(rows_before)] == rows_before
    assert read_checkpoint_record(run.agent.root).steps == 90
    assert json.loads(run.eval.read_text())["steps"] == 90, "the evaluation follows the longer training"
    assert mtimes(run.frames, run.representation, run.random_baseline) == kept
    record = read_stage_record(run.root)
    assert record["train"]["resumable"] == {"agent.total_steps": 90} and record["train"]["done"]


def test_asking_for_fewer_steps_than_trained_is_refused(
    run: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "debug", f"run_dir={run.root}", *FAST, "agent.total_steps=30"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, "refused before any stage runs"
    assert "trained for 60 steps, more than agent.total_steps=30" in error[0]
    assert read_checkpoint_record(run.agent.root).steps == 60


def test_a_changed_vae_setting_is_refused_without_overwrite(run: RunDir, capsys) -> None:
    files = [run.frames, run.representation, run.agent.checkpoint, run.eval, run.config]
    before = mtimes(*files)
    with pytest.raises(SettingsChangedError, match=r"vae\.beta: 0\.25 -> 2\.0") as refused:
        run_pipeline(debug(run.root, "vae.beta=2.0"), progress=False, report=False)
    message = str(refused.value)
    assert "pretrain/ (pretrain), agent/ (train)" in message and "--overwrite" in message
    assert "data/" not in message, "collection is not invalidated by a VAE setting"
    assert mtimes(*files) == before, "nothing was written, not even config.yaml"

    assert main(["run", "debug", f"run_dir={run.root}", *FAST, "vae.beta=2.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rig run: ") and "vae.beta" in err and len(err.splitlines()) == 1


def test_overwrite_deletes_exactly_the_invalidated_stages(
    run: RunDir, caplog: pytest.LogCaptureFixture
) -> None:
    for folder in (run.data, run.pretrain, run.agent.root, run.baselines):
        (folder / "marker").write_text("made by the first run")
    caplog.set_level(logging.INFO, logger="rig")
    run_pipeline(debug(run.root, "vae.beta=2.0"), progress=False, report=False, overwrite=True)

    assert (run.data / "marker").exists(), "collect's products are kept"
    for folder in (run.pretrain, run.agent.root, run.baselines):
        assert not (folder / "marker").exists(), folder
    changed = [
        r.getMessage() for r in caplog.records if "settings changed (vae.beta: 0.25 -> 2.0)" in r.getMessage()
    ]
    assert [message.split("]")[0] for message in changed] == [
        "[pretrain",
        "[train",
        "[evaluate",
        "[baselines",
    ]
    assert "deleting pretrain/ (pretrain)" in changed[0] and "deleting agent/ (train)" in changed[1]
    record = read_stage_record(run.root)
    assert record["pretrain"]["settings"]["vae.beta"] == 2.0 and all(e["done"] for e in record.values())
    assert load_config(run.config).vae.beta == 2.0


def test_changed_evaluation_settings_redo_only_the_evaluations(run: RunDir) -> None:
    kept = mtimes(run.frames, run.representation, run.agent.checkpoint)
    run_pipeline(debug(run.root, "eval.seed=7"), progress=False, report=False)
    assert mtimes(run.frames, run.representation, run.agent.checkpoint) == kept
    assert json.loads(run.eval.read_text())["seed"] == 7
    assert json.loads(run.random_baseline.read_text())["seed"] == 7


def test_a_changed_eval_episodes_redoes_the_evaluations_without_retraining(run: RunDir) -> None:
    kept = mtimes(run.frames, run.representation, run.agent.checkpoint)
    assert main(["run", "debug", f"run_dir={run.root}", *FAST, "eval.episodes=3"]) == 0
    assert mtimes(run.frames, run.representation, run.agent.checkpoint) == kept
    assert json.loads(run.eval.read_text())["episodes"] == 3
    assert json.loads(run.random_baseline.read_text())["episodes"] == 3
    # An extension continues the learning curve with the episodes it was measured with.
    assert (
        main(["run", "debug", f"run_dir={run.root}", *FAST, "eval.episodes=3", "agent.total_steps=90"]) == 0
    )
    curve = read_eval_curve(run.agent.eval_curve)
    assert [(point.steps, point.episodes) for point in curve] == [(0, 2), (30, 2), (60, 2), (90, 2)]
    assert json.loads(run.eval.read_text())["episodes"] == 3


def test_a_changed_eval_every_is_refused_saying_why_it_retrains(
    run: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = mtimes(run.agent.checkpoint, run.eval)
    assert main(["run", "debug", f"run_dir={run.root}", *FAST, "eval.every=20"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rig run: ") and "eval.every: 30 -> 20" in line
    assert "the learning curve is measured every eval.every steps while the agent trains" in line
    assert mtimes(run.agent.checkpoint, run.eval) == kept


def edit_config(run: RunDir, old: str, new: str) -> None:
    text = run.config.read_text()
    assert old in text
    run.config.write_text(text.replace(old, new))


def test_evaluate_refuses_a_config_yaml_that_did_not_train_the_agent(
    run: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluation = run.eval.read_bytes()
    edit_config(run, "max_episode_steps: 10", "max_episode_steps: 15")
    assert main(["evaluate", str(run.root)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"rig evaluate: {run.config} does not describe the agent")
    assert "env.max_episode_steps: 10 -> 15" in line and "put config.yaml back" in line
    assert run.eval.read_bytes() == evaluation


def test_evaluate_refuses_a_stage_record_that_did_not_train_the_agent(
    run: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    record = read_stage_record(run.root)
    record["train"]["settings"]["env.max_episode_steps"] = 15
    run.stages.write_text(json.dumps(record))
    assert main(["evaluate", str(run.root)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"rig evaluate: {run.stages} does not describe the agent")
    assert "env.max_episode_steps: 10 -> 15" in line
    kept = mtimes(run.frames, run.representation, run.agent.checkpoint)
    run.stages.unlink()  # the way out it gives
    assert main(["evaluate", str(run.root)]) == 0
    assert mtimes(run.frames, run.representation, run.agent.checkpoint) == kept
    assert read_stage_record(run.root)["train"]["settings"]["env.max_episode_steps"] == 10


def test_an_evaluation_by_hand_edited_eval_settings_is_not_kept_as_the_stage(run: RunDir) -> None:
    edit_config(run, "episodes: 2", "episodes: 3")
    assert main(["evaluate", str(run.root)]) == 0
    assert json.loads(run.eval.read_text())["episodes"] == 3
    assert "evaluate" not in read_stage_record(run.root)
    assert main(["run", "debug", f"run_dir={run.root}", *FAST]) == 0
    assert json.loads(run.eval.read_text())["episodes"] == 2, "the next rig run evaluates as it asks"


def test_a_stage_command_needs_the_stages_before_it(tmp_path: Path, capsys) -> None:
    assert main(["pretrain", "debug", f"run_dir={tmp_path / 'run'}", *FAST]) == 2
    err = capsys.readouterr().err
    assert "needs the collect stage" in err and "rig collect" in err


# ------------------------------------------------------------------------------ the lock
HOLD_LOCK = """
import sys, time
from rig.rundir import RunDir
with RunDir(sys.argv[1]).lock():
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(run: RunDir) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run directory's lock."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run.root)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


def test_a_second_process_on_a_run_directory_fails_at_once(
    run: RunDir, holder: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = mtimes(run.config, run.stages, run.eval)
    for command in (
        ["run", "debug", f"run_dir={run.root}", *FAST],
        ["train", "debug", f"run_dir={run.root}", *FAST, "agent.total_steps=90"],
        ["evaluate", str(run.root), "--episodes", "1"],
    ):
        assert main(command) == 2, command
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"rig {command[0]}: run directory {run.root} {IN_USE}"), err
        assert len(err.splitlines()) == 1
    assert mtimes(run.config, run.stages, run.eval) == before


def test_the_lock_of_a_killed_process_does_not_block(run: RunDir, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(RunDirInUseError, match=IN_USE), run.lock():
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert run.lock_file.exists(), "the lock file stays behind"
    with run.lock():
        pass
    assert main(["evaluate", str(run.root), "--episodes", "1"]) == 0
    assert "evaluate" not in read_stage_record(run.root), "an evaluation of other settings is not the stage's"


def test_a_second_rig_process_is_refused_while_one_runs(run: RunDir) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "rig", "train", "debug", f"run_dir={run.root}", *FAST]
    with run.lock():
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"rig train: run directory {run.root} {IN_USE} (it "
        "holds .rig.lock); wait for that process to end, or choose another run_dir"
    ]
