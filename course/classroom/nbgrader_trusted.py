"""nbgrader's autograde, with the trusted grade in place of executing the notebook.

nbgrader's ``autograde`` sanitizes a submission (restores the graded cells from the source),
executes it in a kernel, reads each graded cell's score from its outputs, and saves the scores
in the gradebook. Here the execution step is replaced: ``TrustedOutputs`` writes into each
graded cell the outcome that ``course.grading.submission`` decided (sandboxed run, judged outside),
as an error output carrying the check's message when the check failed, or a one-line confirmation
when it passed (followed by the report's note, when the check found something it leaves out of
the grade: "not graded (checked in your notebook, not in the grade): ..."). No kernel starts;
nbgrader's own grading of outputs, gradebook, late penalties and ``generate_feedback`` then work
as always, and the feedback shows the trusted messages.

This process runs no student code: it reads notebooks as JSON and writes the gradebook, the one
nbgrader is configured with (``course.assignment.config.db_url``: the course's SQLite file, or a
database server that several graders share; each writes only its own students' rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nbconvert.exporters import NotebookExporter
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.apps import NbGraderAPI
from nbgrader.preprocessors import (
    AssignLatePenalties,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)
from traitlets import Dict

from course.assignment import config, paths
from course.classroom import feedback as feedback_page
from course.classroom import inert, manual


def _settings(course: Path) -> Any:
    """The course's nbgrader settings for ``course``. The staged packages are not copied into
    each student's autograded and feedback folders: no kernel runs there, so nothing reads
    them, and copying them is most of nbgrader's time per notebook."""
    settings = config.load(course)
    settings.CourseDirectory.root = str(course)
    # nbgrader's default ignore list, plus the packages
    settings.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                                       *paths.STUDENT_PACKAGES]
    feedback_page.configure(settings)  # the course's feedback page (named cells, wrapped messages)
    return settings


#: Why nbgrader's own autograde is refused, where a grader sees it (the formgrader, a terminal).
KERNEL_REFUSED = (
    "nbgrader's own autograde would run each student's notebook in a kernel on your account; "
    "this course grades in a sandbox and judges outside it: run `make autograde` (python -m "
    "course.classroom.autograde) in the course's repository")


class KernelRefused(NotebookExporter):
    """nbgrader's autograde exporter, as the course's ``nbgrader_config.py`` names it for the
    formgrader's Autograde button and ``nbgrader autograde``: made before nbgrader touches any
    folder (so the autograded notebook already there is kept), it refuses, saying what to run.
    The course's own autograde (``autograde_here``) sets nbgrader's exporter back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(KERNEL_REFUSED)


class InertMarkdown(NbGraderPreprocessor):
    """Every markdown cell of a submission that would run or load something when shown
    (``inert.answer_as_text``) kept as its text, before the autograded notebook exists: the
    formgrader shows it to a grader, the feedback page to the student."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[Any, Any]:
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                shown = inert.answer_as_text(cell.source)
                if shown is not None:
                    cell.source = shown
        return nb, resources


class TrustedOutputs(NbGraderPreprocessor):
    """Fill each graded cell's outputs from the trusted report of this submission."""

    reports = Dict(help="student id -> its course.grading.submission report").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[Any, Any]:
        student = resources["nbgrader"]["student"]
        report = self.reports.get(student)
        if report is None:
            raise ValueError(f"no trusted report for student {student!r}")
        self._cells = {c["grade_id"]: c for c in report["cells"]}
        self._ended = report.get("ended")
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any],
                        index: int) -> tuple[NotebookNode, dict[str, Any]]:
        metadata = cell.get("metadata")
        meta = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else {}
        meta = meta if isinstance(meta, dict) else {}  # a malformed notebook: no graded cell
        if cell.get("cell_type") != "code":
            return cell, resources
        cell.outputs = []
        if not (meta.get("grade") and not meta.get("solution")):
            return cell, resources
        grade_id = meta.get("grade_id")
        outcome = self._cells.get(grade_id) if isinstance(grade_id, str) else None
        if outcome is not None and outcome["passed"]:
            # a passed check's message is a note on what it leaves out of the grade, if any
            # ("not graded (checked in your notebook, not in the grade): ..."): shown under it
            note = outcome.get("message") or ""
            cell.outputs = [new_output("stream", name="stdout",
                                       text="✓ passed (trusted grading)\n"
                                       + (f"\n{note}\n" if note else ""))]
        else:
            message = (outcome or {}).get("message") or f"not graded: {self._ended}"
            first, *rest = message.splitlines() or ["failed"]
            cell.outputs = [new_output("error", ename="CheckFailed", evalue=first,
                                       traceback=[first, *rest])]
        return cell, resources


#: Where an autograded notebook says what was graded: the digest of the submission's bytes and
#: when its outcomes were written (the feedback page states both).
GRADED_KEY = "tinytorch_graded"


class RecordGrading(NbGraderPreprocessor):
    """Write into the autograded notebook's metadata what was graded (``GRADED_KEY``): the
    SHA-256 of the submitted bytes the trusted report was decided on, and the time it is
    written. Runs after nbgrader's metadata clearing, which would remove it."""

    reports = Dict(help="student id -> its course.grading.submission report").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[Any, Any]:
        report = self.reports.get(resources["nbgrader"]["student"]) or {}
        nb.metadata[GRADED_KEY] = {
            "sha256": report.get("sha256"),
            "graded_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        return nb, resources


#: Called with (student, whether a score is in the gradebook now) as each student is done.
OnStudent = Callable[[str, bool], None]


def autograde(course: Path, reports: dict[str, dict[str, Any]],
              jobs: int | None = None, on_student: OnStudent | None = None) -> dict[str, str]:
    """nbgrader's autograde with the trusted outcomes, in ``jobs`` processes side by side
    (default: one per core), each a share of the students (nbgrader's logging and database
    sessions stay in those processes; the gradebook, SQLite or a server, takes their short
    writes in turn). A student whose autograde failed in its share (nbgrader refused the
    notebook, or found the database busy) is autograded once more on its own; if nbgrader
    refuses it again, its scores are written from the report directly. Returns student ->
    nbgrader's error for those. ``on_student`` is told of each student once, when it is done."""
    names = list(reports)
    if not names:
        return {}
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(names) or 1))
    shares = [{n: reports[n] for n in names[i::jobs]} for i in range(jobs)]
    told: set[str] = set()
    lock = threading.Lock()

    def tell(student: str, written: bool) -> None:
        with lock:
            if student in told or on_student is None:
                return
            told.add(student)
            on_student(student, written)

    failed: dict[str, str] = {}
    for result in _in_processes(course, shares, fallback=False, on_student=tell):
        failed.update(result)
    refused: dict[str, str] = {}
    if failed:
        refused = _in_processes(course, [{n: reports[n] for n in failed}], fallback=True,
                                on_student=tell)[0]
    # a process that died took its whole share: each of its students once more, alone, so
    # that only the notebook that kills nbgrader goes without a score
    crashed = [n for n, error in refused.items() if error.startswith(f"{NO_SCORE}: {_DIED}")]
    for start in range(0, len(crashed) if len(crashed) > 1 else 0, jobs):
        alone = [{n: reports[n]} for n in crashed[start:start + jobs]]
        for result in _in_processes(course, alone, fallback=True, on_student=tell):
            refused.update(result)
    for student in names:  # whoever no process spoke of (a process that died) is done too
        tell(student, not refused.get(student, "").startswith(NO_SCORE))
    return refused


#: How an autograde process announces a student it is done with (on its stdout).
_DONE = "tinytorch-autograded\t"


def _follow(stream: Any, on_student: OnStudent | None) -> None:
    for line in stream:
        if line.startswith(_DONE) and on_student is not None:
            student, _, written = line[len(_DONE):].rstrip("\n").partition("\t")
            on_student(student, written == "written")


def _in_processes(course: Path, shares: list[dict[str, dict[str, Any]]], *,
                  fallback: bool, on_student: OnStudent | None = None) -> list[dict[str, str]]:
    """``autograde_here`` on each share, in a process of its own, all at once; each student
    reported to ``on_student`` as its process finishes it."""
    with tempfile.TemporaryDirectory(prefix="tinytorch-reports-") as folder:
        running = []
        for index, share in enumerate(shares):
            given, refused = Path(folder) / f"reports-{index}.json", Path(folder) / f"{index}.out"
            log = Path(folder) / f"{index}.log"
            given.write_text(json.dumps(share))
            command = [sys.executable, "-m", "course.classroom.nbgrader_trusted", "autograde",
                       str(course), str(given), str(refused),
                       *([] if fallback else ["--no-fallback"])]
            with open(log, "wb") as errors:
                process = subprocess.Popen(  # noqa: S603 - this module, with its paths
                    command, stdout=subprocess.PIPE, stderr=errors, text=True)
            follower = threading.Thread(target=_follow, args=(process.stdout, on_student),
                                        daemon=True)
            follower.start()
            running.append((process, refused, log, follower))
        results = []
        for (process, refused, log, follower), share in zip(running, shares, strict=True):
            process.wait()
            follower.join()
            process.stdout.close()
            output = log.read_text(errors="replace")
            try:
                results.append(json.loads(refused.read_text()) if process.returncode == 0
                               else None)
            except (OSError, ValueError):
                results.append(None)
            if results[-1] is None:  # the share's students fail, never the class
                why = f"{_DIED} (exit code {process.returncode}): {output[-1500:]}"
                results[-1] = {student: (f"{NO_SCORE}: {why}" if fallback else why)
                               for student in share}
        return results


def autograde_here(course: Path, reports: dict[str, dict[str, Any]], *,
                   fallback: bool = True,
                   on_student: OnStudent | None = None) -> dict[str, str]:
    """Autograde every student of ``reports`` in ``course`` with the trusted outcomes; returns
    student -> error text for the submissions nbgrader did not autograde (its sanitizing
    rejects, e.g., edited cell metadata). With ``fallback``, their scores are then written
    from the report directly."""
    settings = _settings(course)
    settings.TrustedOutputs.reports = reports
    settings.RecordGrading.reports = reports
    # nbgrader's own list with Execute replaced by TrustedOutputs. Its closing CheckCellMetadata
    # (there because executing a notebook could change it) is left out: the sanitizing pass
    # autograde runs first has validated these cells' metadata, and TrustedOutputs writes
    # outputs only. The check is a quarter of nbgrader's time per notebook.
    settings.Autograde.exporter_class = NotebookExporter  # the course's nbgrader_config refuses
    settings.Autograde.autograde_preprocessors = [
        InertMarkdown, TrustedOutputs, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        RecordGrading, SaveAutoGrades, AssignLatePenalties,
    ]
    api = NbGraderAPI(config=settings)
    refused = {}
    for student in reports:
        # each hand grade stays with the answer text it was given for (course.classroom.manual)
        kept = manual.remember(course, [student])
        try:
            result = api.autograde(paths.ASSIGNMENT, student, force=True, create=True)
        except Exception as error:  # noqa: BLE001 - this student's notebook only
            result = {"success": False, "error": f"{type(error).__name__}: {error}"}
        manual.reconcile(course, kept)
        if not result["success"]:
            refused[student] = str(result.get("error") or result.get("log"))[-2000:]
            if fallback:
                try:
                    write_scores(course, student, reports[student])
                except Exception as error:  # noqa: BLE001 - reported by name, class goes on
                    refused[student] = (f"{NO_SCORE}: {type(error).__name__}: {error}; "
                                        f"nbgrader said: {refused[student]}")[:4000]
        if on_student is not None and (fallback or student not in refused):
            on_student(student, not refused.get(student, "").startswith(NO_SCORE))
    return refused


#: How the error of a student whose score could not be written at all begins.
NO_SCORE = "no score written"
_DIED = "nbgrader's autograde process failed"


def write_scores(course: Path, student: str, report: dict[str, Any]) -> None:
    """The trusted scores of one submission, straight into the gradebook (for a notebook
    nbgrader itself refuses to process)."""
    from nbgrader.api import Gradebook

    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(paths.ASSIGNMENT, student)
        notebook = gradebook.find_submission_notebook(
            paths.NOTEBOOK.removesuffix(".ipynb"), paths.ASSIGNMENT, student)
        points = {c["grade_id"]: c["points"] for c in report["cells"]}
        # a notebook that cannot be read has no written answer for a grader to read: 0
        unreadable = manual.answers_in(manual.notebook_path(course, student)) is None
        for grade in notebook.grades:
            if grade.cell_type == "markdown":  # a written answer: left for a grader
                if unreadable and grade.manual_score is None:
                    grade.auto_score, grade.needs_manual_grade = 0.0, False
                continue
            grade.auto_score = points.get(grade.name, 0.0)
            grade.needs_manual_grade = False
        gradebook.db.commit()


_APIS: dict[str, Any] = {}  # course -> its NbGraderAPI, made once per feedback process


def _feedback_shard(course: str, students: list[str]) -> list[str]:
    """Feedback of some students (in a process of ``feedback``); returns those that failed."""
    if course not in _APIS:
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
        _APIS[course] = NbGraderAPI(config=_settings(Path(course)))
    api = _APIS[course]
    return [s for s in students
            if not api.generate_feedback(paths.ASSIGNMENT, s, force=True)["success"]]


def feedback(course: Path, students: list[str], jobs: int | None = None,
             progress: bool = False) -> list[str]:
    """nbgrader's HTML feedback for ``students``, ``jobs`` processes at a time (it only reads
    the gradebook, so they run side by side), one student per task so that ``progress``
    (on stderr) counts each page as it is written; returns the students it failed for."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from course.grading.progress import Progress

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(students) or 1))
    context = multiprocessing.get_context("spawn")
    failed: list[str] = []
    shown = Progress(len(students), "feedback", unit="page") if progress else None
    try:
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = {pool.submit(_feedback_shard, str(course), [s]): s for s in students}
            for future in as_completed(futures):
                failed += future.result()
                if shown is not None:
                    student = futures[future]
                    shown.advance(f"{student}: no feedback" if student in failed else None)
    finally:
        if shown is not None:
            shown.close()
    return [s for s in students if s in failed]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course.classroom.nbgrader_trusted",
        description="The course's feedback pages for every autograded student (make feedback); "
                    "also the autograde step course.classroom.autograde runs in processes of "
                    "its own (COURSE GIVEN REFUSED [--no-fallback]).")
    commands = parser.add_subparsers(dest="command", required=True)
    pages = commands.add_parser("feedback", help="write notebooks/feedback/ for every "
                                                 "autograded student of COURSE")
    pages.add_argument("course", nargs="?", type=Path, default=paths.COURSE,
                       help="the nbgrader course root (default: %(default)s)")
    step = commands.add_parser("autograde", help="(run by course.classroom.autograde) write "
                                                 "the trusted outcomes of GIVEN into COURSE")
    step.add_argument("course", type=Path)
    step.add_argument("given", type=Path, help="the students' outcomes, JSON")
    step.add_argument("refused", type=Path, help="where to write the students refused, JSON")
    step.add_argument("--no-fallback", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "feedback":
        course = args.course
        submitted = sorted(p.name for p in (course / "autograded").iterdir()
                           if (p / paths.ASSIGNMENT / paths.NOTEBOOK).is_file())
        failed = feedback(course, submitted, progress=True)
        print(f"feedback for {len(submitted) - len(failed)} of {len(submitted)} students in "
              f"{course / 'feedback'}")
        for student in failed:
            print(f"  no feedback for {student}", file=sys.stderr)
        return 1 if failed else 0
    fallback = not args.no_fallback
    course, given, refused = args.course, args.given, args.refused
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    def announce(student: str, written: bool) -> None:
        print(f"{_DONE}{student}\t{'written' if written else 'none'}", flush=True)

    result = autograde_here(course, json.loads(given.read_text()), fallback=fallback,
                            on_student=announce)
    refused.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
