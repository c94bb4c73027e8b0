"""The student's path (``make lab``) builds only what a student runs: never the instructor's
``.venv`` (pytest, PyTorch, Playwright, ruff, hypothesis: ``pip install -e '.[dev,course,
oracle]'``), but the student venv (any python3 makes it: ``course.student.environment stack`` needs
only the standard library) and ``.venv-build``, which sees the student venv's packages, adds
jupytext and setuptools, and releases the assignment and builds the student wheel with them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from course.assignment import paths
from course.student import environment as student_env

ROOT = paths.REPO
#: What a copy of the repository tree leaves out: venvs, git, generated and course folders.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", ".venv-student", ".venv-build", "work",
                                    "dist", "build", "__pycache__", "*.egg-info", ".*_cache",
                                    ".hypothesis", "release", "submitted", "autograded",
                                    "feedback", "gradebook.db", "grades.csv", "results")
#: The instructor's packages (pyproject's dev and oracle extras), none of which a student runs.
INSTRUCTOR_ONLY = ("pytest", "torch", "ruff", "playwright", "hypothesis", "nbval")


def _make_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


@pytest.mark.slow
def test_make_lab_on_a_fresh_clone_never_builds_the_instructors_environment(
        tmp_path: Path) -> None:
    """`make -n lab` in a clean copy of the repository (no venv yet): every command it would
    run, the recursive `make student-venv` included. None makes or uses `.venv` or installs
    the dev or oracle extras; the student venv is made by the plain python3."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=NOT_COPIED, symlinks=True)
    planned = subprocess.run(["make", "-n", "lab", "PYTHON=python3"], cwd=repo,
                             capture_output=True, text=True, timeout=120, env=_make_env())
    assert planned.returncode == 0, planned.stderr
    commands = planned.stdout
    for needle in ("[dev", "oracle", "pip install -e", "-m venv .venv", ".venv/bin/",
                   ".venv/.installed"):
        assert needle not in commands, f"make lab would run {needle!r}:\n{commands}"
    assert not re.search(r"(^|\s)\.venv/", commands), commands
    assert "python3 -m course.student.environment stack --venv .venv-student" in commands, commands
    assert ("python3 -m course.student.environment build-venv --venv .venv-build --student "
            ".venv-student") in commands, commands
    assert ".venv-build/bin/python -m course.authoring.release" in commands, commands
    assert ".venv-student/bin/jupyter lab" in commands, commands
    # the URL JupyterLab prints opens the notebook, not the Launcher
    assert "--LabApp.default_url=/lab/tree/07_training.ipynb" in commands, commands
    assert not (repo / ".venv").exists()


def test_the_student_venv_is_made_with_the_standard_library_alone() -> None:
    """`python3 -m course.student.environment stack` runs on any python3: with no site-packages at
    all (``-S``), the module imports and knows what to install."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import course.student.environment as s; "
            "print(s.requirements()); print(s.build_requirements()); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('packaging', 'nbformat', 'jupytext', 'nbgrader', 'numpy')))")
    done = subprocess.run([student_env.base_python(), "-S", "-c", code, str(ROOT)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    stack, build, imported = done.stdout.splitlines()
    assert eval(stack) == student_env.requirements()  # noqa: S307 - a list we printed
    assert eval(build) == [s for s in student_env.project()["project"]["optional-dependencies"][
        "course"] if s.startswith("jupytext==")] + ["setuptools>=77.0.3"]  # noqa: S307
    assert imported == "[]"


RELEASE = """\
import shutil, sys
from pathlib import Path
from course.assignment import paths
from course.authoring import release
root = Path(sys.argv[1])
root.mkdir()
shutil.copy(paths.COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
shutil.copytree(paths.SOURCE_NOTEBOOK.parent, root / "source" / paths.ASSIGNMENT,
                ignore=shutil.ignore_patterns(*paths.STUDENT_PACKAGES, "__pycache__"))
print(len(release.release(release.secrets(), course=root)))
"""


@pytest.mark.slow
def test_the_build_venv_releases_and_builds_the_wheel_over_the_students_stack(
        lab_venv: Path, tmp_path: Path) -> None:
    """The build venv made over a student venv (as `make lab` makes it): a few megabytes of its
    own, none of the instructor's packages, and with it the lesson's sync check, nbgrader's
    release (its gradebook made by alembic, found in the student venv) and the student wheel
    (with its own setuptools: no isolated build, no index) all work."""
    build = tmp_path / ".venv-build"
    assert student_env.ensure_build_venv(build, lab_venv) is True
    assert student_env.ensure_build_venv(build, lab_venv) is False, "made twice"
    python = str(build / "bin" / "python")
    own = {p.name.split("-")[0].lower() for p in
           student_env.site_packages(build).glob("*.dist-info")}
    assert own <= {"jupytext", "markdown_it_py", "mdit_py_plugins", "mdurl", "setuptools"}, own
    tools = subprocess.run([python, "-I", "-c", "import importlib.util as u; print([n for n in "
                            f"{INSTRUCTOR_ONLY!r} if u.find_spec(n)])"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert tools.stdout.strip() == "[]", tools.stdout + tools.stderr

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([python, *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=600, env={k: v for k, v in os.environ.items()
                                                if k != "PYTHONPATH"})

    synced = run("-m", "course.authoring.build", "--check")
    assert synced.returncode == 0, synced.stderr
    released = run("-c", RELEASE, str(tmp_path / "course"))
    assert released.returncode == 0, released.stderr
    assert released.stdout.strip() == "0", released.stdout  # no leak
    assert (tmp_path / "course" / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).is_file()
    assert (tmp_path / "course" / "gradebook.db").is_file()
    wheel = run("-c", "import sys; from pathlib import Path; "
                "from course.student import environment as s;"
                " print(s.unmet_build_requirements(s.project()['build-system']['requires']));"
                " print(s.build_wheel(Path(sys.argv[1])).name)", str(tmp_path / "dist"))
    assert wheel.returncode == 0, wheel.stderr
    assert wheel.stdout.splitlines() == ["[]", student_env.wheel_name()], wheel.stdout
