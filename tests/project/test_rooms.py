"""The rooms of ``course/`` keep their arrows pointing one way (``course.rooms``): grading
uses only ``assignment``, nothing imports another module's private names, and the check that
says so fails on a tree that breaks either rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from course import rooms
from course.assignment import paths


def test_the_course_keeps_the_rule() -> None:
    done = subprocess.run([sys.executable, "-m", "course.rooms"], cwd=paths.REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found, arrows, breaches = rooms.survey()
    assert breaches == []
    assert set(found) == {*rooms.ALLOWED, rooms.OUTSIDE}
    assert {b for a, b in arrows if a == "grading"} == {"assignment"}
    assert not {b for a, b in arrows if a == "assignment"}
    for room in rooms.ALLOWED:
        assert f"{room} " in done.stdout.split("\n\n")[0]
    assert "grading -> assignment" in done.stdout


def test_the_rooms_docstrings_say_what_each_serves() -> None:
    for room in rooms.ALLOWED:
        init = paths.REPO / "course" / room / "__init__.py"
        assert len(init.read_text().strip().strip('"').split()) > 15, init


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "course"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for room in rooms.ALLOWED:
        (package / room).mkdir(exist_ok=True)
        (package / room / "__init__.py").touch()
    return package


def test_an_arrow_against_the_rule_is_named(tmp_path: Path) -> None:
    package = _tree(tmp_path, {
        "classroom/feedback.py": "X = 1\n",
        "grading/judge.py": "from course.classroom import feedback\n",
        "assignment/paths.py": "import course.grading.judge as j\n",
        "classroom/ok.py": "from course.grading import judge\n",
    })
    found, arrows, breaches = rooms.survey(package)
    said = sorted(str(b) for b in breaches)
    assert said == [
        "course/assignment/paths.py:1: room assignment imports course.grading.judge (room "
        "grading): against the rule",
        "course/grading/judge.py:1: room grading imports course.classroom.feedback (room "
        "classroom): against the rule"]
    assert arrows[("classroom", "grading")] == 1 and arrows[("grading", "classroom")] == 1


def test_private_names_of_another_module_are_named(tmp_path: Path) -> None:
    package = _tree(tmp_path, {
        "grading/submission.py": "_SLOT = 0\ndef _report(): ...\n",
        "grading/cluster.py": "from course.grading.submission import _report\n",
        "grading/pool.py": "from course.grading import submission\nsubmission._SLOT = 3\n",
        "grading/fine.py": "from course.grading import submission\nsubmission.__name__\n",
    })
    _, _, breaches = rooms.survey(package)
    assert sorted(str(b) for b in breaches) == [
        "course/grading/cluster.py:1: imports private _report from course.grading.submission",
        "course/grading/pool.py:2: uses private _SLOT of course.grading.submission"]
