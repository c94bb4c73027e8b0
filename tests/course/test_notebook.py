"""The source notebook, with its solutions, runs top to bottom: no error and nothing on stderr in
any cell (nbgrader scores stderr in a graded cell as a failure), and the digits run reaches the
accuracy the lesson states."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from course.assignment import paths


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    notebook = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    folder = str(paths.SOURCE_NOTEBOOK.parent)
    NotebookClient(notebook, timeout=120, resources={"metadata": {"path": folder}}).execute()
    return notebook


def test_no_cell_errors_or_writes_to_stderr(executed: nbformat.NotebookNode) -> None:
    bad = [(cell.id, output.get("ename") or output.get("text"))
           for cell in executed.cells if cell.cell_type == "code"
           for output in cell.outputs
           if output.output_type == "error"
           or (output.output_type == "stream" and output.name == "stderr")]
    assert bad == []


def test_digits_run_reaches_the_stated_accuracy(executed: nbformat.NotebookNode) -> None:
    text = "".join(output.get("text", "") for cell in executed.cells
                   if cell.cell_type == "code" for output in cell.outputs)
    final = re.search(r"test accuracy (\d+\.\d)%", text)
    assert final and float(final.group(1)) > 95.0, text[-500:]
    epochs = re.findall(r"epoch +(\d+) +lr", text)
    assert len(epochs) == 20
