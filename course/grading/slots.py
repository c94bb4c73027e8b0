"""Sandbox slots unique on a host, whoever grades there.

A slot is what tells parallel sandboxes apart: its uid (``sandbox.SANDBOX_UID + slot``, whose
process count ``Limits.processes`` bounds) and its control groups' names. Two graders on one
machine (two ``make autograde`` runs, a local pool beside a Dask worker, or several ``dask
worker`` processes) must never share one, or one run's processes would count against the
other's limit. A slot is held by an exclusive lock (``flock``) on ``<folder>/<slot>.lock`` for
as long as the process that took it lives: the kernel releases it when that process ends,
however it ends (``kill -9`` included), so a slot is never leaked and never shared.

The locks live in a folder of the grading account's own, mode 0700 (root's under ``/run``),
never in a shared temporary folder: an account that made the folder first, or held every lock
in it, would make every submission "not gradable", and a lock file it linked elsewhere would
have root create a file where it chose. The folder is refused, by name, unless it is this
account's and private; nothing in it is opened through a link.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

#: Where the lock files live (one folder per grading account; a grader may choose another).
ENV_FOLDER = "TINYTORCH_SLOT_FOLDER"
ROOT_FOLDER = "/run/tinytorch-grading-slots"
MAX_SLOTS = 1024  # uids 61000 to 62023

_held: dict[int, int] = {}  # slot -> the open file descriptor holding its lock


def folder() -> Path:
    """``$TINYTORCH_SLOT_FOLDER``; else root's ``/run/tinytorch-grading-slots``, another
    account's ``$XDG_RUNTIME_DIR/tinytorch-grading-slots`` or ``~/.cache/...``."""
    chosen = os.environ.get(ENV_FOLDER)
    if chosen:
        return Path(chosen)
    if os.geteuid() == 0 and Path("/run").is_dir():
        return Path(ROOT_FOLDER)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "tinytorch-grading-slots"
    return Path.home() / ".cache" / "tinytorch-grading-slots"


def _open_folder(where: Path) -> int:
    """A descriptor of ``where``, made 0700 if missing; refused unless it is a folder of this
    account that no other can enter (not a link, not another account's)."""
    where.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(where, 0o700)
    except FileExistsError:
        pass
    try:
        descriptor = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise RuntimeError(f"the sandbox slots' folder {where} is not a folder ({error.strerror}"
                           f"): remove it, or choose another with {ENV_FOLDER}") from None
    info = os.fstat(descriptor)
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        os.close(descriptor)
        raise RuntimeError(
            f"the sandbox slots' folder {where} belongs to uid {info.st_uid} with mode "
            f"{info.st_mode & 0o7777:o}: it must be this account's (uid {os.geteuid()}) and "
            f"private (0700), or another account could hold or redirect its locks; remove it, "
            f"or choose another with {ENV_FOLDER}")
    return descriptor


def acquire() -> int:
    """The lowest slot no other live process on this host holds, held by this process until
    it ends (or ``release``)."""
    where = folder()
    directory = _open_folder(where)
    try:
        for slot in range(MAX_SLOTS):
            if slot in _held:
                continue
            descriptor = os.open(f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, 0o600, dir_fd=directory)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(descriptor)
                continue
            _held[slot] = descriptor
            return slot
    finally:
        os.close(directory)
    raise RuntimeError(f"all {MAX_SLOTS} sandbox slots of this host are taken ({where})")


def release(slot: int) -> None:
    descriptor = _held.pop(slot, None)
    if descriptor is not None:
        os.close(descriptor)  # closing the last descriptor releases the lock
