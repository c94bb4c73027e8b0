"""The assignment's cells as nbgrader marks them: which are graded automatically (and by which
check), which are written answers graded by hand, and which only demonstrate.

The build writes these marks into the source notebook (``course.authoring.build``); grading
reads them back to know what to run and what each cell is worth (``course.grading``); the
classroom's pages and lists name cells by them. One reading of the metadata for all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from course.assignment import paths

#: A demonstration cell (it runs the student's code to show it, and defines nothing a check
#: uses) is tagged ``DEMO``: trusted grading does not run it in the sandbox (the digits run and
#: the cost measurements would cost every submission seconds, and can only fail by themselves).
DEMO, DEMO_CELL = "demo", "with viz.demo():"


@dataclass(frozen=True)
class GradedCell:
    """A test cell graded automatically: its nbgrader ``grade_id``, its points and the id of
    the check it runs (``run_check("1.2", ...)``)."""

    grade_id: str
    points: float
    check: str


def graded_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, int, str]]:
    """(grade_id, points, check id) of every test cell (graded automatically), in notebook
    order."""
    rows = []
    for cell in notebook.cells:
        grade = cell.metadata.get("nbgrader", {})
        if grade.get("grade") and not grade.get("solution"):
            check = re.search(r'run_check\("([^"]+)"', cell.source)
            rows.append((grade["grade_id"], grade["points"], check.group(1) if check else ""))
    return rows


#: How a question's heading states its points: "### R1. One norm ... (3 points)".
POINTS_SAID = re.compile(r"\s*\((\d+) points?\)$")


def manual_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, int, str]]:
    """(grade_id, points, question) of every written answer graded by hand, in notebook order;
    the question is the first line of the markdown cell before the answer, without ``#``."""
    rows = []
    for before, cell in zip([None, *notebook.cells], notebook.cells, strict=False):
        grade = cell.metadata.get("nbgrader", {})
        if grade.get("grade") and grade.get("solution"):
            asked = before.source if before is not None and before.cell_type == "markdown" else ""
            title = asked.strip().splitlines()[0].lstrip("#").strip() if asked.strip() else ""
            rows.append((grade["grade_id"], grade["points"], title))
    return rows


@dataclass(frozen=True)
class ManualCell:
    """A written answer graded by hand: its nbgrader ``grade_id``, its points and the question
    it answers (its heading, points said there removed)."""

    grade_id: str
    points: float
    question: str


def source_graded_cells(notebook: Path = paths.SOURCE_NOTEBOOK) -> list[GradedCell]:
    """Every graded cell of the assignment's source notebook: its grade_id, points and check,
    in order."""
    source = nbformat.read(notebook, as_version=4)
    return [GradedCell(g, float(p), c) for g, p, c in graded_cells(source)]


def source_manual_cells(notebook: Path = paths.SOURCE_NOTEBOOK) -> list[ManualCell]:
    """Every written answer of the assignment's source notebook, in order: what a grader grades
    by hand and no automatic grading can decide (``python -m course.grading.grade`` says so)."""
    source = nbformat.read(notebook, as_version=4)
    return [ManualCell(g, float(p), POINTS_SAID.sub("", q)) for g, p, q in manual_cells(source)]
