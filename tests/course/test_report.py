"""``make report`` (``course.classroom.report``) on a class with known bugs, graded once: its
figures against the same numbers read directly from the gradebook and from the checks run on
each student's code; the codes on the feedback page; the page in a browser with the network
blocked; and no student named unless ``--names`` asks.

The class: alice (the reference), bob (gradients never cleared between optimizer steps), carol
and dan (that bug and a checkpoint without the optimizer's buffers, the same bytes), erin (the
checkpoint bug alone, submitted after the due date), frank (the untouched release) and gina (on
the roster, nothing submitted).
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import importlib
import io
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from nbgrader.api import Gradebook
from submissions import from_training_source, write
from variants import Mutant, mutant_implementations, mutant_source

from checks import run_all
from checks.diagnose import LIKELY_BUG
from course.assignment import config, paths
from course.classroom import autograde, nbgrader_trusted, report

pytestmark = pytest.mark.slow

CHECKS_TESTS = Path(__file__).parent.parent / "checks"
MUTANTS: dict[str, Mutant] = {
    mutant.name: mutant
    for path in sorted(CHECKS_TESTS.glob("mutants_*.py"))
    for mutant in importlib.import_module(path.stem).MUTANTS
}
CLEAR, BUFFERS = "no-zero-grad-between-steps", "checkpoint_without_optimizer_buffers"
BUGS = {"alice": (), "bob": (CLEAR,), "carol": (CLEAR, BUFFERS), "dan": (CLEAR, BUFFERS),
        "erin": (BUFFERS,)}
DUE = datetime.datetime(2026, 12, 2, 12, 0)


def _with(names: tuple[str, ...]) -> str:
    """training.py with the patches of every mutant in ``names``."""
    return mutant_source(Mutant("+".join(names) or "reference",
                                tuple(p for n in names for p in MUTANTS[n].patches),
                                frozenset({"x"}), frozenset({"x"}), ""))


def _codes_of_the_checks(names: tuple[str, ...]) -> set[str]:
    """The codes the checks name for this code, run here at the visible seed (not through the
    grading pipeline the report reads)."""
    mutant = Mutant("+".join(names), tuple(p for n in names for p in MUTANTS[n].patches),
                    frozenset({"x"}), frozenset({"x"}), "")
    with contextlib.redirect_stdout(io.StringIO()):
        results = run_all(mutant_implementations(mutant))
    return {m[1] for message in results.values() if message
            for m in LIKELY_BUG.finditer(message) if m[1]}


@pytest.fixture(scope="module")
def graded_class(copy_course: Callable[[Path], None],
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    course = tmp_path_factory.mktemp("report") / "course"
    course.mkdir()
    copy_course(course)
    downloads = course.parent / "downloads"
    for student, bugs in BUGS.items():
        write(from_training_source(_with(bugs)), downloads / f"{student}.ipynb")
    (downloads / "frank").mkdir(parents=True)
    (downloads / "frank" / paths.NOTEBOOK).write_bytes(
        (course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_bytes())
    times = course.parent / "times.csv"
    times.write_text("student,submitted\n" + "".join(
        f"{s},{'2026-12-03T09:00:00' if s == 'erin' else '2026-12-01T09:00:00'}\n"
        for s in [*BUGS, "frank"]))
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        gradebook.update_or_create_assignment(paths.ASSIGNMENT, duedate=DUE)
        gradebook.update_or_create_student("gina")
    with contextlib.redirect_stdout(io.StringIO()):
        assert autograde.main([str(downloads), "--course", str(course), "--times", str(times),
                               "--jobs", "2"]) == 0
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        for student, points in (("alice", 3.0), ("bob", 1.0)):
            grade = gradebook.find_grade("reflection_clipping", Path(paths.NOTEBOOK).stem,
                                         paths.ASSIGNMENT, student)
            grade.manual_score, grade.needs_manual_grade = points, False
        gradebook.db.commit()
    return course


def _gradebook_scores(course: Path) -> dict[str, dict[str, Any]]:
    """Per submitted student, read through nbgrader's own objects: each cell's score and kind."""
    found = {}
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        for submission in gradebook.assignment_submissions(paths.ASSIGNMENT):
            grades = {g.name: g for nb in submission.notebooks for g in nb.grades}
            found[submission.student.id] = {
                "code": {n: g.score for n, g in grades.items() if g.cell_type == "code"},
                "written": {n: (g.needs_manual_grade, g.manual_score, g.score)
                            for n, g in grades.items() if g.cell_type == "markdown"}}
    return found


def test_the_figures_are_the_gradebooks_and_the_checks(graded_class: Path, tmp_path: Path
                                                       ) -> None:
    out = tmp_path / "out"
    summary = report.write(graded_class, out)
    direct = _gradebook_scores(graded_class)
    submitted = sorted(direct)
    assert submitted == ["alice", "bob", "carol", "dan", "erin", "frank"]

    totals = summary["totals"]
    assert (totals["students"], totals["submitted"], totals["not_submitted"], totals["late"],
            totals["messages_missing"]) == (7, 6, 1, 1, 0)
    automatic = [sum(direct[s]["code"].values()) for s in submitted]
    assert totals["automatic"]["mean"] == round(statistics.fmean(automatic), 3)
    assert totals["automatic"]["median"] == statistics.median(automatic)
    assert max(automatic) == 100.0 and min(automatic) == 0.0

    # per cell: the mean and the corrected item-total correlation, computed here directly
    for row in summary["cells"]:
        scores = [direct[s]["code"][row["grade_id"]] for s in submitted]
        rest = [sum(direct[s]["code"].values()) - direct[s]["code"][row["grade_id"]]
                for s in submitted]
        assert row["mean"] == round(statistics.fmean(scores), 3), row
        if len(set(scores)) > 1 and len(set(rest)) > 1:
            assert row["discrimination"] == round(statistics.correlation(scores, rest), 3), row
            assert row["flag"].startswith("worth") == (row["discrimination"] < 0.1), row
        else:
            assert row["discrimination"] is None and row["flag"].startswith("no spread"), row

    # the mistakes: each student's codes are the ones the checks name for their code here
    expected: dict[str, set[str]] = {}
    for student, bugs in BUGS.items():
        for code in _codes_of_the_checks(bugs) if bugs else set():
            expected.setdefault(code, set()).add(student)
    assert expected, "the checks named no code for the class's bugs"
    counted = {m["code"]: m["students"] for m in summary["mistakes"]}
    assert counted == {code: len(students) for code, students in expected.items()}
    for m in summary["mistakes"]:
        assert m["share"] == round(m["students"] / 6, 4) and m["title"] and m["checks"], m
    ranks = [m["students"] for m in summary["mistakes"]]
    assert ranks == sorted(ranks, reverse=True)
    clear = {c for c, s in expected.items() if s == {"bob", "carol", "dan"}}
    buffers = {c for c, s in expected.items() if s == {"carol", "dan", "erin"}}
    assert clear and buffers, expected
    pairs = {tuple(p["codes"]): p["students"] for p in summary["pairs"]}
    assert any(pairs.get(tuple(sorted((a, b)))) == 2 for a in clear for b in buffers), pairs

    # the written answers: what the gradebook holds, in the report's three states
    clipping = next(w for w in summary["written"] if w["grade_id"] == "reflection_clipping")
    states = [direct[s]["written"]["reflection_clipping"] for s in submitted]
    assert clipping["graded"] == sum(1 for flag, hand, _ in states if not flag and hand is not None)
    assert clipping["waiting"] == sum(1 for flag, _, _ in states if flag)
    assert clipping["grades"] == {"1": 1, "3": 1} and clipping["mean"] == 2.0
    assert totals["by_hand"]["students_waiting"] == sum(
        1 for s in submitted if any(flag for flag, _, _ in direct[s]["written"].values()))

    # the files: the same figures, and no student's name anywhere without --names
    with open(out / "mistakes.csv", newline="") as handle:
        assert {r["code"]: int(r["students"]) for r in csv.DictReader(handle)} == counted
    assert json.loads((out / "summary.json").read_text()) == summary
    for path in out.iterdir():
        text = path.read_text()
        assert not any(name in text for name in ("alice", "carol", "erin", "frank", "gina")), (
            path)
    assert not (out / "students.csv").exists()


def test_names_only_when_asked(graded_class: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--course", str(graded_class), "--out", str(tmp_path), "--names"]) == 0
    printed = capsys.readouterr().out
    assert "6 of 7 students submitted" in printed and "1. TT" in printed, printed
    with open(tmp_path / "students.csv", newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert set(rows) == {"alice", "bob", "carol", "dan", "erin", "frank", "gina"}
    assert rows["gina"]["submitted"] == "False" and rows["erin"]["late"] == "True"
    assert rows["alice"]["codes"] == "" and rows["carol"]["codes"] == rows["dan"]["codes"]
    assert "gina" in (tmp_path / "index.html").read_text()


def test_the_feedback_page_links_each_code_to_its_explanation(graded_class: Path) -> None:
    assert nbgrader_trusted.feedback(graded_class, ["erin"], jobs=1) == []
    page = (graded_class / "feedback" / "erin" / paths.ASSIGNMENT / paths.NOTEBOOK
            ).with_suffix(".html").read_text()
    soup = BeautifulSoup(page, "html.parser")
    links = soup.select("a.cause-code")
    assert links, "no code linked on erin's page"
    for link in links:
        code = link.get_text()
        target = soup.find(id=code)
        assert link["href"] == f"#{code}" and target is not None, code
        assert target.get_text().startswith(f"{code}: ") and "Wrong:" in target.get_text()


def test_the_page_opens_offline_in_a_browser(graded_class: Path, tmp_path: Path, page: Any,
                                             screenshot: Callable[..., Path]) -> None:
    report.write(graded_class, tmp_path)
    asked: list[str] = []

    def files_only(route: Any) -> None:
        asked.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", files_only)
    try:
        page.goto((tmp_path / "index.html").as_uri())
        assert page.locator("svg").count() >= 2
        assert page.get_by_text("Start the next lecture here").is_visible()
        assert page.locator("tr.flag").count() == sum(
            1 for c in report.summarize(*report.collect(graded_class))["cells"]
            if c["flag"].startswith("worth"))
        screenshot("class-report.png", full_page=True)
    finally:
        page.unroute("**/*", files_only)
    assert [url for url in asked if not url.startswith("file://")] == []
