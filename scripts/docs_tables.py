"""Rewrite (or check) the tables the docs generate from the archived run records.

A generated block in README.md or a page under docs/ sits between two comments; the first holds the
command that prints it, which must be ``python3 scripts/reproduce_results.py --no-run ... --markdown``:

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
PROGRAM = ("python3", "scripts/reproduce_results.py")
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


def _reproduce() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "reproduce_results", ROOT / "scripts" / "reproduce_results.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reproduce_results", module)
    spec.loader.exec_module(module)
    return module


def generate(command: str, root: Path = ROOT) -> str:
    """What ``command`` prints, run from ``root``; it must be a ``--no-run ... --markdown`` tabulation."""
    words = shlex.split(command)
    if tuple(words[:2]) != PROGRAM or "--markdown" not in words or "--no-run" not in words:
        raise ValueError(f"not a generated table's command: {command!r}")
    reproduce = _reproduce()
    args, chosen = reproduce.parse(words[2:])
    out = args.out if args.out.is_absolute() else root / args.out
    return reproduce.markdown_table(out, chosen, args.brief) + "\n"


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
