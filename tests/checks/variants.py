"""Build implementations to grade: the reference, a buggy variant of it (a mutant), or an
alternative correct solution.

A mutant is the reference ``tinytorch/core/training.py`` with text replacements applied, loaded
as a module of its own: the bug is a visible diff against the reference, and a replacement that
no longer matches the reference fails loudly instead of silently testing nothing.
"""

from __future__ import annotations

import importlib.util
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tinytorch.core.training as reference

IMPLEMENTATION_NAMES = ("CosineSchedule", "clip_grad_norm", "Trainer", "training_memory")
#: Written after the corpus of student code (tests/checks/corpus/): a file of it that does not
#: define these gets the reference's, so it is judged on the code it holds.
LATER_PARTS = ("training_memory",)


@dataclass(frozen=True)
class Mutant:
    """A bug a student could write. ``patches`` turn the reference into it; exactly the checks in
    ``caught_by`` must fail (the graded cells that lose points); the checks in ``named_by`` (the
    ones meant for this bug, a subset) must say what the bug is: their messages match the
    regex ``message``. Others may fail as a consequence (a loop that never clears gradients
    does not converge either) without naming it. In a hidden run (``seed > 0``) the checks in
    ``named_by`` must still fail and name the bug, and no check outside ``caught_by`` may fail
    (at the sweep's many seeds, but those in ``at_some_seeds``)."""

    name: str
    patches: tuple[tuple[str, str], ...]
    caught_by: frozenset[str]
    named_by: frozenset[str]
    message: str
    #: checks whose failure here rests only on an instrument's log that no consequence bears
    #: out (a graph built inside forward): the student's feedback, not the trusted grade
    ungraded: frozenset[str] = frozenset()
    #: checks outside ``caught_by`` that the bug also fails at some hidden seeds, through a
    #: consequence that only those runs' settings reach (a schedule shorter than the epochs
    #: trained; too few steps to learn the line at another learning rate): the hidden-seed
    #: sweep (``make bench-seeds``) accepts their failing, nothing else does
    at_some_seeds: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.named_by or not self.named_by <= self.caught_by:
            raise ValueError(
                f"mutant {self.name!r}: named_by must be a non-empty subset of caught_by"
            )
        if self.at_some_seeds & self.caught_by:
            raise ValueError(f"mutant {self.name!r}: at_some_seeds must be outside caught_by")


def mutant(name: str, patches: list[tuple[str, str]], caught: set[str], named: set[str],
           message: str, *, ungraded: frozenset[str] | set[str] = frozenset(),
           at_some_seeds: frozenset[str] | set[str] = frozenset()) -> Mutant:
    """A ``Mutant`` as the catalog files write one: patches as a list, checks as sets."""
    return Mutant(name, tuple(patches), frozenset(caught), frozenset(named), message,
                  frozenset(ungraded), frozenset(at_some_seeds))


def implementations(module: types.ModuleType) -> dict[str, Any]:
    return {name: getattr(module, name) if name not in LATER_PARTS or hasattr(module, name)
            else getattr(reference, name) for name in IMPLEMENTATION_NAMES}


def reference_implementations() -> dict[str, Any]:
    return implementations(reference)


def mutant_source(mutant: Mutant) -> str:
    """The text of training.py with the mutant's patches applied."""
    source = Path(reference.__file__).read_text()
    for old, new in mutant.patches:
        count = source.count(old)
        if count != 1:
            raise ValueError(
                f"mutant {mutant.name!r}: the text to replace occurs {count} times in the "
                f"reference (must be exactly once): {old!r}"
            )
        source = source.replace(old, new)
    return source


def mutant_implementations(mutant: Mutant) -> dict[str, Any]:
    source = mutant_source(mutant)
    module = types.ModuleType(f"mutant_{mutant.name}")
    module.__file__ = f"<mutant {mutant.name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return implementations(module)


def solution_implementations(path: Path) -> dict[str, Any]:
    """An alternative solution file defining the three implementations."""
    spec = importlib.util.spec_from_file_location(f"solution_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return implementations(module)
