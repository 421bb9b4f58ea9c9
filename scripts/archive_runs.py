"""Copy the records of finished runs, without their frames and checkpoints, into a directory that can be
kept (the README's tables are archived this way under ``docs/results``).

A run's record is what the report reads: the resolved config, the stage record, the final evaluation, the
random baseline, the learning curve, the checkpoint pointer, the pretraining metrics and SB3's
``progress.csv``; a few hundred kilobytes instead of the run's frames, weights and replay buffer. Each run
keeps its path below ``--root`` (``runs``), so ``reproduce_results.py --no-run --out`` tabulates the
archive as it tabulates the runs:

    python scripts/archive_runs.py runs/ccrig/seed* --out docs/results   # -> docs/results/ccrig/seed*
    python scripts/reproduce_results.py --no-run --out docs/results --only ccrig,rig_multicolor

A run that stopped after pretraining (``rig pretrain``, its stage done) keeps its pretraining record: the
metrics of each budget it finished (``metrics_epochs<N>.json``) and its per-epoch ``progress.csv``.

Only finished runs (with ``eval.json``, or a finished pretraining) are copied; files already in the
archive are replaced, each atomically. Each archived run gets an ``archive.json`` naming the files kept and
where they came from, so that the report knows not to expect the images and GIFs an archive leaves out.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rig.errors import UserError
from rig.io import atomic_path, write_json
from rig.pipeline import read_stage_record
from rig.rundir import RunDir


def record_files(run: RunDir) -> list[Path]:
    """The files of a run's record that exist, as paths inside the run directory."""
    candidates = [
        run.config,
        run.stages,
        run.eval,
        run.random_baseline,
        run.pretrain_metrics,
        run.agent.checkpoint,
        run.agent.eval_curve,
        run.agent.progress,
    ]
    if not run.eval.is_file():  # a pretraining run: its record is the pretraining's
        candidates += [run.pretrain_dir.progress, *run.pretrain_dir.budgets().values()]
    return [path for path in candidates if path.is_file()]


def finished(path: Path) -> bool:
    """A run with its final evaluation, or one that ran up to a finished pretraining."""
    run = RunDir(path)
    if not run.is_run():
        return False
    if run.eval.is_file():
        return True
    try:
        pretrained = read_stage_record(path).get("pretrain", {}).get("done") is True
    except UserError:
        return False
    return pretrained and run.pretrain_metrics.is_file()


def archive(run_dirs: list[Path], out: Path, root: Path) -> list[Path]:
    """Copy each finished run's record to ``out`` / its path below ``root``; returns the archived runs."""
    finished_runs = [path for path in run_dirs if finished(path)]
    archived = []
    for path in finished_runs:
        try:
            relative = path.resolve().relative_to(root.resolve())
        except ValueError:
            raise SystemExit(f"archive_runs.py: {path} does not lie under --root {root}") from None
        target = out / relative
        kept = []
        for source in record_files(RunDir(path)):
            destination = target / source.relative_to(path)
            with atomic_path(destination) as tmp:
                shutil.copyfile(source, tmp)
            kept.append(destination.relative_to(target).as_posix())
        mark_archived(target, source=path, kept=kept)
        archived.append(target)
    return archived


def mark_archived(target: Path, source: Path | None, kept: list[str]) -> None:
    """Write ``target``'s ``archive.json``: the files kept and the run directory they came from."""
    record = {
        "source": None if source is None else str(source),
        "kept": sorted(kept),
        "left_out": "frames, weights, checkpoints, replay buffers, TensorBoard logs, VAE grids and GIFs",
    }
    write_json(RunDir(target).archive_record, record)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    parser.add_argument("--out", type=Path, required=True, help="the archive directory")
    parser.add_argument("--root", type=Path, default=Path("runs"), help="runs keep their path below it")
    args = parser.parse_args()
    archived = archive(args.runs, args.out, args.root)
    skipped = len(args.runs) - len(archived)
    note = f"; {skipped} not finished (no eval.json, no finished pretraining), skipped" if skipped else ""
    print(f"archived {len(archived)} run(s) under {args.out}{note}")


if __name__ == "__main__":
    main()
