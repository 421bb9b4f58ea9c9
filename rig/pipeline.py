"""The whole method as cached stages: collect -> pretrain -> train -> evaluate (+ a random baseline).

Each stage has a key: a hash of every setting that shapes its output and of the key of the stage it
reads from. ``RUN_DIR/stages.json`` records each stage's key, whether it finished, and how long it took.
Running again skips finished stages whose key is unchanged; a stage whose key changed starts afresh
(its old products are removed), and so does everything after it. A stage that was interrupted resumes
from its own checkpoints (pretraining epochs, agent checkpoints with the replay buffer).

Run directory::

    config.yaml   the resolved config          stages.json   keys, timings
    data/         frames for the VAE           pretrain/     representation, diagnostics, metrics.json
    agent/        checkpoints, eval_curve.csv   eval.json     final real-goal evaluation
    gifs/         rollouts (agent | goal | decoded goal)   baselines/random.json
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig import io
from rig.config import Config, section_hash, to_yaml
from rig.device import resolve_device, set_torch_threads
from rig.stages import (
    baseline_stage,
    collect_stage,
    evaluate_stage,
    pretrain_stage,
    train_stage,
)

STAGES = ("collect", "pretrain", "train", "evaluate", "baselines")


@dataclass(frozen=True)
class StagePlan:
    """One stage of a run: its cache key, where its products live, and what runs it."""

    name: str
    key: str
    products: tuple[Path, ...]
    run: Callable[[Config, bool], None]


def stage_keys(cfg: Config) -> dict[str, str]:
    """The cache key of every stage; each key includes the key of the stage it reads from."""
    if cfg.vae.kind == "state":
        # The identity representation needs no frames and has nothing to learn: no VAE setting changes it.
        collect = section_hash("no frames: the state oracle needs none")
        pretrain = section_hash("pretrain", collect, "state")
    else:
        collect = section_hash("collect", cfg.seed, cfg.env.id, cfg.env.image_size, cfg.env.palette, cfg.data)
        pretrain = section_hash("pretrain", collect, cfg.vae)
    train = section_hash("train", pretrain, cfg.seed, cfg.env, cfg.agent, cfg.eval.every, cfg.eval.episodes)
    evaluate = section_hash("evaluate", train, cfg.env.eval_palette, cfg.eval)
    baselines = section_hash("baselines", pretrain, cfg.env, cfg.eval)
    return {
        "collect": collect,
        "pretrain": pretrain,
        "train": train,
        "evaluate": evaluate,
        "baselines": baselines,
    }


def plan(cfg: Config) -> list[StagePlan]:
    run_dir = Path(cfg.run_dir)
    keys = stage_keys(cfg)
    stages = [
        StagePlan("collect", keys["collect"], (run_dir / "data",), _collect),
        StagePlan("pretrain", keys["pretrain"], (run_dir / "pretrain",), _pretrain),
        StagePlan("train", keys["train"], (run_dir / "agent",), _train),
        StagePlan("evaluate", keys["evaluate"], (run_dir / "eval.json", run_dir / "gifs"), _evaluate),
        StagePlan("baselines", keys["baselines"], (run_dir / "baselines",), _baselines),
    ]
    if cfg.vae.kind == "state":
        stages = stages[1:]
    return stages


def run_pipeline(cfg: Config, progress: bool = True, report: bool = True) -> dict[str, Any]:
    """Run every stage that is not already done; returns the final evaluation (``eval.json``)."""
    set_torch_threads(cfg.torch_threads)
    resolve_device(cfg.device)  # an impossible device fails now, not after collection
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    io.write_text(run_dir / "config.yaml", to_yaml(cfg))
    record = read_stage_record(run_dir)
    for stage in plan(cfg):
        entry = record.get(stage.name, {})
        if entry.get("key") == stage.key and entry.get("done") and all(p.exists() for p in stage.products):
            _say(progress, f"[{stage.name}] up to date, skipped")
            continue
        if entry.get("key") != stage.key:
            _remove(stage.products)  # products of other settings; an interrupted stage of these resumes
        record[stage.name] = {"key": stage.key, "done": False, "seconds": entry.get("seconds", 0.0)}
        _write_stage_record(run_dir, record)
        _say(progress, f"[{stage.name}] running")
        start = time.perf_counter()
        try:
            stage.run(cfg, progress)
        finally:
            record[stage.name]["seconds"] += time.perf_counter() - start
            _write_stage_record(run_dir, record)
        record[stage.name]["done"] = True
        _write_stage_record(run_dir, record)
    if report:
        from rig.report import build_report

        _say(progress, f"report: {build_report([run_dir])}")
    return dict(json.loads((run_dir / "eval.json").read_text()))


def read_stage_record(run_dir: Path) -> dict[str, dict[str, Any]]:
    path = run_dir / "stages.json"
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # written atomically, so only a hand edit gets here; redo the stages rather than guess
    return record if isinstance(record, dict) else {}


def _write_stage_record(run_dir: Path, record: dict[str, dict[str, Any]]) -> None:
    io.write_json(run_dir / "stages.json", record)


def _remove(paths: tuple[Path, ...]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, flush=True)


# ------------------------------------------------------------------------------ the stages
def _collect(cfg: Config, progress: bool) -> None:
    collect_stage(cfg, progress=progress)


def _pretrain(cfg: Config, progress: bool) -> None:
    pretrain_stage(cfg, progress=progress)


def _train(cfg: Config, progress: bool) -> None:
    train_stage(cfg, progress=progress)


def _evaluate(cfg: Config, progress: bool) -> None:
    evaluate_stage(cfg)


def _baselines(cfg: Config, progress: bool) -> None:
    baseline_stage(cfg)
