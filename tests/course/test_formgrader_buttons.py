"""The formgrader's buttons run the course's grading or refuse: its Autograde button (nbgrader's
``NbGraderAPI.autograde``, what ``nbgrader autograde`` runs too) would execute each student's
notebook in a kernel on the grader's account, so the course's configuration refuses it with
what to run instead, and no student code runs; its Generate Feedback button writes the
course's page (checks named, hidden tests hidden, maths offline), not nbgrader's default."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from submissions import from_training_source, with_cell, write

from course.assignment import config, paths
from course.classroom import autograde, nbgrader_trusted

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def course(copy_course: Callable[[Path], None],
           tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A course in which mallory's submission, were it run in a kernel, writes a file."""
    root = tmp_path_factory.mktemp("buttons")
    course = root / "course"
    course.mkdir()
    copy_course(course)
    marker = root / "a-kernel-ran-mallorys-code"
    notebook = with_cell(from_training_source(paths.REFERENCE.read_text()),
                         f"open({str(marker)!r}, 'w').write('ran')\n", at=1)
    write(notebook, root / "downloads" / "mallory.ipynb")
    assert autograde.main([str(root / "downloads"), "--course", str(course)]) == 0
    return course, marker


def _api(course: Path):  # noqa: ANN202 - nbgrader's own API object
    from nbgrader.apps import NbGraderAPI

    settings = config.load(course)
    settings.CourseDirectory.root = str(course)
    return NbGraderAPI(config=settings)


def test_the_autograde_button_refuses_and_runs_no_student_code(
        course: tuple[Path, Path]) -> None:
    root, marker = course
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{Path(os.sys.executable).parent}{os.pathsep}{path}"  # alembic
    try:
        result = _api(root).autograde(paths.ASSIGNMENT, "mallory", force=True)
    finally:
        os.environ["PATH"] = path
    shown = result.get("error", "") + result.get("log", "")  # what the formgrader's dialog shows
    assert result["success"] is False, result
    assert nbgrader_trusted.KERNEL_REFUSED in shown, shown
    assert not marker.exists(), "a kernel ran the student's code"


def test_the_generate_feedback_button_writes_the_courses_page(
        course: tuple[Path, Path]) -> None:
    root, marker = course
    result = _api(root).generate_feedback(paths.ASSIGNMENT, "mallory", force=True)
    assert result["success"] is True, result
    page = (root / "feedback" / "mallory" / paths.ASSIGNMENT / "07_training.html").read_text()
    assert "<math" in page and "run_check(" not in page and "BEGIN HIDDEN" not in page
    assert "cdn.jsdelivr" not in page and "mathjax" not in page.lower()
    assert not marker.exists()
