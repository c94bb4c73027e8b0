"""The lesson states every rule a check enforces, where the student writes that code.

``checks/rules.py`` lists the rules; each quotes the lesson's words for it. These tests fail
when those words are not in the student's notebook (nbgrader's solutions cleared) between the
last graded or answer cell and the rule's answer cell, or in that cell's docstrings; when a
graded check judges no listed rule; and when ``RULES.md`` is out of date. The last tests show
that each of those failures is detected.
"""

from __future__ import annotations

import ast
import copy
import dataclasses

import nbformat
import pytest
from nbgrader.preprocessors import ClearSolutions

from checks.rules import CELLS, EVALUATE, RULES, Rule
from course.assignment import cells, paths
from course.authoring import build


def _words(text: str) -> str:
    """``text`` with every run of whitespace (line breaks too) as one space."""
    return " ".join(text.split())


def _docstrings(source: str) -> list[str]:
    """Every docstring of a code cell: the module's, its classes' and its functions'."""
    kinds = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    return [doc for node in ast.walk(ast.parse(source)) if isinstance(node, kinds)
            and (doc := ast.get_docstring(node, clean=False))]


def student_view(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` as nbgrader releases it: every solution region cleared."""
    cleared, _ = ClearSolutions().preprocess(copy.deepcopy(notebook), {})
    return cleared


def lesson_text(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """For each answer cell, what a student reads about it: the markdown since the last graded
    or answer cell, and the cell's own docstrings once its solution is cleared."""
    texts: dict[str, str] = {}
    since: list[str] = []
    for cell in student_view(notebook).cells:
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("solution") and cell.cell_type == "code":
            texts[cell.id] = _words(" ".join(since + _docstrings(cell.source)))
            since = []
        elif grading.get("grade"):
            since = []
        elif cell.cell_type == "markdown":
            since.append(cell.source)
    return texts


def unstated(notebook: nbformat.NotebookNode, rules: list[Rule]) -> list[str]:
    """Ids of the rules whose words a student does not read before writing their cell."""
    texts = lesson_text(notebook)
    return [rule.id for rule in rules if _words(rule.says) not in texts.get(rule.cell, "")]


def unjudged(notebook: nbformat.NotebookNode, rules: list[Rule]) -> list[str]:
    """The graded checks of ``notebook`` that judge none of ``rules``."""
    judged = {check for rule in rules for check in rule.checks}
    return [check for _, _, check in cells.graded_cells(notebook) if check not in judged]


@pytest.fixture(scope="module")
def notebook() -> nbformat.NotebookNode:
    return nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)


def _rule(rule_id: str) -> Rule:
    return next(rule for rule in RULES if rule.id == rule_id)


def _unsay(notebook: nbformat.NotebookNode, rule: Rule) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose markdown no longer holds the rule's words."""
    changed = copy.deepcopy(notebook)
    cells = [c for c in changed.cells
             if c.cell_type == "markdown" and _words(rule.says) in _words(c.source)]
    assert cells, rule.id
    for cell in cells:
        cell.source = _words(cell.source).replace(_words(rule.says), "")
    return changed


def _answer(notebook: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(cell for cell in notebook.cells if cell.id == cell_id)


# ----------------------------------------------------------------------------- the rules hold
def test_every_rule_is_stated_before_its_answer_cell(notebook: nbformat.NotebookNode) -> None:
    assert unstated(notebook, RULES) == []


def test_every_graded_check_judges_a_listed_rule(notebook: nbformat.NotebookNode) -> None:
    assert unjudged(notebook, RULES) == []


def test_every_answer_cell_has_rules(notebook: nbformat.NotebookNode) -> None:
    """Each cell a student writes is told what its checks judge."""
    answers = [c.id for c in notebook.cells if c.cell_type == "code"
               and c.metadata.get("nbgrader", {}).get("solution")]
    assert sorted(answers) == sorted(CELLS)
    assert sorted({rule.cell for rule in RULES}) == sorted(answers)


def test_rules_table_is_generated_beside_the_notebook_and_up_to_date() -> None:
    """RULES.md is one of the build's outputs (so `course.authoring.build --check` covers it), lives
    in the folder nbgrader releases, and is what the build writes now."""
    outputs = build.outputs()
    assert build.RULES_TABLE in outputs
    assert build.RULES_TABLE.parent == paths.SOURCE_NOTEBOOK.parent
    assert build.RULES_TABLE.read_text() == outputs[build.RULES_TABLE], (
        "RULES.md is out of date: run `python -m course.authoring.build`")


def test_rules_table_lists_every_rule_with_its_checks(notebook: nbformat.NotebookNode) -> None:
    table = build.rules_table(notebook)
    for rule in RULES:
        assert f"| `{rule.id}` | {', '.join(rule.checks)} |" in table
    for grade_id, points, check in cells.graded_cells(notebook):
        assert f"| {check} | `{grade_id}` | {points} | `" in table


# ----------------------------------------------------------------------------- they can fail
def test_words_the_lesson_drops_are_reported(notebook: nbformat.NotebookNode) -> None:
    rule = _rule("epoch-clear-before-first-batch")
    assert unstated(_unsay(notebook, rule), RULES) == [rule.id]


def test_words_inside_a_solution_do_not_count(notebook: nbformat.NotebookNode) -> None:
    """Words a student never sees (nbgrader clears the solution) do not state a rule."""
    rule = _rule("evaluate-no-data-order")
    changed = _unsay(notebook, rule)
    cell = _answer(changed, rule.cell)
    cell.source = cell.source.replace("### BEGIN SOLUTION\n",
                                      f"### BEGIN SOLUTION\n    # {_words(rule.says)}\n", 1)
    assert _words(rule.says) in _words(cell.source)
    assert unstated(changed, [rule]) == [rule.id]


def test_words_in_the_answer_cells_docstring_count(notebook: nbformat.NotebookNode) -> None:
    rule = _rule("evaluate-no-data-order")
    changed = _unsay(notebook, rule)
    cell = _answer(changed, rule.cell)
    cell.source = cell.source.replace('"""', f'"""{_words(rule.says)}. ', 1)
    assert unstated(changed, [rule]) == []


def test_words_before_another_cell_do_not_count(notebook: nbformat.NotebookNode) -> None:
    """Stating a rule of train_epoch before evaluate is too late: the student wrote it."""
    rule = dataclasses.replace(_rule("epoch-data-order"), cell=EVALUATE)
    assert unstated(notebook, [rule]) == [rule.id]


def test_a_check_without_a_rule_is_reported(notebook: nbformat.NotebookNode) -> None:
    rules = [rule for rule in RULES if "nan-loss" not in rule.checks]
    assert unjudged(notebook, rules) == ["nan-loss"]


def test_rules_table_refuses_rules_that_do_not_fit(notebook: nbformat.NotebookNode) -> None:
    first = RULES[0]
    bad = [first, dataclasses.replace(first, checks=("9.9",)),
           dataclasses.replace(first, id="other", cell="answer_nowhere")]
    with pytest.raises(ValueError) as refused:
        build.rules_table(notebook, bad)
    for problem in (f"{first.id}: used twice", f"{first.id}: no graded check '9.9'",
                    "other: no answer cell 'answer_nowhere'"):
        assert problem in str(refused.value)


def test_a_changed_rule_makes_the_table_stale(notebook: nbformat.NotebookNode) -> None:
    rules = [dataclasses.replace(RULES[0], checks=("cosine",)), *RULES[1:]]
    assert build.rules_table(notebook, rules) != build.RULES_TABLE.read_text()
