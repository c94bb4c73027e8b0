"""Grade submitted Module 07 notebooks and report JSON: trusted grading (``course.trusted``),
each notebook run in a sandbox, every score decided outside it, the class in parallel.

    python -m course.grade submission.ipynb             # one JSON object
    python -m course.grade a.ipynb b.ipynb [--jobs N]   # a JSON list, in the order given
    python -m course.grade a.ipynb --limit 30           # seconds a submission may run

For every graded cell: its grade_id, points, max_points, passed, and the check's message; then
total, max_total, seconds, how the run ended (``ended``: None, or why it stopped early), the
code cells that raised, and the isolation layers that were active. Exit status 0 when every
file was graded (whatever the scores; an unreadable notebook gets a report with 0 and the
reason), 2 for a file that does not exist.

``make_course`` builds a throw-away nbgrader course (source, staged packages, gradebook): the
tests and ``course.autograde`` use it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from course import paths, sandbox, trusted
from course.release import nbgrader, stage


class SubmissionError(ValueError):
    """A file given to grade is missing or is not a readable notebook."""


def check_notebook(path: Path) -> None:
    """Raise SubmissionError unless ``path`` is a readable notebook file."""
    if not path.is_file():
        raise SubmissionError(f"submission {str(path)!r} does not exist or is not a file")
    try:
        nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - any parse failure means "not a notebook"
        raise SubmissionError(f"submission {str(path)!r} is not a notebook: {error}") from error


def make_course(root: Path) -> None:
    """A course folder holding the assignment's source and a gradebook that knows its cells."""
    shutil.copy(paths.COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    source = root / "source" / paths.ASSIGNMENT
    skip = shutil.ignore_patterns(*paths.STUDENT_PACKAGES, "__pycache__", ".ipynb_checkpoints")
    shutil.copytree(paths.SOURCE_NOTEBOOK.parent, source, ignore=skip)
    stage(source)
    nbgrader("generate_assignment", paths.ASSIGNMENT, "--force", course=root)


def grade(files: Sequence[Path | str], *, jobs: int | None = None,
          limits: sandbox.Limits = sandbox.DEFAULT_LIMITS,
          seeds: Sequence[dict[str, int]] | None = None,
          budget: trusted.Budget = trusted.DEFAULT_BUDGET) -> list[dict[str, Any]]:
    """Grade every file (``jobs`` sandboxes at a time, default one per core); reports in the
    order of ``files``. A missing file is the caller's error (SubmissionError); anything else
    a file holds gets a report. ``budget`` bounds the time and memory of judging each one."""
    files = [Path(f) for f in files]
    if not files:
        raise SubmissionError("no submission given")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    for path in files:
        if not path.is_file():
            raise SubmissionError(f"submission {str(path)!r} does not exist or is not a file")
    return trusted.grade(files, jobs=jobs, limits=limits, seeds=seeds, budget=budget)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--jobs", type=int, default=None,
                        help="sandboxes at a time (default: one per core)")
    parser.add_argument("--limit", type=float, default=sandbox.DEFAULT_LIMITS.wall,
                        help="seconds one submission may run (default %(default)s)")
    parser.add_argument("--check-limit", type=float, default=sandbox.DEFAULT_LIMITS.per_line,
                        help="seconds one check may run (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        reports = grade(args.files, jobs=args.jobs, limits=sandbox.Limits(
            wall=args.limit, per_line=args.check_limit))
    except (SubmissionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json.dump(reports[0] if len(reports) == 1 else reports, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
