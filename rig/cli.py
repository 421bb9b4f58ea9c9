"""The ``rig`` command.

    rig run [CONFIG] [key=value ...] [--overwrite]   collect, pretrain, train, evaluate, report (cached)
    rig collect|pretrain|train [CONFIG] [key=value ...] [--overwrite]   one stage into the config's run_dir
    rig evaluate RUN_DIR                    evaluate a trained run on seeded real goals
    rig report RUN_DIR [RUN_DIR ...] [--out DIR]   write the report; several runs are combined
    rig sweep CONFIG --seeds 0,1,2 [key=a,b ...]   a grid of runs on Ray Tune
    rig demo [CONFIG]                       random-policy rollouts as a GIF and a frame grid
    rig check-env [CONFIG] [key=value ...]  check the env against rig's env protocol (rig.goal_env)

CONFIG is a YAML file or the name of one in configs/ (default: the schema defaults, RIG on rig/Push-v0).
A change of settings that would delete what a run directory holds is refused unless --overwrite is given.
An error you can fix (a bad setting, a missing or corrupt file, a run directory in use) is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import get_args

from tqdm.contrib.logging import logging_redirect_tqdm

from rig.config import Config, Palette, load_config
from rig.errors import STORAGE_PROBLEMS, StorageError, UserError, storage_error
from rig.rundir import ReportDir, RunDir

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _demo(cfg: Config, overwrite: bool) -> None:
    from rig.demo import run_demo

    for name, path in run_demo(cfg).items():
        print(f"{name}: {path}")


def _check_env(cfg: Config, overwrite: bool) -> None:
    from rig.envs import describe_env

    for line in describe_env(cfg.env):
        print(line)


def _collect(cfg: Config, overwrite: bool) -> None:
    from rig.pipeline import run_stage
    from rig.stages import dataset_paths

    run_stage(cfg, "collect", overwrite=overwrite)
    for path in dataset_paths(cfg).values():
        print(f"dataset: {path}")


def _pretrain(cfg: Config, overwrite: bool) -> None:
    from rig.pipeline import run_stage

    run_stage(cfg, "pretrain", overwrite=overwrite)
    run = RunDir(cfg.run_dir)
    print(f"representation: {run.representation}")
    metrics = json.loads(run.pretrain_metrics.read_text()) if run.pretrain_metrics.is_file() else {}
    for key, value in metrics.items():
        if key.startswith(("probe_r2_", "regression_")) or key in ("spearman", "active_units"):
            print(f"{key}: {value}")


def _train(cfg: Config, overwrite: bool) -> None:
    from rig.evaluate import read_eval_curve
    from rig.pipeline import run_stage

    run_stage(cfg, "train", overwrite=overwrite)
    curve = read_eval_curve(RunDir(cfg.run_dir).agent.eval_curve)
    if curve:
        last = curve[-1]
        headline = last.metric_names[0]
        value, success = last.values[headline], last.success_rate
        print(f"after {last.steps} steps: {headline} {value:.3f}, success {success:.0%}")


def _run(cfg: Config, overwrite: bool) -> None:
    from rig.pipeline import run_pipeline

    print(json.dumps(run_pipeline(cfg, overwrite=overwrite), indent=2, sort_keys=True))


CONFIG_COMMANDS: dict[str, tuple[str, Callable[[Config, bool], None]]] = {
    "run": ("run the whole pipeline (cached stages) and write the report", _run),
    "collect": ("collect frames for representation learning into RUN_DIR/data", _collect),
    "pretrain": ("train the representation on RUN_DIR/data into RUN_DIR/pretrain", _pretrain),
    "train": ("train the agent on RUN_DIR/pretrain/best.pt into RUN_DIR/agent", _train),
    "demo": ("roll out a random policy and write a GIF and a frame grid", _demo),
    "check-env": (
        "check that the config's env implements rig's env protocol, and say what it offers",
        _check_env,
    ),
}
OVERWRITE_HELP = (
    "when settings changed since stages of RUN_DIR ran, delete the products those stages made and run "
    "them again (without it, such a change is refused)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rig", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, _) in CONFIG_COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("config", nargs="?", default=None, help="YAML in configs/ (name or path)")
        sub.add_argument("overrides", nargs="*", help="key=value overrides, e.g. seed=3 agent.algo=sac")
        if name not in ("demo", "check-env"):
            sub.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    evaluate = commands.add_parser("evaluate", help="evaluate a trained run on seeded real goals")
    evaluate.add_argument("run_dir", type=Path)
    evaluate.add_argument(
        "--episodes", type=_at_least(1), default=None, help="default: the run's eval.episodes"
    )
    evaluate.add_argument("--seed", type=_at_least(0), default=None, help="default: the run's eval.seed")
    evaluate.add_argument(
        "--palette", default=None, choices=get_args(Palette), help="object palette (multi-object env)"
    )
    report = commands.add_parser(
        "report", help="write the report (report.md and its figures) of one or several runs"
    )
    report.add_argument("run_dirs", type=Path, nargs="+")
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the report (default: the run directory; for several runs, report/ beside them)",
    )
    sweep = commands.add_parser("sweep", help="run a grid of configs and seeds on Ray Tune")
    sweep.add_argument("config", help="YAML in configs/ (name or path)")
    sweep.add_argument("grid", nargs="*", help="key=v1,v2 grid axes or key=value overrides")
    sweep.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2")
    sweep.add_argument("--address", default=None, help="Ray cluster address; default: a local Ray instance")
    sweep.add_argument(
        "--out", type=Path, default=None, help="sweep directory (default: runs/sweep-<config>)"
    )
    return parser


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    """The ``rig`` command: 0 on success, 2 with one line for an error the user can fix, 130 if interrupted.

    Any other exception is a bug and propagates with its traceback.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value items after an option (`rig run debug --overwrite seed=1`) are overrides or grid items too.
    listed = "grid" if args.command == "sweep" else "overrides"
    if extra and hasattr(args, listed) and all("=" in item and not item.startswith("-") for item in extra):
        setattr(args, listed, [*getattr(args, listed), *extra])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    with _messages():
        try:
            _dispatch(args)
        except UserError as error:
            print(f"rig {args.command}: {error}", file=sys.stderr)
            return EXIT_USER_ERROR
        except OSError as error:
            refused = storage_error(error)
            if refused is None:
                raise
            print(f"rig {args.command}: {refused}", file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print(f"rig {args.command}: interrupted; the same command resumes", file=sys.stderr)
            return EXIT_INTERRUPTED
    return 0


@contextmanager
def _messages() -> Iterator[None]:
    """rig's log messages on stderr, one line each, written around any progress bar."""
    rig_logger = logging.getLogger("rig")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = rig_logger.level
    rig_logger.setLevel(logging.INFO)
    rig_logger.addHandler(handler)
    try:
        with logging_redirect_tqdm(loggers=[rig_logger]):
            yield
    finally:
        rig_logger.removeHandler(handler)
        rig_logger.setLevel(level)


def _dispatch(args: argparse.Namespace) -> None:
    if args.command in CONFIG_COMMANDS:
        cfg = _config(args.config, args.overrides)
        CONFIG_COMMANDS[args.command][1](cfg, getattr(args, "overwrite", False))
    elif args.command == "evaluate":
        from rig.pipeline import evaluate_again

        summary = evaluate_again(args.run_dir, args.episodes, args.seed, args.palette)
        print(json.dumps(summary, indent=2, sort_keys=True))
    elif args.command == "report":
        _report(args.run_dirs, args.out)
    else:
        from rig.sweep import sweep_from_args

        sweep_from_args(args)


def _report(run_dirs: list[Path], out: Path | None) -> None:
    """``rig report``: writes ``report.md`` and its figures into the run directory (or ``out``)."""
    from rig.report import build_report, default_out_dir

    try:
        print(f"report: {build_report(run_dirs, out)}")
    except OSError as error:
        problem = STORAGE_PROBLEMS.get(error.errno or 0)
        if problem is None:
            raise
        target = ReportDir(out or default_out_dir(run_dirs))
        raise StorageError(
            f"{target.root}: {problem}, so the report ({target.markdown.name} and its figures) cannot be "
            "written there; pass --out DIR to write it into another folder"
        ) from error


def _config(path: str | None, overrides: list[str]) -> Config:
    if path is not None and "=" in path:  # `rig run seed=3`: no file, only overrides
        overrides, path = [path, *overrides], None
    return load_config(path, overrides)
