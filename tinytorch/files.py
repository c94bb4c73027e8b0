"""Files written whole or not at all.

A file that matters (a checkpoint, a grading report, a student's finished module) is never
written in place: a crash half-way would leave half a file where a good one was. It is written
to a temporary file in the same folder, flushed to disk, then renamed over the target, which is
atomic on one file system: a reader sees the old file or the new one, never a mix. The folder
is then synced too, so the rename itself survives a power cut. A failure at any step removes
the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: What fills a file: bytes, or a function that writes into the open binary file.
Content = bytes | Callable[[BinaryIO], object]


def temporary_beside(path: Path, content: Content, *, mode: int | None = None,
                     tag: str = "") -> Path:
    """A new file ``.<name>.<tag><random>.tmp`` beside ``path`` holding ``content``, on disk
    (and with permissions ``mode``, if given) before this returns; removed if anything fails."""
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.{tag}", suffix=".tmp",
                                    dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            if callable(content):
                content(out)
            else:
                out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(name, mode)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def sync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries to disk: a rename into it survives a crash."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, content: Content, *, mode: int | None = None,
                     tag: str = "") -> Path:
    """``content`` at ``path`` (its folder made if missing), whole or not at all, and on disk
    before this returns; ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path, content, mode=mode, tag=tag)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
    return path
