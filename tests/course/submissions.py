"""Notebooks as students would submit them, made from the reference, a mutant or an
alternative solution, so the grading tests run the real nbgrader pipeline on them."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from course.assignment import paths
from course.assignment.solutions import HIDDEN_REGION
from course.authoring import build

MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION\n", re.M)


def _as_submitted(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """What a student hands in: answer cells hold code (no markers), test cells are the
    released ones (hidden tests removed)."""
    for cell in notebook.cells:
        grade = cell.metadata.get("nbgrader", {})
        if grade.get("solution"):
            cell.source = MARKER_LINE.sub("", cell.source + "\n").rstrip("\n")
        elif grade.get("grade"):
            cell.source = HIDDEN_REGION.sub("", cell.source + "\n").rstrip("\n")
    return notebook


def from_training_source(text: str) -> nbformat.NotebookNode:
    """The notebook a student submits whose code equals ``text`` (training.py, or a mutant of
    it): the lesson built around that code."""
    return _as_submitted(build.build(paths.LESSON.read_text(), text))


def from_module(path: Path) -> nbformat.NotebookNode:
    """A student who wrote a complete module of their own (an alternative solution) and pasted
    it into every answer cell: each answer cell redefines CosineSchedule, clip_grad_norm and
    Trainer, so the given cells between them cannot replace the student's versions for long."""
    notebook = from_training_source(paths.REFERENCE.read_text())
    code = path.read_text()
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            cell.source = code
    return notebook


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def with_cell(notebook: nbformat.NotebookNode, code: str, *, at: int = 2
              ) -> nbformat.NotebookNode:
    """``notebook`` with a code cell holding ``code`` inserted before its ``at``-th code cell
    (a cell a student added)."""
    code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    notebook.cells.insert(code_cells[min(at, len(code_cells) - 1)],
                          nbformat.v4.new_code_cell(code))
    return notebook


def answer(notebook: nbformat.NotebookNode, grade_id: str, code: str) -> nbformat.NotebookNode:
    """``notebook`` with the cell ``grade_id`` holding ``code`` instead (a student's answer)."""
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = code
            return notebook
    raise AssertionError(f"no cell {grade_id}")
