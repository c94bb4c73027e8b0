"""The course's nbgrader settings, loaded the way nbgrader loads them: every
``nbgrader_config.py`` on Jupyter's configuration path (system-wide, the environment's, the
user's ``~/.jupyter``), then the course root's own (``notebooks/nbgrader_config.py``, the
course's one source), each overriding the ones before it.

``db_url`` is the gradebook nbgrader is configured with (``c.CourseDirectory.db_url``, e.g. a
PostgreSQL server shared by several graders); without one, nbgrader's default, the course's
SQLite file ``<course>/gradebook.db``. Every tool of the course opens the gradebook through it.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_core.paths import jupyter_config_path
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from course.assignment import paths

CONFIG_FILE = "nbgrader_config.py"


def load(course: Path = paths.COURSE) -> Config:
    """The settings nbgrader itself reads when it runs in the course root ``course`` (the
    repository's course settings when that folder has no ``nbgrader_config.py``)."""
    settings = Config()
    if not (course / CONFIG_FILE).is_file():  # a bare folder: the repository's course settings
        course = paths.COURSE
    # jupyter_config_path() lists the folders highest priority first; nbgrader loads them
    # lowest first, each overriding the ones before, and the course root's file last
    for folder in [*reversed(jupyter_config_path()), str(course)]:
        if os.path.isfile(os.path.join(folder, CONFIG_FILE)):
            settings.merge(PyFileConfigLoader(CONFIG_FILE, path=folder).load_config())
    return settings


def course_id(course: Path = paths.COURSE) -> str:
    return str(load(course).CourseDirectory.course_id)


def db_url(course: Path = paths.COURSE) -> str:
    """The gradebook's database URL: nbgrader's ``CourseDirectory.db_url`` where it is
    configured, else nbgrader's default, ``sqlite:///<course>/gradebook.db``."""
    settings = load(course)
    configured = settings.CourseDirectory.get("db_url") if "CourseDirectory" in settings else None
    if configured:
        return str(configured)
    return f"sqlite:///{os.path.abspath(course / 'gradebook.db')}"


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for any other database)."""
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) else None


def shown(url: str) -> str:
    """The URL as it may be printed: without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown by its scheme only
        return url.split(":", 1)[0] + "://…"
