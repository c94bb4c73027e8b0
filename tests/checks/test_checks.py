"""The checks are proved three ways: the reference passes every one (silently), alternative
correct solutions written differently pass every one (a check that fails correct code is a bug),
and each mutant in the catalog fails exactly the checks meant to catch it, with a message that
names its bug.

The same holds for the hidden runs a graded cell adds (``seed=S > 0``, other data): correct code
passes every check at seeds 1 to 5, and at the hidden seed 7 each mutant still fails the checks
that name it, with a message that names it, and no check outside its ``caught_by``, so a
student never loses points in a hidden run that the visible run does not explain."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import re
from pathlib import Path

import numpy as np
import pytest
from support import AUDIT_NUMBERS
from test_catalog import assert_coded
from variants import (
    Mutant,
    mutant_implementations,
    reference_implementations,
    solution_implementations,
)

from checks import CHECKS, run_all, run_check
from checks.registry import TITLES

HERE = Path(__file__).parent
HIDDEN_SEEDS = (1, 2, 3, 4, 5)  # correct code must pass every check at each of these
#: Seeds grading once drew at which a check failed correct code (``make bench-seeds``), with the
#: check: a MSE regression whose ReLU network the draw left unable to halve its loss (7.2), a
#: bias gradient that is a near-cancelling sum, judged at its own tolerance (1.3).
ONCE_FAILED = ((1304578930, "7.2"), (1075925528, "1.3"))
MUTANT_SEED = 7  # one hidden seed for the catalog, to keep the suite lean
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
    """Full marks for the reference: one line on stdout naming what was verified, nothing on
    stderr (nbgrader scores any stderr output in a graded cell as a failure); ``quiet`` prints
    nothing."""
    run_check(check_id, reference_implementations())
    out, err = capfd.readouterr()
    assert err == ""
    assert out == f"\N{CHECK MARK} {check_id}: {TITLES[check_id]}\n"
    assert len(out) < 100
    run_check(check_id, reference_implementations(), quiet=True)
    assert capfd.readouterr() == ("", "")


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
    assert_coded(results)


# ------------------------------------------------------------------ hidden runs (seed > 0)
def test_every_check_takes_a_keyword_only_seed_defaulting_to_the_visible_run() -> None:
    for check_id, check in CHECKS.items():
        parameter = inspect.signature(check).parameters.get("seed")
        assert parameter is not None, check_id
        assert (parameter.kind, parameter.default) == (inspect.Parameter.KEYWORD_ONLY, 0), check_id


@pytest.mark.parametrize("seed", HIDDEN_SEEDS)
def test_reference_passes_every_check_at_hidden_seeds(
        seed: int, capfd: pytest.CaptureFixture[str]) -> None:
    """Silently, and without touching numpy's global random state (the checks use their own
    seeded Generators, so nothing a student seeds or draws changes a grade)."""
    before = np.random.get_state()
    failures = {k: v for k, v in run_all(reference_implementations(), seed=seed).items() if v}
    assert not failures, "\n\n".join(f"[{k}] {v}" for k, v in failures.items())
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(("seed", "check_id"), ONCE_FAILED)
@pytest.mark.parametrize("path", [None, *SOLUTIONS],
                         ids=["reference", *(p.stem for p in SOLUTIONS)])
def test_correct_code_passes_at_the_seeds_that_once_failed_it(path: Path | None, seed: int,
                                                             check_id: str) -> None:
    implementations = (reference_implementations() if path is None
                       else solution_implementations(path))
    with contextlib.redirect_stdout(io.StringIO()):
        run_check(check_id, implementations, seed=seed)


def test_a_hidden_case_the_librarys_own_loop_cannot_learn_is_drawn_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from checks import outcomes

    tried: list[int] = []

    def learnable(model: int, *args: object) -> bool:  # the "model" here is its draw
        tried.append(model)
        return model == 2

    monkeypatch.setattr(outcomes, "_learnable", learnable)
    case = (lambda draw: draw, None, None, None, None, None, 25, 0.5)
    assert outcomes._redraw(7, *case) == 2 and tried == [0, 1, 2]
    assert outcomes._redraw(0, *case) == 0 and tried == [0, 1, 2]  # the visible run: draw 0
    monkeypatch.setattr(outcomes, "_learnable", lambda *args: False)
    assert outcomes._redraw(7, *case) == 0  # none learns: the first draw, judged as it is
    assert outcomes.REDRAWS >= 5


@pytest.mark.parametrize(("path", "seed"), [(p, s) for p in SOLUTIONS for s in HIDDEN_SEEDS],
                         ids=[f"{p.stem}-seed{s}" for p in SOLUTIONS for s in HIDDEN_SEEDS])
def test_alternative_correct_solution_passes_every_check_at_hidden_seeds(path: Path,
                                                                          seed: int) -> None:
    failures = {k: v for k, v in run_all(solution_implementations(path), seed=seed).items() if v}
    assert not failures, "\n\n".join(f"[{k}] {v}" for k, v in failures.items())


@pytest.mark.parametrize("mutant", CATALOG, ids=[m.name for m in CATALOG])
def test_mutant_is_caught_at_a_hidden_seed_and_loses_no_unexplained_points(mutant: Mutant) -> None:
    results = run_all(mutant_implementations(mutant), seed=MUTANT_SEED)
    failed = {k for k, v in results.items() if v}
    assert set(mutant.named_by) <= failed, (
        f"escapes {sorted(set(mutant.named_by) - failed)} at seed {MUTANT_SEED}"
    )
    assert failed <= set(mutant.caught_by), (
        f"at seed {MUTANT_SEED} also fails {sorted(failed - set(mutant.caught_by))}, which its "
        f"visible run passes: " + "\n\n".join(results[k] for k in failed - set(mutant.caught_by))
    )
    for check_id in mutant.named_by:
        assert re.search(mutant.message, results[check_id], flags=re.I | re.S), (
            f"[{check_id}] at seed {MUTANT_SEED} does not name the bug ({mutant.message!r}):\n"
            f"{results[check_id]}"
        )
    assert_coded(results)


# (mutant, check) whose failure message shows the run's data: a hidden run must show other
# data than the visible one, and the same data every time it runs.
SHOWS_DATA = [
    ("cosine_missing_half", "cosine"),
    ("clip_per_parameter", "clip"),
    ("epoch-loss-unweighted-batch-mean", "1.1"),
    ("no-zero-grad-between-steps", "1.2"),
    ("accumulation-summed-not-averaged", "1.3"),
    ("nan-error-without-location", "nan-loss"),
    ("evaluate-loss-unweighted-batch-mean", "2.2"),
    ("schedule_lr_of_next_epoch", "3.1"),
    ("trainer_clips_before_averaging", "4.2"),
    ("optimizer_never_steps", "5.1"),
    ("history_not_restored", "6.1"),
]


@pytest.mark.parametrize(("name", "check_id"), SHOWS_DATA, ids=[c for _, c in SHOWS_DATA])
def test_hidden_run_uses_other_data_deterministically(name: str, check_id: str) -> None:
    mutant = next(m for m in CATALOG if m.name == name)
    implementations = mutant_implementations(mutant)

    def message(seed: int) -> str:
        with pytest.raises(AssertionError) as caught:
            run_check(check_id, implementations, seed=seed)
        return str(caught.value)

    hidden = message(MUTANT_SEED)
    assert hidden == message(MUTANT_SEED)
    assert hidden != message(0)
    assert hidden != message(MUTANT_SEED + 1)


@pytest.mark.parametrize("seed", [-1, True, False, 1.5, 2.0, "1", None],
                         ids=["minus-1", "True", "False", "1.5", "2.0", "str", "None"])
def test_run_check_and_run_all_reject_a_bad_seed(seed: object) -> None:
    implementations = reference_implementations()
    with pytest.raises(ValueError, match="seed"):
        run_check("cosine", implementations, seed=seed)
    with pytest.raises(ValueError, match="seed"):
        run_all(implementations, seed=seed)


def test_seed_is_not_taken_for_an_implementation() -> None:
    """run_check passes ``seed`` itself: an implementations dict without a 'seed' entry is
    complete, and one with a 'seed' entry does not override the run seed."""
    implementations = reference_implementations()
    run_check("1.2", implementations, seed=3)
    run_check("1.2", {**implementations, "seed": "not an implementation"}, seed=3)
