"""The reflection: written answers graded by hand.

The lesson declares them (``# %% [markdown] grade_id=... points=N manual``), the build makes
nbgrader's manually graded answer cells of them, the release leaves "YOUR ANSWER HERE" in
their place, trusted autograde leaves them to the formgrader and says who waits for a grade, a
grader's points and comment reach the gradebook, the feedback page and grades.csv, and the
rubric never reaches a student's file."""

from __future__ import annotations

import csv
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import jupytext
import nbformat
import pytest
from bs4 import BeautifulSoup
from nbgrader.api import Gradebook
from submissions import from_training_source, write

from course.assignment import config, paths
from course.assignment.cells import graded_cells, manual_cells
from course.assignment.solutions import SOLUTION_REGION, region_lines, scan
from course.authoring import binder, build, release
from course.authoring.release import nbgrader
from course.classroom import autograde, manual, nbgrader_trusted
from course.student import environment as student_env

QUESTIONS = ["reflection_clipping", "reflection_resume", "reflection_accumulation",
             "reflection_optimizer_memory", "reflection_schedule",
             "reflection_checkpoint_interval"]


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    return nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)


def _manual_points(notebook: nbformat.NotebookNode) -> dict[str, int]:
    return {grade_id: points for grade_id, points, _ in manual_cells(notebook)}


# ----------------------------------------------------------------------------- the notebook
def test_each_question_is_a_markdown_answer_graded_by_hand(
        notebook: nbformat.NotebookNode) -> None:
    """Four to six questions, at the end, each a question cell then nbgrader's manually graded
    answer cell (markdown, solution and grade, unlocked) holding one example answer."""
    assert [g for g, _, _ in manual_cells(notebook)] == QUESTIONS
    cells = {c.id: (i, c) for i, c in enumerate(notebook.cells)}
    reflection = next(i for i, c in enumerate(notebook.cells)
                      if c.cell_type == "markdown" and c.source.startswith("## Reflection"))
    for grade_id in QUESTIONS:
        index, cell = cells[grade_id]
        assert index > reflection and cell.cell_type == "markdown", grade_id
        meta = cell.metadata["nbgrader"]
        assert (meta["grade"], meta["solution"], meta["locked"]) == (True, True, False)
        assert meta["grade_id"] == grade_id and meta["points"] in (2, 3)
        assert len(SOLUTION_REGION.findall(cell.source + "\n")) == 1, grade_id
        assert len(cell.source.splitlines()) >= 5, "an example answer of a few sentences"
        question = notebook.cells[index - 1]
        assert question.cell_type == "markdown" and f"({meta['points']} points)" in question.source
        assert "nbgrader" not in question.metadata
    assert not [c for c in notebook.cells[reflection:] if c.cell_type == "code"]


def test_written_answers_are_not_checks(notebook: nbformat.NotebookNode) -> None:
    """The trusted grader runs checks of graded code cells only: no written answer among them,
    and the automatic points stay 100."""
    automatic = graded_cells(notebook)
    assert not {g for g, _, _ in automatic} & set(QUESTIONS)
    assert sum(p for _, p, _ in automatic) == 100


def test_grading_table_lists_the_written_answers_as_extra_points(
        notebook: nbformat.NotebookNode) -> None:
    table = paths.GRADING_TABLE.read_text()
    points = _manual_points(notebook)
    extra = sum(points.values())
    assert "## Written answers, graded by hand" in table
    assert f"{extra} points on top of the 100 the checks give" in table
    for grade_id, value in points.items():
        assert re.search(rf"^\| [^|]+ \| `{grade_id}` \| {value} \|$", table, re.M), grade_id
    assert f"| **total, graded by hand** | | **{extra}** |" in table
    assert "| **total** | | **100** |" in table


def _cells(text: str) -> nbformat.NotebookNode:
    return jupytext.reads(text, fmt="py:percent")


#: What the question's answer cell holds: the line naming the question, then the example.
BARE = "# ### BEGIN SOLUTION\n# An example answer of enough words.\n# ### END SOLUTION\n"
ANSWER = "# **Q, your answer:**\n#\n" + BARE


def test_lesson_syntax_makes_a_manual_cell() -> None:
    notebook = _cells('# %% [markdown]\n# ### Q (2 points)\n\n'
                      '# %% [markdown] grade_id="reflection_x" points=2 manual\n' + ANSWER)
    for index, cell in enumerate(notebook.cells):
        build._nbgrader(cell, index)
    build.check_questions(notebook)
    answer = notebook.cells[1]
    assert answer.id == "reflection_x" and answer.metadata == {"nbgrader": {
        "grade": True, "solution": True, "locked": False, "grade_id": "reflection_x",
        "points": 2, "schema_version": 3}}
    assert manual_cells(notebook) == [("reflection_x", 2, "Q (2 points)")]


@pytest.mark.parametrize(("lesson", "error"), [
    ('# %% grade_id="reflection_x" points=2 manual\nx = 1\n', "only markdown"),
    ('# %% [markdown] grade_id="reflection_x" points=2\n' + ANSWER, "not marked manual"),
    ('# %% [markdown] grade_id="reflection_x" manual\n' + ANSWER, "needs points"),
    ('# %% [markdown] points=2 manual\n' + ANSWER, "needs a grade_id"),
    ('# %% [markdown] grade_id="reflection_x" points=2 manual\n# An answer\n', "example answer"),
    ('# %% [markdown] grade_id="reflection_x" points=2 manual\n' + BARE, "naming its question"),
])
def test_a_malformed_manual_cell_is_an_error(lesson: str, error: str) -> None:
    cell = _cells(lesson).cells[0]
    with pytest.raises(ValueError, match=error):
        build._nbgrader(cell, 0)


def test_a_question_stating_other_points_is_an_error() -> None:
    notebook = _cells('# %% [markdown]\n# ### Q (3 points)\n\n'
                      '# %% [markdown] grade_id="reflection_x" points=2 manual\n' + ANSWER)
    for index, cell in enumerate(notebook.cells):
        build._nbgrader(cell, index)
    with pytest.raises(ValueError, match="says 3 points"):
        build.check_questions(notebook)


# ----------------------------------------------------------------------------- the rubric
def _rubric() -> str:
    text = release.GUIDE.read_text()
    found = release.RUBRIC_REGION.search(text)
    assert found, f"no rubric between <!-- BEGIN RUBRIC --> and <!-- END RUBRIC --> in {text[:80]}"
    return found.group(0)


def test_the_guide_has_a_rubric_for_every_question(notebook: nbformat.NotebookNode) -> None:
    rubric = _rubric()
    for grade_id, points in _manual_points(notebook).items():
        heading = f"### `{grade_id}` ({points} points)"
        assert heading in rubric, heading
        part = rubric.split(heading, 1)[1].split("\n### ", 1)[0]
        assert "Full marks" in part and "0 points" in part, grade_id
        assert re.search(r"^- [12] points?:", part, re.M), f"{grade_id}: no partial credit"


def test_rubric_lines_are_secrets_of_every_scan() -> None:
    """The release scan, the wheel's gate and the Binder image's scan all search
    ``release.secrets()``: every rubric line is among them."""
    lines = release.rubric_lines()
    assert len(lines) >= 6 * 3
    assert lines <= release.secrets()
    assert any("Full marks" in line for line in lines)


def test_release_holds_no_example_answer_and_no_rubric(course_dir: Path,
                                                       notebook: nbformat.NotebookNode) -> None:
    released = course_dir / "release" / paths.ASSIGNMENT
    student = nbformat.read(released / paths.NOTEBOOK, as_version=4)
    answers = {c.id: c for c in student.cells if c.id in QUESTIONS}
    assert sorted(answers) == sorted(QUESTIONS)
    # Each keeps the line that names its question (nbgrader's Validate lists an empty answer
    # by its text), in the order of the questions, and nothing else but nbgrader's stub.
    asked = [re.fullmatch(r"\*\*(R\d), your answer\*\* \([^)\n]+\):\n\nYOUR ANSWER HERE", c.source)
             for c in student.cells if c.id in QUESTIONS]
    assert all(asked), [c.source for c in answers.values()]
    assert [m.group(1) for m in asked] == [f"R{n}" for n in range(1, len(QUESTIONS) + 1)]
    assert all(c.metadata["nbgrader"]["points"] == _manual_points(notebook)[c.id]
               for c in answers.values())
    written = "\n".join(c.source for c in notebook.cells if c.id in QUESTIONS) + "\n"
    examples = region_lines(written, SOLUTION_REGION)
    assert len(examples) >= 6 * 4 and examples <= release.secrets()
    text = "\n".join(p.read_text(errors="replace") for p in released.rglob("*")
                     if p.is_file() and p.suffix in (".ipynb", ".md", ".py"))
    assert not [line for line in examples | release.rubric_lines() if line in text]
    assert scan(released, examples | release.rubric_lines()) == []


def test_each_gate_catches_a_rubric_line(tmp_path: Path) -> None:
    """The gates can fail: a rubric line in a released file, in the student wheel, or left in
    the Binder image is reported; Binder removes the guide itself."""
    line = sorted(release.rubric_lines())[0]
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "notes.md").write_text(f"hints\n{line}\n")
    assert [(leak.path.name, leak.line) for leak in scan(tmp_path / "release",
                                                         release.secrets())] == [("notes.md", 2)]

    name = student_env.wheel_name()
    info = f"{name.split('-')[0]}-{name.split('-')[1]}.dist-info"
    wheel = tmp_path / name
    with zipfile.ZipFile(wheel, "w") as archive:
        for member, text in {"tinytorch/__init__.py": "", "checks/__init__.py": "",
                             f"{info}/METADATA": "x", "checks/rubric.md": line}.items():
            archive.writestr(member, text)
    with pytest.raises(student_env.LeakError, match=r"checks/rubric\.md:1"):
        student_env.check_wheel(wheel, release.secrets())

    image = tmp_path / "image"
    (image / "docs").mkdir(parents=True)
    (image / "tinytorch/core").mkdir(parents=True)
    shutil.copy(paths.REFERENCE, image / "tinytorch/core/training.py")
    shutil.copy(release.GUIDE, image / "docs" / "instructor-guide.md")
    assert binder.strip_checkout(image, release.secrets()) == []
    assert not (image / "docs").exists()
    shutil.copy(release.GUIDE, image / "guide-copy.md")
    leaks = binder.strip_checkout(image, release.secrets())
    assert leaks and {leak.path.name for leak in leaks} == {"guide-copy.md"}


# ----------------------------------------------------------------------------- grading
def _answered(blank: str | None = None) -> nbformat.NotebookNode:
    """The reference's code and example answers, with the answer ``blank`` left empty."""
    notebook = from_training_source(paths.REFERENCE.read_text())
    for cell in notebook.cells:
        if cell.id == blank:
            cell.source = ""
    return notebook


@pytest.mark.slow
def test_written_answers_wait_for_a_grader_and_reach_feedback_and_export(
        copy_course: Callable[[Path], None],
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """alice (the reference, written answers filled in) gets every automatic point and each
    written answer waits for a grader; bob hands in the untouched release: 0, nothing written;
    carol leaves one written answer empty: 0 there, listed for the grader. A grade given by
    hand (as the formgrader saves it) shows on alice's feedback page and adds to her total in
    grades.csv."""
    course = tmp_path / "course"
    course.mkdir()
    copy_course(course)
    downloads = tmp_path / "downloads"
    write(_answered(), downloads / "alice.ipynb")
    write(_answered(blank="reflection_resume"), downloads / "carol.ipynb")
    shutil.copy(course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK, downloads / "bob.ipynb")
    assert autograde.main([str(downloads), "--course", str(course)]) == 0
    printed = capsys.readouterr().out
    extra = sum(_manual_points(nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)).values())
    scores = {s: (score, most) for s, score, most in autograde.scores(course)}
    assert scores["alice"] == (100.0, 100.0 + extra)
    assert scores["bob"] == (0.0, 100.0 + extra)
    assert scores["carol"] == (100.0, 100.0 + extra)

    assert f"needs grading by hand: alice: {', '.join(QUESTIONS)}" in printed
    carol = next(ln for ln in printed.splitlines() if ln.startswith("needs grading by hand: carol"))
    assert "reflection_resume (empty: 0 until graded)" in carol
    assert all(q in carol for q in QUESTIONS)
    assert f"no written answer (0 points): bob: {', '.join(QUESTIONS)}" in printed
    assert "needs grading by hand: bob" not in printed

    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        def grades(student: str) -> dict:
            notebook = gradebook.find_submission_notebook("07_training", paths.ASSIGNMENT,
                                                          student)
            return {g.name: g for g in notebook.grades}

        alice, bob, carol = grades("alice"), grades("bob"), grades("carol")
        for name in QUESTIONS:
            assert alice[name].needs_manual_grade and alice[name].auto_score is None
            assert alice[name].score == 0.0
            assert not bob[name].needs_manual_grade and bob[name].score == 0.0
        assert carol["reflection_resume"].needs_manual_grade
        assert carol["reflection_resume"].score == 0.0
        automatic = [g for n, g in alice.items() if n not in QUESTIONS]
        assert automatic and not any(g.needs_manual_grade for g in automatic)
        # what the formgrader's "save" does (nbgrader's API handlers): points, then a comment
        given = alice["reflection_clipping"]
        given.manual_score, given.needs_manual_grade = 2.0, False
        comment = gradebook.find_comment("reflection_clipping", "07_training",
                                         paths.ASSIGNMENT, "alice")
        comment.manual_comment = "Right numbers; say why **sqrt(k)** matters."
        gradebook.db.commit()

    waiting = {w.student: w for w in manual.waiting(course)}
    assert "reflection_clipping" not in waiting["alice"].to_grade
    assert waiting["carol"].empty == ["reflection_resume"]

    assert nbgrader_trusted.feedback(course, ["alice", "bob", "carol"], jobs=1) == []
    page = (course / "feedback/alice" / paths.ASSIGNMENT / "07_training.html").read_text()
    soup = BeautifulSoup(page, "html.parser")
    panel = soup.find("a", attrs={"name": "reflection_clipping"}).find_parent("div")
    said = " ".join(panel.get_text(" ").split())
    assert "Score: 2.0 / 3.0" in said and "graded by hand" in said
    assert "Grader's comment:" in said and "Right numbers; say why sqrt(k) matters." in said
    # the comment's markdown, rendered (her answer has no bold but its question's line)
    assert "sqrt(k)" in [strong.get_text() for strong in panel.find_all("strong")]
    assert "Global clipping divides both gradients by 5" in said  # her own answer
    # her answers no grader has scored yet say so, with their points: never "0.0 / 3.0"
    pending = soup.find("a", attrs={"name": "reflection_resume"}).find_parent("div")
    said = " ".join(pending.get_text(" ").split())
    assert "not graded yet: 3.0 points" in said and "Score:" not in said, said[:300]
    listed = " ".join(soup.find(id="toc").get_text(" ").split())
    assert "reflection_resume : written answer, graded by hand (not graded yet: 3.0 points)" \
        in listed.replace("reflection_resume:", "reflection_resume :"), listed[-800:]
    bob_page = (course / "feedback/bob" / paths.ASSIGNMENT / "07_training.html").read_text()
    assert "YOUR ANSWER HERE" in bob_page and "No response." in bob_page
    # bob's blank answers were decided (0 points, nothing to grade): a score, not "pending"
    bob_soup = BeautifulSoup(bob_page, "html.parser")
    blank = bob_soup.find("a", attrs={"name": "reflection_resume"}).find_parent("div")
    assert "Score: 0.0 / 3.0" in " ".join(blank.get_text(" ").split())
    assert "not graded yet" not in bob_page

    nbgrader("export", course=course)
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert float(rows["alice"]["score"]) == 102.0
    assert float(rows["alice"]["max_score"]) == 100.0 + extra
    assert float(rows["bob"]["score"]) == 0.0 and float(rows["carol"]["score"]) == 100.0
