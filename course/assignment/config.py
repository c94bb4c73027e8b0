"""The course's nbgrader settings, found where nbgrader finds them: every
``nbgrader_config.py`` on Jupyter's configuration path (system-wide, the environment's, the
user's ``~/.jupyter``), then the course root's own (``notebooks/nbgrader_config.py``, the
course's one source), each overriding the ones before it.

Read, never run. nbgrader executes its configuration files as Python; the course's tools read
them as data (``read``): a docstring, ``c = get_config()`` and lines ``c.Section.name =
<literal>``, anything else refused with its file and line. Trusted grading runs as root on an
instructor's course, whose files the instructor's account (or whoever obtained its token) can
change: a setting read that way cannot run anything as root.

``db_url`` is the gradebook nbgrader is configured with (``c.CourseDirectory.db_url``, e.g. a
PostgreSQL server shared by several graders); without one, nbgrader's default, the course's
SQLite file ``<course>/gradebook.db``. Every tool of the course opens the gradebook through it.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_path
from traitlets.config import Config

from course.assignment import paths

CONFIG_FILE = "nbgrader_config.py"


class ConfigRefused(ValueError):
    """A configuration file holds something other than literal settings."""


def read(path: Path) -> Config:
    """The settings of the nbgrader configuration file ``path``, read without running it."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as error:
        raise ConfigRefused(f"{path}: cannot be read as settings: {error}") from error
    settings = Config()
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if _is_get_config(node):
            continue
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 \
            else None
        dotted = _dotted(target) if target is not None else None
        if dotted is None or len(dotted) != 3 or dotted[0] != "c":
            raise ConfigRefused(
                f"{path}, line {node.lineno}: only 'c.Section.name = <literal>' settings are "
                "read (the course's tools never run a configuration file)")
        try:
            value: Any = ast.literal_eval(node.value)
        except ValueError:
            raise ConfigRefused(f"{path}, line {node.lineno}: {dotted[1]}.{dotted[2]} is not a "
                                "literal (a string, number, list, dict, True, False or None)"
                                ) from None
        settings[dotted[1]][dotted[2]] = value
    return settings


def _is_get_config(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "c"
            and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "get_config" and not node.value.args
            and not node.value.keywords)


def _dotted(node: ast.expr) -> list[str] | None:
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(names)]


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
            settings.merge(read(Path(folder) / CONFIG_FILE))
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
