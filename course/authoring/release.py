"""Release Module 07 to students: their notebook and packages, with no solution anywhere.

    python -m course.authoring.release

1. checks that the source notebook is in sync with the lesson and training.py;
2. stages into the assignment's source folder the packages a student's notebook imports:
   ``tinytorch`` with Module 07's solution regions stripped, and ``checks``. nbgrader copies
   them into the release, and ``autograde`` copies them over whatever a student submits, so
   grading always runs the instructor's checks on a library without the solution;
3. runs ``nbgrader generate_assignment`` (which also records the graded cells in the gradebook);
4. scans the release: no nbgrader marker, no line of reference solution code, no hidden test.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from course.assignment import paths
from course.assignment.packages import stage
from course.assignment.solutions import (
    HIDDEN_REGION,
    SOLUTION_REGION,
    Leak,
    region_lines,
    scan,
)
from course.authoring import build

#: The instructor guide: its rubric of the written answers is for graders only.
GUIDE = paths.REPO / "docs" / "instructor-guide.md"
RUBRIC_REGION = re.compile(r"^<!-- BEGIN RUBRIC -->\n.*?^<!-- END RUBRIC -->\n?", re.S | re.M)


def rubric_lines(guide: Path = GUIDE) -> set[str]:
    """The distinctive lines of the rubric (between ``<!-- BEGIN RUBRIC -->`` and
    ``<!-- END RUBRIC -->`` in the instructor guide); none if the guide is not there."""
    return region_lines(guide.read_text(), RUBRIC_REGION) if guide.is_file() else set()


def secrets() -> set[str]:
    """Lines no released file may contain: reference solution code and hidden tests, the
    example answers of the written questions, and their rubric."""
    found = region_lines(paths.REFERENCE.read_text(), SOLUTION_REGION)
    notebook = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    text = "\n".join(cell.source for cell in notebook.cells) + "\n"
    return (found | region_lines(text, SOLUTION_REGION) | region_lines(text, HIDDEN_REGION)
            | rubric_lines())


def tool_folders() -> list[Path]:
    """Where nbgrader's scripts are: this Python's bin folder and, when nbgrader is installed
    in another environment this one sees (``make lab``'s build venv sees the student venv's
    packages), that environment's."""
    folders = [Path(sys.executable).parent]
    spec = importlib.util.find_spec("nbgrader")
    if spec is not None and spec.origin:
        # <env>/lib/pythonX.Y/site-packages/nbgrader/__init__.py
        scripts = Path(spec.origin).parents[4] / "bin"
        if scripts.is_dir() and scripts not in folders:
            folders.append(scripts)
    return folders


def nbgrader(*args: str, course: Path = paths.COURSE) -> None:
    """Run an nbgrader command in the course root; raise if it fails."""
    command = [sys.executable, "-m", "nbgrader", *args]
    # nbgrader runs `alembic` (its database migrations) from PATH: use nbgrader's environment's.
    path = os.pathsep.join([*map(str, tool_folders()), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path}
    result = subprocess.run(command, cwd=course, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"`nbgrader {' '.join(args)}` failed in {course} (exit {result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )


def release(searched: set[str], course: Path = paths.COURSE) -> list[Leak]:
    """Stage, generate the release, and return what a scan for the ``searched`` lines (and
    nbgrader's markers) found in it (empty: clean)."""
    stage(course / "source" / paths.ASSIGNMENT)
    nbgrader("generate_assignment", paths.ASSIGNMENT, "--force", course=course)
    return scan(course / "release" / paths.ASSIGNMENT, searched)


def make_course(root: Path) -> None:
    """A throw-away nbgrader course in ``root``: the course's settings, the assignment's source
    with the student's packages staged, and a gradebook that knows its cells (for tests,
    benchmarks and grading a folder of downloads)."""
    shutil.copy(paths.COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    source = root / "source" / paths.ASSIGNMENT
    skip = shutil.ignore_patterns(*paths.STUDENT_PACKAGES, "__pycache__", ".ipynb_checkpoints")
    shutil.copytree(paths.SOURCE_NOTEBOOK.parent, source, ignore=skip)
    stage(source)
    nbgrader("generate_assignment", paths.ASSIGNMENT, "--force", course=root)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    if build.main(["--check"]) != 0:
        return 1
    searched = secrets()
    leaks = release(searched)
    released = paths.COURSE / "release" / paths.ASSIGNMENT
    if leaks:
        print(f"the release in {released} holds solutions; do not hand it out:", file=sys.stderr)
        for leak in leaks:
            print(f"  {leak}", file=sys.stderr)
        return 1
    print(f"released {released.relative_to(paths.REPO)}: {len(searched)} solution and hidden "
          "test lines searched, none found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
