"""The ``rig`` command: ``rig <command> [CONFIG] [key=value ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rig.config import Config, ConfigError, load_config


def _demo(cfg: Config, args: argparse.Namespace) -> None:
    from rig.demo import run_demo

    for name, path in run_demo(cfg).items():
        print(f"{name}: {path}")


def _collect(cfg: Config, args: argparse.Namespace) -> None:
    from rig.stages import collect_stage

    for path in collect_stage(cfg).values():
        print(f"dataset: {path}")


def _pretrain(cfg: Config, args: argparse.Namespace) -> None:
    from rig.stages import pretrain_stage

    result = pretrain_stage(cfg)
    print(f"representation: {result.checkpoint}")
    for key in ("probe_r2_hand", "probe_r2_puck", "spearman", "active_units"):
        if key in result.metrics:
            print(f"{key}: {result.metrics[key]}")


COMMANDS: dict[str, tuple[str, Callable[[Config, argparse.Namespace], None]]] = {
    "demo": ("roll out a random policy and write a GIF and a frame grid", _demo),
    "collect": ("collect frames for representation learning into RUN_DIR/data", _collect),
    "pretrain": ("train the representation on RUN_DIR/data; writes RUN_DIR/pretrain", _pretrain),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rig", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("config", nargs="?", default=None, help="YAML in configs/ (name or path)")
        sub.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seed=3 agent.algo=sac")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_path, overrides = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:
        config_path, overrides = None, [config_path, *overrides]
    try:
        cfg = load_config(config_path, overrides)
    except ConfigError as error:
        print(f"rig: {error}", file=sys.stderr)
        return 2
    COMMANDS[args.command][1](cfg, args)
    return 0
