"""The checks' instruments are not witnesses: writing them earns nothing.

A check hands the student's code objects of its own (a spying optimizer, models that log
inside ``forward``, loaders that count). The student's code can write anything into them, and
the record carries what it wrote. So the judge may believe an instrument only as far as a
consequence it recomputes bears it out (``checks.fixtures.SpySGD`` replays every logged step;
2.1 judges a Dropout's mode by the random draws it made).

The generic attack: a Trainer that does no work on the objects it is handed (it trains a deep
copy, the reference's way, and reports the copy's numbers) but writes into every object a
check handed it what the reference's run left in the copy's instruments: every log and counter
a check's class defines. Observed and judged as in trusted grading (``checks.observe``, the
record through JSON, ``checks.judge``), it must not pass one check more than the same Trainer
without those writes, at the visible seed and at a hidden one.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from typing import Any

import numpy as np
import pytest
from variants import reference_implementations

from checks import CHECKS, judge, observe
from checks.replay import _Proxy

TRAINER_CHECKS = [c for c in CHECKS if "Trainer" in inspect.signature(CHECKS[c]).parameters]


def _instrument_names(obj: Any) -> set[str]:
    """The attributes the checks' own classes in ``obj``'s hierarchy set in their code."""
    names: set[str] = set()
    for cls in type(obj).__mro__:
        if (cls.__module__ or "").startswith("checks."):
            names |= set(re.findall(r"self\.(\w+)\s*(?::[^=\n]*)?=", inspect.getsource(cls)))
    return names


def _plain(value: Any) -> bool:
    """Plain data: what a log or a counter holds (numbers, flags, arrays, and lists of them)."""
    if value is None or isinstance(value, bool | int | float | str | np.ndarray | np.generic):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


def _pairs(real: Any, shadow: Any, seen: set[int]) -> list[tuple[Any, Any]]:
    """(real object, its copy) for every object of the checks reachable from ``real``."""
    if id(real) in seen or isinstance(real, _Proxy) or real is None:
        return []
    seen.add(id(real))
    found = []
    if (type(real).__module__ or "").startswith("checks."):
        found.append((real, shadow))
    if isinstance(real, list | tuple) and isinstance(shadow, list | tuple):
        for r, s in zip(real, shadow, strict=False):
            found += _pairs(r, s, seen)
    elif hasattr(real, "__dict__") and hasattr(shadow, "__dict__"):
        for name, value in vars(real).items():
            if name in vars(shadow):
                found += _pairs(value, vars(shadow)[name], seen)
    return found


def _forging_trainer(reference: type, *, write: bool) -> type:
    """A Trainer that trains a copy (the reference's way) and, with ``write``, copies the
    copy's instrument logs into the real objects it was handed."""

    class Forger:
        def __init__(self, model: Any, optimizer: Any, loss_fn: Any, scheduler: Any = None,
                     grad_clip_norm: Any = None) -> None:
            self._real = [model, optimizer, loss_fn]
            self._copies = copy.deepcopy(self._real)
            self._shadow = reference(*self._copies, scheduler=scheduler,
                                     grad_clip_norm=grad_clip_norm)

        def __getattr__(self, name: str) -> Any:
            value = getattr(self._shadow, name)
            if not callable(value):
                return value

            def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    return value(*args, **kwargs)
                finally:
                    if write:
                        self._forge([*args, *kwargs.values()])
            return call

        def _forge(self, handed: list[Any]) -> None:
            shadows = [*self._copies, *handed]
            for real, shadow in _pairs([*self._real, *handed], shadows, set()):
                for name in _instrument_names(real):
                    value = vars(shadow).get(name)
                    if name in vars(real) and _plain(value):
                        setattr(real, name, copy.deepcopy(value))

    return Forger


def _verdicts(trainer: type, seed: int) -> dict[str, bool]:
    """check -> passed, for every check of the Trainer, observed and judged apart."""
    implementations = {**reference_implementations(), "Trainer": trainer}
    verdicts = {}
    for check in TRAINER_CHECKS:
        record = json.loads(json.dumps(observe(check, implementations, seed=seed)))
        verdicts[check] = judge(check, record, seed=seed) is None
    return verdicts


@pytest.mark.parametrize("seed", [0, 7])
def test_writing_the_checks_instruments_earns_nothing(seed: int) -> None:
    reference = reference_implementations()["Trainer"]
    honest = _verdicts(_forging_trainer(reference, write=False), seed)
    forged = _verdicts(_forging_trainer(reference, write=True), seed)
    gained = [c for c in TRAINER_CHECKS if forged[c] and not honest[c]]
    assert not gained, f"writing the instruments passed {gained}"
    # the attack is real: it does write logs the checks read (SpySGD's, 2.1's model's)
    assert not all(honest.values())


def test_a_spy_log_written_without_steps_fails_and_says_so() -> None:
    """The issue's attack in small: gradients appended to the spy, no step taken."""
    from checks.fixtures import LinearModel, SpySGD

    model = LinearModel(seed=0)
    optimizer = SpySGD(model.parameters(), lr=0.1)
    assert optimizer.seen_grads == []
    optimizer.lr_log.append(0.1)
    optimizer.grad_log.append([np.ones((1, 1), np.float32), np.ones(1, np.float32)])
    with pytest.raises(AssertionError, match="changed other than through optimizer.step"):
        _ = optimizer.seen_grads


def test_real_steps_replay_bit_for_bit_and_give_the_weights_before_each() -> None:
    from checks.fixtures import LinearModel, SpySGD
    from tinytorch.core.tensor import Tensor

    model = LinearModel(seed=3)
    optimizer = SpySGD(model.parameters(), lr=0.05, momentum=0.9)
    start = [np.array(p.data, np.float64) for p in model.parameters()]
    for step in range(4):
        for p in model.parameters():
            p.grad = Tensor(np.full(p.data.shape, 0.5 + step, np.float32))
        optimizer.step()
    assert len(optimizer.seen_grads) == 4
    assert all(np.array_equal(a, b) for a, b in zip(optimizer.seen_params[0], start,
                                                     strict=True))
    model.parameters()[0].data += np.float32(1e-3)  # a change no step made
    with pytest.raises(AssertionError, match="largest difference"):
        _ = optimizer.seen_lr
