"""Grade submitted Module 07 notebooks with nbgrader and report JSON. No gradebook to set up:
each run builds a throw-away course (the source notebook, the student's packages, a fresh
gradebook), autogrades the files in it, and reads the scores back.

    python -m course.grade submission.ipynb            # one JSON object
    python -m course.grade a.ipynb b.ipynb --jobs 2    # a JSON list, in the order given

For every graded cell: its grade_id, points, max_points, passed, and the check's message (the
error a failing cell showed, or what it wrote to stderr); then total and max_total. Exit status
0 when every file was graded (whatever the scores), 2 for a file that is not a notebook.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.api import Gradebook

from course import config, paths
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


def _message(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
        elif output.output_type == "stream" and output.name == "stderr":
            parts.append(f"stderr: {output.text.strip()}")
    return "\n".join(parts)


def _report(root: Path, student: str, source: Path, seconds: float) -> dict[str, Any]:
    autograded = root / "autograded" / student / paths.ASSIGNMENT / paths.NOTEBOOK
    messages: dict[str, str] = {}
    if autograded.exists():
        for cell in nbformat.read(autograded, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id:
                messages[grade_id] = _message(cell)
    cells = []
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", config.course_id()) as gradebook:
        notebook = gradebook.find_submission_notebook(
            paths.NOTEBOOK.removesuffix(".ipynb"), paths.ASSIGNMENT, student
        )
        order = {cell.metadata.get("nbgrader", {}).get("grade_id"): i for i, cell in
                 enumerate(nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4).cells)}
        for grade in sorted(notebook.grades, key=lambda g: order.get(g.name, len(order))):
            points = float(grade.score)
            cells.append({
                "grade_id": grade.name,
                "points": points,
                "max_points": float(grade.max_score),
                "passed": points >= grade.max_score,
                "message": messages.get(grade.name, "not run: the notebook was not graded"),
            })
    return {
        "file": str(source),
        "total": sum(c["points"] for c in cells),
        "max_total": sum(c["max_points"] for c in cells),
        "seconds": round(seconds, 2),
        "cells": cells,
    }


def _grade_batch(files: Sequence[Path]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="tinytorch-grade-") as tmp:
        root = Path(tmp)
        make_course(root)
        students = [f"submission-{i:03d}" for i in range(len(files))]
        for student, path in zip(students, files, strict=True):
            target = root / "submitted" / student / paths.ASSIGNMENT
            target.mkdir(parents=True)
            shutil.copy(path, target / paths.NOTEBOOK)
        start = time.perf_counter()
        nbgrader("autograde", paths.ASSIGNMENT, "--force", course=root)
        each = (time.perf_counter() - start) / len(files)
        return [_report(root, s, p, each) for s, p in zip(students, files, strict=True)]


def grade(files: Sequence[Path | str], *, jobs: int = 1) -> list[dict[str, Any]]:
    """Grade every file; ``jobs`` courses autograde side by side (nbgrader itself grades one
    notebook at a time). Reports come back in the order of ``files``."""
    files = [Path(f) for f in files]
    if not files:
        raise SubmissionError("no submission given")
    if jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    for path in files:
        check_notebook(path)
    jobs = min(jobs, len(files))
    batches = [files[i::jobs] for i in range(jobs)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(_grade_batch, batches))
    by_file: dict[int, dict[str, Any]] = {}
    for i, reports in enumerate(results):
        for j, report in enumerate(reports):
            by_file[i + j * jobs] = report
    return [by_file[k] for k in range(len(files))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--jobs", type=int, default=1, help="courses graded in parallel")
    args = parser.parse_args(argv)
    try:
        reports = grade(args.files, jobs=args.jobs)
    except SubmissionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json.dump(reports[0] if len(reports) == 1 else reports, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
