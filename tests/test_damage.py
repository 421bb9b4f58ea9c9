"""Damaged files and refused writes: one line naming the file, exit 2, a way out that keeps intact work."""

from __future__ import annotations

import errno
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rig import io
from rig.checkpoints import read_checkpoint_record
from rig.cli import main
from rig.config import load_config
from rig.data import collect
from rig.errors import CorruptFileError
from rig.pipeline import read_evaluation, read_stage_record, run_pipeline
from rig.rundir import RunDir

FAST = ["device=cpu", "torch_threads=1"]
Damage = Callable[[Path], None]


def debug_args(run_dir: Path, *overrides: str) -> list[str]:
    return ["debug", f"run_dir={run_dir}", *FAST, *overrides]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "finished"
    run_pipeline(load_config("debug", [f"run_dir={run_dir}", *FAST]), progress=False, report=False)
    return run_dir


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def refusal(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The one line the command printed for the user's error: the last, after any progress messages."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"rig {command}: ")]
    assert len(lines) == 1 and err.splitlines()[-1] == lines[0], err
    return lines[0]


def agent_zip(run: Path) -> Path:
    (path,) = RunDir(run).agent.checkpoints.glob("agent_*.zip")
    return path


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())


def damage_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 4 : len(data) // 2] = bytes(len(data) // 2 - len(data) // 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, zero, garbage, damage_middle])
def test_evaluate_refuses_a_damaged_agent_zip_naming_it(
    run_copy: Path, damage: Damage, capsys: pytest.CaptureFixture[str]
) -> None:
    path = agent_zip(run_copy)
    damage(path)
    assert main(["evaluate", str(run_copy)]) == 2
    line = refusal(capsys, "evaluate")
    assert str(path) in line and "damaged" in line
    assert f"delete {RunDir(run_copy).agent.root} and run again" in line  # not data/ or pretrain/


def checkpoint_file(pattern: str) -> Callable[[Path], Path]:
    def find(run: Path) -> Path:
        (path,) = RunDir(run).agent.checkpoints.glob(pattern)
        return path

    return find


@pytest.mark.parametrize(
    ("locate", "damage", "way_out"),
    [
        (agent_zip, truncate, "agent"),
        (checkpoint_file("replay_buffer_*.pkl"), garbage, "agent"),
        (checkpoint_file("training_state_*.pt"), garbage, "agent"),
        (checkpoint_file("training_state_*.pt"), lambda path: path.write_bytes(b"."), "agent"),
        (lambda run: RunDir(run).agent.representation, garbage, "agent"),
        (lambda run: RunDir(run).representation, lambda path: path.write_bytes(b"."), "pretrain"),
        (lambda run: RunDir(run).representation, garbage, "pretrain"),
    ],
    ids=[
        "truncated agent zip",
        "garbage replay buffer",
        "garbage training state",
        "one-byte training state",
        "garbage agent representation",
        "one-byte pretrain best.pt",
        "garbage pretrain best.pt",
    ],
)
def test_an_extended_run_refuses_a_damaged_checkpoint_in_one_line(
    run_copy: Path,
    locate: Callable[[Path], Path],
    damage: Damage,
    way_out: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = locate(run_copy)
    damage(path)
    assert main(["run", *debug_args(run_copy, "agent.total_steps=90")]) == 2
    line = refusal(capsys, "run")
    assert str(path) in line and "damaged" in line
    assert f"delete {run_copy / way_out} and run again" in line
    assert (RunDir(run_copy).frames).is_file()  # nothing was deleted on the way


def test_a_damaged_representation_is_one_line_and_its_way_out_keeps_the_rest(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage(RunDir(run_copy).representation)
    assert main(["run", *debug_args(run_copy, "agent.total_steps=90")]) == 2
    refusal(capsys, "run")
    shutil.rmtree(RunDir(run_copy).pretrain)  # the way out the message gives
    assert main(["run", *debug_args(run_copy, "agent.total_steps=90")]) == 0
    assert "[collect] up to date, skipped" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"{oops", b"\xfa\xfb\x00", b"[1, 2]"])
def test_rig_run_redoes_a_damaged_eval_json(
    run_copy: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stage is done only while its products load: a damaged evaluation is redone, in seconds."""
    RunDir(run_copy).eval.write_bytes(content)
    assert main(["run", *debug_args(run_copy)]) == 0
    captured = capsys.readouterr()
    assert "[evaluate] resuming" in captured.err and "[train] up to date, skipped" in captured.err
    assert '"steps": 60' in captured.out
    assert json.loads(RunDir(run_copy).eval.read_text())["steps"] == 60


def test_a_damaged_eval_json_is_refused_naming_it_with_a_way_out(run_copy: Path) -> None:
    path = RunDir(run_copy).eval
    path.write_bytes(b"[1, 2]")
    with pytest.raises(CorruptFileError, match="delete it and run again") as refused:
        read_evaluation(path)
    assert str(path) in str(refused.value)


# ------------------------------------------------------------------------------ a damaged stages.json
def products(run: Path) -> list[Path]:
    layout = RunDir(run)
    return [
        layout.frames,
        layout.representation,
        layout.pretrain_dir.last,
        layout.agent.checkpoint,
        agent_zip(run),
    ]


def mtimes(paths: list[Path]) -> list[int]:
    return [path.stat().st_mtime_ns for path in paths]


def old_rig_record(path: Path) -> None:
    """A stages.json of an earlier rig: keys, but no settings."""
    path.write_text(json.dumps({"collect": {"key": "abc", "done": True}}))


@pytest.mark.parametrize(
    "damage",
    [lambda path: path.write_bytes(path.read_bytes()[:100]), garbage, zero, old_rig_record],
    ids=["truncated", "garbage", "zeroed", "an earlier rig's"],
)
def test_a_damaged_stage_record_is_rebuilt_from_the_products_and_nothing_is_deleted(
    run_copy: Path, damage: Damage, capsys: pytest.CaptureFixture[str]
) -> None:
    before = mtimes(products(run_copy))
    damage(RunDir(run_copy).stages)
    assert main(["run", *debug_args(run_copy)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{RunDir(run_copy).stages} " in err and "rebuilt it from the products" in err
    assert "recorded: collect, pretrain, train)" in err
    for stage in ("collect", "pretrain", "train"):
        assert f"[{stage}] up to date, skipped" in err
    assert mtimes(products(run_copy)) == before
    record = read_stage_record(run_copy)
    assert set(record) == {"collect", "pretrain", "train", "evaluate", "baselines"}
    assert all(entry["done"] for entry in record.values())


def test_a_rebuilt_stage_record_still_refuses_other_settings_naming_them(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = mtimes(products(run_copy))
    truncate(RunDir(run_copy).stages)
    assert main(["run", *debug_args(run_copy, "vae.beta=2.0")]) == 2
    line = refusal(capsys, "run")
    assert "vae.beta: 0.25 -> 2.0" in line and "damaged" not in line
    assert mtimes(products(run_copy)) == before


def test_an_interrupted_extension_is_rebuilt_as_one_to_resume(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The agent's checkpoint says it trained 60 of 90 steps: the rebuilt record resumes it."""
    record_path = RunDir(run_copy).agent.checkpoint
    pointer = json.loads(record_path.read_text())
    pointer["config"]["agent"]["total_steps"] = 90
    record_path.write_text(json.dumps(pointer))
    RunDir(run_copy).stages.write_bytes(b"\xfa\xfb")
    assert main(["run", *debug_args(run_copy, "agent.total_steps=90")]) == 0
    assert "[train] resuming" in capsys.readouterr().err
    assert read_checkpoint_record(RunDir(run_copy).agent.root).steps == 90


# ------------------------------------------------------------------------------ deleted products
def test_deleted_frames_are_collected_again_and_nothing_else_is_redone(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunDir(run_copy)
    frames = run.frames.read_bytes()
    kept = mtimes([run.representation, run.agent.checkpoint])
    run.frames.unlink()
    assert main(["run", *debug_args(run_copy, "agent.total_steps=90")]) == 0
    err = capsys.readouterr().err
    assert "[collect] resuming" in err and "[pretrain] up to date, skipped" in err
    assert read_checkpoint_record(run.agent.root).steps == 90
    assert run.frames.read_bytes() == frames, "collection is seeded: the same frames again"
    assert mtimes([run.representation]) == kept[:1]


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "--overwrite"])
def test_rig_collect_collects_frames_that_were_deleted(
    run_copy: Path, overwrite: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    run = RunDir(run_copy)
    kept = mtimes([run.representation, run.agent.checkpoint])
    run.frames.unlink()
    assert main(["collect", *debug_args(run_copy), *overwrite]) == 0
    assert "[collect] resuming" in capsys.readouterr().err
    assert run.frames.is_file() and mtimes([run.representation, run.agent.checkpoint]) == kept
    assert main(["pretrain", *debug_args(run_copy)]) == 0
    assert "[pretrain] up to date, skipped" in capsys.readouterr().err


def test_the_evaluation_of_a_deleted_agent_is_not_up_to_date(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.rmtree(RunDir(run_copy).agent.root)
    assert main(["run", *debug_args(run_copy)]) == 0
    err = capsys.readouterr().err
    assert "[train] resuming" in err and "[evaluate] resuming" in err
    assert "[evaluate] up to date" not in err


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("env.image_size=32", "env.image_size=32"),
        ("env.id=rig/PushMultiColor-v0", "env.id='rig/PushMultiColor-v0'"),
        ("seed=1", "seed=1"),
    ],
)
def test_frames_of_another_run_are_named_as_the_dataset_on_an_extended_run(
    run_copy: Path, override: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    other = load_config("debug", [override])
    frames = RunDir(run_copy).frames
    collect(other.env, other.data, seed=other.seed, progress=False).save(frames)
    assert main(["run", *debug_args(run_copy, "agent.total_steps=90")]) == 2
    line = refusal(capsys, "run")
    assert f"dataset {frames} was collected with {named}" in line
    assert "representation" not in line


def test_pretraining_refuses_frames_collected_with_another_seed(
    run_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = load_config("debug", ["seed=1"])
    run = RunDir(run_copy)
    collect(other.env, other.data, seed=other.seed, progress=False).save(run.frames)
    shutil.rmtree(run.pretrain)
    shutil.rmtree(run.agent.root)
    assert main(["run", *debug_args(run_copy)]) == 2
    assert "was collected with seed=1, but this run asks for seed=0" in refusal(capsys, "run")
    assert not (run.pretrain / "best.pt").exists()


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
        (errno.ENOSPC, "no space left on the device"),
        (errno.EDQUOT, "the disk quota is exceeded"),
    ],
)
def test_a_write_the_storage_refuses_is_one_line_naming_the_file_and_loses_nothing(
    run_copy: Path,
    number: int,
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = RunDir(run_copy).config
    before = config.read_bytes()

    def refuse(handle: object) -> None:
        raise OSError(number, "refused by the test")

    monkeypatch.setattr(io, "_write_with", lambda path, mode, write: io.write_with(path, refuse))
    assert main(["run", *debug_args(run_copy, "agent.total_steps=90")]) == 2
    line = refusal(capsys, "run")
    assert line.startswith(f"rig run: {config}: {problem}; ")
    assert config.read_bytes() == before
    assert not list(run_copy.glob(".*.tmp"))


def test_an_unrelated_os_error_still_has_its_traceback(
    run_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise OSError(errno.EIO, "input/output error")

    monkeypatch.setattr(io, "_write_with", broken)
    with pytest.raises(OSError, match="input/output error"):
        main(["run", *debug_args(run_copy)])
