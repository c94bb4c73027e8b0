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

from course.grading import places

#: Where the lock files live (one folder per grading account; a grader may choose another).
ENV_FOLDER = "TINYTORCH_SLOT_FOLDER"
ROOT_FOLDER = "/run/tinytorch-grading-slots"  # root's folder()
MAX_SLOTS = 1024  # uids 61000 to 62023

_held: dict[int, int] = {}  # slot -> the open file descriptor holding its lock


def folder() -> Path:
    """``$TINYTORCH_SLOT_FOLDER``, else this account's own (``places.grading_folder``)."""
    chosen = os.environ.get(ENV_FOLDER)
    return Path(chosen) if chosen else places.grading_folder("tinytorch-grading-slots")


def acquire() -> int:
    """The lowest slot no other live process on this host holds, held by this process until
    it ends (or ``release``)."""
    where = folder()
    directory = places.open_private(where, setting=ENV_FOLDER)
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
