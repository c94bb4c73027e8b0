"""Notebooks as students would submit them, made from the reference, a mutant or an
alternative solution, so the grading tests run the real nbgrader pipeline on them."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from course import build, paths
from course.solutions import HIDDEN_REGION

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
