"""One owner per concept: the stage declaration, the run directory's names, the scripts' use of rig."""

from __future__ import annotations

import ast
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


# ------------------------------------------------------------------------------ run-directory names
def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the constants that are docstrings (of modules, classes, functions and attributes)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for statement in body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    found.add(id(statement.value))
    return found


def _owned_names() -> set[str]:
    """The names ``rig/rundir.py`` spells: every string it joins onto a path with ``/``."""
    tree = ast.parse((ROOT / "rig" / "rundir.py").read_text())
    return {
        node.right.value
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
        if isinstance(node.right, ast.Constant) and isinstance(node.right.value, str)
    }


def _spelled(path: Path, owned: set[str]) -> list[str]:
    """Where ``path`` spells a run-directory name: a file name anywhere (docstrings aside), a folder name
    joined onto a path, or a relative path made of such names (``pretrain/metrics.json``)."""
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    joined = {
        id(node.right)
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
            continue
        parts = node.value.strip("/").split("/")
        is_file = node.value in owned and "." in node.value
        is_path = len(parts) > 1 and all(part in owned for part in parts)
        if is_file or is_path or (id(node) in joined and node.value in owned):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_only_rundir_spells_the_run_directorys_names() -> None:
    owned = _owned_names()
    assert {
        "best.pt",
        "last.pt",
        "progress.csv",
        "report.md",
        "config.yaml",
        "pretrain",
        "tensorboard",
    } <= owned
    sources = sorted([*(ROOT / "rig").rglob("*.py"), *(ROOT / "scripts").glob("*.py")])
    spelled = [place for path in sources if path.name != "rundir.py" for place in _spelled(path, owned)]
    assert not spelled, "run-directory names belong to rig/rundir.py: " + ", ".join(spelled)


# ------------------------------------------------------------------------------ scripts
def _private_imports(path: Path) -> list[str]:
    """``from rig... import _x`` and ``rig.x._y`` in ``path``."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "rig":
            modules = (node.module or "").split(".")
            names = [alias.name for alias in node.names]
            if any(part.startswith("_") for part in modules) or any(name.startswith("_") for name in names):
                found.append(f"{path.name}:{node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "rig" and any(part.startswith("_") for part in parts):
                    found.append(f"{path.name}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            chain = _dotted(node.value)
            if chain is not None and chain.split(".")[0] == "rig":
                found.append(f"{path.name}:{node.lineno}: {chain}.{node.attr}")
    return found


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def test_scripts_use_rigs_public_names_only() -> None:
    private = [place for path in sorted((ROOT / "scripts").glob("*.py")) for place in _private_imports(path)]
    assert not private, "scripts import private rig names: " + ", ".join(private)
