"""Rewrite (or check) the tables the docs generate from the archived run records.

A generated block in README.md or a page under docs/ sits between two comments; the first holds the
command that prints it: ``python3 scripts/reproduce_results.py --no-run ... --markdown`` (a method
table), ``python3 scripts/env_results.py ...`` (one env's methods against the random policy and each
other), ``python3 scripts/pretrain_trend.py RUNS`` (a representation's colour generalisation against its
budget) or ``python3 scripts/curve_course.py --method NAME RUNS ...`` (methods' mean curves past a step):

    <!-- generated: python3 scripts/reproduce_results.py --no-run --out docs/results --only rig --markdown -->
    | method | ... |
    <!-- end generated -->

    python3 scripts/docs_tables.py           # rewrite every block with what its command prints now
    python3 scripts/docs_tables.py --check   # list the blocks that differ, exit 1 if any (the tests run this)

The commands run in this process and read records only, so the whole check takes seconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = (
    "scripts/reproduce_results.py",
    "scripts/env_results.py",
    "scripts/pretrain_trend.py",
    "scripts/curve_course.py",
)
"""the scripts whose ``docs_table(argv, root)`` prints a generated block"""
BLOCK = re.compile(
    r"(<!-- generated: (?P<command>.+?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL
)


@dataclass(frozen=True)
class Block:
    page: Path
    command: str
    body: str


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every docs page, less the archived records' own reports."""
    found = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [page for page in found if "results" not in page.relative_to(root).parts[1:2]]


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(page, match["command"], match["body"]) for match in BLOCK.finditer(text)]


def _program(path: str) -> ModuleType:
    name = Path(path).stem
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def generate(command: str, root: Path = ROOT) -> str:
    """What ``command`` prints, run from ``root``; it must be one of ``PROGRAMS`` reading records only."""
    words = shlex.split(command)
    if len(words) < 2 or words[0] != "python3" or words[1] not in PROGRAMS:
        raise ValueError(f"not a generated table's command: {command!r}")
    return _program(words[1]).docs_table(words[2:], root) + "\n"


def stale(root: Path = ROOT) -> list[Block]:
    """The generated blocks whose text differs from what their command prints now."""
    return [
        block for page in pages(root) for block in blocks(page) if block.body != generate(block.command, root)
    ]


def rewrite(page: Path, root: Path = ROOT) -> bool:
    """Replace every generated block of ``page``; whether anything changed."""
    text = page.read_text(encoding="utf-8")

    def fresh(match: re.Match[str]) -> str:
        return match[1] + generate(match["command"], root) + match[4]

    new = BLOCK.sub(fresh, text)
    if new != text:
        page.write_text(new, encoding="utf-8")
    return new != text


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only report blocks that differ; exit 1 if any")
    args = parser.parse_args()
    if args.check:
        found = stale()
        for block in found:
            print(f"{block.page.relative_to(ROOT)}: stale table of `{block.command}`")
        return 1 if found else 0
    for page in pages():
        if rewrite(page):
            print(f"rewrote {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
