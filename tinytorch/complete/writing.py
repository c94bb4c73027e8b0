"""Writing, once every check passes: the module goes to every target (``destinations.py``), each
file replaced atomically (a temporary file renamed into place), the one it replaces kept beside
it as ``training.py.before-complete`` (``-2``, ``-3``, ... when an older backup with other
contents is already there). A folder that cannot be written fails before anything changed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tinytorch import files
from tinytorch.complete.common import BACKUP, CompleteError
from tinytorch.complete.destinations import Protected, Target, forbidden


@dataclass
class Written:
    """One target after writing: the file, its backup (None: nothing replaced), changed?"""

    path: Path
    what: str
    backup: Path | None
    changed: bool


def _backup_for(path: Path, old: bytes) -> tuple[Path, bool]:
    """Where the file's current contents go, and whether they must be written there: an
    existing backup with the same bytes is reused, one with other bytes is never replaced."""
    number = 1
    while True:
        candidate = path.with_name(path.name + BACKUP + ("" if number == 1 else f"-{number}"))
        if not candidate.exists():
            return candidate, True
        if candidate.is_file() and candidate.read_bytes() == old:
            return candidate, False
        number += 1


def _temporary(beside: Path, data: bytes, mode: int) -> Path:
    return files.temporary_beside(beside, data, mode=mode)


def write(targets: list[Target], text: str,
          protected: Protected | None = None) -> list[Written]:
    """Write ``text`` to every target: first every temporary file (a folder that cannot be
    written fails here, with nothing changed), then each backup and module renamed into
    place. Python's cached bytecode of the old module is removed."""
    data = text.encode("utf-8")
    plans: list[tuple[Target, Path, Path | None, Path | None, Path | None]] = []
    temporaries: list[Path] = []
    try:
        for target in targets:
            path = target.path.resolve()
            why = forbidden(path, protected)
            if why:  # targets() refuses these already; never write one whatever the caller
                raise CompleteError(f"refusing to write {path}: it is {why}")
            old = path.read_bytes()
            if old == data:
                plans.append((target, path, None, None, None))
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            backup, needed = _backup_for(path, old)
            saved = _temporary(backup, old, mode) if needed else None
            temporaries += [saved] if saved else []
            new = _temporary(path, data, mode)
            temporaries.append(new)
            plans.append((target, path, new, backup, saved))
    except OSError as error:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise CompleteError(f"cannot write beside {error.filename or 'the module'}: "
                            f"{error.strerror or error}; nothing was changed") from error
    written = []
    for target, path, new, backup, saved in plans:
        if new is None:
            written.append(Written(path, target.what, None, False))
            continue
        if saved is not None and backup is not None:
            os.replace(saved, backup)
        os.replace(new, path)
        for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
            cached.unlink(missing_ok=True)
        written.append(Written(path, target.what, backup, True))
    return written
