"""The instructor's pipeline end to end in a throw-away course, with the commands the Makefile
runs: import a folder of downloads, autograde (trusted grades through nbgrader), feedback
(nbgrader's HTML, showing the trusted messages), export."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from submissions import from_training_source, write

from course.assignment import cells, paths
from course.authoring.release import nbgrader
from course.classroom import autograde, imports, nbgrader_trusted
from course.grading import grade

pytestmark = pytest.mark.slow


def test_autograde_feedback_export(
        copy_course: Callable[[Path], None],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    course = tmp_path / "course"
    course.mkdir()
    copy_course(course)
    downloads = tmp_path / "downloads"
    write(from_training_source(paths.REFERENCE.read_text()), downloads / "alice.ipynb")
    # carol's train_epoch misses one closing parenthesis
    write(_missing_parenthesis(from_training_source(paths.REFERENCE.read_text())),
          downloads / "carol.ipynb")
    # bob hands in the untouched release plus a `checks` package that passes everything
    bob = downloads / "bob"
    bob.mkdir(parents=True)
    (bob / paths.NOTEBOOK).write_bytes(
        (course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_bytes())
    imports.import_submissions(imports.submissions_in(downloads).found, course)
    fake = course / "submitted" / "bob" / paths.ASSIGNMENT / "checks"
    fake.mkdir()
    (fake / "__init__.py").write_text("def run_check(*args, **kwargs):\n    pass\n")

    assert autograde.main([str(downloads), "--course", str(course)]) == 0
    printed = capsys.readouterr().out
    scores = {student: score for student, score, _ in autograde.scores(course)}
    assert scores["alice"] == 100.0 and scores["bob"] == 0.0 and scores["carol"] < 100.0
    written = sum(points for _, points, _ in cells.manual_cells(
        nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)))  # graded by hand, not here
    assert "alice" in printed and f"100.0 / {100 + written}" in printed
    carol = next(line for line in printed.splitlines() if line.startswith("carol "))
    assert "answer_Trainer_train_epoch raised SyntaxError, line" in carol, carol

    assert nbgrader_trusted.feedback(course, ["alice", "bob", "carol"], jobs=2) == []
    pages = {s: (course / "feedback" / s / paths.ASSIGNMENT / "07_training.html").read_text()
             for s in ("alice", "bob", "carol")}
    assert "passed (trusted grading)" in pages["alice"]
    assert "not written yet: CosineSchedule.get_lr" in pages["bob"]  # the trusted message
    said = "the answer cell for Trainer.train_epoch raised SyntaxError at line"
    assert said in pages["carol"] and "fix it first" in pages["carol"]
    nbgrader("export", course=course)
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}
    assert rows == {"alice": 100.0, "bob": 0.0, "carol": scores["carol"]}


def _missing_parenthesis(notebook: Any) -> Any:
    """The notebook with one closing parenthesis dropped in the train_epoch answer cell."""
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "answer_Trainer_train_epoch":
            assert "self._set_mode(True)" in cell.source
            cell.source = cell.source.replace("self._set_mode(True)", "self._set_mode(True", 1)
            return notebook
    raise AssertionError("no train_epoch answer cell")


def test_every_failing_check_says_first_which_cell_raised(tmp_path: Path) -> None:
    """make grade's JSON: the cell that did not run is named, with its error and line, and
    every cell that lost points names it first: the checks that need its code (the Trainer's)
    in the notebook's words, any other after what the cells that raised were."""
    path = write(_missing_parenthesis(from_training_source(paths.REFERENCE.read_text())),
                 tmp_path / "carol.ipynb")
    report = grade.grade([path], jobs=1)[0]
    raised = report["cells_that_raised"]  # later cells that use train_epoch may raise too
    assert (raised[0]["cell"], raised[0]["error"]) == (
        "the answer cell answer_Trainer_train_epoch", "SyntaxError")
    assert isinstance(raised[0]["line"], int)
    failing = [c for c in report["cells"] if not c["passed"]]
    firsts = (f"the answer cell for Trainer.train_epoch raised SyntaxError at line "
              f"{raised[0]['line']}: fix it first\n",
              "first, your notebook did not run cleanly: the answer cell "
              f"answer_Trainer_train_epoch raised SyntaxError, line {raised[0]['line']}")
    assert failing and all(c["message"].startswith(firsts) for c in failing), [
        c["message"][:200] for c in failing]
