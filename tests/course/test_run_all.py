""""Run All" on the released notebook, as a student first presses it (nothing written yet),
and on a finished notebook whose train_epoch answer cell raises.

The notebook runs in a kernel the way JupyterLab's Run All runs it: top to bottom, and the
kernel stops at the first cell that raises, unless that cell is tagged ``raises-exception``
(nbclient with ``allow_errors=False`` follows the same rule). Then, for the release:

- the run reaches the last cell: every code cell has run;
- the only cells with an error are the graded test cells, each failing with the checks'
  "not written yet" (nbgrader scores them as failed, as it must);
- every demo cell (``with viz.demo():``) shows "not written yet: <the part it runs>" instead
  of a traceback, and nothing reaches stderr.

For a notebook with every answer written but one answer cell broken (train_epoch's with a
SyntaxError, or a NameError while defining it; CosineSchedule's with a SyntaxError, so that
the class is never defined in the fresh kernel), errors come before checks:

- the run still reaches the last cell (the answer cell is tagged ``raises-exception`` too, and
  a class the cell never defined is the library's stub meanwhile);
- every check that receives the broken code fails naming the cell, its error and line ("the
  answer cell for Trainer.train_epoch raised SyntaxError at line 20: fix it first"), none
  says "not written yet", the others pass, and the demos that run that code name the cell too;
- trusted grading of the same notebook (``course.grading.grade``) gives each graded cell the
  kernel's message word for word, and the points of exactly the checks that passed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from submissions import answer, from_training_source, write

from checks import needs
from checks.diagnose import NOT_WRITTEN
from course.assignment import paths
from course.grading import grade

pytestmark = pytest.mark.slow

#: The demo cells of the release, by what they start with, and the part each names.
DEMOS = {
    "with viz.demo():\n    schedule = CosineSchedule(": "CosineSchedule.get_lr",
    "a, b = Tensor(": "clip_grad_norm",
    "with viz.demo():\n    history = viz.train_live(": "Trainer.train_epoch",
    "from tinytorch.core.optimizers import Adam\n\nwith viz.demo():": "training_memory",
    "with viz.demo():\n    measured = viz.measure_epoch(": "Trainer.train_epoch",
}


def _graded(cell: nbformat.NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   for o in cell.outputs)


def _run_all(notebook: nbformat.NotebookNode, folder: Path
             ) -> tuple[nbformat.NotebookNode, str | None]:
    """``notebook`` executed in ``folder`` as Run All executes it; and where it stopped."""
    client = NotebookClient(notebook, timeout=120, allow_errors=False,
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except CellExecutionError as error:  # Run All stopped here
        return notebook, str(error)[:2000]
    return notebook, None


@pytest.fixture(scope="module")
def ran(course_dir: Path, tmp_path_factory: pytest.TempPathFactory,
        ) -> tuple[nbformat.NotebookNode, str | None]:
    folder = tmp_path_factory.mktemp("run-all") / paths.ASSIGNMENT
    shutil.copytree(course_dir / "release" / paths.ASSIGNMENT, folder)
    return _run_all(nbformat.read(folder / paths.NOTEBOOK, as_version=4), folder)


def test_run_all_reaches_every_cell(ran: tuple[nbformat.NotebookNode, str | None]) -> None:
    notebook, stopped = ran
    assert stopped is None, f"Run All stopped at a cell that is not a graded check:\n{stopped}"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    unrun = [cell.id for cell in code if cell.execution_count is None]
    assert not unrun, f"cells Run All never reached: {unrun}"


def test_only_graded_cells_fail_and_each_says_not_written_yet(
        ran: tuple[nbformat.NotebookNode, str | None]) -> None:
    notebook, _ = ran
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    failed = [cell.id for cell in code if any(o.output_type == "error" for o in cell.outputs)]
    graded = [cell.id for cell in code if _graded(cell)]
    assert failed == graded, (
        f"expected errors in the graded cells only ({len(graded)}); errors in "
        f"{sorted(set(failed) - set(graded))}, none in {sorted(set(graded) - set(failed))}")
    for cell in code:
        for output in cell.outputs:
            if output.output_type == "error":
                assert "not written yet" in output.evalue, (cell.id, output.evalue[:300])
            assert output.get("name") != "stderr", (cell.id, output.get("text", "")[:300])


def test_each_demo_cell_names_the_part_not_written_yet(
        ran: tuple[nbformat.NotebookNode, str | None]) -> None:
    notebook, _ = ran
    for start, part in DEMOS.items():
        cells = [cell for cell in notebook.cells
                 if cell.cell_type == "code" and cell.source.startswith(start)]
        assert len(cells) == 1, f"expected one demo cell starting {start!r}"
        text = _text(cells[0])
        assert f"not written yet: {part}" in text, (cells[0].id, text[:500])
        assert "Traceback" not in text, (cells[0].id, text[:500])
    demos = [cell.id for cell in notebook.cells
             if cell.cell_type == "code" and "viz.demo()" in cell.source]
    assert len(demos) == len(DEMOS), f"a demo cell this test does not know: {demos}"


# ----------------------------------------------------------------------------- a broken answer cell
class Break(NamedTuple):
    """How an answer cell of the reference's code is broken: the text replaced and its
    replacement, the error it raises, the answer it holds, the implementation a check must
    receive to need it, and the demo cells (by how they start) that run that code."""

    cell: str
    old: str
    new: str
    error: str
    answer: str
    owner: str
    demos: tuple[str, ...]


EPOCH_DEMOS = ("with viz.demo():\n    history = viz.train_live(",
               "with viz.demo():\n    measured = viz.measure_epoch(")
BREAKS = {
    "epoch-syntax-error": Break("answer_Trainer_train_epoch", "self._set_mode(True)",
                                "self._set_mode(True", "SyntaxError", "Trainer.train_epoch",
                                "Trainer", EPOCH_DEMOS),
    "epoch-name-error": Break("answer_Trainer_train_epoch", "@add_to_class(Trainer)",
                              "@add_to_class(Trainr)", "NameError", "Trainer.train_epoch",
                              "Trainer", EPOCH_DEMOS),
    # in a fresh kernel the class is never defined: the cells using it must still run
    "schedule-syntax-error": Break("answer_CosineSchedule", "if epoch >= self.total_epochs:",
                                   "if epoch >= self.total_epochs", "SyntaxError",
                                   "CosineSchedule.get_lr", "CosineSchedule",
                                   ("with viz.demo():\n    schedule = CosineSchedule(",
                                    "with viz.demo():\n    history = viz.train_live(")),
}


@pytest.fixture(scope="module", params=sorted(BREAKS))
def broken(request: pytest.FixtureRequest, course_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished notebook with one answer cell that raises: run as Run All runs it in the
    release's folder (its packages), and graded by trusted grading."""
    how = BREAKS[request.param]
    notebook = from_training_source(paths.REFERENCE.read_text())
    cell = next(c for c in notebook.cells if c.get("id") == how.cell)
    assert cell.source.count(how.old) == 1, f"{how.cell} no longer holds {how.old!r} once"
    line = cell.source[: cell.source.index(how.old)].count("\n") + 1
    answer(notebook, how.cell, cell.source.replace(how.old, how.new))
    folder = tmp_path_factory.mktemp(request.param) / paths.ASSIGNMENT
    shutil.copytree(course_dir / "release" / paths.ASSIGNMENT, folder)
    path = write(notebook, folder / paths.NOTEBOOK)
    report = grade.grade([path], jobs=1)[0]
    executed, stopped = _run_all(nbformat.read(path, as_version=4), folder)
    return {"notebook": executed, "stopped": stopped, "report": report, "how": how,
            "said": (f"the answer cell for {how.answer} raised {how.error} at line {line}: "
                     "fix it first")}


def _check_of(cell: nbformat.NotebookNode) -> str:
    return cell.source.split('"')[1]  # run_check("1.2", mine())


def _errors(cell: nbformat.NotebookNode) -> list[str]:
    return [o.evalue for o in cell.outputs if o.output_type == "error"]


def test_run_all_goes_on_past_a_broken_answer_cell(broken: dict[str, Any]) -> None:
    notebook, stopped = broken["notebook"], broken["stopped"]
    assert stopped is None, f"Run All stopped at a cell:\n{stopped}"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not [c.id for c in code if c.execution_count is None], "cells Run All never reached"
    cell = next(c for c in code if c.id == broken["how"].cell)
    assert [o.ename for o in cell.outputs if o.output_type == "error"] == [broken["how"].error]


def test_every_check_that_needs_the_broken_cell_names_it(broken: dict[str, Any]) -> None:
    graded = [c for c in broken["notebook"].cells if c.cell_type == "code" and _graded(c)]
    named = []
    for cell in graded:
        errors = _errors(cell)
        if broken["how"].owner not in needs(_check_of(cell)):
            assert not errors, f"{cell.id} does not need the broken cell, and failed: {errors}"
            continue
        for error in errors:
            first = error.splitlines()[0]
            assert first == broken["said"], (
                f"{cell.id}: expected its failure to begin {broken['said']!r}, got:\n{error}")
        named += [cell.id] if errors else []
    assert len(named) >= 6, f"only {named} of the checks that need the cell failed"
    for cell in broken["notebook"].cells:
        for output in getattr(cell, "outputs", []):
            text = str(output.get("evalue", "")) + str(output.get("text", "")) + str(
                output.get("data", {}).get("text/plain", ""))
            assert NOT_WRITTEN not in text, (cell.id, text[:300])
    for start in broken["how"].demos:
        demo = next(c for c in broken["notebook"].cells
                    if c.cell_type == "code" and c.source.startswith(start))
        assert broken["said"] in _text(demo), (demo.id, _text(demo)[:300])


def test_trusted_grading_says_the_same_and_scores_the_checks_that_passed(
        broken: dict[str, Any]) -> None:
    report = broken["report"]
    kernel = {c.id: _errors(c) for c in broken["notebook"].cells
              if c.cell_type == "code" and _graded(c)}
    for cell in report["cells"]:
        assert cell["passed"] == (not kernel[cell["grade_id"]]), cell["grade_id"]
        if not cell["passed"]:
            assert cell["message"] == kernel[cell["grade_id"]][0], (
                f"{cell['grade_id']}: trusted grading says\n{cell['message']}\n"
                f"the notebook says\n{kernel[cell['grade_id']][0]}")
    owner = broken["how"].owner
    untouched = sum(c["max_points"] for c in report["cells"]
                    if owner not in needs(_check_of(_cell(broken, c["grade_id"]))))
    assert report["total"] == untouched == {"Trainer": 18, "CosineSchedule": 70}[owner], (
        f"expected the points of the checks without the {owner} ({untouched}), got "
        f"{report['total']}")
    assert [r["error"] for r in report["cells_that_raised"]][:1] == [broken["how"].error]


def _cell(broken: dict[str, Any], grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in broken["notebook"].cells if c.get("id") == grade_id)
