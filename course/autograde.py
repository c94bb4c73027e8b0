"""Autograde a class with nbgrader, after `make release`.

    python -m course.autograde               # what is in notebooks/submitted/ already
    python -m course.autograde DOWNLOADS/    # first import DOWNLOADS/<student>.ipynb files
                                             # (or DOWNLOADS/<student>/07_training.ipynb)

Imported files go to notebooks/submitted/<student>/07_training/ (nbgrader's layout; nbgrader's
`collect` and `zip_collect` fill it too). nbgrader then runs every submission against the
graded cells recorded at release time, copying the staged tinytorch and checks over anything a
student sent along; the scores land in notebooks/gradebook.db and are printed here.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from course import config, paths
from course.grade import SubmissionError, check_notebook
from course.release import nbgrader

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
        check_notebook(path)
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
    nbgrader("autograde", paths.ASSIGNMENT, "--force", course=args.course)
    for student, score, max_score in scores(args.course):
        print(f"{student:24s} {score:6.1f} / {max_score:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
