"""Reading the notebook, where ``tinytorch complete`` begins: its answer cells (nbgrader's
solution cells), which become the module, and its graded cells, which name the cell of a
failing check.

Only the notebook's JSON is read (no nbformat, no nbgrader: the student wheel does not ship
them); a missing file, one that is no notebook, an answer cell that is not Python (IPython's
magics) or a notebook without answer cells stop the command with the file and cell named.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

from tinytorch.complete.common import CompleteError

#: The notebook completed when none is named: the assignment's, in the current folder.
DEFAULT_NOTEBOOK = Path("07_training.ipynb")
#: How a graded cell names its check: ``run_check("1.2", mine())``.
RUN_CHECK = re.compile(r"""run_check\(\s*["']([^"']+)["']""")


@dataclass(frozen=True)
class AnswerCell:
    """One answer cell: its name (nbgrader's grade_id) and its parsed code."""

    name: str
    source: str
    tree: ast.Module


def _notebook_cells(notebook: Path) -> list:
    """The cells of ``notebook``; CompleteError naming the file when it is missing or is not a
    notebook."""
    if not notebook.is_file():
        hint = (": name your notebook (`tinytorch complete path/to/07_training.ipynb`)"
                if notebook == DEFAULT_NOTEBOOK else "")
        raise CompleteError(f"no notebook at {notebook}{hint}")
    try:
        data = json.loads(notebook.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompleteError(f"{notebook} is not a Jupyter notebook (not JSON: {error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise CompleteError(f"{notebook} is not a Jupyter notebook (it has no list of cells)")
    return data["cells"]


def graded_cells(notebook: Path) -> dict[str, str]:
    """Check id -> grade_id of the notebook's graded cells (nbgrader's ``grade`` metadata, as
    the release ships them, each running ``run_check("<id>", ...)``), for naming the cell of a
    failing check; a cell the student changed or removed is simply not named."""
    try:
        cells = _notebook_cells(notebook)
    except CompleteError:
        return {}
    found: dict[str, str] = {}
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if not isinstance(grading, dict) or not grading.get("grade") or not grading.get(
                "grade_id"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        check = RUN_CHECK.search(source)
        if check:
            found.setdefault(check.group(1), str(grading["grade_id"]))
    return found


def answer_cells(notebook: Path) -> list[AnswerCell]:
    """The code answer cells of ``notebook``, in order; CompleteError naming the file (and the
    cell) when it is missing, not a notebook, has no answer cell or a cell is not Python."""
    cells = []
    for index, cell in enumerate(_notebook_cells(notebook)):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if not isinstance(grading, dict) or not grading.get("solution"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        name = str(grading.get("grade_id") or cell.get("id") or f"cell {index + 1}")
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            line = (error.text or "").strip()
            hint = ("; remove IPython's magics and shell lines (%, !) from answer cells"
                    if line.startswith(("%", "!")) else "")
            raise CompleteError(
                f"{notebook}: answer cell {name} is not valid Python: line {error.lineno}: "
                f"{error.msg}: {line!r}{hint}"
            ) from error
        cells.append(AnswerCell(name, source if source.endswith("\n") else source + "\n", tree))
    if not cells:
        raise CompleteError(
            f"{notebook} has no answer cells (nbgrader solution cells): is it the Module 07 "
            "notebook?"
        )
    return cells
