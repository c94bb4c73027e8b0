"""``make complete`` in the course's repository: the student's own command, ``tinytorch
complete`` (``tinytorch/complete/``, shipped in the student wheel), with the course's
defaults.

    python -m course.student.complete                          # work/07_training/07_training.ipynb
    python -m course.student.complete path/to/07_training.ipynb

Everything happens in ``tinytorch.complete``, the code every student environment has (Binder,
a hub image, ``.venv-student/``): the answer cells are written into Module 07 as the student
was given it (the stripped ``training.py`` their tinytorch shipped with, never the reference),
every check runs on it in a separate process, and only if all pass is it written beside the
notebook and into the environment's tinytorch. ``make complete`` runs that command from the
student venv (``.venv-student/bin/tinytorch complete``); this module adds only what the course
knows: the working copy's notebook as the default (``work/07_training/``) and two folders that
never receive a student's module, the reference solution (the repository's ``tinytorch/``) and
the nbgrader course folder (``notebooks/``), which ``make complete`` passes as ``--protect``.
It imports the standard library, ``course.assignment.paths`` and ``course.assignment.solutions``
(for ``given_module``, the released module the tests compare with) only.
"""

from __future__ import annotations

import sys
from pathlib import Path

from course.assignment import paths
from course.assignment.solutions import strip_solutions
from tinytorch import complete as student
from tinytorch.complete import (  # noqa: F401  (the student's command's API, re-exported)
    BACKUP,
    DEFAULT_TIMEOUT,
    HEADER,
    IMPLEMENTATIONS,
    MODULE,
    RELEASED,
    AnswerCell,
    Assembled,
    CheckRun,
    CompleteError,
    Target,
    Written,
    answer_cells,
    assemble,
    fingerprint,
    graded_cells,
    installed_module,
    run_checks,
)

#: The student's working copy's notebook (``make lab`` opens it; ``course.student.workspace`` makes
# it).
DEFAULT_NOTEBOOK = paths.REPO / "work" / paths.ASSIGNMENT / paths.NOTEBOOK
#: The student's environment (``make lab``, ``course.student.environment``): ``make complete`` runs
# in it.
STUDENT_VENV = paths.REPO / ".venv-student"
#: Folders of the course that never receive a student's module, and why.
FORBIDDEN = {
    paths.REPO / "tinytorch": "the course's reference solution",
    paths.COURSE: "the nbgrader course folder (make release regenerates it)",
}


def given_module() -> str:
    """Module 07 as released: the reference with every solution region replaced by
    ``raise NotImplementedError()`` (what ``course.authoring.release`` stages and the student wheel
    ships as ``training_released.py``)."""
    return strip_solutions(paths.REFERENCE.read_text(encoding="utf-8"))


def forbidden(path: Path) -> str | None:
    return student.forbidden(path, FORBIDDEN)


def targets(notebook: Path, *, notes: list[str]) -> list[Target]:
    return student.targets(notebook, notes=notes, protected=FORBIDDEN)


def write(found: list[Target], text: str) -> list[Written]:
    return student.write(found, text, FORBIDDEN)


def main(argv: list[str] | None = None) -> int:
    """The student's command with the course's default notebook and protected folders; the
    released module and the checks come from the student's tinytorch, as for the student."""
    return student.main(argv, prog="python -m course.student.complete", default=DEFAULT_NOTEBOOK,
                        protected=FORBIDDEN, checks=paths.REPO / "checks")


if __name__ == "__main__":
    sys.exit(main())
