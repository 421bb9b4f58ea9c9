"""`rig run`: every stage on the debug config, caching, invalidation, resume, and the CLI's errors."""

from __future__ import annotations

import errno
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from rig.cli import main
from rig.config import CONFIG_DIR, load_config
from rig.data import FrameDataset
from rig.pipeline import read_stage_record, run_pipeline, stage_keys
from rig.pretrain import fit_goal_prior
from rig.representation import load_representation, read_checkpoint
from rig.rundir import PretrainDir
from rig.stages import train_stage

FAST = ["device=cpu", "torch_threads=1"]


def debug(run_dir: Path, *overrides: str):
    return load_config("debug", [f"run_dir={run_dir}", *FAST, *overrides])


def stage_runs(run_dir: Path) -> dict[str, float]:
    return {name: entry["seconds"] for name, entry in read_stage_record(run_dir).items()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "a"
    run_pipeline(debug(run_dir), progress=False)
    return run_dir


def test_run_makes_every_product(finished_run: Path) -> None:
    for name in (
        "config.yaml",
        "stages.json",
        "data/frames.npz",
        "pretrain/best.pt",
        "pretrain/metrics.json",
        "agent/checkpoint.json",
        "agent/eval_curve.csv",
        "eval.json",
        "baselines/random.json",
        "report.md",
        "learning_curves.png",
    ):
        assert (finished_run / name).exists(), name
    assert list((finished_run / "gifs").glob("eval_*.gif"))
    record = read_stage_record(finished_run)
    assert set(record) == {"collect", "pretrain", "train", "evaluate", "baselines"}
    assert all(entry["done"] for entry in record.values())
    evaluation = json.loads((finished_run / "eval.json").read_text())
    assert evaluation["steps"] == debug(finished_run).agent.total_steps


def test_second_run_skips_every_stage(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = stage_runs(finished_run)
    mtime = (finished_run / "pretrain" / "best.pt").stat().st_mtime_ns
    assert main(["run", "debug", f"run_dir={finished_run}", *FAST]) == 0
    messages = capsys.readouterr().err
    assert messages.count("up to date, skipped") == 5
    assert stage_runs(finished_run) == before
    assert (finished_run / "pretrain" / "best.pt").stat().st_mtime_ns == mtime


def test_changing_a_vae_key_redoes_pretrain_and_later_stages_only(finished_run: Path, tmp_path: Path) -> None:
    keys, changed = stage_keys(debug(finished_run)), stage_keys(debug(finished_run, "vae.beta=2.0"))
    assert keys["collect"] == changed["collect"]
    assert all(keys[name] != changed[name] for name in ("pretrain", "train", "evaluate", "baselines"))
    agent_change = stage_keys(debug(finished_run, "agent.learning_rate=0.0005"))
    assert agent_change["pretrain"] == keys["pretrain"] and agent_change["train"] != keys["train"]

    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    data_mtime = (run_dir / "data" / "frames.npz").stat().st_mtime_ns
    pretrain_mtime = (run_dir / "pretrain" / "best.pt").stat().st_mtime_ns
    run_pipeline(debug(run_dir, "vae.beta=2.0"), progress=False, report=False, overwrite=True)
    assert (run_dir / "data" / "frames.npz").stat().st_mtime_ns == data_mtime
    assert (run_dir / "pretrain" / "best.pt").stat().st_mtime_ns != pretrain_mtime
    record = read_stage_record(run_dir)
    assert record["pretrain"]["key"] == changed["pretrain"] and record["train"]["key"] == changed["train"]


def test_more_vae_epochs_extend_pretraining_to_the_weights_of_a_longer_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extended, straight = tmp_path / "extended", tmp_path / "straight"
    for run_dir in (extended, straight):
        assert main(["collect", "debug", f"run_dir={run_dir}", *FAST]) == 0
    assert main(["pretrain", "debug", f"run_dir={extended}", *FAST]) == 0
    frames_mtime = (extended / "data" / "frames.npz").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["pretrain", "debug", f"run_dir={extended}", *FAST, "vae.epochs=4"]) == 0
    assert "[pretrain] resuming" in capsys.readouterr().err
    assert (extended / "data" / "frames.npz").stat().st_mtime_ns == frames_mtime
    assert main(["pretrain", "debug", f"run_dir={straight}", *FAST, "vae.epochs=4"]) == 0
    grown, whole = (read_checkpoint(path / "pretrain" / "last.pt") for path in (extended, straight))
    assert grown["epoch"] == whole["epoch"] == 3
    assert all(torch.equal(grown["state_dict"][key], whole["state_dict"][key]) for key in whole["state_dict"])
    curves = [(path / "pretrain" / "progress.csv").read_text() for path in (extended, straight)]
    assert curves[0] == curves[1]
    assert read_stage_record(extended)["pretrain"]["resumable"] == {"vae.epochs": 4}
    budgets = PretrainDir(extended / "pretrain").budgets()
    assert list(budgets) == [2, 4], "each budget keeps its diagnostics"
    assert all((extended / "pretrain" / f"best_epochs{n}.pt").is_file() for n in budgets), "and its weights"
    first, second = (json.loads(path.read_text()) for path in budgets.values())
    assert (first["training"]["epochs"], second["training"]["epochs"]) == (2, 4)
    assert second == json.loads((extended / "pretrain" / "metrics.json").read_text())

    # Fewer epochs than it has trained: one line, and the pretraining is left as it was.
    last = (extended / "pretrain" / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["pretrain", "debug", f"run_dir={extended}", *FAST, "vae.epochs=3"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "has trained 4 epochs, more than vae.epochs=3" in error[0]
    assert (extended / "pretrain" / "last.pt").read_bytes() == last


def test_more_vae_epochs_under_a_trained_agent_are_refused(
    finished_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys, longer = stage_keys(debug(finished_run)), stage_keys(debug(finished_run, "vae.epochs=5"))
    assert keys["collect"] == longer["collect"] and keys["pretrain"] == longer["pretrain"]
    assert keys["train"] != longer["train"]
    before = stage_runs(finished_run)
    assert main(["run", "debug", f"run_dir={finished_run}", *FAST, "vae.epochs=5"]) == 2
    error = capsys.readouterr().err
    assert "vae.epochs: 2 -> 5" in error and "agent/ (train)" in error
    assert stage_runs(finished_run) == before


def test_vae_training_settings_do_not_touch_the_state_oracle(tmp_path: Path) -> None:
    oracle = stage_keys(debug(tmp_path, "vae.kind=state"))
    assert oracle == stage_keys(debug(tmp_path, "vae.kind=state", "vae.batch_size=7", "vae.beta=3.0"))
    assert oracle["pretrain"] != stage_keys(debug(tmp_path))["pretrain"]


def test_interrupted_run_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rig import pipeline

    run_dir = tmp_path / "run"

    def interrupted(cfg: object, progress: bool) -> None:
        raise KeyboardInterrupt

    original = pipeline.plan

    def plan_with_interrupted_train(cfg):  # type: ignore[no-untyped-def]
        stages = original(cfg)
        return [
            stage if stage.name != "train" else type(stage)(**{**stage.__dict__, "run": interrupted})
            for stage in stages
        ]

    monkeypatch.setattr(pipeline, "plan", plan_with_interrupted_train)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(debug(run_dir), progress=False, report=False)
    record = read_stage_record(run_dir)
    assert record["collect"]["done"] and record["pretrain"]["done"] and not record["train"]["done"]
    pretrain_mtime = (run_dir / "pretrain" / "best.pt").stat().st_mtime_ns
    monkeypatch.setattr(pipeline, "plan", original)
    result = run_pipeline(debug(run_dir), progress=False, report=False)
    assert result["steps"] == debug(run_dir).agent.total_steps
    assert (run_dir / "pretrain" / "best.pt").stat().st_mtime_ns == pretrain_mtime
    assert all(entry["done"] for entry in read_stage_record(run_dir).values())


def test_a_frame_stacking_agent_trains_evaluates_and_loads_with_its_stack(tmp_path: Path) -> None:
    from rig.checkpoints import load_run

    run_dir = tmp_path / "stacked"
    cfg = debug(run_dir, "env.frame_stack=2")
    run_pipeline(cfg, progress=False, report=True)
    trained = load_run(run_dir / "agent")
    assert trained.config.env.frame_stack == 2
    assert trained.model.observation_space["observation"].shape == (2 * cfg.vae.z_dim,)
    assert json.loads((run_dir / "eval.json").read_text())["steps"] == cfg.agent.total_steps
    assert all(entry["done"] for entry in read_stage_record(run_dir).values())


def test_fitted_goal_prior_goes_with_the_agent_and_is_refitted_alike_on_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_pipeline(debug(run_dir), progress=False, report=False)
    pretrained = load_representation(run_dir / "pretrain" / "best.pt")
    mean, std = fit_goal_prior(pretrained, FrameDataset.load(run_dir / "data" / "frames.npz"))
    assert pretrained.config_dict().get("goal_mean") is None, "pretraining keeps the plain prior"
    with_agent = load_representation(run_dir / "agent" / "representation.pt")
    assert with_agent.config_dict()["goal_mean"] == pytest.approx(mean)
    assert with_agent.config_dict()["goal_std"] == pytest.approx(std)
    assert max(std) < 0.9, "the encoder means of an unconverged VAE spread less than N(0, 1)"
    # Extending the run refits the goals; a different fit would fail the same-representation check.
    longer = debug(run_dir, "agent.total_steps=90")
    assert train_stage(longer, progress=False).model.num_timesteps == 90
    with pytest.raises(ValueError, match="other settings"):
        train_stage(debug(run_dir, "agent.total_steps=120", "agent.goal_prior=standard"), progress=False)


def test_report_command_on_one_and_two_runs(finished_run: Path, tmp_path: Path) -> None:
    second = tmp_path / "b"
    run_pipeline(debug(second, "seed=1"), progress=False, report=False)
    assert main(["report", str(finished_run)]) == 0
    assert "Final evaluation" in (finished_run / "report.md").read_text()
    combined = tmp_path / "combined"
    assert main(["report", str(finished_run), str(second), "--out", str(combined)]) == 0
    text = (combined / "report.md").read_text()
    assert "seed" in text and (combined / "learning_curves.png").is_file()


def test_report_writes_into_the_run_directory_and_a_read_only_one_is_one_line(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rig report RUN` writes report.md and learning_curves.png into RUN; where it cannot, --out does."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    for product in (run / "report.md", run / "learning_curves.png"):
        product.unlink(missing_ok=True)
    assert main(["report", str(run)]) == 0
    assert (run / "report.md").is_file() and (run / "learning_curves.png").is_file()

    make_temporary = tempfile.mkstemp

    def read_only(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if Path(kwargs["dir"]).resolve() == run.resolve():
            raise OSError(errno.EROFS, "Read-only file system")
        return make_temporary(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"rig report: {run}: the file system is read-only") and "--out DIR" in err
    out = tmp_path / "elsewhere"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert (out / "report.md").is_file() and (out / "learning_curves.png").is_file()


def test_unknown_override_names_the_key_and_suggests_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "debug", "agent.algoo=sac"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'agent.algoo'" in err and "did you mean 'agent.algo'" in err


def test_evaluate_command_rejects_a_directory_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def debug_settings() -> list[str]:
    """configs/debug.yaml as overrides, to shrink any method's config to seconds."""
    settings = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "debug.yaml"))
    assert isinstance(settings, dict)

    def flatten(node: dict, prefix: str) -> list[str]:
        items: list[str] = []
        for key, value in node.items():
            if isinstance(value, dict):
                items += flatten(value, f"{prefix}{key}.")
            elif key != "run_dir":
                items.append(f"{prefix}{key}={value}")
        return items

    return flatten(settings, "")


@pytest.mark.parametrize("method", ["ccrig", "rig_multicolor", "ccrig_multiobject"])
def test_multi_object_method_configs_run_end_to_end_on_held_out_colours(method: str, tmp_path: Path) -> None:
    cfg = load_config(method, [f"run_dir={tmp_path}", *FAST, *debug_settings()])
    evaluation = run_pipeline(cfg, progress=False)
    assert evaluation["palette"] == "heldout" and evaluation["env_id"] == cfg.env.id
    metrics = json.loads((tmp_path / "pretrain" / "metrics.json").read_text())
    assert {"probe_r2_hand", "probe_r2_puck", "prior_colour_match"} <= metrics["heldout_colours"].keys()
    report = (tmp_path / "report.md").read_text()
    assert "prior_samples_heldout.png" in report and "gifs/eval_0.gif" in report
