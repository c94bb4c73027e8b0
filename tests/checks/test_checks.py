"""The checks are proved three ways: the reference passes every one (silently), alternative
correct solutions written differently pass every one (a check that fails correct code is a bug),
and each mutant in the catalog fails exactly the checks meant to catch it, with a message that
names its bug."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from support import AUDIT_NUMBERS
from variants import (
    Mutant,
    mutant_implementations,
    reference_implementations,
    solution_implementations,
)

from checks import CHECKS, run_all, run_check

HERE = Path(__file__).parent
SOLUTIONS = sorted((HERE / "solutions").glob("*.py"))
CATALOG: list[Mutant] = [
    mutant
    for path in sorted(HERE.glob("mutants_*.py"))
    for mutant in importlib.import_module(path.stem).MUTANTS
]


def test_every_audit_number_has_a_check() -> None:
    assert set(AUDIT_NUMBERS) <= set(CHECKS), sorted(set(AUDIT_NUMBERS) - set(CHECKS))


@pytest.mark.parametrize("check_id", list(CHECKS))
def test_reference_passes_silently(check_id: str, capfd: pytest.CaptureFixture[str]) -> None:
    """Full marks for the reference, with nothing on stdout or stderr (nbgrader scores any
    stderr output in a graded cell as a failure)."""
    run_check(check_id, reference_implementations())
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_there_are_three_alternative_solutions() -> None:
    assert len(SOLUTIONS) >= 3, [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_alternative_correct_solution_passes_every_check(path: Path) -> None:
    failures = {k: v for k, v in run_all(solution_implementations(path)).items() if v}
    assert not failures, "\n\n".join(f"[{k}] {v}" for k, v in failures.items())


def test_catalog_is_large_and_catches_with_every_check() -> None:
    assert len(CATALOG) >= 20, len(CATALOG)
    names = [m.name for m in CATALOG]
    assert len(names) == len(set(names)), "mutant names must be unique"
    unused = set(CHECKS) - {c for m in CATALOG for c in m.caught_by}
    assert not unused, f"checks no mutant exercises: {sorted(unused)}"


@pytest.mark.parametrize("mutant", CATALOG, ids=[m.name for m in CATALOG])
def test_mutant_fails_exactly_its_checks_and_names_its_bug(mutant: Mutant) -> None:
    results = run_all(mutant_implementations(mutant))
    failed = {k for k, v in results.items() if v}
    assert failed == set(mutant.caught_by), (
        f"caught by {sorted(failed)}, expected {sorted(mutant.caught_by)}"
    )
    for check_id in mutant.named_by:
        assert re.search(mutant.message, results[check_id], flags=re.I | re.S), (
            f"[{check_id}] does not name the bug ({mutant.message!r}):\n{results[check_id]}"
        )
