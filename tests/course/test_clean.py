"""`make clean` never removes a student's or an instructor's data; `make clean-course` (``python
-m course.classroom.clean``) removes the course's data only after listing it and being told yes.

Each test runs make in a temporary copy of the repository tree (without venvs, git or any
generated folder) holding fake course data, a student's working copy and the generated folders
`make clean` may remove: the real repository's data is never at stake."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from course.assignment import paths
from course.classroom import clean

#: The course's data and the student's work, with contents: what no `make clean` may touch.
DATA = {
    "notebooks/submitted/alice/07_training/07_training.ipynb": '{"cells": []}\n',
    "notebooks/submitted/bob/07_training/07_training.ipynb": '{"cells": [1]}\n',
    "notebooks/replaced/bob/2026-12-01T10-00-00Z/07_training.ipynb": '{"cells": [0]}\n',
    "notebooks/autograded/alice/07_training/07_training.ipynb": '{"cells": [2]}\n',
    "notebooks/feedback/alice/07_training/07_training.html": "<p>well done</p>\n",
    "notebooks/autograde-cache/0123abcd/4567ef.json": '{"report": {"total": 100}}\n',
    "notebooks/gradebook.db": "SQLite format 3\0 the grades\n",
    "notebooks/grades.csv": "student,score\nalice,100\n",
}
STUDENT = {
    "work/07_training/07_training.ipynb": '{"cells": ["my answers"]}\n',
    "work/07_training/tinytorch/core/training.py": "# my Module 07\n",
}
#: What commands regenerate: `make clean` may remove these.
GENERATED = {
    ".venv/bin/python": "", ".venv-student/bin/python": "", "dist/x-0-py3-none-any.whl": "",
    ".pytest_cache/v": "", ".ruff_cache/v": "", ".hypothesis/v": "",
    "notebooks/release/07_training/07_training.ipynb": "{}",
    "notebooks/source/07_training/tinytorch/__init__.py": "",
    "notebooks/source/07_training/checks/__init__.py": "",
}
SKIPPED = shutil.ignore_patterns(".git", ".venv", ".venv-student", "work", "dist", "build",
                                 "__pycache__", "*.egg-info", ".*_cache", ".hypothesis",
                                 "release", "submitted", "replaced", "autograded", "feedback",
                                 "autograde-cache", "gradebook.db", "grades.csv", "results")


def _plant(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A copy of the repository tree holding course data, a working copy and generated
    folders."""
    root = tmp_path / "repo"
    shutil.copytree(paths.REPO, root, ignore=SKIPPED, symlinks=True)
    for staged in ("tinytorch", "checks"):
        shutil.rmtree(root / "notebooks" / "source" / paths.ASSIGNMENT / staged,
                      ignore_errors=True)
    _plant(root, DATA | STUDENT | GENERATED)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _make(root: Path, *args: str, answer: str | None = None) -> subprocess.CompletedProcess:
    """make in the copy, as a user types it; ``answer`` is what they type (None: no terminal,
    standard input closed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH",
                                                              "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", *args, f"PYTHON={sys.executable}"],
                          cwd=root, input=answer, capture_output=True, text=True, timeout=120,
                          env=env, stdin=subprocess.DEVNULL if answer is None else None)


def test_make_clean_keeps_course_data_and_the_students_work(repo: Path) -> None:
    before = _files(repo)
    done = _make(repo, "clean")
    assert done.returncode == 0, done.stdout + done.stderr
    after = _files(repo)
    removed = sorted(set(before) - set(after))
    assert removed == sorted(GENERATED), removed
    assert after == {name: data for name, data in before.items() if name not in GENERATED}, \
        "make clean changed a file it does not regenerate"
    for name, text in (DATA | STUDENT).items():
        assert (repo / name).read_text() == text, f"make clean lost {name}"


def test_make_help_says_what_each_clean_removes() -> None:
    helps = subprocess.run(["make", "--no-print-directory", "help"], cwd=paths.REPO,
                           capture_output=True, text=True, check=True).stdout
    line = {m.group(1): m.group(2) for m in re.finditer(r"make (\S+)\s+(.*)", helps)}
    for removed in (".venv/", ".venv-student/", "dist/", "caches", "notebooks/release/",
                    "source/07_training/{tinytorch,checks}/"):
        assert removed in line["clean"], (removed, line["clean"])
    assert "never work/ nor course data" in line["clean"]
    assert "virtual environment and caches" not in helps
    for name in clean.DATA:
        assert Path(name).name in line["clean-course"], name
    assert "ask" in line["clean-course"] and "YES=1" in line["clean-course"]


def test_make_clean_course_lists_asks_and_removes_only_on_yes(repo: Path) -> None:
    before = _files(repo)
    for answer in ("n\n", "", None):  # no; an empty line; no terminal at all
        done = _make(repo, "clean-course", answer=answer)
        assert done.returncode != 0, done.stdout
        assert _files(repo) == before, f"removed without a yes (answer {answer!r})"
        assert "nothing removed" in done.stdout and "YES=1" in done.stdout
        assert "[y/N]" in done.stdout
        for name, what in clean.DATA.items():
            assert f"  {name}" in done.stdout and what in done.stdout, name
        listed = [line.strip() for line in done.stdout.splitlines() if line.startswith("  ")]
        assert [line.split(":")[0].rstrip("/") for line in listed] == list(clean.DATA)
        assert listed[0].startswith("notebooks/submitted/: the students' submissions (nbgrader "
                                    "collect / zip_collect) (2 files, ")

    done = _make(repo, "clean-course", answer="y\n")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in clean.DATA:
        assert f"removed {name}\n" in done.stdout
        assert not (repo / name).exists()
    assert _files(repo) == {n: d for n, d in before.items() if n not in DATA}, \
        "make clean-course removed something besides the course's data"

    done = _make(repo, "clean-course", answer=None)
    assert done.returncode == 0 and "no course data to remove" in done.stdout


def test_make_clean_course_yes_removes_without_asking(repo: Path) -> None:
    done = _make(repo, "clean-course", "YES=1", answer=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[y/N]" not in done.stdout
    assert [line for line in done.stdout.splitlines() if line.startswith("removed")] == [
        f"removed {name}" for name in clean.DATA]
    for name, text in STUDENT.items():
        assert (repo / name).read_text() == text


def test_a_symbolic_link_is_removed_not_what_it_points_to(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    elsewhere = tmp_path / "archive"
    _plant(elsewhere, {"alice.ipynb": "{}"})
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "submitted").symlink_to(elsewhere)
    assert clean.main(["--yes"], root=tmp_path) == 0
    assert "only the link is removed" in capsys.readouterr().out
    assert not (tmp_path / "notebooks" / "submitted").is_symlink()
    assert (elsewhere / "alice.ipynb").read_text() == "{}"


# ----------------------------------------------------------------------------- what still runs
# `make clean` first asks course.classroom.in_use whether a process runs from one of the venvs
# it removes. Each test starts real processes from venv-like folders of the copy: an
# interpreter linked into <venv>/bin/python as venv links it (found from the command line, the
# link kept) and a program copied into <venv>/bin (found from /proc/PID/exe).
def _names(root: Path) -> set[str]:
    """Every path under ``root``, links not followed: what any removal would change."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if "__pycache__" not in p.parts}


def _interpreter(root: Path, venv: str) -> Path:
    """``<venv>/bin/python`` in ``root``: a link to this Python's interpreter, as venv makes it."""
    python = root / venv / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.unlink(missing_ok=True)
    python.symlink_to(os.path.realpath(sys.executable))
    return python


def _copied(root: Path, venv: str, program: str) -> Path:
    """``program`` (from PATH) copied into ``<venv>/bin`` of ``root``."""
    found = shutil.which(program)
    assert found, f"expected {program} on PATH"
    copy = root / venv / "bin" / program
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(found, copy)
    return copy


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH",
                                                              "MAKEFLAGS", "MFLAGS")}


@pytest.fixture()
def running(repo: Path, tmp_path: Path) -> Iterator[dict[str, subprocess.Popen]]:
    """A "JupyterLab" from .venv-student (its interpreter given relative to its folder, its
    server's runtime file naming its address) and a program of .venv-build run by bare name."""
    import json

    runtime = tmp_path / "runtime"
    runtime.mkdir()
    _interpreter(repo, ".venv-student")
    (repo / ".venv-student" / "bin" / "jupyter-lab").write_text("import time\ntime.sleep(60)\n")
    sleep = _copied(repo, ".venv-build", "sleep")
    env = {**_env(), "JUPYTER_RUNTIME_DIR": str(runtime)}
    lab = subprocess.Popen([".venv-student/bin/python", ".venv-student/bin/jupyter-lab",
                            "--ServerApp.root_dir=work/07_training"], cwd=repo, env=env)
    (runtime / f"jpserver-{lab.pid}.json").write_text(json.dumps(
        {"pid": lab.pid, "url": "http://localhost:8888/",
         "root_dir": str(repo / "work" / paths.ASSIGNMENT)}))
    sleeper = subprocess.Popen(["sleep", "60"], executable=sleep, cwd=tmp_path, env=env)
    try:
        yield {"lab": lab, "sleeper": sleeper}
    finally:
        for process in (lab, sleeper):
            process.kill()
            process.wait(timeout=10)


def test_make_clean_refuses_while_a_process_runs_from_a_venv_and_force_removes(
        repo: Path, running: dict[str, subprocess.Popen]) -> None:
    lab, sleeper = running["lab"], running["sleeper"]
    before = _names(repo)
    done = _make(repo, "clean")
    assert done.returncode != 0, done.stdout + done.stderr
    said = done.stderr
    assert (f"  jupyter-lab serving work/07_training at http://localhost:8888/ (pid {lab.pid}, "
            "from .venv-student)\n") in said, said
    assert f"  sleep 60 (pid {sleeper.pid}, from .venv-build)\n" in said, said
    assert said.count("(pid ") == 2, said
    stop = next(line for line in said.splitlines() if line.startswith("Stop them first"))
    assert str(lab.pid) in stop and str(sleeper.pid) in stop and "make clean FORCE=1" in stop
    assert _names(repo) == before, "make clean removed something while refusing"
    assert lab.poll() is None and sleeper.poll() is None

    done = _make(repo, "clean", "FORCE=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"(pid {lab.pid}, from .venv-student)" in done.stderr
    for venv in (".venv", ".venv-student", ".venv-build"):
        assert not (repo / venv).exists(), f"make clean FORCE=1 kept {venv}"
    kept = [name for name in GENERATED if (repo / name).exists() or (repo / name).is_symlink()]
    assert kept == [], f"make clean FORCE=1 kept {kept}"
    for name, text in (DATA | STUDENT).items():
        assert (repo / name).read_text() == text, f"make clean FORCE=1 lost {name}"


def test_make_clean_run_by_a_venvs_python_and_make_does_not_count_them(repo: Path) -> None:
    """`make clean PYTHON=.venv/bin/python`, by a make of .venv: the check's own process and
    the make running it are no reason to refuse. (Run with -S: the standard library only.)"""
    python = _interpreter(repo, ".venv")
    make = _copied(repo, ".venv", "make")
    done = subprocess.run([str(make), "--no-print-directory", "clean", f"PYTHON={python} -S"],
                          cwd=repo, capture_output=True, text=True, timeout=60, env=_env(),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(pid " not in done.stderr, done.stderr
    assert not (repo / ".venv").exists() and not (repo / ".venv-student").exists()


def test_a_venv_process_that_runs_make_clean_is_counted(repo: Path) -> None:
    """`make clean` typed in a terminal of a JupyterLab from .venv-student would remove that
    lab's own environment: only the make and what it runs are left out, not what runs make."""
    python = _interpreter(repo, ".venv-student")
    before = _names(repo)
    run_make = ("import subprocess, sys; sys.exit(subprocess.run(['make', "
                "'--no-print-directory', 'clean', 'PYTHON=' + sys.argv[1]]).returncode)")
    done = subprocess.run([str(python), "-c", run_make, sys.executable], cwd=repo,
                          capture_output=True, text=True, timeout=60, env=_env(),
                          stdin=subprocess.DEVNULL)
    assert done.returncode != 0, done.stdout + done.stderr
    assert re.search(r"^  python -c import subprocess.* \(pid \d+, from \.venv-student\)$",
                     done.stderr, re.M), done.stderr
    assert _names(repo) == before, "make clean removed something while refusing"
