"""What every step of ``tinytorch complete`` shares: where Module 07 is in a tinytorch, the
names of what the command leaves beside it, and the error that stops it with nothing changed.
"""

from __future__ import annotations

from pathlib import Path

#: The module a notebook completes, relative to the folder holding a ``tinytorch`` package.
MODULE = Path("tinytorch") / "core" / "training.py"
BACKUP = ".before-complete"
#: The first line of a module this command wrote.
HEADER = "# Your Module 07: the answer cells of "


class CompleteError(Exception):
    """Bad input or a refused target: nothing was changed (exit status 2)."""


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
