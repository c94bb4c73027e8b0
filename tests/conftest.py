from __future__ import annotations

from pathlib import Path

import pytest

from course import grade, student_env


@pytest.fixture(scope="session")
def course_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away nbgrader course after `generate_assignment`: source/, release/ and a
    gradebook that knows the graded cells."""
    root = tmp_path_factory.mktemp("course")
    grade.make_course(root)
    return root


# The student's side, built once per test session and shared by every test that needs it
# (tests/course: make complete, the student's own command; tests/hub: the students' servers):
# the student wheel, and the student's environment made from it the way `make lab` makes
# .venv-student/ (course.student_env.ensure_venv: the wheel, the Jupyter stack at pyproject's
# pins, the students' configuration; about 40 s, most of it pip).
@pytest.fixture(scope="session")
def student_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return student_env.build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def lab_venv(student_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A student environment exactly as ``make lab`` installs it, in a temporary folder. Tests
    may write a student's Module 07 into its tinytorch, as ``make complete`` does."""
    venv = tmp_path_factory.mktemp("lab") / ".venv-student"
    assert student_env.ensure_venv(venv, student_wheel) is True
    return venv
