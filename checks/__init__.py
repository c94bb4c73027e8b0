"""The audit's tests as reusable checks that say what a student's bug is.

Each check is a function that takes the student's implementations as keyword arguments (any of
``CosineSchedule``, ``clip_grad_norm``, ``Trainer``), never notebook globals, so the same check
runs on the reference, on a notebook's objects, or in a separate grading process. A check is
silent on success and raises ``AssertionError`` whose message says what was expected, what was
observed, and the likely bug in the student's words.

``CHECKS`` maps a check's id (the audit's number, or a name for unit checks) to its function;
``run_check(check_id, implementations)`` passes each check only the implementations it takes.
Neither ``run_check`` nor ``run_all`` ever stops on the student's code: any exception raised
while a check runs becomes that check's failure (see ``checks.diagnose``), and a stub that still
raises ``NotImplementedError`` is reported as "not written yet". In a notebook a failure shows
its message first and only the student's own frames; a pass prints one line saying what was
verified. Errors before checks: when a cell that defines code a check receives raised (the
kernel's record, ``checks.raised``), the check's failure names that cell instead ("the answer
cell for Trainer.train_epoch raised SyntaxError at line 12: fix it first"), and a pass adds a
line saying it ran without that cell's code.

Every check also takes a keyword-only ``seed`` (default 0): ``seed=0`` is the visible run a
student debugs against; a graded cell also runs ``run_check(check_id, implementations,
seed=S)`` with a secret ``S > 0``, the same check on other, still deterministic data (see
``checks.seeds``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from checks import raised
from checks.diagnose import CheckFailed, as_failure, likely
from checks.raised import watch_cells
from checks.registry import CHECKS, TITLES
from checks.replay import Recorder, Replayer, ReplayMismatch
from checks.seeds import validate

__all__ = ["CHECKS", "CheckFailed", "judge", "needs", "observe", "run_check", "run_all",
           "watch_cells"]


def _outcome(check_id: str, implementations: dict[str, Any], seed: int) -> CheckFailed | None:
    """Run one check; None when it passes, else its failure (whatever the student's code
    raised). A bad ``check_id`` or missing implementation is the caller's error: it raises."""
    if check_id not in CHECKS:
        raise ValueError(f"unknown check_id {check_id!r}; the checks are {list(CHECKS)}")
    check: Callable[..., None] = CHECKS[check_id]
    wanted = [name for name in inspect.signature(check).parameters if name != "seed"]
    missing = [name for name in wanted if name not in implementations]
    if missing:
        raise ValueError(f"check {check_id!r} needs implementations {missing}")
    try:
        check(**{name: implementations[name] for name in wanted}, seed=seed)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the student's code, all of it
        return as_failure(check_id, error)
    return None


def _check(check_id: str) -> tuple[Callable[..., None], list[str]]:
    if check_id not in CHECKS:
        raise ValueError(f"unknown check_id {check_id!r}; the checks are {list(CHECKS)}")
    check = CHECKS[check_id]
    return check, [name for name in inspect.signature(check).parameters if name != "seed"]


def needs(check_id: str) -> list[str]:
    """The implementations check ``check_id`` receives (``Trainer``, ``CosineSchedule``...):
    the code a cell that raised may have left missing or old for it (``checks.raised``)."""
    return _check(check_id)[1]


def observe(check_id: str, implementations: dict[str, Any], *, seed: int) -> list[dict]:
    """Run one check on the student's code and return what it saw, as plain data (the
    sandbox's half of a trusted grade; its verdict here is not used)."""
    check, wanted = _check(check_id)
    recorder = Recorder()
    proxies = recorder.wrap({name: implementations[name] for name in wanted})
    try:
        check(**proxies, seed=validate(seed))
    except (Exception, SystemExit):  # noqa: BLE001, S110 - judged from the record, elsewhere
        pass
    return recorder.events


def judge(check_id: str, events: list[dict], *, seed: int,
          ended: str | None = None, notes: list[str] | None = None) -> str | None:
    """The check's verdict on a record made by ``observe`` (the trusted half: no student code
    runs). None when it passes, else the failure message. ``ended`` says why a record stops
    early (a crash, a timeout); a record that does not follow the check fails. ``notes``, when
    given, receives what the check found but leaves out of a trusted verdict
    (``checks.replay.ungraded``: "not graded: ..."), for the student's report; a record that
    does not follow the check gives none."""
    check, wanted = _check(check_id)
    replayer = Replayer(events, ended)
    verdict = None
    try:
        check(**replayer.wrap(wanted), seed=validate(seed))
        replayer.finish()
    except ReplayMismatch as mismatch:  # not an Exception: no handler of a check absorbs it
        return (f"the graded run of this check did not complete\n"
                f"  expected: a full record of the check's calls into your code\n"
                f"  observed: {mismatch}\n"
                + likely("your code stopped the run (exit, crash of Python, time or memory "
                         "limit) or interfered with the checks"))
    except Exception as error:  # noqa: BLE001 - every exception is the check's failure
        verdict = as_failure(check_id, error).message
    if notes is not None:  # a failed check keeps the notes it made before it failed
        notes.extend(replayer.notes)
    return verdict


def run_check(check_id: str, implementations: dict[str, Any], *, seed: int = 0,
              quiet: bool = False) -> None:
    """Run one check with the implementations it asks for, on the data of run ``seed`` (0: the
    visible run). Raises ``CheckFailed`` (an AssertionError) on failure, ValueError for a bad
    ``seed`` or ``check_id``; on success prints one line naming what was verified (unless
    ``quiet``). When a cell that defines code this check receives raised (``checks.raised``),
    a failure names that cell instead of what its error left missing or old, and a pass says
    it ran without that cell's code."""
    seed = validate(seed)
    broken = raised.blocking(needs(check_id))
    if broken and any(name not in implementations for name in needs(check_id)):
        raise CheckFailed(check_id, raised.message(broken))  # the cell never defined it
    failure = _outcome(check_id, implementations, seed)
    if failure is not None:
        raise CheckFailed(check_id, raised.message(broken)) if broken else failure
    if not quiet:
        run = "" if seed == 0 else f" (again, on the data of run {seed})"
        print(f"\N{CHECK MARK} {check_id}: {TITLES[check_id]}{run}")
        if broken:
            print(raised.note(broken))


def run_all(implementations: dict[str, Any], *, seed: int = 0) -> dict[str, str | None]:
    """Every check at run ``seed``: its id mapped to None (passed) or the failure message.
    Never raises because of the implementations."""
    seed = validate(seed)
    results: dict[str, str | None] = {}
    for check_id in CHECKS:
        failure = _outcome(check_id, implementations, seed)
        results[check_id] = None if failure is None else failure.message
    return results
