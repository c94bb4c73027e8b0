"""The student release: nbgrader strips the notebook, `course.authoring.release` strips tinytorch's
Module 07, and the scan proves that no solution, marker or hidden test is left in any file."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course.assignment import paths
from course.assignment.solutions import scan
from course.authoring import release, validate


def _released(course_dir: Path) -> Path:
    return course_dir / "release" / paths.ASSIGNMENT


def test_release_holds_no_solution(course_dir: Path) -> None:
    secrets = release.secrets()
    assert len(secrets) > 50  # solution lines of training.py and the notebook's hidden tests
    assert scan(_released(course_dir), secrets) == []


def test_release_carries_the_student_packages(course_dir: Path) -> None:
    folder = _released(course_dir)
    for relative in ("07_training.ipynb", "GRADING.md", "checks/__init__.py",
                     "tinytorch/core/training.py", "tinytorch/datasets/digits.csv.gz"):
        assert (folder / relative).is_file(), relative
    training = (folder / "tinytorch/core/training.py").read_text()
    assert training.count("raise NotImplementedError()") == 8  # the eight parts students write
    assert not list(folder.rglob("__pycache__"))


def test_released_notebook_has_stubs_and_no_hidden_tests(course_dir: Path) -> None:
    notebook = nbformat.read(_released(course_dir) / paths.NOTEBOOK, as_version=4)
    sources = [c.source for c in notebook.cells]
    assert sum("raise NotImplementedError()" in s for s in sources) == 8
    assert not any("seed=" in s and "run_check" in s for s in sources)


def test_scan_finds_each_kind_of_leak(tmp_path: Path) -> None:
    """The gate can fail: a marker, a line of solution code, and a hidden test in an output."""
    (tmp_path / "clean.py").write_text("x = 1\n")
    (tmp_path / "marker.py").write_text("    ### BEGIN SOLUTION\n")
    (tmp_path / "code.py").write_text("        decay = (self.max_lr - self.min_lr) * 2\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print(1)", outputs=[nbformat.v4.new_output("stream", text="run_check(\"1.2\", s=9)\n")]
    )])
    nbformat.write(notebook, tmp_path / "out.ipynb")
    secrets = {"decay = (self.max_lr - self.min_lr) * 2", 'run_check("1.2", s=9)'}
    leaks = scan(tmp_path, secrets)
    assert [(p.path.name, p.what) for p in leaks] == [
        ("code.py", "solution or hidden test"),
        ("marker.py", "nbgrader marker"),
        ("out.ipynb", "solution or hidden test"),
    ]
    assert "code.py:1" in str(leaks[0])


def test_released_notebook_imports_the_stripped_library(course_dir: Path) -> None:
    """A kernel started in the release folder imports the release's tinytorch (Module 07 without
    its solution), not the instructor's installed copy: importing the reference does not help a
    student."""
    folder = _released(course_dir)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import json, tinytorch.core.training as t, checks\n"
        "print(json.dumps([t.__file__, checks.__file__]))"
    )])
    NotebookClient(notebook, timeout=60, resources={"metadata": {"path": str(folder)}}).execute()
    files = json.loads(notebook.cells[0].outputs[0].text)
    assert all(Path(f).resolve().is_relative_to(folder.resolve()) for f in files), files


def test_validate_source_passes_and_release_fails_only_unimplemented(course_dir: Path) -> None:
    assert validate.problems_in_source() == []
    assert validate.problems_in_release(_released(course_dir) / paths.NOTEBOOK) == []
