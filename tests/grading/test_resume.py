"""Nothing lost, nothing graded twice (``course.grading.cache``): ``python -m
course.classroom.autograde`` is killed with SIGKILL once some scores have been printed; every score
it printed was already stored, and the rerun grades only the rest, writes each student into the
gradebook once, and shows its progress as counted lines (stderr is not a terminal here). A third run
grades nothing."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from grading.scale import a_class

from course.assignment import paths
from course.classroom import autograde
from course.grading import cache

pytestmark = pytest.mark.slow

STUDENTS = 8
KILL_AFTER = 3  # scores printed before the kill
SCORE_LINE = re.compile(r"^\S+\s+[\d.]+ / \d+")
COUNTED = re.compile(r"^\[(\d+)/(\d+)\] (\S+)\s+([\d.]+) / 100")


@pytest.fixture(scope="module")
def course(course_dir: Path, scale_notebooks: dict[str, Path],
           tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resume") / "course"
    shutil.copytree(course_dir, root)
    for index, kind in enumerate(a_class(scale_notebooks, STUDENTS, costly_every=4)):
        target = root / "submitted" / f"s{index:02d}-{kind}" / paths.ASSIGNMENT / paths.NOTEBOOK
        target.parent.mkdir(parents=True)
        shutil.copy(scale_notebooks[kind], target)
    return root


def _autograde(course: Path, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "course.classroom.autograde", "--course", str(course), "--jobs", "1",
         "--limit", "30", *more], cwd=paths.REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TINYTORCH_PROGRESS": ""})


@pytest.fixture(scope="module")
def runs(course: Path) -> dict[str, Any]:
    first = _autograde(course)
    printed: list[str] = []
    assert first.stderr is not None
    deadline = time.monotonic() + 120
    for line in first.stderr:
        if COUNTED.match(line):
            printed.append(line)
            if len(printed) == KILL_AFTER:
                break
        assert time.monotonic() < deadline, "no progress from autograde"
    os.kill(first.pid, signal.SIGKILL)  # the grader itself, at once
    first.wait()
    with contextlib.suppress(ProcessLookupError):  # then what it left (its pool), as a reboot
        os.killpg(first.pid, signal.SIGKILL)
    first.stderr.close()
    first.stdout.close()
    stored = {p.stem for p in (course / cache.FOLDER).glob("*/*.json")}  # reports by digest
    kept = sorted(p.parent.parent.name for p in
                  (course / "submitted").glob(f"*/{paths.ASSIGNMENT}/{paths.NOTEBOOK}")
                  if cache.file_digest(p) in stored)
    second = _autograde(course)
    out, err = second.communicate(timeout=300)
    third = _autograde(course)
    out3, err3 = third.communicate(timeout=300)
    return {"killed": printed, "first_status": first.returncode, "kept": kept, "course": course,
            "second": (second.returncode, out, err), "third": (third.returncode, out3, err3)}


def _counted(err: str) -> list[tuple[int, int, str]]:
    return [(int(m[1]), int(m[2]), m[3]) for m in map(COUNTED.match, err.splitlines()) if m]


def test_the_killed_grader_lost_nothing_it_had_decided(runs: dict[str, Any]) -> None:
    assert runs["first_status"] == -signal.SIGKILL
    printed = {m[3] for m in map(COUNTED.match, runs["killed"]) if m}
    kept = set(runs["kept"])
    assert len(printed) == KILL_AFTER and printed <= kept, (printed, kept)
    assert len(kept) < STUDENTS, "the grader was killed after the end: kill it sooner"
    status, out, err = runs["second"]
    assert status == 0, err
    graded_again = {name for _, _, name in _counted(err)}
    assert not kept & graded_again, f"graded twice: {kept & graded_again}"
    assert f"{len(kept)} of {STUDENTS} submissions already graded" in err, err


def test_the_rerun_grades_only_the_rest_and_counts_them(runs: dict[str, Any]) -> None:
    status, out, err = runs["second"]
    counted = _counted(err)
    rest = STUDENTS - len(runs["kept"])
    assert [n for n, _, _ in counted] == list(range(1, rest + 1))
    assert {total for _, total, _ in counted} == {rest}
    assert {name for _, _, name in counted} | set(runs["kept"]) == {
        p.name for p in (runs["course"] / "submitted").iterdir()}
    assert f"graded {rest}/{rest} (100%)" in err  # the closing count, rate and time


def test_every_student_is_in_the_gradebook_once(runs: dict[str, Any], course: Path) -> None:
    students = [student for student, _, _ in autograde.scores(course)]
    assert sorted(students) == sorted(p.name for p in (course / "submitted").iterdir())
    assert len(students) == len(set(students)) == STUDENTS
    status, out, _ = runs["second"]
    # the final table: one line per student, its score out of every point (written answers'
    # included, which a grader adds by hand)
    assert sum(1 for line in out.splitlines() if SCORE_LINE.match(line)) == STUDENTS


def test_a_third_run_grades_nothing_and_writes_nothing(runs: dict[str, Any],
                                                       course: Path) -> None:
    status, out, err = runs["third"]
    assert status == 0, err
    assert f"{STUDENTS} of {STUDENTS} submissions already graded" in err
    assert _counted(err) == []
    assert "written to the gradebook 0/0" in err or "written to the gradebook" not in err
    stored = [p for p in (course / cache.FOLDER).glob("*/*.json") if p.parent.name != "gradebook"]
    assert len(stored) == len({cache.file_digest(p) for p in
                               (course / "submitted").glob(f"*/{paths.ASSIGNMENT}/*.ipynb")})
