"""Where ``tinytorch complete`` writes: every Module 07 the student's code is imported from.

That is the ``tinytorch/`` folder beside the notebook (a working copy's, which shadows any
installed one) and the tinytorch installed in the environment of the Python running the
command, if there is one (the student's kernels import that one). A folder the command was
told to protect (``--protect``: the course protects the reference solution and the nbgrader
course folder) never receives a student's module.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinytorch.complete.common import MODULE, CompleteError, _shown


@dataclass(frozen=True)
class Target:
    """A ``tinytorch/core/training.py`` to write, and whose it is (for the messages)."""

    path: Path
    what: str


#: Folders never written into: folder -> why (``--protect``; the course adds its own).
Protected = dict[Path, str]


def forbidden(path: Path, protected: Protected | None = None) -> str | None:
    """Why ``path`` must never receive a student's module (it lies in a ``protected``
    folder), or None."""
    resolved = path.resolve()
    for root, why in (protected or {}).items():
        if resolved.is_relative_to(root.resolve()):
            return why
    return None


_FIND_INSTALLED = (
    "import importlib.util, json\n"
    "spec = importlib.util.find_spec('tinytorch')\n"
    "print(json.dumps(list(spec.submodule_search_locations or []) if spec else []))\n"
)


def installed_module(python: str = sys.executable) -> Path | None:
    """The ``tinytorch/core/training.py`` that ``import tinytorch`` finds in ``python``'s
    environment from a neutral folder (no working copy, no current folder on the path)."""
    with tempfile.TemporaryDirectory(prefix="complete-find-") as neutral:
        found = subprocess.run([python, "-B", "-P", "-c", _FIND_INSTALLED], cwd=neutral,
                               capture_output=True, text=True, timeout=120, check=False)
    printed = found.stdout.strip().splitlines()
    if found.returncode != 0 or not printed:
        return None
    for location in json.loads(printed[-1]):
        module = Path(location).parent / MODULE
        if module.is_file():
            return module
    return None


def targets(notebook: Path, *, notes: list[str],
            protected: Protected | None = None) -> list[Target]:
    """Every Module 07 the notebook's code is imported from: the tinytorch beside the notebook
    and the one installed in this Python's environment. CompleteError for a ``protected``
    folder beside the notebook (an installed tinytorch in one is skipped with a note) or when
    there is nowhere to write."""
    found: list[Target] = []
    beside = notebook.parent / MODULE
    if beside.is_file():
        why = forbidden(beside, protected)
        if why:
            raise CompleteError(f"refusing to write {beside}: it is {why} "
                                f"({beside.resolve()}); complete your working copy's notebook")
        found.append(Target(beside, "the tinytorch beside your notebook"))
    installed = installed_module()
    if installed is not None and installed.resolve() not in {t.path.resolve() for t in found}:
        why = forbidden(installed, protected)
        if why:
            notes.append(f"left alone: {installed.resolve()}, the tinytorch of the environment "
                         f"{_shown(Path(sys.prefix))}, is {why}: that is not a student's "
                         "environment; run this with the Python of yours")
        else:
            found.append(Target(installed, f"your environment's tinytorch, in "
                                f"{_shown(Path(sys.prefix))}: what your kernels import"))
    if not found:
        raise CompleteError(f"nowhere to write: no {MODULE} beside {notebook} and no tinytorch "
                            f"installed in the environment {_shown(Path(sys.prefix))}")
    return found
