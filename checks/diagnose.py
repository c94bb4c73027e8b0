"""How a check reports a failure: what was expected, what was observed, and the likely bug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn


def fail(what: str, expected: Any, observed: Any, likely_bug: str) -> NoReturn:
    """Raise the AssertionError every check uses, in one fixed shape a student learns to read."""
    raise AssertionError(
        f"{what}\n"
        f"  expected: {expected}\n"
        f"  observed: {observed}\n"
        f"  likely bug: {likely_bug}"
    )


def listed(sizes: list[int]) -> str:
    """Batch sizes as a message shows them: ``5, 20, 7``."""
    return ", ".join(str(n) for n in sizes)


def require(condition: bool, what: str, expected: Any, observed: Any, likely_bug: str) -> None:
    """``fail(...)`` unless ``condition`` holds."""
    if not condition:
        fail(what, expected, observed, likely_bug)


def attempt(what: str, expected: Any, likely_bug: str, call: Callable[..., Any], *args: Any,
            **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``; if the student's code raises, report it as a failure of this
    shape (the exception's type and message as the observation) instead of as a crash."""
    try:
        return call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - any crash is the student's to see
        fail(what, expected, f"{type(error).__name__}: {error}", likely_bug)
