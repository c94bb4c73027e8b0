"""Observation and judgment in two processes (``checks.observe`` / ``checks.judge``).

The judge must reach the verdict the check reaches when it runs the student's code directly,
from the JSON record alone: for the reference, for every implementation of the corpus (the
catalog of mutants is graded this way end to end in tests/course/test_grading.py), at the
visible and a hidden seed. A record that was tampered with, cut short or padded must fail.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from variants import mutant_implementations, reference_implementations, solution_implementations

from checks import CHECKS, judge, observe, run_all
from checks.diagnose import NOT_GRADED
from checks.replay import decode, encode

CORPUS = sorted((Path(__file__).parent / "corpus").glob("student_*.py"))
CATALOG = [m for path in sorted(Path(__file__).parent.glob("mutants_*.py"))
           for m in importlib.import_module(path.stem).MUTANTS]


def _through_json(check_id: str, implementations: dict, seed: int) -> str | None:
    record = json.loads(json.dumps(observe(check_id, implementations, seed=seed)))
    return judge(check_id, record, seed=seed)


@pytest.mark.parametrize("seed", [0, 4])
def test_the_judge_agrees_with_the_check_on_the_reference(seed: int) -> None:
    direct = run_all(reference_implementations(), seed=seed)
    assert {c: _through_json(c, reference_implementations(), seed) for c in CHECKS} == direct


#: What a check learns only from an instrument's log, with no consequence the judge can
#: recompute: the student's feedback in the kernel, left out of a trusted verdict.
FEEDBACK_ONLY = ("requires_grad of the model's outputs inside evaluate's forward",
                 "loading a pickle file")


def _comparable(judged: dict[str, str | None], direct: dict[str, str | None]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both verdicts, where the direct message holds a feedback-only deviation compared by
    their failing alone (the judge names the other deviations)."""
    blunt = {c for c, m in direct.items() if m and any(f in m for f in FEEDBACK_ONLY)}
    return ({c: "failed" if c in blunt and m else m for c, m in judged.items()},
            {c: "failed" if c in blunt else m for c, m in direct.items()})


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_the_judge_agrees_with_the_check_on_student_code(path: Path) -> None:
    implementations = solution_implementations(path)
    direct = run_all(implementations)
    judged = {c: _through_json(c, implementations, 0) for c in CHECKS}
    judged_, direct_ = _comparable(judged, direct)
    assert judged_ == direct_


#: (mutant, check): a bug only an instrument's log shows, left out of the trusted verdict.
UNGRADED = [("evaluate-without-no-grad", "2.2"), ("load_falls_back_to_pickle",
                                                  "checkpoint-safety")]


@pytest.mark.parametrize(("name", "check_id"), UNGRADED, ids=[c for _, c in UNGRADED])
@pytest.mark.parametrize("seed", [0, 4])
def test_what_the_grade_leaves_out_is_a_note_not_a_failure(name: str, check_id: str,
                                                            seed: int) -> None:
    """The judge passes the check and words the record's log as a note for the report; the
    same check run directly (the notebook) fails on it, saying it is not graded there too
    for 2.2. The reference gets no note."""
    mutant = next(m for m in CATALOG if m.name == name)
    implementations = mutant_implementations(mutant)
    record = json.loads(json.dumps(observe(check_id, implementations, seed=seed)))
    notes: list[str] = []
    assert judge(check_id, record, seed=seed, notes=notes) is None
    assert len(notes) == 1 and notes[0].startswith(NOT_GRADED), notes
    assert re.search(mutant.message, notes[0], flags=re.S), notes[0]
    direct = run_all(implementations, seed=seed)[check_id]
    assert direct is not None and re.search(mutant.message, direct, flags=re.S), direct
    if check_id == "2.2":
        assert "checked in your notebook, not graded" in direct, direct
    clean: list[str] = []
    record = json.loads(json.dumps(observe(check_id, reference_implementations(), seed=seed)))
    assert judge(check_id, record, seed=seed, notes=clean) is None and clean == []


def test_a_record_cut_short_fails_with_the_reason() -> None:
    record = observe("1.1", reference_implementations(), seed=0)
    verdict = judge("1.1", record[: len(record) // 2], seed=0,
                    ended="stopped at the time limit of 60 s")
    assert verdict is not None and "stopped at the time limit of 60 s" in verdict


def test_a_padded_or_reordered_record_fails() -> None:
    record = observe("cosine", reference_implementations(), seed=0)
    assert judge("cosine", record, seed=0) is None
    assert "never asked for" in judge("cosine", [*record, record[-1]], seed=0)
    assert "does not follow" in judge("cosine", [record[1], record[0], *record[2:]], seed=0)
    assert judge("cosine", [], seed=0) is not None


def test_a_forged_value_is_judged_like_any_other() -> None:
    """Changing one returned rate in the record is caught by the check's own comparison."""
    record = observe("cosine", reference_implementations(), seed=0)
    forged = json.loads(json.dumps(record))
    calls = [e for e in forged if e.get("call") == "CosineSchedule.get_lr"]
    calls[3]["return"] = encode(0.5)
    verdict = judge("cosine", forged, seed=0)
    assert verdict is not None and "get_lr(epoch)" in verdict


def test_a_record_is_plain_data_and_arrays_survive_bit_for_bit() -> None:
    values = [np.array([np.nan, -0.0, 1e-45, 3e38], np.float32), np.float64(2.5),
              np.arange(6, dtype=np.int64).reshape(2, 3), (1, "a", None), {"k": [1.5]}]
    for value in values:
        text = json.dumps(encode(value))  # JSON: no pickle anywhere
        back = decode(json.loads(text))
        if isinstance(value, np.ndarray):
            assert back.dtype == value.dtype and back.tobytes() == value.tobytes()
        elif isinstance(value, np.generic):
            assert type(back) is type(value) and back == value
        else:
            assert back == value


def _extends(record: list) -> list[dict]:
    found = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if "extend" in value:
                found.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(record)
    return found


def test_a_growing_list_travels_as_its_new_items_and_replays_whole() -> None:
    """3.1's optimizer spy logs every step's learning rate: each epoch's call sends only the
    new entries, and the judge, rebuilding the list from them, reaches the check's own
    verdict."""
    record = observe("3.1", reference_implementations(), seed=0)
    extends = _extends(record)
    assert extends, "no list of state was sent as an extension"
    assert all(e["extend"] > 0 and isinstance(e["items"], list) for e in extends)
    assert judge("3.1", json.loads(json.dumps(record)), seed=0) is None


def test_an_extension_beyond_what_the_judge_holds_fails() -> None:
    record = json.loads(json.dumps(observe("3.1", reference_implementations(), seed=0)))
    _extends(record)[0]["extend"] = 10**6
    verdict = judge("3.1", record, seed=0)
    assert verdict is not None and "extends a list" in verdict


def _settles(record: list[dict]) -> list[int]:
    return [i for i, event in enumerate(record) if event.get("settle")]


def test_a_settled_block_sends_its_state_once_when_it_ends() -> None:
    """7.1 trains five models for 30 epochs each, reading only the returned losses until an
    epoch loop ends (``checks.replay.settled_after``): the epochs' calls carry no state, one
    ``settle`` event per loop carries what they changed, and the judge, applying it where the
    loop ended, reaches the check's verdict, for the reference and for a Trainer that never
    steps."""
    record = observe("7.1", reference_implementations(), seed=0)
    epochs = [e for e in record if e.get("call") == "Trainer.train_epoch"]
    assert len(epochs) == 5 * 30 and all(e["state"] == {} for e in epochs)
    settles = _settles(record)
    assert len(settles) == 5 and all(record[i]["state"] for i in settles)
    assert judge("7.1", json.loads(json.dumps(record)), seed=0) is None

    stuck = reference_implementations()

    class NeverSteps(stuck["Trainer"]):
        def _optimizer_step(self, params: list, window_samples: int) -> None:
            self._clear_grads(params)

    stuck["Trainer"] = NeverSteps
    direct = run_all(stuck)["7.1"]
    assert direct is not None and "no parameter changed" in direct
    assert _through_json("7.1", stuck, 0) == direct


def test_state_inside_a_settled_block_or_a_missing_settle_fails() -> None:
    record = json.loads(json.dumps(observe("7.1", reference_implementations(), seed=0)))
    first = _settles(record)[0]
    moved = json.loads(json.dumps(record))
    moved[first - 1]["state"], moved[first]["state"] = moved[first]["state"], {}
    verdict = judge("7.1", moved, seed=0)
    assert verdict is not None and "inside a block" in verdict
    verdict = judge("7.1", record[:first] + record[first + 1:], seed=0)
    assert verdict is not None and "does not follow the check" in verdict
