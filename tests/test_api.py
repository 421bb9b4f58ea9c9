"""The Python API (``rig.api``, exported by ``rig``) and the example that uses it, at debug size."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

import rig
from rig.config import Config
from rig.errors import MissingFileError
from rig.rundir import RunDir

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "quickstart.py"


def debug_config(run_dir: Path, *overrides: str) -> Config:
    return rig.load_config("debug", [f"run_dir={run_dir}", "torch_threads=1", *overrides])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("api") / "run"
    rig.run(debug_config(run_dir), report=False)
    return run_dir


def test_load_config_takes_a_name_and_overrides() -> None:
    cfg = rig.load_config("ccrig", ["seed=1"])
    assert cfg.seed == 1 and cfg.vae.kind == "cc_vae"
    assert rig.load_config().run_dir == "runs/default"


def test_run_returns_the_final_evaluation_it_wrote(finished: Path) -> None:
    written = json.loads(RunDir(finished).eval.read_text())
    again = rig.run(debug_config(finished), report=False)  # every stage is done: nothing reruns
    assert again == written
    assert {"puck_distance_mean", "hand_distance_mean", "success_rate"} <= set(again)


def test_run_stage_runs_one_stage_and_names_the_stages(tmp_path: Path) -> None:
    cfg = debug_config(tmp_path / "run")
    rig.run_stage(cfg, "collect")
    assert RunDir(cfg.run_dir).data.exists() and not RunDir(cfg.run_dir).pretrain.exists()
    with pytest.raises(ValueError, match="the stages are collect, pretrain"):
        rig.run_stage(cfg, "pretrian")


def test_load_run_gives_the_agent_and_representation(finished: Path) -> None:
    run = rig.load_run(finished)
    assert run.steps == run.config.agent.total_steps == 60
    assert run.representation.latent_dim == run.config.vae.z_dim
    obs = run.policy.observation_space.sample()
    action, _ = run.policy.predict(obs, deterministic=True)
    assert action.shape == (2,)


def test_evaluate_is_seeded_and_matches_the_run_s_own_evaluation(finished: Path) -> None:
    run = rig.load_run(finished)
    written = json.loads(RunDir(finished).eval.read_text())
    same = run.evaluate()  # the run's eval.episodes and eval.seed
    assert same["puck_distance_mean"] == pytest.approx(written["puck_distance_mean"])
    other = run.evaluate(episodes=3, seed=5)
    assert other["episodes"] == 3 and other["seed"] == 5
    assert run.evaluate(episodes=3, seed=5) == other


def test_encode_sample_and_decode(finished: Path) -> None:
    run = rig.load_run(finished)
    size = run.config.env.image_size
    frames = np.random.default_rng(0).integers(0, 256, (4, size, size, 3), dtype=np.uint8)
    latents = run.encode(frames)
    assert latents.shape == (4, run.representation.latent_dim) and latents.dtype == np.float32
    goals = run.sample_goals(5, seed=3)
    assert goals.shape == (5, run.representation.latent_dim)
    np.testing.assert_array_equal(goals, run.sample_goals(5, seed=3))
    assert run.decode(goals).shape == (5, size, size, 3)


def test_a_context_conditioned_run_needs_its_context(tmp_path: Path) -> None:
    cfg = rig.load_config(
        "debug",
        [f"run_dir={tmp_path / 'cc'}", "torch_threads=1", "vae.kind=cc_vae", "env.id=rig/PushMultiColor-v0"],
    )
    rig.run(cfg, report=False)
    run = rig.load_run(cfg.run_dir)
    context = np.zeros((cfg.env.image_size, cfg.env.image_size, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="needs a context frame"):
        run.sample_goals(2)
    goals = run.sample_goals(2, context=context)
    assert goals.shape == (2, run.representation.latent_dim)
    np.testing.assert_array_equal(
        goals[0, -run.representation.context_dim :], goals[1, -run.representation.context_dim :]
    )


def test_load_run_without_an_agent_says_so(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="holds no trained agent"):
        rig.load_run(tmp_path)


def test_the_example_runs_at_debug_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "example"
    runpy.run_path(str(EXAMPLE), run_name="example")["main"](
        ["debug", f"run_dir={run_dir}", "torch_threads=1"]
    )
    printed = capsys.readouterr().out
    assert "puck_distance" in printed and "imagined 4 goals" in printed
    assert (run_dir / "report.md").is_file()
