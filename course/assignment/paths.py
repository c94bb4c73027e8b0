"""Where everything of the course lives, relative to the repository."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "07_training"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"

#: The nbgrader course root (nbgrader_config.py, source/, and the generated release/, ...).
COURSE = REPO / "notebooks"
#: The lesson: prose, checks and include directives, in jupytext's percent format.
LESSON = COURSE / "lessons" / f"{ASSIGNMENT}.py"
#: Generated from LESSON and REFERENCE by ``python -m course.authoring.build``.
SOURCE_NOTEBOOK = COURSE / "source" / ASSIGNMENT / NOTEBOOK
GRADING_TABLE = SOURCE_NOTEBOOK.parent / "GRADING.md"
#: The reference solution; its ``### BEGIN SOLUTION`` regions are what students write.
REFERENCE = REPO / "tinytorch" / "core" / "training.py"
#: Packages a student's assignment folder carries (Module 07 stripped of its solution).
STUDENT_PACKAGES = ("tinytorch", "checks")
