"""The packages a student receives with the assignment: ``tinytorch`` with Module 07's
solution regions stripped (its functions raise ``NotImplementedError``), and ``checks``.

The release stages them beside the notebook (nbgrader copies them into the students' folders and
over what a student submits), the student wheel carries them, and every grading sandbox runs a
submission against exactly them: one definition of "what a student has" for all three.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from course.assignment import paths
from course.assignment.solutions import strip_solutions

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def stage(assignment_dir: Path) -> None:
    """Copy the student's packages into ``assignment_dir`` (replacing older copies)."""
    for package in paths.STUDENT_PACKAGES:
        target = assignment_dir / package
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(paths.REPO / package, target, ignore=IGNORE)
    training = assignment_dir / paths.REFERENCE.relative_to(paths.REPO)
    training.write_text(strip_solutions(paths.REFERENCE.read_text()))
