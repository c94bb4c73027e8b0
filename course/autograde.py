"""Autograde a class, after `make release`: trusted grades, in nbgrader's gradebook.

    python -m course.autograde               # what is in notebooks/submitted/ already
    python -m course.autograde DOWNLOADS/    # first import DOWNLOADS/<student>.ipynb files
                                             # (or DOWNLOADS/<student>/07_training.ipynb)
    python -m course.autograde --jobs 4 --limit 60

Imported files go to notebooks/submitted/<student>/07_training/ (nbgrader's layout; nbgrader's
`collect` and `zip_collect` fill it too). Every submission is graded by ``course.trusted``
(run in a sandbox, judged outside it, one sandbox per core); then nbgrader's autograde writes
those outcomes into the graded cells instead of executing the notebook
(``course.nbgrader_trusted``), so the gradebook, ``make feedback`` and ``make export`` carry the
trusted scores and messages. The scores are printed here.

One submission can only fail itself: a notebook that cannot be read or graded (not JSON, a
malformed cell, a grading that failed) is imported and scored 0 like any other, the others are
graded and written, and only then is each such student named with the reason (on stderr) and
the exit status 1.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from course import config, nbgrader_trusted, paths, sandbox, trusted
from course.grade import SubmissionError

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def submissions_in(folder: Path) -> dict[str, Path]:
    """Student id -> notebook, from ``<student>.ipynb`` files and ``<student>/`` folders."""
    if not folder.is_dir():
        raise SubmissionError(f"submissions folder {str(folder)!r} is not a directory")
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            found[entry.stem] = entry
        elif entry.is_dir() and (entry / paths.NOTEBOOK).is_file():
            found[entry.name] = entry / paths.NOTEBOOK
    for student, path in found.items():
        if not STUDENT_ID.match(student):
            raise SubmissionError(f"{str(path)!r}: {student!r} is not a usable student id")
    # an unreadable notebook is imported all the same: it is graded 0 with the reason, alone
    if not found:
        raise SubmissionError(
            f"no submissions in {str(folder)!r}: expected <student>.ipynb files or "
            f"<student>/{paths.NOTEBOOK} folders"
        )
    return found


def import_submissions(found: dict[str, Path], course: Path = paths.COURSE) -> None:
    for student, path in found.items():
        target = course / "submitted" / student / paths.ASSIGNMENT
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / paths.NOTEBOOK)


def scores(course: Path = paths.COURSE) -> list[tuple[str, float, float]]:
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", config.course_id()) as gradebook:
        assignment = gradebook.find_assignment(paths.ASSIGNMENT)
        return [(s.student.id, s.score, s.max_score) for s in assignment.submissions]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="a folder of submissions")
    parser.add_argument("--course", type=Path, default=paths.COURSE,
                        help="the nbgrader course root (default: notebooks/)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="sandboxes at a time (default: one per core)")
    parser.add_argument("--limit", type=float, default=sandbox.DEFAULT_LIMITS.wall,
                        help="seconds one submission may run (default %(default)s)")
    args = parser.parse_args(argv)
    if not (args.course / "gradebook.db").exists():
        print(f"error: no gradebook in {args.course}: run `make release` first", file=sys.stderr)
        return 2
    try:
        if args.folder is not None:
            import_submissions(submissions_in(args.folder), args.course)
    except SubmissionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    submitted = submitted_notebooks(args.course)
    if not submitted:
        print(f"error: nothing submitted in {args.course / 'submitted'}", file=sys.stderr)
        return 2
    reports = trusted.grade(list(submitted.values()), jobs=args.jobs,
                            limits=sandbox.Limits(wall=args.limit))
    by_student = dict(zip(submitted, reports, strict=True))
    refused = nbgrader_trusted.autograde(args.course, by_student, jobs=args.jobs)
    for student, score, max_score in scores(args.course):
        ended = by_student.get(student, {}).get("ended")
        note = f"  ({ended})" if ended else ""
        note += "  (nbgrader refused the notebook: scores written directly)" \
            if student in refused and not refused[student].startswith(NO_SCORE) else ""
        print(f"{student:24s} {score:6.1f} / {max_score:.0f}{note}")
    problems = not_graded(by_student, refused)
    for student, reason in problems.items():
        print(f"error: {student}: {reason}", file=sys.stderr)
    if problems:
        print(f"error: {len(problems)} of {len(by_student)} submissions could not be graded "
              "(their score is 0); every other score is written", file=sys.stderr)
    return 1 if problems else 0


NO_SCORE = nbgrader_trusted.NO_SCORE


def not_graded(reports: dict[str, dict], refused: dict[str, str]) -> dict[str, str]:
    """Student -> why their submission could not be graded: a notebook the grader cannot
    read, a grading that failed, or a score nbgrader could not take (those get 0)."""
    problems = {student: str(report.get("ended") or "not gradable")
                for student, report in reports.items() if report.get("gradable") is False}
    for student, error in refused.items():
        if error.startswith(NO_SCORE):
            problems[student] = (f"{problems[student]}; " if student in problems else "") + error
    return problems


def submitted_notebooks(course: Path = paths.COURSE) -> dict[str, Path]:
    """Student id -> submitted notebook, from nbgrader's submitted/ folder."""
    root = course / "submitted"
    found = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        notebook = folder / paths.ASSIGNMENT / paths.NOTEBOOK
        if notebook.is_file():
            found[folder.name] = notebook
    return found


if __name__ == "__main__":
    sys.exit(main())
