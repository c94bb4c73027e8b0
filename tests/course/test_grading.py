"""Trusted grading (`course.grading.grade`): every notebook runs in a sandbox and every score is
decided outside it. The reference gets full marks, the untouched release gets 0 without crashing,
three correct solutions written differently get full marks, and every mutant of the catalog loses
points in exactly the graded cells meant to catch it, each of which names its bug.

All submissions are graded in one `grade(..., jobs=2)` call, two sandboxes at a time, as an
instructor's `make autograde` would. The hidden seeds are the notebook's own (those its hidden
tests use), so each submission scores exactly what the in-notebook checks give it; in
production they are drawn afresh for every submission and check.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from submissions import from_module, from_training_source, write
from variants import Mutant, mutant_source

from checks.diagnose import NOT_GRADED, NOT_WRITTEN
from course.assignment import cells, paths
from course.grading import grade

pytestmark = pytest.mark.slow

CHECKS_TESTS = Path(__file__).parent.parent / "checks"
SOLUTIONS = sorted((CHECKS_TESTS / "solutions").glob("*.py"))
CATALOG: list[Mutant] = [
    mutant
    for path in sorted(CHECKS_TESTS.glob("mutants_*.py"))
    for mutant in importlib.import_module(path.stem).MUTANTS
]
SOURCE = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
GRADE_ID = {check: grade_id for grade_id, _, check in cells.graded_cells(SOURCE)}


@pytest.fixture(scope="module")
def reports(
        copy_course: Callable[[Path], None],
        tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("submissions")
    files: dict[str, Path] = {
        "reference": write(from_training_source(paths.REFERENCE.read_text()),
                           folder / "reference.ipynb"),
    }
    released = tmp_path_factory.mktemp("course")
    copy_course(released)
    files["release"] = released / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
    files["imports-reference"] = write(_importing_the_reference(), folder / "imports.ipynb")
    files["stubs-that-pass"] = write(_stubs_that_pass(files["release"]), folder / "pass.ipynb")
    for path in SOLUTIONS:
        files[f"solution:{path.stem}"] = write(from_module(path), folder / f"{path.stem}.ipynb")
    for mutant in CATALOG:
        files[f"mutant:{mutant.name}"] = write(from_training_source(mutant_source(mutant)),
                                               folder / f"{mutant.name}.ipynb")
    seeds = hidden_seeds()
    graded = grade.grade(list(files.values()), jobs=2, seeds=[seeds] * len(files))
    results = dict(zip(files, graded, strict=True))
    (tmp_path_factory.getbasetemp() / "grades.json").write_text(json.dumps(results, indent=1))
    return results


def hidden_seeds() -> dict[str, int]:
    """check id -> the seed of the source notebook's hidden test of that check."""
    text = "\n".join(cell.source for cell in SOURCE.cells)
    found = dict(re.findall(r'run_check\("([^"]+)", mine\(\), seed=(\d+)\)', text))
    assert set(found) == set(GRADE_ID), sorted(set(GRADE_ID) ^ set(found))
    return {check: int(seed) for check, seed in found.items()}


def _importing_the_reference() -> nbformat.NotebookNode:
    """A student who fills every answer cell with an import of the library's Module 07."""
    notebook = from_training_source(paths.REFERENCE.read_text())
    for cell in notebook.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = ("from tinytorch.core.training import CosineSchedule, Trainer, "
                           "clip_grad_norm, training_memory")
    return notebook


def _stubs_that_pass(release: Path) -> nbformat.NotebookNode:
    """The release with every ``raise NotImplementedError()`` replaced by ``pass``: code that
    runs and does nothing."""
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = re.sub(r"raise NotImplementedError\([^)]*\)", "pass", cell.source)
    return notebook


def test_code_that_does_nothing_earns_nothing(reports: dict[str, dict[str, Any]]) -> None:
    """A method that does no work passes no check: every "nothing changed" or "raised before
    anything ran" is judged only of code that does the work when given valid input."""
    report = reports["stubs-that-pass"]
    assert report["total"] == 0, _explain(report)


def _failed(report: dict[str, Any]) -> dict[str, str]:
    return {c["grade_id"]: c["message"] for c in report["cells"] if not c["passed"]}


def _explain(report: dict[str, Any]) -> str:
    return "\n\n".join(f"[{k}] {v}" for k, v in _failed(report).items())


def test_reference_gets_full_marks(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["reference"]
    assert report["max_total"] == 100
    assert report["total"] == 100, _explain(report)
    assert len(report["cells"]) == len(GRADE_ID)
    assert all(c["message"] == "" for c in report["cells"])


def test_untouched_release_gets_zero_without_crashing(
    reports: dict[str, dict[str, Any]],
) -> None:
    report = reports["release"]
    assert report["total"] == 0 and report["max_total"] == 100
    assert len(report["cells"]) == len(GRADE_ID)
    for cell in report["cells"]:
        assert cell["message"], f"{cell['grade_id']} failed without saying why"
        assert cell["message"].startswith(f"{NOT_WRITTEN}: "), cell


def test_importing_the_library_reference_earns_nothing(
    reports: dict[str, dict[str, Any]],
) -> None:
    """Grading runs against the staged tinytorch, whose Module 07 holds no solution."""
    report = reports["imports-reference"]
    assert report["total"] == 0, _explain(report)
    assert all(NOT_WRITTEN in c["message"] for c in report["cells"]), _explain(report)


@pytest.mark.parametrize("name", [p.stem for p in SOLUTIONS])
def test_correct_solutions_written_differently_get_full_marks(
    reports: dict[str, dict[str, Any]], name: str
) -> None:
    report = reports[f"solution:{name}"]
    assert report["total"] == 100, _explain(report)
    assert all(c["message"] == "" for c in report["cells"]), report["cells"]


@pytest.mark.parametrize("mutant", CATALOG, ids=[m.name for m in CATALOG])
def test_mutant_loses_points_exactly_where_intended(
    reports: dict[str, dict[str, Any]], mutant: Mutant
) -> None:
    report = reports[f"mutant:{mutant.name}"]
    failed = _failed(report)
    expected = {GRADE_ID[check] for check in mutant.caught_by - mutant.ungraded}
    assert set(failed) == expected, (
        f"lost points in {sorted(failed)}, expected exactly {sorted(expected)}\n"
        + _explain(report)
    )
    for check in mutant.named_by - mutant.ungraded:
        message = failed[GRADE_ID[check]]
        assert re.search(mutant.message, message, flags=re.I | re.S), (
            f"cell {GRADE_ID[check]} does not name the bug /{mutant.message}/:\n{message}"
        )
    assert report["total"] < 100 or mutant.caught_by <= mutant.ungraded
    # what the grade leaves out is still said, under the check, and costs no point
    for check in mutant.named_by & mutant.ungraded:
        cell = next(c for c in report["cells"] if c["grade_id"] == GRADE_ID[check])
        assert cell["passed"] and cell["message"].startswith(NOT_GRADED), cell
        assert re.search(mutant.message, cell["message"], flags=re.I | re.S), (
            f"cell {GRADE_ID[check]} does not note the bug /{mutant.message}/:\n"
            f"{cell['message']}")
