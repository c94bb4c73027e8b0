from __future__ import annotations

from pathlib import Path

import pytest

from course import grade


@pytest.fixture(scope="session")
def course_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away nbgrader course after `generate_assignment`: source/, release/ and a
    gradebook that knows the graded cells."""
    root = tmp_path_factory.mktemp("course")
    grade.make_course(root)
    return root
