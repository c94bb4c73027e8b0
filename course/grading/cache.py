"""Every decided report kept the moment it is decided: nothing lost, nothing graded twice.

``make autograde`` grades a class for minutes to hours; a grader killed (``kill -9``, a reboot,
a hub that ends the job) must not lose what it had decided, and a rerun must grade only what is
new. So each submission's report is written, as soon as it arrives, to

    <course>/autograde-cache/<release digest>/<notebook SHA-256>.json

written to a temporary file and renamed into place (a reader sees the old file or the new one,
never half of one; a kill leaves at most a stray ``.tmp`` file, ignored). The key is the
SHA-256 of the notebook's bytes and the digest of the release it was graded against (the staged
packages the sandbox receives, the checks that judge, the graded cells and their points, and
the grader's own code): a changed notebook, or a new release, is graded anew; the same notebook
against the same release is not (``--regrade`` forces it). Identical notebooks share a report:
grading the same code against the same release decides the same points.

Writing into the gradebook is remembered the same way, per student and per gradebook
(``gradebook/<student>.json``: the notebook and release digests it holds), so a rerun after a
kill writes exactly the students whose gradebook entry is missing or stale, and each student
appears once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinytorch import files

FOLDER = "autograde-cache"
#: The grader's own code that decides a score: a change to it is a new release to grade against.
_GRADER_CODE = ("submission.py", "intake.py", "observer.py")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_digest(template: Path, graded: Sequence[Any]) -> str:
    """The digest of what a report depends on besides the notebook: every file of the staged
    packages folder ``template`` (names and bytes), the graded cells (grade_id, points, check)
    and the grader's code."""
    digest = hashlib.sha256()
    for path in sorted(p for p in template.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(template)).encode() + b"\0")
        digest.update(file_digest(path).encode())
    digest.update(json.dumps([[c.grade_id, c.points, c.check] for c in graded]).encode())
    here = Path(__file__).parent
    for name in _GRADER_CODE:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.hexdigest()


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path``, whole or not at all, and on disk before this returns."""
    files.write_atomically(path, data)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None  # missing, or not ours: as if never written
    return data if isinstance(data, dict) else None


class Reports:
    """The decided reports of one release, and what the gradebook holds, in ``folder``."""

    def __init__(self, folder: Path, release: str) -> None:
        self.folder = folder
        self.release = release

    def _path(self, notebook: str) -> Path:
        return self.folder / self.release[:32] / f"{notebook}.json"

    def get(self, notebook: str) -> dict[str, Any] | None:
        """The report decided for the notebook whose SHA-256 is ``notebook``, if any."""
        entry = _read(self._path(notebook))
        if (entry is None or entry.get("release") != self.release
                or entry.get("notebook") != notebook or not isinstance(entry.get("report"), dict)):
            return None
        return entry["report"]

    def put(self, notebook: str, report: dict[str, Any]) -> None:
        entry = {"notebook": notebook, "release": self.release, "report": report}
        write_atomically(self._path(notebook), json.dumps(entry).encode())

    # ------------------------------------------------------------------ the gradebook's side
    def _written_path(self, student: str) -> Path:
        return self.folder / "gradebook" / f"{student}.json"

    def written(self, student: str, notebook: str, gradebook: str) -> bool:
        """Whether ``student``'s report for this notebook and release is in ``gradebook``."""
        entry = _read(self._written_path(student))
        return entry == {"notebook": notebook, "release": self.release,
                         "gradebook": _gradebook_key(gradebook)}

    def mark_written(self, student: str, notebook: str, gradebook: str) -> None:
        entry = {"notebook": notebook, "release": self.release,
                 "gradebook": _gradebook_key(gradebook)}
        write_atomically(self._written_path(student), json.dumps(entry).encode())

    def forget_written(self, student: str) -> None:
        self._written_path(student).unlink(missing_ok=True)


def _gradebook_key(url: str) -> str:
    """A gradebook's identity without its password (the URL's digest)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]
