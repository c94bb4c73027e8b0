"""Every command the project documents still runs: each ``python -m`` module named in the README,
the guides, the Makefile, the Binder and hub images and the modules' own docstrings answers
``--help``, and every ``make`` target's recipe names only modules that exist."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from course.assignment import paths

ROOT = paths.REPO
OURS = ("course", "benchmarks", "tinytorch", "checks")
PACKAGE = "(?:" + "|".join(OURS) + r")(?:\.\w+)+"
MODULE = re.compile(rf"python3? (?:-\w+ )*-m ({PACKAGE})")
#: Where a reader finds a command to type.
DOCUMENTS = ["README.md", "Makefile", "binder/postBuild", "hub/Dockerfile", "docs/*.md",
             "course/**/*.py", "benchmarks/*.py", "tinytorch/**/*.py"]


def documented() -> dict[str, list[str]]:
    """Each project module run with ``python -m`` somewhere a reader looks, with where."""
    found: dict[str, list[str]] = {}
    for pattern in DOCUMENTS:
        for path in sorted(ROOT.glob(pattern)):
            for module in MODULE.findall(path.read_text()):
                found.setdefault(module, []).append(str(path.relative_to(ROOT)))
    return found


def test_the_documents_name_the_commands_of_every_room() -> None:
    named = documented()
    for module in ["course.grading.grade", "course.classroom.autograde",
                   "course.authoring.release", "course.student.environment",
                   "course.classroom.clean", "course.rooms", "benchmarks.grading"]:
        assert module in named, f"no document names python -m {module}"


def _help(module: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    return module, subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)


def test_every_documented_command_answers_help() -> None:
    """``--help`` of each prints a usage and exits 0, without doing the command's work (a
    command that ignored its arguments would run: the release, a hub, a Binder strip)."""
    named = documented()
    with ThreadPoolExecutor(4) as pool:
        answers = dict(pool.map(_help, sorted(named)))
    broken = {module: (done.returncode, (done.stderr or done.stdout)[-300:], named[module])
              for module, done in answers.items()
              if done.returncode != 0 or "usage:" not in done.stdout}
    assert not broken, broken


def _targets() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    return re.findall(r"^([a-z][a-z0-9-]*):[^=\n]*##", text, re.M)


@pytest.mark.parametrize("target", _targets())
def test_every_make_target_names_modules_that_exist(target: str) -> None:
    done = subprocess.run(["make", "-n", "--no-print-directory", target, "FILE=x.ipynb"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    missing = [m for m in re.findall(rf"-m ({PACKAGE})", done.stdout)
               if importlib.util.find_spec(m) is None]
    assert not missing, f"make {target} runs modules that do not exist: {missing}"
