"""``make export``: grades.csv with what each total is made of and what still waits.

nbgrader's CSV export writes one total per student. This course's has two kinds of points (the
trusted checks' automatic 100, the written answers graded by hand) and a total that is not final
while an answer waits for a grader, so ``CourseCsvExport`` (named in the course's
``nbgrader_config.py`` as ``c.ExportApp.plugin_class``, so ``nbgrader export`` and the
formgrader's export write it too) adds, after nbgrader's columns:

- ``automatic`` / ``max_automatic``: the checks' points;
- ``by_hand`` / ``max_by_hand``: the written answers' points a grader decided;
- ``to_grade``: the written answers still waiting for a grader (``course.classroom.manual``'s
  rule: a rewritten answer is waiting again and its old points are not counted), separated by
  spaces; empty when the total is final.

It is written with Python's ``csv`` module (a name with a comma or a quote stays one field), and
a field a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) starts with
``'``: student names come from rosters and downloads.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins.export import ExportPlugin

from course.assignment import paths
from course.classroom import manual, spreadsheet

COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
           "email", "raw_score", "late_submission_penalty", "score", "max_score",
           "automatic", "max_automatic", "by_hand", "max_by_hand", "to_grade"]


def rows(gradebook: Gradebook, course: Path, students: list[str] | None = None,
         assignments: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per student and assignment of the gradebook (a student who submitted nothing:
    0), the columns of ``COLUMNS``."""
    found = []
    for assignment in gradebook.assignments:
        if assignments and assignment.name not in assignments:
            continue
        kinds: dict[str, float] = {"code": 0.0, "markdown": 0.0}
        for notebook in assignment.notebooks:
            for cell in notebook.grade_cells:
                kinds[cell.cell_type] = kinds.get(cell.cell_type, 0.0) + cell.max_score
        for student in gradebook.students:
            if students and student.id not in students:
                continue
            row: dict[str, Any] = {
                "assignment": assignment.name, "duedate": assignment.duedate,
                "student_id": student.id, "last_name": student.last_name,
                "first_name": student.first_name, "email": student.email,
                "max_score": assignment.max_score, "max_automatic": kinds["code"],
                "max_by_hand": kinds["markdown"], "timestamp": "", "raw_score": 0.0,
                "late_submission_penalty": 0.0, "score": 0.0, "automatic": 0.0,
                "by_hand": 0.0, "to_grade": ""}
            try:
                submission = gradebook.find_submission(assignment.name, student.id)
            except MissingEntry:
                found.append(row)
                continue
            penalty = submission.late_submission_penalty or 0.0
            row.update(timestamp=submission.timestamp, raw_score=submission.score,
                       late_submission_penalty=penalty,
                       score=max(0.0, submission.score - penalty))
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    if grade.cell_type == "code":
                        row["automatic"] += grade.score
                    elif manual.counted(grade):
                        row["by_hand"] += grade.score
            if assignment.name == paths.ASSIGNMENT:
                states = manual.answer_states(gradebook, course, student.id) or []
                row["to_grade"] = " ".join(grade.name for grade, decided, _ in states
                                           if decided in (manual.TO_GRADE, manual.EMPTY))
            found.append(row)
    return found


class CourseCsvExport(ExportPlugin):
    """nbgrader's CSV export with the course's columns (see the module's docstring)."""

    def export(self, gradebook: Gradebook) -> None:
        destination = self.to or "grades.csv"
        coursedir = getattr(self.parent, "coursedir", None)
        course = Path(coursedir.root) if coursedir is not None else Path.cwd()
        found = rows(gradebook, course, [str(s) for s in self.student] or None,
                     [str(a) for a in self.assignment] or None)
        self.log.info("Exporting grades to %s", destination)
        with open(destination, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for row in found:
                writer.writerow([spreadsheet.field(row[column]) for column in COLUMNS])
