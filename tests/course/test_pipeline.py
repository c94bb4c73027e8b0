"""The instructor's pipeline end to end in a throw-away course, with the commands the Makefile
runs: import a folder of downloads, autograde (trusted grades through nbgrader), feedback
(nbgrader's HTML, showing the trusted messages), export."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from submissions import from_training_source, write

from course import autograde, grade, nbgrader_trusted, paths
from course.grade import SubmissionError
from course.release import nbgrader

pytestmark = pytest.mark.slow


def test_autograde_feedback_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    course = tmp_path / "course"
    course.mkdir()
    grade.make_course(course)
    downloads = tmp_path / "downloads"
    write(from_training_source(paths.REFERENCE.read_text()), downloads / "alice.ipynb")
    # bob hands in the untouched release plus a `checks` package that passes everything
    bob = downloads / "bob"
    bob.mkdir(parents=True)
    (bob / paths.NOTEBOOK).write_bytes(
        (course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_bytes())
    autograde.import_submissions(autograde.submissions_in(downloads), course)
    fake = course / "submitted" / "bob" / paths.ASSIGNMENT / "checks"
    fake.mkdir()
    (fake / "__init__.py").write_text("def run_check(*args, **kwargs):\n    pass\n")

    assert autograde.main([str(downloads), "--course", str(course)]) == 0
    printed = capsys.readouterr().out
    assert sorted(autograde.scores(course)) == [("alice", 100.0, 100.0), ("bob", 0.0, 100.0)]
    assert "alice" in printed and "100.0 / 100" in printed

    assert nbgrader_trusted.feedback(course, ["alice", "bob"], jobs=2) == []
    pages = {s: (course / "feedback" / s / paths.ASSIGNMENT / "07_training.html").read_text()
             for s in ("alice", "bob")}
    assert "passed (trusted grading)" in pages["alice"]
    assert "not written yet: CosineSchedule.get_lr" in pages["bob"]  # the trusted message
    nbgrader("export", course=course)
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert rows == {"alice": 100.0, "bob": 0.0}


def test_a_folder_without_submissions_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="no submissions"):
        autograde.submissions_in(tmp_path)
    (tmp_path / "bad name!.ipynb").write_text("{}")
    with pytest.raises(SubmissionError, match="student id"):
        autograde.submissions_in(tmp_path)
    with pytest.raises(SubmissionError, match="not a directory"):
        autograde.submissions_in(tmp_path / "missing")
