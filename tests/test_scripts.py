"""The results scripts tabulate what the run directories hold."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_metrics(directory: Path, **heldout: float) -> None:
    (directory / "pretrain").mkdir(parents=True)
    (directory / "pretrain" / "metrics.json").write_text(json.dumps({"heldout_colours": heldout}))


def test_representation_table_gives_mean_std_and_counts_seeds_meeting_the_targets(tmp_path: Path) -> None:
    table = load_script("representation_table")
    keys = [key for key, _ in table.COLUMNS]
    good = dict.fromkeys(keys, 0.95)
    write_metrics(table.run_dir(tmp_path, "ccrig", 0), **good)
    write_metrics(table.run_dir(tmp_path, "ccrig", 1), **{**good, "probe_r2_hand": 0.85})
    lines = table.table(["ccrig", "missing"], [0, 1, 2], tmp_path)
    ccrig_row = next(line for line in lines if line.startswith("| ccrig |"))
    cells = [cell.strip() for cell in ccrig_row.strip("|").split("|")]
    assert cells[1] == "2"  # seed 2 has no metrics yet
    assert cells[2] == "0.900 ± 0.071"  # hand probe: mean and sample std of 0.95 and 0.85
    assert cells[-1] == "1 / 2"  # seed 1 misses the 0.9 hand target
    assert any(line.startswith("| missing | 0 |") for line in lines)
    assert len(table.per_seed(["ccrig"], [0, 1, 2], tmp_path)) == 2
