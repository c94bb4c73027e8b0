"""Checkpoint files: arrays and JSON in one ``.npz``, written atomically, read without pickle.

Why not pickle: unpickling a file runs whatever code its author chose, so a checkpoint shared
by a classmate could do anything. An ``.npz`` read with ``allow_pickle=False`` holds only numbers.

Layout of a file: one array per tensor (parameters, optimizer buffers) and one uint8 array,
``__meta__``, holding UTF-8 JSON (counts, hyper-parameters, history, RNG states). The JSON
carries a SHA-256 digest of everything else, so a truncated, corrupted or edited file is
rejected before anything is restored from it.

Why atomic: the file is written under a temporary name in the same folder, flushed to disk, then
renamed over ``path``. A crash mid-save leaves the previous checkpoint whole; the temporary file
of a process killed mid-save (``.<name>.<pid>.<random>.tmp``) is removed by the next save to
the same path.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from tinytorch import files

FORMAT = "tinytorch-checkpoint"
VERSION = 1
META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: missing, damaged, tampered with or mismatched."""


def _digest(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_checkpoint(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and JSON ``meta`` to exactly ``path`` (any suffix), atomically."""
    path = Path(path)
    if META_KEY in arrays:
        raise ValueError(f"array name {META_KEY!r} is reserved")
    meta = {"format": FORMAT, "version": VERSION, **meta}
    meta["sha256"] = _digest(arrays, meta)
    payload = {**arrays, META_KEY: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    # a file object: numpy adds no ".npz" to the name; the process id in the temporary file's
    # name lets a later save remove what a killed one left (_remove_leftovers)
    return files.write_atomically(path, lambda out: np.savez(out, **payload),
                                  tag=f"{os.getpid()}.")


def _remove_leftovers(path: Path) -> None:
    """Delete the temporary files of earlier saves to ``path`` whose process is gone (killed
    mid-write, it could not clean up); a save still running elsewhere keeps its file."""
    prefix = f".{path.name}."
    for leftover in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = leftover.name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            leftover.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a checkpoint; raise CheckpointError naming ``path`` if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        # Our own file handle: numpy leaves it open when a damaged zip fails to parse.
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as error:  # any parse failure of an untrusted file means "unusable"
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read (truncated, damaged or not a "
            f"checkpoint): {type(error).__name__}: {error}"
        ) from error
    raw = arrays.pop(META_KEY, None)
    if raw is None or raw.dtype != np.uint8:
        raise CheckpointError(f"checkpoint {str(path)!r} has no {META_KEY} record")
    try:
        meta = json.loads(raw.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r} has an unreadable {META_KEY}") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {meta.get('version')!r}; "
            f"this tinytorch reads version {VERSION}"
        )
    stored = meta.pop("sha256", None)
    if stored != _digest(arrays, meta):
        raise CheckpointError(
            f"checkpoint {str(path)!r} fails its SHA-256 check: it was modified or damaged "
            "after it was written"
        )
    return arrays, meta
