"""The cache keeps only what was decided about these bytes (``course.grading.cache``), and the
gradebook ends as one clean run leaves it, whatever faults came in between.

Every test runs the real thing: ``python -m course.classroom.autograde`` (or ``python -m
course.grading.grade``) in a process of its own, sandboxes, a pool of grading processes, and
nbgrader's gradebook read back through its own API. The class is the same throughout, six
students whose scores do not depend on the hidden seeds drawn (the reference, the reference
without a working ``training_memory``, the blank release and three more made for the faults),
graded once cleanly as the baseline. Then, each on a copy of the course:

* **a judging process killed** from here (SIGKILL, the way the kernel's OOM killer or an
  administrator ends one) while it grades a student, in the class and again when the pool
  grades that student alone: the student's report says "grading failed (grader)", nothing is
  cached or written for them, autograde names them and exits 1, and a plain rerun gives them
  their true score;
* **a file changed while the class is graded** (replaced after the first score is printed and
  before its own turn, as ``nbgrader collect --update`` would): no report is ever kept under a
  digest of bytes that did not decide it, and a classmate who later submits the first bytes
  gets what those bytes earn;
* **the gradebook deleted** and made again as ``make release`` makes it: the rerun grades
  nothing again but writes every score.

After each, the gradebook is compared with the clean run's, field by field: every student's
score and maximum, and every graded cell's automatic, manual and final score. Also here: a
report decided with ``--limit 10`` is not served when grading with ``--limit 60``; the release
digest moves with every limit, budget and grader module; the pool's rule of whose failure a
dead process is; and a grading process that cannot start (no sandbox slot) is the grader's
failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbgrader.api import Gradebook
from submissions import answer, from_training_source, with_cell, write

from course.assignment import cells, config, paths
from course.authoring import release
from course.grading import budget, cache, sandbox, submission

pytestmark = pytest.mark.slow

LIMIT = "120"  # seconds a submission may run: generous, so a loaded machine decides nothing
COUNTED = re.compile(r"^\[(\d+)/(\d+)\] (\S+)\s+(\S+) / 100")
#: The process name the marked student's code gives itself in its sandbox (unique to this run),
#: so this test can find the judging process grading that student, and only that one.
MARK = f"tt{secrets.token_hex(4)}"
CHANGING = "e-changing"  # the student whose file is replaced while the class is graded
COPYCAT = "f-copycat"  # the classmate who later submits what e-changing handed in first
MARKED = "d-marked"  # the student whose judging process is killed


# ----------------------------------------------------------------------------- the class
@pytest.fixture(scope="module")
def notebooks(course_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each kind of notebook this module's class is made of, written once."""
    folder = tmp_path_factory.mktemp("cache-exact")
    blank = nbformat.read(course_dir / "release" / paths.ASSIGNMENT / paths.NOTEBOOK,
                          as_version=4)

    def reference() -> nbformat.NotebookNode:
        return from_training_source(paths.REFERENCE.read_text())

    made = {
        "honest": reference(),
        # loses the memory check and nothing else, at every seed
        "partial": answer(reference(), "answer_training_memory",
                          "def training_memory(*args, **kwargs):\n"
                          "    raise NotImplementedError('not written yet')\n"),
        "blank": blank,
        # renames its own sandboxed process: how this test finds who is judging it
        "marked": with_cell(reference(), f"with open('/proc/self/comm', 'w') as f:\n"
                                         f"    f.write({MARK!r})\n", at=1),
        # what e-changing hands in first (the blank release, a cell of its own: 0) ...
        "first": with_cell(nbformat.read(course_dir / "release" / paths.ASSIGNMENT
                                         / paths.NOTEBOOK, as_version=4),
                           "handed_in_first = True\n", at=1),
        # ... and what replaces it while the class is graded (an honest notebook: 100)
        "second": with_cell(reference(), "changed_after_collect = True\n", at=1),
        # a notebook that needs 15 s before any check runs
        "slow": with_cell(reference(), "import time\ntime.sleep(15)\n", at=1),
        # a notebook that kills its own sandbox at its first cell
        "kills-itself": with_cell(nbformat.read(course_dir / "release" / paths.ASSIGNMENT
                                                / paths.NOTEBOOK, as_version=4),
                                  "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
                                  at=1),
    }
    return {kind: write(notebook, folder / f"{kind}.ipynb") for kind, notebook in made.items()}


#: The class as it stands once every fault is over: student -> kind of notebook.
FINAL = {"a-honest": "honest", "b-partial": "partial", "c-blank": "blank", MARKED: "marked",
         CHANGING: "second", COPYCAT: "first"}


def _course(copy_course: Callable[[Path], None], root: Path, notebooks: dict[str, Path],
            students: dict[str, str]) -> Path:
    course = root / "course"
    course.mkdir(parents=True)
    copy_course(course)
    for student, kind in students.items():
        _submit(course, student, notebooks[kind])
    return course


def _submit(course: Path, student: str, notebook: Path) -> Path:
    """``notebook`` as ``student``'s submission, replacing any earlier one whole (a new file
    renamed over the old: a reader sees one or the other, as after ``nbgrader collect``)."""
    target = course / "submitted" / student / paths.ASSIGNMENT / paths.NOTEBOOK
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(".incoming.ipynb")
    shutil.copyfile(notebook, staged)
    os.replace(staged, target)
    return target


def _autograde(course: Path, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "course.classroom.autograde", "--course", str(course),
         "--jobs", "1", "--limit", LIMIT, *more], cwd=paths.REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TINYTORCH_PROGRESS": ""})


def _run(course: Path) -> tuple[int, str, str]:
    process = _autograde(course)
    out, err = process.communicate(timeout=1800)
    return process.returncode, out, err


def gradebook(course: Path) -> dict[str, dict[str, Any]]:
    """Every student's entry for the assignment, as nbgrader's Gradebook API gives it: the
    submission's score and maximum, and each graded cell's scores."""
    found: dict[str, dict[str, Any]] = {}
    with Gradebook(config.db_url(course), config.course_id(course)) as book:
        for entry in book.find_assignment(paths.ASSIGNMENT).submissions:
            found[entry.student.id] = {
                "score": entry.score, "max_score": entry.max_score,
                "cells": {grade.name: {"auto_score": grade.auto_score,
                                       "manual_score": grade.manual_score,
                                       "score": grade.score, "max_score": grade.max_score,
                                       "needs_manual_grade": grade.needs_manual_grade}
                          for notebook in entry.notebooks for grade in notebook.grades}}
    return found


def _differences(got: dict[str, dict[str, Any]], clean: dict[str, dict[str, Any]]) -> list[str]:
    """Every field in which ``got`` differs from the clean run's gradebook, named."""
    said = [f"{s}: missing" for s in clean if s not in got]
    said += [f"{s}: not in the clean run" for s in got if s not in clean]
    for student in sorted(set(got) & set(clean)):
        mine, theirs = got[student], clean[student]
        said += [f"{student}.{field}: {mine[field]!r} != {theirs[field]!r}"
                 for field in ("score", "max_score") if mine[field] != theirs[field]]
        for name in sorted(set(mine["cells"]) | set(theirs["cells"])):
            a, b = mine["cells"].get(name), theirs["cells"].get(name)
            if a != b:
                said.append(f"{student}.{name}: {a!r} != {b!r}")
    return said


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached(course: Path) -> dict[str, dict[str, Any]]:
    """The reports kept in the course's cache, by the digest of the notebook they are kept
    under."""
    kept = {}
    for path in (course / cache.FOLDER).glob("*/*.json"):
        if path.parent.name == "gradebook":
            continue
        entry = json.loads(path.read_text())
        kept[entry["notebook"]] = entry["report"]
    return kept


def _mislabelled(course: Path, truth: dict[str, float]) -> list[str]:
    """Every cached report whose points are not what the bytes it is kept under earn."""
    return [f"{digest[:12]}: {report['total']} kept, {truth.get(digest)} earned"
            for digest, report in cached(course).items() if truth.get(digest) != report["total"]]


@pytest.fixture(scope="module")
def clean(copy_course: Callable[[Path], None], notebooks: dict[str, Path],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The class graded once, with no fault: its gradebook, and what each notebook earns."""
    course = _course(copy_course, tmp_path_factory.mktemp("clean"), notebooks, FINAL)
    status, out, err = _run(course)
    assert status == 0, err
    book = gradebook(course)
    assert sorted(book) == sorted(FINAL), (book, err)
    earned = {kind: book[student]["score"] for student, kind in FINAL.items()}
    # the class holds full, partial and no marks, none of them a matter of seeds
    assert earned["honest"] == earned["marked"] == earned["second"] == 100, earned
    assert 0 < earned["partial"] < 100 and earned["blank"] == earned["first"] == 0, earned
    truth = {_digest(notebooks[kind]): total for kind, total in earned.items()}
    return {"course": course, "gradebook": book, "truth": truth}


# ----------------------------------------------------------------------------- a judge killed
def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _judge_of(pid: int, grader: int) -> int | None:
    """The process judging the sandboxed process ``pid``: its first ancestor that is not
    bubblewrap, if that one descends from ``grader`` (else None: nothing of ours)."""
    try:
        judge = _ppid(pid)
        while _comm(judge) == "bwrap":
            judge = _ppid(judge)
        ancestor = judge
        while ancestor > 1:
            ancestor = _ppid(ancestor)
            if ancestor == grader:
                return judge
    except (OSError, ValueError, IndexError):
        pass
    return None


def _marked_processes() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == MARK:
                    yield int(entry.name)
            except OSError:
                continue


def _kill_judges(grader: subprocess.Popen[str], times: int, killed: list[int]) -> None:
    """SIGKILL the judging process of the marked student each time one starts grading it,
    ``times`` times, while ``grader`` runs."""
    seen: set[int] = set()
    while grader.poll() is None and len(killed) < times:
        for pid in _marked_processes():
            if pid in seen:
                continue
            seen.add(pid)
            judge = _judge_of(pid, grader.pid)
            if judge is not None and judge not in killed:
                os.kill(judge, signal.SIGKILL)
                killed.append(judge)
        time.sleep(0.02)


@pytest.fixture(scope="module")
def judge_killed(copy_course: Callable[[Path], None], notebooks: dict[str, Path],
                 clean: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, Any]:
    course = _course(copy_course, tmp_path_factory.mktemp("judge-killed"), notebooks, FINAL)
    grader = _autograde(course)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_judges, args=(grader, 2, killed), daemon=True)
    killer.start()
    out, err = grader.communicate(timeout=1800)
    killer.join()
    after = {"status": grader.returncode, "out": out, "err": err, "killed": killed,
             "gradebook": gradebook(course), "cached": cached(course)}
    rerun = _run(course)
    return {"course": course, "fault": after, "rerun": rerun, "gradebook": gradebook(course)}


def test_a_killed_judge_is_the_graders_failure_named_and_not_kept(
        judge_killed: dict[str, Any], notebooks: dict[str, Path]) -> None:
    fault = judge_killed["fault"]
    assert len(fault["killed"]) == 2, ("the marked student's judging process was not killed "
                                       "in the class and alone", fault["err"])
    named = [line for line in fault["err"].splitlines() if line.startswith(f"error: {MARKED}:")]
    assert len(named) == 1 and "grading failed (grader): " in named[0], fault["err"]
    assert "killed by SIGKILL" in named[0], named
    assert fault["status"] == 1, fault["err"]
    shown = [m for m in map(COUNTED.match, fault["err"].splitlines()) if m and m[3] == MARKED]
    assert [m[4] for m in shown] == ["-"], "a score was shown for a grading that failed"
    # nothing kept for the bytes, nothing written for the student
    assert _digest(notebooks["marked"]) not in fault["cached"]
    assert MARKED not in fault["gradebook"], fault["gradebook"].get(MARKED)
    # every classmate graded and written all the same
    assert sorted(fault["gradebook"]) == sorted(set(FINAL) - {MARKED})


def test_a_plain_rerun_after_a_killed_judge_gives_the_true_score_and_the_clean_gradebook(
        judge_killed: dict[str, Any], clean: dict[str, Any]) -> None:
    status, out, err = judge_killed["rerun"]
    assert status == 0, err
    assert f"{len(FINAL) - 1} of {len(FINAL)} submissions already graded" in err, err
    assert judge_killed["gradebook"][MARKED]["score"] == 100
    assert _differences(judge_killed["gradebook"], clean["gradebook"]) == []
    assert _mislabelled(judge_killed["course"], clean["truth"]) == []


# ----------------------------------------------------------------------------- a file changed
@pytest.fixture(scope="module")
def file_changed(copy_course: Callable[[Path], None], notebooks: dict[str, Path],
                 clean: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, Any]:
    first = {s: k for s, k in FINAL.items() if s != COPYCAT} | {CHANGING: "first"}
    course = _course(copy_course, tmp_path_factory.mktemp("file-changed"), notebooks, first)
    grader = _autograde(course)
    assert grader.stderr is not None
    lines: list[str] = []
    for line in grader.stderr:  # the first score printed: every file was read by now
        lines.append(line)
        if COUNTED.match(line):
            break
    _submit(course, CHANGING, notebooks["second"])  # before its own turn (it is graded last)
    lines.append("<<< the file was replaced here >>>\n")
    out, err = grader.communicate(timeout=1800)
    err = "".join(lines) + err
    after = {"status": grader.returncode, "err": err, "cached": cached(course),
             "mislabelled": _mislabelled(course, clean["truth"])}
    _submit(course, COPYCAT, notebooks["first"])  # a classmate hands in the first bytes
    rerun = _run(course)
    return {"course": course, "fault": after, "rerun": rerun, "gradebook": gradebook(course)}


def test_a_file_changed_while_graded_never_keeps_a_report_under_other_bytes(
        file_changed: dict[str, Any], notebooks: dict[str, Path]) -> None:
    fault = file_changed["fault"]
    assert fault["status"] == 0, fault["err"]
    lines = fault["err"].splitlines()
    replaced = lines.index("<<< the file was replaced here >>>")
    assert any(COUNTED.match(line) and COUNTED.match(line)[3] == CHANGING
               for line in lines[replaced:]), "the file was replaced after it was graded"
    assert fault["mislabelled"] == [], fault["mislabelled"]
    first = fault["cached"].get(_digest(notebooks["first"]))
    assert first is None or first["total"] == 0, "the honest notebook's points kept under " \
                                                 "the bytes handed in first"



def test_a_classmate_with_the_first_bytes_gets_what_they_earn_and_the_gradebook_is_clean(
        file_changed: dict[str, Any], clean: dict[str, Any]) -> None:
    status, out, err = file_changed["rerun"]
    assert status == 0, err
    assert file_changed["gradebook"][COPYCAT]["score"] == 0
    assert file_changed["gradebook"][CHANGING]["score"] == 100
    assert _differences(file_changed["gradebook"], clean["gradebook"]) == []
    assert _mislabelled(file_changed["course"], clean["truth"]) == []


# ----------------------------------------------------------------------------- a gradebook deleted
@pytest.fixture(scope="module")
def gradebook_deleted(copy_course: Callable[[Path], None], notebooks: dict[str, Path],
                      clean: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
                      ) -> dict[str, Any]:
    course = _course(copy_course, tmp_path_factory.mktemp("gradebook-deleted"), notebooks,
                     FINAL)
    status, out, err = _run(course)  # graded, kept and written: then the gradebook is lost
    assert status == 0, err
    (course / "gradebook.db").unlink()
    # what `make release` does to the gradebook: the assignment and its graded cells, again
    release.nbgrader("generate_assignment", paths.ASSIGNMENT, "--force", course=course)
    assert gradebook(course) == {}
    rerun = _run(course)
    return {"course": course, "rerun": rerun, "gradebook": gradebook(course)}


def test_a_rerun_after_the_gradebook_was_deleted_writes_every_score(
        gradebook_deleted: dict[str, Any], clean: dict[str, Any]) -> None:
    status, out, err = gradebook_deleted["rerun"]
    assert status == 0, err
    assert f"{len(FINAL)} of {len(FINAL)} submissions already graded" in err, err
    assert f"written to the gradebook {len(FINAL)}/{len(FINAL)}" in err, err
    assert _differences(gradebook_deleted["gradebook"], clean["gradebook"]) == []


# ----------------------------------------------------------------------------- limits
def _grade(*args: str) -> tuple[int, Any, str]:
    done = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "course.grading.grade", *args], cwd=paths.REPO,
        capture_output=True, text=True, timeout=1800, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, \
        done.stderr


def test_a_report_decided_with_another_limit_is_not_served(
        notebooks: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    status, report, err = _grade(str(notebooks["slow"]), "--cache", str(folder),
                                 "--limit", "10")
    assert status == 0, err
    assert report["total"] == 0 and report["ended"] == "stopped at the time limit of 10 s", \
        report["ended"]
    status, report, err = _grade(str(notebooks["slow"]), "--cache", str(folder),
                                 "--limit", "60")
    assert status == 0, err
    assert "already graded" not in err, err
    assert report["total"] == 100 and report["ended"] is None, report["ended"]
    status, again, err = _grade(str(notebooks["slow"]), "--cache", str(folder),
                                "--limit", "60")
    assert "1 of 1 submissions already graded" in err, err  # the same limits: kept
    assert again["total"] == 100


def test_the_release_digest_moves_with_every_limit_budget_and_grader_module(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graded = cells.source_graded_cells()
    with submission.staged() as template:
        base = cache.release_digest(template, graded)
        assert base == cache.release_digest(template, graded, limits=sandbox.DEFAULT_LIMITS,
                                            budget=budget.DEFAULT_BUDGET)
        moved = {}
        for field, value in vars(sandbox.DEFAULT_LIMITS).items():
            other = sandbox.Limits(**{field: value * 2})
            moved[f"limits.{field}"] = cache.release_digest(template, graded, limits=other)
        for field, value in vars(budget.DEFAULT_BUDGET).items():
            other = budget.Budget(**{field: value * 2})
            moved[f"budget.{field}"] = cache.release_digest(template, graded, budget=other)
        code = tmp_path / "grading"
        shutil.copytree(Path(cache.__file__).parent, code,
                        ignore=shutil.ignore_patterns("__pycache__"))
        for module in ("sandbox.py", "cgroups.py", "budget.py", "pool.py", "process.py"):
            path = code / module
            original = path.read_bytes()
            path.write_bytes(original + b"\n# one more line\n")
            monkeypatch.setattr(cache, "GRADER_CODE", code)
            moved[module] = cache.release_digest(template, graded)
            monkeypatch.undo()
            path.write_bytes(original)
    unmoved = [name for name, digest in moved.items() if digest == base]
    assert unmoved == [], f"the release digest ignores {unmoved}"
    assert len(set(moved.values())) == len(moved)


# ----------------------------------------------------------------------------- whose failure
def test_the_pool_says_whose_failure_a_dead_process_was() -> None:
    """Alone, a task whose process exits or crashes by itself is its own failure; one whose
    process is killed by a signal from outside is the pool's loss (in grading: the grader's),
    never the task's."""
    import multiprocessing

    from course.grading import pool

    tasks = ["1 + 1", "__import__('os')._exit(3)",
             "__import__('os').kill(__import__('os').getpid(), 9)", "2 + 2",
             "__import__('os').kill(__import__('os').getpid(), 11)"]
    results = pool.run_in_pool(eval, tasks, 2, context=multiprocessing.get_context("forkserver"),
                               failed=lambda task, why: ("failed", why),
                               lost=lambda task, why: ("lost", why))
    assert results[0] == 2 and results[3] == 4
    assert results[1][0] == "failed" and "exit code 3" in results[1][1], results[1]
    assert results[2][0] == "lost" and "killed by SIGKILL" in results[2][1], results[2]
    assert results[4][0] == "failed" and "killed by SIGSEGV" in results[4][1], results[4]


def _refuse_to_start() -> None:
    raise RuntimeError("all 1024 sandbox slots of this host are taken")


def test_a_pool_whose_processes_cannot_start_loses_its_tasks_and_says_why() -> None:
    import multiprocessing

    from course.grading import pool

    results = pool.run_in_pool(eval, ["1 + 1", "2 + 2"], 2,
                               context=multiprocessing.get_context("forkserver"),
                               initializer=_refuse_to_start,
                               failed=lambda task, why: ("failed", why),
                               lost=lambda task, why: ("lost", why))
    assert [kind for kind, _ in results] == ["lost", "lost"], results
    assert all("slots of this host are taken" in why for _, why in results), results


@pytest.mark.parametrize("files", [1, 2])
def test_no_sandbox_slot_is_the_graders_failure_not_the_students_zero(
        notebooks: dict[str, Path], tmp_path: Path, files: int) -> None:
    """A grading process that cannot take a sandbox slot (here: the slots' folder cannot be
    made) grades nothing: each student is the grader's failure, named, with exit status 1,
    and nothing is cached. One file is graded in this process, more in a pool."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    given = [str(notebooks["blank"])] * files
    done = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "course.grading.grade", *given, "--jobs", str(files),
         "--cache", str(tmp_path / "cache")], cwd=paths.REPO, capture_output=True, text=True,
        timeout=600, check=False, env={**os.environ, "TINYTORCH_SLOT_FOLDER": str(blocked / "x")})
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert len(reports) == files
    for report in reports:
        assert report["grader_failed"] is True and report["gradable"] is False, report
        assert report["ended"].startswith("grading failed (grader): "), report["ended"]
    assert "the grader failed on" in done.stderr
    assert not list((tmp_path / "cache").glob("*/*.json")), "a grader's failure was kept"


def test_a_sandbox_that_never_reached_the_students_code_is_the_graders_failure(
        notebooks: dict[str, Path]) -> None:
    """Limits too small for the observer itself (it cannot import numpy in 40 MiB): the
    student's first cell never ran, so nothing of theirs was decided."""
    from course.grading import grade

    report = grade.grade([notebooks["honest"]], jobs=1,
                         limits=sandbox.Limits(memory=40 * 2**20))[0]
    assert report["grader_failed"] is True, report["ended"]
    assert report["ended"].startswith("grading failed (grader): the sandbox ended before the "
                                      "notebook's code ran"), report["ended"]


def test_a_run_stopped_before_its_first_line_was_read_is_still_the_students(
        notebooks: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The grader reads a run's lines while it runs; a loaded machine may stop a run (a limit
    it checks first) before it has read the line saying the student's code began. The run's
    unread output still says so: a notebook that kills its own sandbox stays the student's 0,
    however late the grader looked."""
    from course.grading import grade

    def late(process: Any, stdin: bytes, on_line: Any, limits: Any, start: float,
             stopped: Any = None) -> str:
        process.stdin.write(stdin)
        process.stdin.close()
        process.wait()  # the grader gets the processor back only once the run has ended ...
        return sandbox.memory_reason(limits)  # ... and sees a limit before reading a line

    monkeypatch.setattr(sandbox, "_pump", late)
    report = grade.grade([notebooks["kills-itself"]], jobs=1)[0]
    assert report["grader_failed"] is False, report["ended"]
    assert report["total"] == 0 and report["ended"].startswith("stopped: more than"), \
        report["ended"]
