from __future__ import annotations

from pathlib import Path

import pytest
from grading.scale import distinct_notebooks

from course.assignment import paths


@pytest.fixture(scope="session")
def scale_notebooks(course_dir: Path, tmp_path_factory: pytest.TempPathFactory
                    ) -> dict[str, Path]:
    """One notebook of each kind of the grading-at-scale class (``scale.py``)."""
    release = course_dir / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
    return distinct_notebooks(tmp_path_factory.mktemp("scale-class"), release)
