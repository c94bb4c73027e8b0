"""The notebook is generated from the lesson and training.py; it is in sync, it includes every
definition of training.py exactly once, and its graded cells cover every audit test."""

from __future__ import annotations

import re

import nbformat
import pytest
from support import AUDIT_NUMBERS

from checks import CHECKS
from course.assignment import cells, paths
from course.authoring import build

LESSON = paths.LESSON.read_text()
REFERENCE = paths.REFERENCE.read_text()


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    return nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)


def test_generated_files_are_in_sync(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m course.authoring.build --check`: the committed notebook and grading table are
    exactly what the lesson and training.py produce."""
    assert build.main(["--check"]) == 0, capsys.readouterr().err


def test_a_definition_the_lesson_forgets_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"defines \['new_helper'\]"):
        build.build(LESSON, REFERENCE + "\n\ndef new_helper():\n    return 1\n")


def test_including_a_definition_twice_is_an_error() -> None:
    lesson = LESSON.replace('# %% include="clip_grad_norm"',
                            '# %% include="clip_grad_norm"\n\n# %% include="clip_grad_norm"')
    with pytest.raises(ValueError, match="more than once"):
        build.build(lesson, REFERENCE)


def test_including_an_unknown_name_is_an_error() -> None:
    lesson = LESSON.replace('include="clip_grad_norm"', 'include="clip_grad_norm clip_grads"')
    with pytest.raises(ValueError, match="'clip_grads'"):
        build.build(lesson, REFERENCE)


def test_notebook_code_is_training_py(notebook: nbformat.NotebookNode) -> None:
    """Every line of training.py's code appears in the notebook (methods dedented by one
    level), so the two cannot drift."""
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    lines = {line.strip() for line in code.splitlines()}
    body = REFERENCE.split('"""', 2)[2]  # after the module docstring
    missing = [line for line in body.splitlines()
               if line.strip() and not re.match(r"\s*# -{10,}|\s*# ={10,}", line) and
               line.strip() not in lines]
    assert not missing, missing[:10]


def test_answer_cells_are_the_student_parts(notebook: nbformat.NotebookNode) -> None:
    answers = [c.metadata["nbgrader"]["grade_id"] for c in notebook.cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"]
    assert answers == ["answer_CosineSchedule", "answer_clip_grad_norm",
                       "answer_Trainer_train_epoch", "answer_Trainer__optimizer_step",
                       "answer_Trainer_evaluate", "answer_Trainer_save_checkpoint",
                       "answer_Trainer_load_checkpoint", "answer_training_memory"]
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            assert cell.source.count("### BEGIN SOLUTION") == 1, cell.id


def test_every_check_is_one_graded_cell(notebook: nbformat.NotebookNode) -> None:
    rows = cells.graded_cells(notebook)
    checks = [check for _, _, check in rows]
    assert sorted(checks) == sorted(CHECKS), "each check must be graded exactly once"
    assert set(AUDIT_NUMBERS) <= set(checks)
    assert len({grade_id for grade_id, _, _ in rows}) == len(rows)
    assert all(isinstance(points, int) and points > 0 for _, points, _ in rows)
    assert sum(points for _, points, _ in rows) == 100


def test_graded_cells_are_locked_and_hide_another_run(notebook: nbformat.NotebookNode) -> None:
    """Each graded cell runs its check visibly, then in hidden tests on other data."""
    for cell in notebook.cells:
        grade = cell.metadata.get("nbgrader", {})
        if not grade.get("grade") or cell.cell_type == "markdown":  # written answers: below
            continue
        assert grade["locked"] and not grade["solution"], cell.id
        check = re.search(r'run_check\("([^"]+)"', cell.source).group(1)
        visible, hidden = cell.source.split("### BEGIN HIDDEN TESTS")
        assert f'run_check("{check}", mine())' in visible, cell.id
        seeds = re.findall(rf'run_check\("{re.escape(check)}", mine\(\), seed=(\d+)\)', hidden)
        assert seeds and all(int(s) > 0 for s in seeds), cell.id


def test_only_graded_and_answer_cells_let_run_all_go_on(
        notebook: nbformat.NotebookNode) -> None:
    """A failing check is a graded cell's expected outcome on unwritten code, and an answer
    cell that raises (a SyntaxError while the student writes) is named by every check that
    needs it: tagged ``raises-exception``, neither stops JupyterLab's Run All
    (tests/course/test_run_all.py runs the release, and a broken answer, so). Any other cell
    that raises stops it, as it should."""
    answers = 0
    for cell in notebook.cells:
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        grade = cell.metadata.get("nbgrader", {})
        test = bool(grade.get("grade") and not grade.get("solution"))
        code_answer = bool(grade.get("solution")) and cell.cell_type == "code"
        answers += code_answer
        assert tagged == (test or code_answer), (cell.id, cell.metadata.get("tags"))
    assert answers == 8, f"expected the 8 answer cells of code, found {answers}"


def test_grading_table_lists_every_cell(notebook: nbformat.NotebookNode) -> None:
    table = paths.GRADING_TABLE.read_text()
    for grade_id, points, check in cells.graded_cells(notebook):
        assert f"| {check} | `{grade_id}` | {points} |" in table
    assert "| **total** | | **100** |" in table


def test_the_grading_table_speaks_to_the_student() -> None:
    """GRADING.md travels with the release: it says how the student's notebook is graded, in
    the student's words, and nothing of how the course's files are made or of hidden tests."""
    from course.assignment import paths

    for path in (paths.GRADING_TABLE, paths.GRADING_TABLE.with_name("RULES.md")):
        text = path.read_text()
        for words in ("Generated by", "do not edit", "hidden tests", "nbgrader autograde",
                      "course.authoring", "formgrader"):
            assert words not in text, f"{path.name} says {words!r}"
    assert "your notebook is graded" in paths.GRADING_TABLE.read_text()
