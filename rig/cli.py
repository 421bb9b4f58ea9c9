"""The ``rig`` command.

    rig run [CONFIG] [key=value ...]        collect, pretrain, train, evaluate, report (cached stages)
    rig collect|pretrain|train [CONFIG] [key=value ...]   one stage into the config's run_dir
    rig evaluate RUN_DIR                    evaluate a trained run on seeded real goals
    rig report RUN_DIR [RUN_DIR ...]        rebuild the report; several runs are combined
    rig sweep CONFIG --seeds 0,1,2 [key=a,b ...]   a grid of runs on Ray Tune
    rig demo [CONFIG]                       random-policy rollouts as a GIF and a frame grid

CONFIG is a YAML file or the name of one in configs/ (default: the schema defaults, RIG on rig/Push-v0).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rig.config import Config, ConfigError, load_config
from rig.device import set_torch_threads


def _demo(cfg: Config) -> None:
    from rig.demo import run_demo

    for name, path in run_demo(cfg).items():
        print(f"{name}: {path}")


def _collect(cfg: Config) -> None:
    from rig.stages import collect_stage

    for path in collect_stage(cfg).values():
        print(f"dataset: {path}")


def _pretrain(cfg: Config) -> None:
    from rig.stages import pretrain_stage

    result = pretrain_stage(cfg)
    print(f"representation: {result.checkpoint}")
    for key in ("probe_r2_hand", "probe_r2_puck", "spearman", "active_units"):
        if key in result.metrics:
            print(f"{key}: {result.metrics[key]}")


def _train(cfg: Config) -> None:
    from rig.stages import train_stage

    curve = train_stage(cfg).eval_curve
    if curve:
        last = curve[-1]
        print(f"after {last.steps} steps: puck {last.puck_distance:.3f} m, success {last.success_rate:.0%}")


def _run(cfg: Config) -> None:
    from rig.pipeline import run_pipeline

    print(json.dumps(run_pipeline(cfg), indent=2, sort_keys=True))


CONFIG_COMMANDS: dict[str, tuple[str, Callable[[Config], None]]] = {
    "run": ("run the whole pipeline (cached stages) and write the report", _run),
    "collect": ("collect frames for representation learning into RUN_DIR/data", _collect),
    "pretrain": ("train the representation on RUN_DIR/data into RUN_DIR/pretrain", _pretrain),
    "train": ("train the agent on RUN_DIR/pretrain/best.pt into RUN_DIR/agent", _train),
    "demo": ("roll out a random policy and write a GIF and a frame grid", _demo),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rig", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in CONFIG_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("config", nargs="?", default=None, help="YAML in configs/ (name or path)")
        sub.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seed=3 agent.algo=sac")
    evaluate = commands.add_parser("evaluate", help="evaluate a trained run on seeded real goals")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument("--episodes", type=int, default=None, help="default: the run's eval.episodes")
    evaluate.add_argument("--seed", type=int, default=None, help="default: the run's eval.seed")
    evaluate.add_argument(
        "--palette", default=None, help="object palette (multi-object env): train or heldout"
    )
    report = commands.add_parser("report", help="rebuild the report of one or several runs")
    report.add_argument("run_dirs", type=Path, nargs="+")
    report.add_argument("--out", type=Path, default=None, help="where to write a combined report")
    sweep = commands.add_parser("sweep", help="run a grid of configs and seeds on Ray Tune")
    sweep.add_argument("config", help="YAML in configs/ (name or path)")
    sweep.add_argument("grid", nargs="*", help="key=v1,v2 grid axes or key=value overrides")
    sweep.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    sweep.add_argument("--address", default=None, help="Ray cluster address; default: a local Ray instance")
    sweep.add_argument(
        "--out", type=Path, default=None, help="sweep directory (default: runs/sweep-<config>)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `rig sweep CONFIG --seeds 0,1 key=a,b`: grid items may also come after the options.
    if extra and args.command == "sweep" and all("=" in item and not item.startswith("-") for item in extra):
        args.grid = [*args.grid, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command in CONFIG_COMMANDS:
            CONFIG_COMMANDS[args.command][1](_config(args.config, args.overrides))
        elif args.command == "evaluate":
            _evaluate(args)
        elif args.command == "report":
            from rig.report import build_report

            print(f"report: {build_report(args.run_dirs, args.out)}")
        else:
            from rig.sweep import sweep_from_args

            sweep_from_args(args)
    except (ConfigError, FileNotFoundError, ValueError) as error:
        print(f"rig {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


def _config(path: str | None, overrides: list[str]) -> Config:
    if path is not None and "=" in path:  # `rig run seed=3`: no file, only overrides
        overrides, path = [path, *overrides], None
    cfg = load_config(path, overrides)
    set_torch_threads(cfg.torch_threads)
    return cfg


def _evaluate(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from rig.evaluate import evaluate_run
    from rig.stages import stored_config

    run_dir = Path(args.run_dir)
    cfg = stored_config(run_dir)
    env_cfg = replace(cfg.env, eval_palette=args.palette) if args.palette else cfg.env
    summary = evaluate_run(
        run_dir / "agent", episodes=args.episodes, seed=args.seed, env_cfg=env_cfg, out_dir=run_dir
    )
    print(json.dumps(summary, indent=2, sort_keys=True))
