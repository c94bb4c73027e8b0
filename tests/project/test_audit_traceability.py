"""Every test the audit lists (1.1 to 7.3) exists in the layout it asks for, and a reader can
trace each one: ``@pytest.mark.audit("X.Y")`` on the test and a docstring opening "Audit X.Y:".

Find the tests for one audit number with ``grep -rn 'audit("4.1")' tests/``.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest
from support import AUDIT_NUMBERS

ROOT = Path(__file__).resolve().parents[2]
TRAINING_TESTS = ROOT / "tests" / "07_training"
AUDIT_FILE = ROOT.parent / "shared" / "audit" / "module-07-training-test-audit.md"

# The audit's "Suggested File Structure" (its optimizer file moved to tests/06_optimizers).
AUDIT_LAYOUT = {
    "test_trainer_core.py": {"1.1", "1.2", "1.3"},
    "test_trainer_modes.py": {"2.1", "2.2"},
    "test_scheduler_integration.py": {"3.1", "3.2"},
    "test_gradient_clipping.py": {"4.1", "4.2"},
    "test_convergence.py": {"5.1", "5.2"},
    "test_checkpointing.py": {"6.1", "6.2"},
    "test_module_integration.py": {"7.1", "7.2", "7.3"},
    "test_autograd_integration.py": set(),
    "test_tensor_autograd_integration.py": set(),
}


def _audit_tests(path: Path) -> list[tuple[str, str, str | None]]:
    """(test name, audit number, docstring) for each test in ``path`` marked with audit(...)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if (
                isinstance(deco, ast.Call)
                and ast.unparse(deco.func) == "pytest.mark.audit"
                and deco.args
                and isinstance(deco.args[0], ast.Constant)
            ):
                found.append((node.name, deco.args[0].value, ast.get_docstring(node)))
    return found


def test_audit_file_layout_exists() -> None:
    missing = [name for name in AUDIT_LAYOUT if not (TRAINING_TESTS / name).is_file()]
    assert not missing, f"tests/07_training lacks the audit's files {missing}"
    assert not (TRAINING_TESTS / "test_progressive_integration.py").exists(), (
        "the misfiled optimizer tests belong in tests/06_optimizers"
    )
    assert (ROOT / "tests" / "06_optimizers" / "test_optimizer_integration.py").is_file()


@pytest.mark.parametrize("filename", [f for f, numbers in AUDIT_LAYOUT.items() if numbers])
def test_each_audit_number_is_tested_in_its_file(filename: str) -> None:
    numbers = {number for _, number, _ in _audit_tests(TRAINING_TESTS / filename)}
    missing = AUDIT_LAYOUT[filename] - numbers
    assert not missing, f"{filename} has no test marked audit({sorted(missing)})"


def test_every_audit_number_is_covered_and_documented() -> None:
    tests = [t for path in sorted(TRAINING_TESTS.glob("test_*.py")) for t in _audit_tests(path)]
    numbers = {number for _, number, _ in tests}
    assert numbers >= set(AUDIT_NUMBERS), f"untested: {sorted(set(AUDIT_NUMBERS) - numbers)}"
    assert numbers <= set(AUDIT_NUMBERS), f"unknown numbers: {sorted(numbers - set(AUDIT_NUMBERS))}"
    undocumented = [
        name for name, number, doc in tests if not (doc or "").startswith(f"Audit {number}:")
    ]
    assert not undocumented, f"docstrings must open with 'Audit X.Y:': {undocumented}"


def test_audit_numbers_match_the_audit_document() -> None:
    if not AUDIT_FILE.is_file():
        pytest.skip(f"{AUDIT_FILE} is not beside this checkout")
    listed = re.findall(r"^#### Test (\d\.\d):", AUDIT_FILE.read_text(), flags=re.M)
    assert tuple(listed) == AUDIT_NUMBERS


def _functions(source: str) -> dict[str, str]:
    """Dedented source of every function in ``source``, by name."""
    tree = ast.parse(source)
    return {
        node.name: textwrap.dedent(ast.get_source_segment(source, node, padded=True))
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
    }


def test_appendix_templates_run_verbatim() -> None:
    """The audit asks that its two appendix templates run unchanged: each template function is
    in tests/07_training/test_audit_templates.py letter for letter."""
    if not AUDIT_FILE.is_file():
        pytest.skip(f"{AUDIT_FILE} is not beside this checkout")
    appendix = AUDIT_FILE.read_text().split("## Appendix", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", appendix, flags=re.S)
    templates = {
        name: body
        for block in blocks
        for name, body in _functions(textwrap.dedent(block)).items()
        if name.startswith("test_")
    }
    assert set(templates) == {
        "test_complete_training_loop",
        "test_missing_zero_grad_breaks_training",
    }
    ours = _functions((TRAINING_TESTS / "test_audit_templates.py").read_text())
    for name, body in templates.items():
        assert ours.get(name) == body, f"{name} differs from the audit's template"
