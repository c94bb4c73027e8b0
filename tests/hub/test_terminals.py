"""The hub's real terminals have the commands the guide names: a terminal opened in a server
(JupyterLab's, through the server's REST API and terminal websocket, as the
browser opens it) finds ``nbgrader`` for the instructor and ``tinytorch`` for a student, each
from that account's environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_accounts import ALICE, INSTRUCTOR, in_terminal

from course.classroom import hub as hubmod

pytestmark = pytest.mark.slow


def _shell(hub: hubmod.Hub, name: str, line: str) -> str:
    status, shown = in_terminal(hub, name, line, timeout=60)
    assert status == 0, shown
    return shown


def test_the_instructors_terminal_finds_nbgrader(hub: hubmod.Hub,
                                                 instructor_python: Path) -> None:
    shown = _shell(hub, INSTRUCTOR, "command -v nbgrader && nbgrader --version")
    assert f"{instructor_python.parent}/nbgrader" in shown, shown
    assert "command not found" not in shown


def test_a_students_terminal_finds_tinytorch(hub: hubmod.Hub, student_python: Path) -> None:
    shown = _shell(hub, ALICE, "command -v tinytorch && tinytorch --help | head -1")
    assert f"{student_python.parent}/tinytorch" in shown, shown
    assert "command not found" not in shown
