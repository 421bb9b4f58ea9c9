"""The docs: generated tables match the archived records, every page is in the site's navigation."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parent.parent


def docs_tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "scripts" / "docs_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_tables"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_tables_match_what_their_commands_print_from_the_records() -> None:
    tables = docs_tables()
    found = [block for page in tables.pages() for block in tables.blocks(page)]
    assert len(found) >= 10, "the README and the results pages hold the generated tables"
    assert {block.page.name for block in found} >= {"README.md", "results.md", "rig.md", "ccrig.md"}
    stale = tables.stale()
    assert not stale, "stale tables; run `python3 scripts/docs_tables.py`:\n" + "\n".join(
        f"{block.page}: {block.command}" for block in stale
    )


def test_a_changed_number_is_caught(tmp_path: Path) -> None:
    tables = docs_tables()
    readme = ROOT / "README.md"
    block = tables.blocks(readme)[0]
    changed = block.body.replace("0.042 ± 0.008", "0.041 ± 0.008", 1)
    assert changed != block.body
    assert tables.generate(block.command) == block.body
    assert tables.generate(block.command) != changed


def _nav_pages(entries: list[object]) -> set[str]:
    pages: set[str] = set()
    for entry in entries:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            pages |= _nav_pages(value) if isinstance(value, list) else {str(value)}
    return pages


def test_every_docs_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_pages(config["nav"])
    docs = ROOT / "docs"
    pages = {page.relative_to(docs).as_posix() for page in docs.rglob("*.md")}
    pages = {page for page in pages if not page.startswith("results/")}
    assert pages == nav
