""""Run All" on the released notebook, as a student first presses it (nothing written yet).

The notebook runs in a kernel the way JupyterLab's Run All runs it: top to bottom, and the
kernel stops at the first cell that raises, unless that cell is tagged ``raises-exception``
(nbclient with ``allow_errors=False`` follows the same rule). Then:

- the run reaches the last cell: every code cell has run;
- the only cells with an error are the graded test cells, each failing with the checks'
  "not written yet" (nbgrader scores them as failed, as it must);
- every demo cell (``with viz.demo():``) shows "not written yet: <the part it runs>" instead
  of a traceback, and nothing reaches stderr.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from course.assignment import paths

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


@pytest.fixture(scope="module")
def ran(course_dir: Path, tmp_path_factory: pytest.TempPathFactory,
        ) -> tuple[nbformat.NotebookNode, str | None]:
    folder = tmp_path_factory.mktemp("run-all") / paths.ASSIGNMENT
    shutil.copytree(course_dir / "release" / paths.ASSIGNMENT, folder)
    notebook = nbformat.read(folder / paths.NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=120, allow_errors=False,
                            resources={"metadata": {"path": str(folder)}})
    try:
        client.execute()
    except CellExecutionError as error:  # Run All stopped here
        return notebook, str(error)[:2000]
    return notebook, None


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
