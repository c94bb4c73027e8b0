"""The check of ``training_memory`` (``checks.systems``): what it counts is what a real step
holds, it judges shapes the student never saw, and a trusted judge reaches its verdict from the
record alone (observe in a sandbox, judge in a process that runs no student code).

The catalog's mutants of ``training_memory`` (mutants_systems.py) are proved with every other
mutant in test_checks.py (each fails exactly ``memory``, with its message, at the visible and a
hidden seed) and graded end to end in tests/course/test_grading.py."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import pytest
from mutants_systems import MUTANTS
from variants import mutant_implementations, reference_implementations

import tinytorch.core.training as reference
from checks import judge, observe, run_check
from checks.diagnose import NOT_WRITTEN
from checks.replay import encode
from checks.systems import cases, count, layer_table
from course.assignment.solutions import strip_solutions

SEEDS = range(0, 25)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_lessons_table_is_what_the_graph_of_a_real_step_holds(seed: int) -> None:
    """The check's truth is the graph of a real step; the lesson's per-layer table (which the
    reference implements) states the same bytes, for every model the check draws."""
    for case in cases(seed):
        counted = count(case, seed)
        table = sum(b for _, b, _ in layer_table(case.build(), case.batch_size))
        assert counted.activations == table, (case.label, case.batch_size)
        assert counted.gradients == counted.parameters
        run_check("memory", reference_implementations(), seed=seed, quiet=True)


def test_a_hidden_run_draws_other_shapes_and_the_same_ones_every_time() -> None:
    def shapes(seed: int) -> list[tuple[str, str, int]]:
        return [(c.label, c.optimizer[0], c.batch_size) for c in cases(seed)]

    assert shapes(7) == shapes(7)
    assert shapes(7) != shapes(0) and shapes(7) != shapes(8)
    kinds = {c.optimizer[0].split(" with")[0] for c in cases(7)}
    assert {"SGD", "Adam", "AdamW"} <= {k.split(" ")[0] for k in kinds}


def _through_json(implementations: dict, seed: int) -> str | None:
    record = json.loads(json.dumps(observe("memory", implementations, seed=seed)))
    return judge("memory", record, seed=seed)


def _direct(implementations: dict, seed: int) -> str | None:
    try:
        run_check("memory", implementations, seed=seed, quiet=True)
    except AssertionError as failure:
        return str(failure)
    return None


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("name", ["reference", *[m.name for m in MUTANTS]])
def test_the_judge_agrees_with_the_check(name: str, seed: int) -> None:
    implementations = reference_implementations() if name == "reference" else \
        mutant_implementations(next(m for m in MUTANTS if m.name == name))
    direct = _direct(implementations, seed)
    assert (direct is None) == (name == "reference"), direct
    assert _through_json(implementations, seed) == direct


def test_the_judge_counts_for_itself_a_forged_number_fails() -> None:
    """The record holds only the numbers the student's function returned; the judge compares
    them with its own count, so one byte off in the record is a failure naming it."""
    record = json.loads(json.dumps(observe("memory", reference_implementations(), seed=0)))
    assert judge("memory", record, seed=0) is None
    returned = dict(record[0]["return"]["dict"])
    returned["activations"] += 1
    returned["total"] += 1
    record[0]["return"] = encode(returned)
    verdict = judge("memory", record, seed=0)
    assert verdict is not None and "activations of Sequential" in verdict


def _released() -> dict:
    module = types.ModuleType("released_training")
    source = strip_solutions(Path(reference.__file__).read_text())
    exec(compile(source, reference.__file__, "exec"), module.__dict__)
    return {**reference_implementations(), "training_memory": module.training_memory}


def test_the_untouched_release_is_not_written_yet_directly_and_when_judged() -> None:
    message = _direct(_released(), 0)
    assert message is not None and message.startswith(f"{NOT_WRITTEN}: training_memory")
    judged = _through_json(_released(), 3)
    assert judged is not None and judged.startswith(f"{NOT_WRITTEN}: training_memory")


def test_a_function_that_returns_nothing_earns_nothing() -> None:
    def nothing(model, optimizer, batch_size):
        return None

    message = _direct({"training_memory": nothing}, 0)
    assert message is not None and re.search(r"expected: a dict with the keys", message)
