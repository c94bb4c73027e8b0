"""``make report`` on the benchmark's class, and on a class of 1,000 made from it.

    python -m benchmarks.report              # make bench-report
    python -m benchmarks.report --copies 10  # 100 graded students, then 10 of each: 1,000

The class of ``benchmarks.grading`` (correct implementations, the mutant catalog and cheats, in
turn; 100 students) is graded as ``make autograde`` grades it (sandboxes, judged outside, then
nbgrader's autograde writing the trusted outcomes). The report is made for it, then the
gradebook's rows of every student and their autograded notebooks are copied ``--copies - 1``
times over under new ids (SQL inside the gradebook: nothing graded again), and the report is
made for that class. Measured: the seconds each report took, in the same run. The pages go to
``build/class-report-100/`` and ``build/class-report-1000/``; the figures to stdout and
``benchmarks/results/report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: The gradebook's tables of a student's submission, each with its foreign keys to rows that are
#: copied along (the others, the release's cells and notebooks, are shared).
COPIED = {
    "student": {},
    "submitted_assignment": {"student_id": "student"},
    "submitted_notebook": {"assignment_id": "submitted_assignment"},
    "grade": {"notebook_id": "submitted_notebook"},
    "comment": {"notebook_id": "submitted_notebook"},
}


def copy_students(course: Path, gradebook: Path, copies: int) -> int:
    """Every student ``copies - 1`` times more, as ``<id>~<k>``: their gradebook rows and
    their autograded notebook (linked). Returns the number of students after."""
    with sqlite3.connect(gradebook) as db:
        originals = [row[0] for row in db.execute("SELECT id FROM student")]
        for k in range(1, copies):
            suffix = f"~{k}"
            for table, keys in COPIED.items():
                columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
                chosen = [f"{c} || '{suffix}'" if c == "id" or c in keys else c
                          for c in columns]
                db.execute(f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608
                           f"SELECT {', '.join(chosen)} FROM {table} "
                           "WHERE id NOT LIKE '%~%'")
            for student in originals:
                source = course / "autograded" / student
                if source.exists():
                    os.symlink(source, course / "autograded" / f"{student}{suffix}")
        return db.execute("SELECT count(*) FROM student").fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("--class-size", type=int, default=100)
    parser.add_argument("--copies", type=int, default=10,
                        help="the graded class this many times over (default 10: 1,000)")
    args = parser.parse_args(argv)

    from benchmarks.grading import _class
    from course.assignment import config, paths
    from course.authoring.release import make_course
    from course.classroom import nbgrader_trusted, report
    from course.grading import batch, sandbox
    from course.grading.pool import LocalPool

    figures: dict[str, object] = {"cores": os.cpu_count(), "class_size": args.class_size,
                                  "copies": args.copies}
    with tempfile.TemporaryDirectory(prefix="tinytorch-bench-report-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        make_course(course)
        release = course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
        files = _class(args.class_size, course / "submitted", release)
        start = time.perf_counter()
        reports = batch.grade(list(files.values()), runner=LocalPool(os.cpu_count() or 1),
                              limits=sandbox.Limits(wall=60))
        nbgrader_trusted.autograde(course, dict(zip(files, reports, strict=True)))
        figures["graded_s"] = round(time.perf_counter() - start, 1)

        start = time.perf_counter()
        summary = report.write(course, ROOT / "build" / f"class-report-{args.class_size}")
        figures[f"report_{args.class_size}_s"] = round(time.perf_counter() - start, 2)
        figures["top_mistakes"] = [(m["code"], m["title"], m["students"], m["share"])
                                   for m in summary["mistakes"][:5]]
        figures["flagged_cells"] = [c["grade_id"] for c in summary["cells"]
                                    if c["flag"].startswith("worth")]
        gradebook = config.sqlite_file(config.db_url(course))
        if gradebook is None:
            print("error: the benchmark's gradebook is not SQLite", file=sys.stderr)
            return 1
        students = copy_students(course, gradebook, args.copies)
        out = ROOT / "build" / f"class-report-{students}"
        start = time.perf_counter()
        big = report.write(course, out)
        figures[f"report_{students}_s"] = round(time.perf_counter() - start, 2)
        figures["students_after_copies"] = students
        figures["submitted_after_copies"] = big["totals"]["submitted"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
