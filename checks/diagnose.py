"""How a check reports a failure: what was expected, what was observed, and the likely bug."""

from __future__ import annotations

from typing import Any, NoReturn


def fail(what: str, expected: Any, observed: Any, likely_bug: str) -> NoReturn:
    """Raise the AssertionError every check uses, in one fixed shape a student learns to read."""
    raise AssertionError(
        f"{what}\n"
        f"  expected: {expected}\n"
        f"  observed: {observed}\n"
        f"  likely bug: {likely_bug}"
    )


def require(condition: bool, what: str, expected: Any, observed: Any, likely_bug: str) -> None:
    """``fail(...)`` unless ``condition`` holds."""
    if not condition:
        fail(what, expected, observed, likely_bug)
