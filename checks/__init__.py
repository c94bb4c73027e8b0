"""The audit's tests as reusable checks that say what a student's bug is.

Each check is a function that takes the student's implementations as keyword arguments (any of
``CosineSchedule``, ``clip_grad_norm``, ``Trainer``), never notebook globals, so the same check
runs on the reference, on a notebook's objects, or in a separate grading process. A check is
silent on success and raises ``AssertionError`` whose message says what was expected, what was
observed, and the likely bug in the student's words.

``CHECKS`` maps a check's id (the audit's number, or a name for unit checks) to its function;
``run_check(check_id, implementations)`` passes each check only the implementations it takes.

Every check also takes a keyword-only ``seed`` (default 0): ``seed=0`` is the visible run a
student debugs against; a graded cell also runs ``run_check(check_id, implementations,
seed=S)`` with a secret ``S > 0``, the same check on other, still deterministic data (see
``checks.seeds``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from checks.registry import CHECKS
from checks.seeds import validate

__all__ = ["CHECKS", "run_check", "run_all"]


def run_check(check_id: str, implementations: dict[str, Any], *, seed: int = 0) -> None:
    """Run one check with the implementations it asks for, on the data of run ``seed`` (0: the
    visible run); raises AssertionError on failure, ValueError for a bad ``seed``."""
    seed = validate(seed)
    check: Callable[..., None] = CHECKS[check_id]
    wanted = [name for name in inspect.signature(check).parameters if name != "seed"]
    missing = [name for name in wanted if name not in implementations]
    if missing:
        raise ValueError(f"check {check_id!r} needs implementations {missing}")
    check(**{name: implementations[name] for name in wanted}, seed=seed)


def run_all(implementations: dict[str, Any], *, seed: int = 0) -> dict[str, str | None]:
    """Every check at run ``seed``: its id mapped to None (passed) or the failure message."""
    seed = validate(seed)
    results: dict[str, str | None] = {}
    for check_id in CHECKS:
        try:
            run_check(check_id, implementations, seed=seed)
        except AssertionError as error:
            results[check_id] = str(error)
        else:
            results[check_id] = None
    return results
