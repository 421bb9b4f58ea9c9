"""Train and evaluate an agent on another run's pretrained representation, under changed settings.

The new run directory gets a copy of the source run's frames and pretrained representation, then the
train, evaluate and baselines stages run on the source run's config with the overrides applied. This
separates what the representation does from what the task does: for example, an agent on
``rig/Push-v0`` (one puck colour) with the VAE a multi-colour run pretrained,

    python3 scripts/train_on_representation.py runs/rig_multicolor --out runs/rig_multicolor_on_push \\
        env.id=rig/Push-v0 env.eval_palette=train

The goal prior is fitted to the copied frames, so imagined goals come from the source run's data. The
copy is a new run: the source directory is only read. ``--out`` must not hold a run yet.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from rig.config import load_config, to_yaml
from rig.device import set_torch_threads
from rig.io import write_text
from rig.rundir import RunDir
from rig.stages import baseline_stage, evaluate_stage, train_stage


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("source", type=Path, help="a run directory with a pretrained representation")
    parser.add_argument("--out", type=Path, required=True, help="the new run directory")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = parser.parse_intermixed_args()
    source, out = RunDir(args.source), RunDir(args.out)
    source.require_run()
    if not source.representation.is_file():
        raise SystemExit(f"{source.root} has no pretrained representation ({source.representation})")
    if out.root.exists() and any(out.root.iterdir()):
        raise SystemExit(f"{out.root} is not empty; choose a new --out")
    cfg = load_config(source.config, [*args.overrides, f"run_dir={out.root}"])
    set_torch_threads(cfg.torch_threads)
    out.root.mkdir(parents=True, exist_ok=True)
    with out.lock():
        write_text(out.config, to_yaml(cfg))
        write_text(
            out.root / "source.json", json.dumps({"source": str(source.root), "overrides": args.overrides})
        )
        shutil.copytree(source.data, out.data)
        out.pretrain.mkdir()
        shutil.copy2(source.representation, out.representation)
        train_stage(cfg)
        print(json.dumps(evaluate_stage(cfg), indent=2, sort_keys=True))
        print(json.dumps(baseline_stage(cfg), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
