"""Train and evaluate an agent on another run's pretrained representation, under changed settings.

The new run directory gets a copy of the source run's frames and pretrained representation, then the
train, evaluate and baselines stages run on the source run's config with the overrides applied
(``rig.stages.train_on_representation``). This separates what the representation does from what the task
does: for example, an agent on ``rig/Push-v0`` (one puck colour) with the VAE a multi-colour run
pretrained,

    python3 scripts/train_on_representation.py runs/rig_multicolor --out runs/rig_multicolor_on_push \\
        env.id=rig/Push-v0 env.eval_palette=train

The goal prior is fitted to the copied frames, so imagined goals come from the source run's data. The
copy is a new run: the source directory is only read. ``--out`` must not hold a run yet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rig.device import set_torch_threads
from rig.errors import UserError
from rig.stages import stored_config, train_on_representation


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("source", type=Path, help="a run directory with a pretrained representation")
    parser.add_argument("--out", type=Path, required=True, help="the new run directory")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = parser.parse_intermixed_args()
    try:
        cfg = stored_config(args.source, [*args.overrides, f"run_dir={args.out}"])
        set_torch_threads(cfg.torch_threads)
        evaluation, baseline = train_on_representation(args.source, cfg, args.overrides)
    except UserError as error:
        raise SystemExit(str(error)) from None
    print(json.dumps(evaluation, indent=2, sort_keys=True))
    print(json.dumps(baseline, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
