"""The student's packages at the course's pins: pyproject's dependencies and ``course`` extra
(pyproject.toml is the one place versions are pinned) without the instructor's tools.

``make lab``'s student venv installs them (``course.student.environment``), and the release's
``requirements.txt`` lists them for a student who has only the assignment's folder
(``course.authoring.build``): one list for both. Standard library only, so that any python3 can
make the student venv.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from course.assignment import paths

PYPROJECT = paths.REPO / "pyproject.toml"
#: The ``course`` extra's packages a student does not run: nbval is a pytest plugin (the
#: instructor's notebook test), jupytext edits the lesson's text form, latex2mathml writes the
#: feedback page's maths.
INSTRUCTOR_TOOLS = frozenset({"nbval", "jupytext", "latex2mathml"})


def project() -> dict[str, Any]:
    """pyproject.toml, the one place versions are pinned."""
    return tomllib.loads(PYPROJECT.read_text())


def requirement_name(spec: str) -> str:
    """The project name a requirement ``spec`` names (``"nbgrader==0.9.6"`` -> ``nbgrader``),
    normalized, without the ``packaging`` package (any python3 runs this)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if match is None:
        raise ValueError(f"not a requirement: {spec!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def student_requirements(pyproject: dict[str, Any] | None = None) -> list[str]:
    """The student's packages: pyproject's dependencies and ``course`` extra, exactly as pinned
    there, without the instructor's tools."""
    meta = (pyproject or project())["project"]
    specs = [*meta["dependencies"], *meta["optional-dependencies"]["course"]]
    return [spec for spec in specs if requirement_name(spec) not in INSTRUCTOR_TOOLS]
