"""Where the grader keeps its state on a host: folders of its own account, never shared ones.

Any account on a grading host can create names in ``/tmp``. A folder the grader expects to
find or make there (its sandbox slots' locks, the releases a Dask worker unpacks) is one a
student could make first: hold every lock in it, plant a link that has root create a file where
the student chose, or leave bytecode Python would load. So every such folder is the grading
account's own, mode 0700: root's under ``/run``, another account's under
``$XDG_RUNTIME_DIR`` or ``~/.cache``; one found belonging to another account, open to others,
or a link in its place is refused by name.
"""

from __future__ import annotations

import os
from pathlib import Path


def grading_folder(name: str) -> Path:
    """Where this account keeps the grader's folder ``name``: root's ``/run/<name>``, another
    account's ``$XDG_RUNTIME_DIR/<name>`` or ``~/.cache/<name>``."""
    if os.geteuid() == 0 and Path("/run").is_dir():
        return Path("/run") / name
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / name
    return Path.home() / ".cache" / name


def open_private(where: Path, *, setting: str = "") -> int:
    """A descriptor (``O_DIRECTORY``, no link followed) of ``where``, made with mode 0700 if
    missing; ``RuntimeError`` naming it unless it is a folder of this account that no other
    can enter. ``setting``: the environment variable that chooses another place, if any."""
    where.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(where, 0o700)
    except FileExistsError:
        pass
    elsewhere = f", or choose another with {setting}" if setting else ""
    try:
        descriptor = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise RuntimeError(f"the grader's folder {where} is not a folder ({error.strerror}): "
                           f"remove it{elsewhere}") from None
    info = os.fstat(descriptor)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        os.close(descriptor)
        raise RuntimeError(
            f"the grader's folder {where} belongs to uid {info.st_uid} with mode "
            f"{info.st_mode & 0o7777:o}: it must be this account's (uid {os.geteuid()}) and "
            f"private (0700), or another account could hold, redirect or plant what it "
            f"holds; remove it{elsewhere}")
    return descriptor


def private_folder(where: Path, *, setting: str = "") -> Path:
    """``where``, checked (and made) as ``open_private`` does."""
    os.close(open_private(where, setting=setting))
    return where
