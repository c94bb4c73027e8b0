"""Written answers graded by hand: which ones wait for a grader, after ``make autograde``.

The reflection's answers are nbgrader "manually graded answer" cells (markdown, ``solution``
and ``grade``). nbgrader's autograde (``course.classroom.nbgrader_trusted``, which writes outcomes
into code cells only) leaves each one as nbgrader does: an answer the student wrote, even an empty
one, is marked ``needs_manual_grade`` and counts 0 until a grader gives it points in the
formgrader; an answer left exactly as released ("YOUR ANSWER HERE") gets 0 from nbgrader with
the comment "No response." and needs nothing. ``waiting`` reads both from the gradebook, and
``lines`` says them the way ``make autograde`` prints them:

    needs grading by hand: alice: reflection_clipping, reflection_resume, ...
    needs grading by hand: carol: reflection_clipping (empty: 0 until graded), ...
    no written answer (0 points): bob: reflection_clipping, ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from course.assignment import config, paths
from course.grading.intake import Unreadable, read_notebook


@dataclass
class Waiting:
    """One student's written answers that a grader has still to see."""

    student: str
    to_grade: list[str] = field(default_factory=list)  # nbgrader's needs_manual_grade
    empty: list[str] = field(default_factory=list)  # of those, nothing written (0 so far)
    unanswered: list[str] = field(default_factory=list)  # left as released: 0, "No response."


def _sources(course: Path, student: str) -> dict[str, str]:
    """grade_id -> source of the markdown cells of the student's autograded notebook."""
    path = course / "autograded" / student / paths.ASSIGNMENT / paths.NOTEBOOK
    if not path.is_file():  # a notebook nbgrader refused: only the submission has its answers
        path = course / "submitted" / student / paths.ASSIGNMENT / paths.NOTEBOOK
    try:  # read like any submission: bounded and validated (a student's file may be anything)
        cells = read_notebook(path)
    except (OSError, Unreadable):
        return {}
    found = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            source = cell.get("source", "")
            found[meta["grade_id"]] = "".join(source) if isinstance(source, list) else str(source)
    return found


def waiting(course: Path = paths.COURSE, students: list[str] | None = None) -> list[Waiting]:
    """The students (all, or those of ``students``) with a written answer a grader has not
    graded yet, or left unanswered, in the gradebook's order."""
    found = []
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        for submission in gradebook.find_assignment(paths.ASSIGNMENT).submissions:
            student = submission.student.id
            if students is not None and student not in students:
                continue
            try:
                notebook = gradebook.find_submission_notebook(
                    paths.NOTEBOOK.removesuffix(".ipynb"), paths.ASSIGNMENT, student)
            except MissingEntry:
                continue
            entry = Waiting(student)
            sources = None
            for grade in notebook.grades:
                if grade.needs_manual_grade and grade.manual_score is None:
                    entry.to_grade.append(grade.name)
                    if grade.cell_type == "markdown":
                        sources = _sources(course, student) if sources is None else sources
                        if not sources.get(grade.name, "").strip():
                            entry.empty.append(grade.name)
                elif (grade.cell_type == "markdown" and grade.manual_score is None
                      and grade.auto_score == 0):
                    entry.unanswered.append(grade.name)
            if entry.to_grade or entry.unanswered:
                found.append(entry)
    return found


def lines(found: list[Waiting]) -> list[str]:
    """What ``make autograde`` prints of ``found``: one line per student and kind."""
    said = []
    for entry in found:
        if entry.to_grade:
            cells = [f"{name} (empty: 0 until graded)" if name in entry.empty else name
                     for name in entry.to_grade]
            said.append(f"needs grading by hand: {entry.student}: {', '.join(cells)}")
    for entry in found:
        if entry.unanswered:
            said.append(f"no written answer (0 points): {entry.student}: "
                        f"{', '.join(entry.unanswered)}")
    if any(entry.to_grade for entry in found):
        said.append("grade them in nbgrader's formgrader (Manual Grading, "
                    f"{paths.ASSIGNMENT}); then `make feedback` and `make export`")
    return said
