"""Markdown pieces of the report: numbers, tables and links to the images it shows."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rig.io import atomic_path
from rig.report.runs import RunRecord, finite, summaries_mean
from rig.rundir import ReportDir


def number(value: Any, digits: int) -> str:
    number = finite(value)
    return "—" if number is None else f"{number:.{digits}f}"


def mean_std(summaries: Sequence[dict[str, Any]], key: str, digits: int) -> str:
    mean, std, count = summaries_mean(summaries, key)
    if count == 0:
        return "—"
    return number(mean, digits) if count == 1 else f"{number(mean, digits)} ± {number(std, digits)}"


def duration(value: Any) -> str:
    seconds = finite(value)
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def span(values: Sequence[int | None]) -> str:
    known = sorted({v for v in values if v is not None})
    if not known:
        return "—"
    return f"{known[0]:,}" if len(known) == 1 else f"{known[0]:,}–{known[-1]:,}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def link(out_dir: Path, file: Path, run: RunRecord) -> str:
    """A markdown-ready path to ``file`` relative to ``out_dir``, copying it there when it lies outside."""
    source = file.resolve()
    root = out_dir.resolve()
    if not source.is_relative_to(root):
        target = ReportDir(root).assets / run.label / file.relative_to(run.path)
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
        source = target
    return quote(source.relative_to(root).as_posix())
