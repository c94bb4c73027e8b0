"""Solution regions: strip them the way nbgrader does, and prove a folder holds none.

nbgrader replaces ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` in notebook cells with
``raise NotImplementedError()`` and drops ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``.
The reference ``tinytorch/core/training.py`` marks its student parts with the same markers, so
``strip_solutions`` turns it into the module a student receives. ``scan`` is the release gate:
it reports every marker, every distinctive line of reference solution code, and every hidden
test line found in a folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SOLUTION_REGION = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?^(?P=indent)### END SOLUTION\n", re.S | re.M
)
HIDDEN_REGION = re.compile(
    r"^(?P<indent>[ \t]*)### BEGIN HIDDEN TESTS\n.*?^(?P=indent)### END HIDDEN TESTS\n?",
    re.S | re.M,
)
MARKERS = re.compile(r"###\s*(BEGIN|END)\s+(SOLUTION|HIDDEN TESTS)")
#: A line shorter than this (once stripped) is too generic to prove a leak (``return loss``).
DISTINCTIVE = 24


def strip_solutions(text: str) -> str:
    """``text`` with each solution region replaced by ``raise NotImplementedError()``."""
    return SOLUTION_REGION.sub(lambda m: f"{m['indent']}raise NotImplementedError()\n", text)


def region_lines(text: str, region: re.Pattern[str]) -> set[str]:
    """Distinctive lines (stripped) inside ``region``s of ``text`` that occur nowhere outside."""
    inside = {line.strip() for m in region.finditer(text) for line in m.group(0).splitlines()}
    outside = {line.strip() for line in region.sub("", text).splitlines()}
    return {
        line for line in inside - outside
        if len(line) >= DISTINCTIVE and not line.startswith(("###", "#"))
    }


@dataclass(frozen=True)
class Leak:
    """Something in a released file that a student must not see."""

    path: Path
    line: int
    what: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}: {self.text}"


def _texts(path: Path) -> Iterable[tuple[int, str]]:
    """(line number, line) of a file; for a notebook, the lines of every cell's source and
    outputs (numbered through the notebook as a whole)."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".ipynb":
        yield from enumerate(raw.splitlines(), start=1)
        return
    number = 0
    for cell in json.loads(raw).get("cells", []):
        chunks = [cell.get("source", "")]
        for output in cell.get("outputs", []):
            chunks.append(output.get("text", ""))
            chunks.extend(str(v) for v in output.get("data", {}).values())
        for chunk in chunks:
            for line in ("".join(chunk) if isinstance(chunk, list) else chunk).splitlines():
                number += 1
                yield number, line


def scan(folder: Path, secrets: set[str], *, suffixes: tuple[str, ...] = (".py", ".ipynb", ".md",
         ".txt", ".json", ".cfg", ".toml")) -> list[Leak]:
    """Every marker and every line of ``secrets`` found in the text files under ``folder``."""
    leaks: list[Leak] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix not in suffixes:
            continue
        for number, line in _texts(path):
            if MARKERS.search(line):
                leaks.append(Leak(path, number, "nbgrader marker", line.strip()))
            elif line.strip() in secrets:
                leaks.append(Leak(path, number, "solution or hidden test", line.strip()))
    return leaks
