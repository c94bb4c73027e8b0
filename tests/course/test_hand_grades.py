"""A hand grade belongs to the answer it was given for, and every record says so alike.

A class is autograded and graded by hand; then alice resubmits with one written answer rewritten
(into a wrong one) and one unchanged, and bob resubmits the very same bytes later. After `make
autograde`, `make feedback` and `make export`: the rewritten answer is to grade again in the
list, on the page, in grades.csv and in the gradebook the formgrader reads, its old points no
longer counted and shown as "was 2/3 for an earlier answer"; the unchanged one keeps its grade
and comment everywhere; every total agrees; and each feedback page belongs to the submission
made last (its time and secret) and says what was graded."""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbgrader.api import Gradebook
from submissions import from_training_source, write

from course.assignment import config, paths
from course.authoring.release import nbgrader
from course.classroom import autograde, manual, nbgrader_trusted

NOTEBOOK = paths.NOTEBOOK.removesuffix(".ipynb")
WRONG = "Both rules are the same: each divides the gradients by the same factor."


def _answered() -> nbformat.NotebookNode:
    return from_training_source(paths.REFERENCE.read_text())


def _submit(course: Path, student: str, notebook: Path, when: str, secret: str) -> None:
    """What `nbgrader collect` leaves in submitted/: the notebook, its time, its secret."""
    folder = course / "submitted" / student / paths.ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(notebook, folder / paths.NOTEBOOK)
    (folder / "timestamp.txt").write_text(when)
    (folder / "submission_secret.txt").write_text(secret)


def _grade_by_hand(course: Path, student: str, grade_id: str, points: float,
                   comment: str) -> None:
    """What the formgrader's save does (nbgrader's API handlers): points, then a comment."""
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        grade = gradebook.find_grade(grade_id, NOTEBOOK, paths.ASSIGNMENT, student)
        grade.manual_score, grade.needs_manual_grade = points, False
        gradebook.find_comment(grade_id, NOTEBOOK, paths.ASSIGNMENT,
                               student).manual_comment = comment
        gradebook.db.commit()


def _panel_text(soup: BeautifulSoup, grade_id: str) -> str:
    panel = soup.find("a", attrs={"name": grade_id}).find_parent("div")
    return " ".join(panel.get_text(" ").split())


@pytest.mark.slow
def test_a_rewritten_answer_is_graded_again_everywhere_and_an_unchanged_one_keeps_its_grade(
        copy_course: Callable[[Path], None], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    course = tmp_path / "course"
    course.mkdir()
    copy_course(course)
    first = write(_answered(), tmp_path / "first" / "alice.ipynb")
    _submit(course, "alice", first, "2026-12-01 10:00:00.000000 UTC", "a1" * 32)
    _submit(course, "bob", first, "2026-12-01 11:00:00.000000 UTC", "b1" * 32)
    assert autograde.main(["--course", str(course)]) == 0
    capsys.readouterr()
    _grade_by_hand(course, "alice", "reflection_clipping", 2.0, "Numbers right; why sqrt(k)?")
    _grade_by_hand(course, "alice", "reflection_resume", 3.0, "All four, with effects.")
    _grade_by_hand(course, "bob", "reflection_clipping", 3.0, "Full marks.")

    # alice rewrites one answer, keeps the other (reflowed: the same words); bob resubmits
    # the same bytes later, with a new secret, as `nbgrader submit` makes one each time
    again = _answered()
    for cell in again.cells:
        if cell.id == "reflection_clipping":
            cell.source = WRONG
        if cell.id == "reflection_resume":
            cell.source = "\n".join(cell.source.split(" ")) + "\n"
    second = write(again, tmp_path / "second" / "alice.ipynb")
    _submit(course, "alice", second, "2026-12-05 09:30:00.000000 UTC", "a2" * 32)
    _submit(course, "bob", first, "2026-12-06 08:00:00.000000 UTC", "b2" * 32)
    assert autograde.main(["--course", str(course)]) == 0
    printed = capsys.readouterr().out

    # the list make autograde prints
    alice_line = next(line for line in printed.splitlines()
                      if line.startswith("needs grading by hand: alice:"))
    assert "reflection_clipping (was 2/3 for an earlier answer)" in alice_line, alice_line
    assert "reflection_resume" not in alice_line, alice_line
    bob_line = next((line for line in printed.splitlines()
                     if line.startswith("needs grading by hand: bob:")), "")
    assert "reflection_clipping" not in bob_line and "reflection_resume" in bob_line

    # the gradebook, as the formgrader reads it (its flags and the comment box's placeholder)
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        def grade(student: str, grade_id: str) -> dict:
            found = gradebook.find_grade(grade_id, NOTEBOOK, paths.ASSIGNMENT, student)
            return {**found.to_dict(), "counted": found.score}

        def comment(student: str, grade_id: str) -> dict:
            return gradebook.find_comment(grade_id, NOTEBOOK, paths.ASSIGNMENT,
                                          student).to_dict()

        rewritten = grade("alice", "reflection_clipping")
        assert rewritten["needs_manual_grade"] and rewritten["manual_score"] is None
        assert rewritten["counted"] == 0.0  # not counted until graded again
        assert comment("alice", "reflection_clipping")["auto_comment"] == (
            "was 2/3 for an earlier answer; its comment: Numbers right; why sqrt(k)?")
        assert comment("alice", "reflection_clipping")["manual_comment"] is None
        kept = grade("alice", "reflection_resume")
        assert not kept["needs_manual_grade"] and kept["manual_score"] == 3.0
        assert comment("alice", "reflection_resume")["manual_comment"] == "All four, with effects."
        assert not grade("bob", "reflection_clipping")["needs_manual_grade"]
        assert grade("bob", "reflection_clipping")["manual_score"] == 3.0
        flagged = gradebook.find_submission_notebook(NOTEBOOK, paths.ASSIGNMENT, "alice")
        assert flagged.needs_manual_grade  # the formgrader's list flags alice
        totals = {s.student.id: s.score
                  for s in gradebook.find_assignment(paths.ASSIGNMENT).submissions}
    assert totals == {"alice": 103.0, "bob": 103.0}
    table = {line.split()[0]: float(line.split()[1]) for line in printed.splitlines()
             if re.match(r"^\w+\s+[0-9.]+ / ", line)}
    assert table == totals

    # the feedback pages
    assert nbgrader_trusted.feedback(course, ["alice", "bob"], jobs=1) == []
    page = BeautifulSoup((course / "feedback/alice" / paths.ASSIGNMENT
                          / f"{NOTEBOOK}.html").read_text(), "html.parser")
    clipping = _panel_text(page, "reflection_clipping")
    assert "to grade again: 3.0 points (was 2/3 for an earlier answer)" in clipping, clipping
    assert "Score:" not in clipping and "Numbers right" not in clipping, clipping
    resume = _panel_text(page, "reflection_resume")
    assert "Score: 3.0 / 3.0" in resume and "All four, with effects." in resume, resume
    assert "(Score: 103.0 / 114.0)" in page.find("h4").get_text()
    stated = " ".join(page.find(id="graded").get_text(" ").split())
    digest = hashlib.sha256(second.read_bytes()).hexdigest()
    assert "Your submission of 2026-12-05 09:30:00 UTC" in stated, stated
    assert digest[:12] in stated and ", graded 20" in stated, stated
    assert "Still waiting for a grader: reflection_clipping," in stated
    assert "reflection_resume" not in stated

    # bob's feedback belongs to the submission he made last, though its bytes did not change
    for name, made in (("timestamp.txt", "2026-12-06 08:00:00.000000 UTC"),
                       ("submission_secret.txt", "b2" * 32)):
        assert (course / "autograded/bob" / paths.ASSIGNMENT / name).read_text() == made
        assert (course / "feedback/bob" / paths.ASSIGNMENT / name).read_text() == made
    bob_page = BeautifulSoup((course / "feedback/bob" / paths.ASSIGNMENT
                              / f"{NOTEBOOK}.html").read_text(), "html.parser")
    assert "Your submission of 2026-12-06 08:00:00 UTC" in bob_page.find(id="graded").get_text()

    # grades.csv
    nbgrader("export", course=course)
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    alice = rows["alice"]
    assert float(alice["score"]) == 103.0 == float(alice["automatic"]) + float(alice["by_hand"])
    assert (float(alice["max_automatic"]), float(alice["max_by_hand"])) == (100.0, 14.0)
    waiting = alice["to_grade"].split()
    assert "reflection_clipping" in waiting and "reflection_resume" not in waiting
    assert "reflection_clipping" not in rows["bob"]["to_grade"].split()

    # graded again by hand, the rewritten answer counts and waits no more
    _grade_by_hand(course, "alice", "reflection_clipping", 0.0, "They are not the same.")
    assert "reflection_clipping" not in {name for entry in manual.waiting(course)
                                         for name in entry.to_grade if entry.student == "alice"}


@pytest.mark.slow
def test_an_unreadable_submission_has_no_answers_to_grade(
        copy_course: Callable[[Path], None], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt file scores 0 and is said to be unreadable, not six empty answers to grade."""
    course = tmp_path / "course"
    course.mkdir()
    copy_course(course)
    broken = tmp_path / "dan.ipynb"
    broken.write_text('{"cells": [ this is not JSON')
    _submit(course, "dan", broken, "2026-12-01 10:00:00.000000 UTC", "d1" * 32)
    assert autograde.main(["--course", str(course)]) == 1
    printed = capsys.readouterr().out
    assert "not readable: dan's submission (no written answer to grade: 0)" in printed
    assert "needs grading by hand: dan" not in printed
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        notebook = gradebook.find_submission_notebook(NOTEBOOK, paths.ASSIGNMENT, "dan")
        assert not notebook.needs_manual_grade and notebook.score == 0.0
