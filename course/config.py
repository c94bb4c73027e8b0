"""The course's nbgrader settings, read from ``notebooks/nbgrader_config.py`` (their one source)."""

from __future__ import annotations

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from course import paths


def load() -> Config:
    """The settings nbgrader itself reads when it runs in the course root."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(paths.COURSE)).load_config()


def course_id() -> str:
    return str(load().CourseDirectory.course_id)
