"""The student release: nbgrader strips the notebook, `course.authoring.release` strips tinytorch's
Module 07, and the scan proves that no solution, marker or hidden test is left in any file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course.assignment import paths
from course.assignment.solutions import scan
from course.authoring import build, release, validate

#: What the students' README tells them to type, where they have the ``tinytorch`` command and
#: where they have the assignment's folder alone.
COMPLETE = "tinytorch complete 07_training.ipynb"
COMPLETE_ALONE = "python -m tinytorch.complete 07_training.ipynb"


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


def test_release_holds_the_students_readme_made_from_the_students_page(
        course_dir: Path) -> None:
    """The folder a course hands out says how to install, check, complete and submit: its
    README.md is the students' page's README part, word for word, and its requirements.txt
    the student's packages at pyproject's pins."""
    folder = _released(course_dir)
    readme = (folder / "README.md").read_text()
    assert readme == build.student_readme(build.STUDENT_PAGE.read_text()), (
        "the released README.md differs from docs/student.md's README part: run "
        "`python -m course.authoring.build`, then release")
    for step in ("## 1. Install", "## 2. Check", "## 3. Complete", "## 4. Submit"):
        assert step in readme, f"the README has no section {step!r}"
    for command in (COMPLETE, COMPLETE_ALONE, "make lab", "make complete",
                    "pip install -r requirements.txt", "Assignment List"):
        assert command in readme, f"the README does not say {command!r}"
    assert (folder / "requirements.txt").read_text() == build.requirements_text()
    assert "numpy==" in build.requirements_text() and "jupyterlab==" in build.requirements_text()


def test_the_readme_speaks_to_the_student(course_dir: Path) -> None:
    readme = (_released(course_dir) / "README.md").read_text()
    for words in ("hidden test", "autograde", "course.authoring", "formgrader", "solution",
                  "STUDENT README", "<!--", "docs/"):
        assert words not in readme, f"README.md says {words!r}"


def test_the_release_scan_reads_the_readme_and_requirements(course_dir: Path,
                                                            tmp_path: Path) -> None:
    """The release gate covers the files the build adds: a solution line written into either
    of them is found (the release itself is clean: test_release_holds_no_solution)."""
    folder = tmp_path / paths.ASSIGNMENT
    shutil.copytree(_released(course_dir), folder)
    secrets = release.secrets()
    line = sorted(secrets)[0]
    for name in ("README.md", "requirements.txt"):
        with (folder / name).open("a") as file:
            file.write(f"{line}\n")
    found = {leak.path.name for leak in scan(folder, secrets)}
    assert found == {"README.md", "requirements.txt"}, found


@pytest.mark.parametrize("page, error", [
    ("# Students\n\nNo README part.\n", "expected one part"),
    ("<!-- BEGIN STUDENT README -->\nSee [the guide](instructor-guide.md).\n"
     "<!-- END STUDENT README -->\n", "instructor-guide.md"),
])
def test_a_readme_part_missing_or_linking_into_docs_is_refused(page: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        build.student_readme(page)


def test_the_readmes_command_for_the_folder_alone_completes_there(course_dir: Path,
                                                                  tmp_path: Path) -> None:
    """The README's command for a student with the assignment's folder alone, run in a copy
    of the folder holding a finished notebook (the reference's answers): every check passes
    and the module is written beside the notebook. This environment's own tinytorch, the
    reference solution, is protected and stays as it is."""
    folder = tmp_path / paths.ASSIGNMENT
    shutil.copytree(_released(course_dir), folder)
    shutil.copy(paths.SOURCE_NOTEBOOK, folder / paths.NOTEBOOK)
    reference = paths.REFERENCE.read_bytes()
    done = subprocess.run(
        [sys.executable, *COMPLETE_ALONE.split()[1:],
         "--protect", f"{paths.REFERENCE.parents[1]}=the reference"],
        cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wrote tinytorch/core/training.py (the tinytorch beside your notebook" in done.stdout
    written = (folder / "tinytorch" / "core" / "training.py").read_text()
    assert "raise NotImplementedError()" not in written
    assert paths.REFERENCE.read_bytes() == reference

