"""Written answers graded by hand: one rule for what a hand grade belongs to and what waits.

The reflection's answers are nbgrader "manually graded answer" cells (markdown, ``solution``
and ``grade``). A grader gives each one points and a comment in the formgrader, which shows the
answer as the student's *autograded* notebook holds it. So a hand grade belongs to that text:

- before ``make autograde`` writes a student's new autograded notebook (``remember``), the
  digest of every graded answer is taken from the notebook the grader read, with the grade;
- after it (``reconcile``), an answer whose text is unchanged keeps its grade and comment and
  waits for nobody; an answer whose text changed is to grade again: its old points are no
  longer counted (nbgrader would keep counting them, flagged or not) and it says "was 2/3 for
  an earlier answer", with the old comment, where the grader types (the formgrader shows it in
  the empty comment box) and on the student's page.

nbgrader's own rule is different: every resubmission or regrade marks every graded answer
``needs_manual_grade`` again and keeps the old score, so a rewritten answer silently kept points
given to other words while each page disagreed about whether it was graded.

``state`` is the one place that decides, for an answer, "graded", "to grade", "empty" (to grade,
nothing written: 0 until graded) or "unanswered" (left as released: 0, "No response.", nothing to
grade). ``waiting`` (what ``make autograde`` lists), the feedback page
(``course.classroom.feedback``) and the export (``course.classroom.export``) all ask it:

    needs grading by hand: alice: reflection_clipping (was 2/3 for an earlier answer), ...
    needs grading by hand: carol: reflection_clipping (empty: 0 until graded), ...
    no written answer (0 points): bob: reflection_clipping, ...
    not readable: dan's submission (no written answer to grade: 0)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry

from course.assignment import config, paths
from course.grading.intake import Unreadable, read_notebook

GRADED, TO_GRADE, EMPTY, UNANSWERED = "graded", "to grade", "empty", "unanswered"
#: The notebook's name in the gradebook.
NOTEBOOK_ID = paths.NOTEBOOK.removesuffix(".ipynb")
#: How an answer's earlier grade is remembered on it (nbgrader's ``auto_comment``).
_EARLIER = re.compile(r"^was [0-9.]+/[0-9.]+ for an earlier answer\b.*", re.DOTALL)


def digest(text: str) -> str:
    """The identity of an answer's text: SHA-256 of its words (a reflowed line or a trailing
    newline is the same answer; any changed word is another one)."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def earlier_note(score: float, points: float, comment: str | None = None) -> str:
    """What an answer rewritten after it was graded says of the grade it had."""
    note = f"was {score:g}/{points:g} for an earlier answer"
    return f"{note}; its comment: {comment.strip()}" if comment and comment.strip() else note


def earlier_of(auto_comment: str | None) -> str | None:
    """The earlier grade an answer carries (``earlier_note``), or None."""
    if not auto_comment:
        return None
    found = _EARLIER.search(auto_comment.removeprefix("No response. "))
    return found.group(0) if found else None


def state(grade: Any, text: str | None) -> str:
    """The one rule: what a written answer's gradebook ``grade`` and its ``text`` mean.

    - flagged (``needs_manual_grade``): "to grade", or "empty" when nothing is written;
    - a grader's points on it and not flagged: "graded";
    - otherwise nbgrader's automatic 0 for an answer left as released: "unanswered".
    """
    if grade.needs_manual_grade:
        return TO_GRADE if (text or "").strip() else EMPTY
    if grade.manual_score is not None:
        return GRADED
    return UNANSWERED


def counted(grade: Any) -> bool:
    """Whether an answer's points count in a total: only once a grader decided them."""
    return not grade.needs_manual_grade


# ---- the answers' texts, as the formgrader shows them


def notebook_path(course: Path, student: str) -> Path:
    """The notebook the formgrader shows a grader: the autograded one, or (when nbgrader
    refused the notebook and none exists) the submission."""
    path = course / "autograded" / student / paths.ASSIGNMENT / paths.NOTEBOOK
    if not path.is_file():
        path = course / "submitted" / student / paths.ASSIGNMENT / paths.NOTEBOOK
    return path


def answers_in(path: Path) -> dict[str, str] | None:
    """grade_id -> text of each graded markdown cell of the notebook at ``path``; None when
    it cannot be read (read like any submission: bounded and validated)."""
    try:
        cells = read_notebook(path)
    except (OSError, Unreadable):
        return None
    found = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if (isinstance(meta, dict) and isinstance(meta.get("grade_id"), str)
                and cell.get("cell_type") == "markdown"):
            source = cell.get("source", "")
            found[meta["grade_id"]] = "".join(source) if isinstance(source, list) else str(source)
    return found


def _written(notebook: Any) -> list[Any]:
    """The written answers among a submitted notebook's grades."""
    return [grade for grade in notebook.grades if grade.cell_type == "markdown"]


def _notebook(gradebook: Gradebook, student: str) -> Any | None:
    try:
        return gradebook.find_submission_notebook(NOTEBOOK_ID, paths.ASSIGNMENT, student)
    except MissingEntry:
        return None


# ---- keeping a hand grade with the answer it was given for


@dataclass
class Kept:
    """A written answer's grade before a new autograde: the digest of the text graded (None:
    no notebook to read it from), the grader's points, extra credit and comment, and the note
    of an earlier grade it already carried."""

    digest: str | None
    score: float | None
    extra_credit: float | None
    comment: str | None
    earlier: str | None


def remember(course: Path, students: list[str]) -> dict[str, dict[str, Kept]]:
    """Before ``students`` are autograded again: each written answer a grader graded (or that
    carries an earlier grade), with the digest of the text they read."""
    kept: dict[str, dict[str, Kept]] = {}
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        for student in students:
            notebook = _notebook(gradebook, student)
            if notebook is None:
                continue
            texts = None
            for grade in _written(notebook):
                comment = gradebook.find_comment(grade.name, NOTEBOOK_ID, paths.ASSIGNMENT,
                                                 student)
                earlier = earlier_of(comment.auto_comment)
                if grade.manual_score is None and earlier is None:
                    continue
                if texts is None:
                    path = course / "autograded" / student / paths.ASSIGNMENT / paths.NOTEBOOK
                    texts = answers_in(path) or {}
                text = texts.get(grade.name)
                # a grade nbgrader already flagged again (an autograde that ran without this
                # rule) was given for a text nobody can name any more: it is graded again
                known = text is not None and not grade.needs_manual_grade
                kept.setdefault(student, {})[grade.name] = Kept(
                    digest(text) if known else None, grade.manual_score, grade.extra_credit,
                    comment.manual_comment, earlier)
    return kept


def reconcile(course: Path, kept: dict[str, dict[str, Kept]]) -> None:
    """After the students of ``kept`` were autograded: each grade stays with its answer's
    text (see the module's docstring)."""
    if not kept:
        return
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        for student, answers in kept.items():
            notebook = _notebook(gradebook, student)
            if notebook is None:
                continue
            texts = answers_in(notebook_path(course, student)) or {}
            for grade in _written(notebook):
                before = answers.get(grade.name)
                if before is None:
                    continue
                comment = gradebook.find_comment(grade.name, NOTEBOOK_ID, paths.ASSIGNMENT,
                                                 student)
                text = texts.get(grade.name)
                same = before.digest is not None and text is not None \
                    and digest(text) == before.digest
                if before.score is not None and same:
                    grade.manual_score, grade.extra_credit = before.score, before.extra_credit
                    grade.needs_manual_grade = False
                    comment.manual_comment = before.comment
                    continue
                note = before.earlier
                if before.score is not None:
                    note = earlier_note(before.score + (before.extra_credit or 0.0),
                                        grade.max_score, before.comment)
                grade.manual_score = grade.extra_credit = None
                grade.needs_manual_grade = grade.auto_score is None
                comment.manual_comment = None
                # "No response." stays first when the new answer is the released text
                comment.auto_comment = " ".join(
                    part for part in (comment.auto_comment if comment.auto_comment
                                      and earlier_of(comment.auto_comment) is None else None,
                                      note) if part)
        gradebook.db.commit()


def settle(course: Path, students: list[str]) -> None:
    """Hand grades nbgrader left flagged with their old points (an autograde interrupted
    between nbgrader's write and ``reconcile``): graded again, the old points not counted."""
    reconcile(course, remember(course, students))


# ---- what waits for a grader


@dataclass
class Waiting:
    """One student's written answers that a grader has still to see."""

    student: str
    to_grade: list[str] = field(default_factory=list)  # written, flagged
    empty: list[str] = field(default_factory=list)  # of those, nothing written (0 so far)
    unanswered: list[str] = field(default_factory=list)  # left as released: 0, "No response."
    earlier: dict[str, str] = field(default_factory=dict)  # of to_grade: the earlier grade
    unreadable: bool = False  # no notebook to read: no written answer at all


def answer_states(gradebook: Gradebook, course: Path, student: str,
                  ) -> list[tuple[Any, str, str | None]] | None:
    """(grade, state, earlier grade) of each written answer of ``student``; None when the
    gradebook has no submission of theirs, [] when their notebook cannot be read."""
    notebook = _notebook(gradebook, student)
    if notebook is None:
        return None
    written = _written(notebook)
    texts = answers_in(notebook_path(course, student))
    if texts is None:
        return []
    found = []
    for grade in written:
        comment = gradebook.find_comment(grade.name, NOTEBOOK_ID, paths.ASSIGNMENT, student)
        found.append((grade, state(grade, texts.get(grade.name)),
                      earlier_of(comment.auto_comment)))
    return found


def waiting(course: Path = paths.COURSE, students: list[str] | None = None) -> list[Waiting]:
    """The students (all, or those of ``students``) with a written answer to grade, left
    unanswered, or no readable notebook, in the gradebook's order."""
    found = []
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        for submission in gradebook.find_assignment(paths.ASSIGNMENT).submissions:
            student = submission.student.id
            if students is not None and student not in students:
                continue
            states = answer_states(gradebook, course, student)
            if states is None:
                continue
            entry = Waiting(student, unreadable=not states)
            for grade, decided, earlier in states:
                if decided in (TO_GRADE, EMPTY):
                    entry.to_grade.append(grade.name)
                    if decided == EMPTY:
                        entry.empty.append(grade.name)
                    if earlier:
                        entry.earlier[grade.name] = earlier
                elif decided == UNANSWERED:
                    entry.unanswered.append(grade.name)
            if entry.to_grade or entry.unanswered or entry.unreadable:
                found.append(entry)
    return found


def lines(found: list[Waiting]) -> list[str]:
    """What ``make autograde`` prints of ``found``: one line per student and kind."""
    said = []
    for entry in found:
        if entry.to_grade:
            cells = []
            for name in entry.to_grade:
                if name in entry.empty:
                    name = f"{name} (empty: 0 until graded)"
                elif name in entry.earlier:
                    name = f"{name} ({entry.earlier[name].split(';')[0]})"
                cells.append(name)
            said.append(f"needs grading by hand: {entry.student}: {', '.join(cells)}")
    for entry in found:
        if entry.unanswered:
            said.append(f"no written answer (0 points): {entry.student}: "
                        f"{', '.join(entry.unanswered)}")
    for entry in found:
        if entry.unreadable:
            said.append(f"not readable: {entry.student}'s submission (no written answer to "
                        "grade: 0)")
    if any(entry.to_grade for entry in found):
        said.append("grade them in nbgrader's formgrader (`make formgrader`, Manual Grading, "
                    f"{paths.ASSIGNMENT}); then `make feedback` and `make export`")
    return said
