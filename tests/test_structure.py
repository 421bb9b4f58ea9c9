"""One owner per concept: the stage declaration, the run directory's names, the scripts' use of rig."""

from __future__ import annotations

import inspect
from pathlib import Path

from rig.config import flat_settings, load_config
from rig.pipeline import stage_settings
from rig.rundir import RunDir
from rig.stages import STAGE_NAMES, STAGES, stage

ROOT = Path(__file__).resolve().parent.parent


def _known_keys() -> set[str]:
    """Every dotted config key, ``online.*`` included (they count only when online learning is on)."""
    return set(flat_settings(load_config(None, ["online.enabled=true"])))


def test_stage_names_are_unique_and_in_running_order() -> None:
    assert len(set(STAGE_NAMES)) == len(STAGES)
    assert STAGE_NAMES == ("collect", "pretrain", "train", "evaluate", "baselines")
    for position, declared in enumerate(STAGES):
        assert set(declared.reads) <= set(STAGE_NAMES[:position]), f"{declared.name} reads a later stage"
    assert stage("train") is STAGES[2]


def test_every_stage_has_products_and_a_runner(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    seen: set[Path] = set()
    for declared in STAGES:
        products = declared.products(run)
        assert products, f"{declared.name} declares no products"
        assert all(path.is_relative_to(run.root) and path != run.root for path in products)
        assert not seen & set(products), f"{declared.name} shares a product with another stage"
        seen |= set(products)
        assert callable(declared.run)
        assert list(inspect.signature(declared.run).parameters)[:2] == ["cfg", "progress"]


def test_stage_settings_name_config_keys() -> None:
    keys = _known_keys()
    for declared in STAGES:
        names = (
            *declared.settings,
            *(declared.oracle_settings or ()),
            *declared.excluded,
            *declared.resumable,
        )
        for name in names:
            exists = name in keys if not name.endswith(".") else any(key.startswith(name) for key in keys)
            assert exists, f"stage {declared.name} names {name!r}, which is no config key or section"


def test_the_oracle_collects_nothing_and_pretrains_on_its_kind_only() -> None:
    oracle = stage_settings(load_config(None, ["vae.kind=state"]))
    assert list(oracle) == ["pretrain", "train", "evaluate", "baselines"]
    assert oracle["pretrain"] == {"vae.kind": "state"}
    assert list(stage_settings(load_config())) == list(STAGE_NAMES)
