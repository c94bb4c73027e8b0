"""Every decided report kept the moment it is decided: nothing lost, nothing graded twice.

``make autograde`` grades a class for minutes to hours; a grader killed (``kill -9``, a reboot,
a hub that ends the job) must not lose what it had decided, and a rerun must grade only what is
new. So each submission's report is written, as soon as it arrives, to

    <course>/autograde-cache/<release digest>/<notebook SHA-256>.json

written to a temporary file and renamed into place (a reader sees the old file or the new one,
never half of one; a kill leaves at most a stray ``.tmp`` file, ignored). The key is the
SHA-256 of exactly the bytes that were graded (``course.grading.grade`` reads each file once,
into a private copy that it hashes and grades) and the digest of everything else that decides
a score (``release_digest``): a changed notebook, a new release, other limits or budgets are
graded anew; the same notebook against the same release is not (``--regrade`` forces it).
Identical notebooks share a report: grading the same bytes against the same release decides
the same points.

Only what the bytes decided is kept: a report of the grader's own failure
(``grader_failed``: a judging process lost, no slot, the grader's error) is never stored, and
one found stored is ignored, so a plain rerun grades that submission again.

Writing into the gradebook is remembered the same way, per student and per gradebook
(``gradebook/<student>.json``: the notebook and release digests it holds). The memo only
saves work: ``course.classroom.autograde`` believes it only for a student the gradebook itself
holds with those scores, so a rerun after a kill, or after the gradebook was deleted and made
again, writes exactly the students whose entry is missing or stale, and each student appears
once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course.grading.budget import DEFAULT_BUDGET, Budget
from course.grading.sandbox import DEFAULT_LIMITS, Limits
from tinytorch import files

FOLDER = "autograde-cache"
#: The grader's own code: every module of ``course.grading`` (the judging, the bounds it reads
#: within, the observer, the sandbox and its control groups, the budgets, the grading
#: processes and what they report). A change to any of it is a new release to grade against:
#: cheaper to grade again than to prove which change cannot move a score.
GRADER_CODE = Path(__file__).parent


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_digest(template: Path, graded: Sequence[Any], *, limits: Limits = DEFAULT_LIMITS,
                   budget: Budget = DEFAULT_BUDGET) -> str:
    """The digest of everything a report depends on besides the notebook: every file of the
    staged packages folder ``template`` (names and bytes: what the sandbox runs, the checks
    that judge, and the bytecode the sandbox's Python reads instead of them), the graded
    cells (grade_id, points, check), the sandbox's ``limits`` (a run stopped at 10 s decides
    another score than one given 60 s), the judging ``budget``, and the grader's code
    (``GRADER_CODE``). Without ``limits`` and ``budget``, the defaults': a runner that only
    needs to name a release (a Dask worker checking what it received) agrees with its client
    either way."""
    digest = hashlib.sha256()
    for path in sorted(p for p in template.rglob("*") if p.is_file()):  # bytecode included
        digest.update(str(path.relative_to(template)).encode() + b"\0")
        digest.update(file_digest(path).encode())
    digest.update(json.dumps([[c.grade_id, c.points, c.check] for c in graded]).encode())
    digest.update(json.dumps({"limits": dataclasses.asdict(limits),
                              "budget": dataclasses.asdict(budget)}, sort_keys=True).encode())
    for path in sorted(GRADER_CODE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + file_digest(path).encode())
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
        """The report decided for the notebook whose SHA-256 is ``notebook``, if any (never a
        report of the grader's failure)."""
        entry = _read(self._path(notebook))
        if (entry is None or entry.get("release") != self.release
                or entry.get("notebook") != notebook or not isinstance(entry.get("report"), dict)
                or grader_failed(entry["report"])):
            return None
        return entry["report"]

    def put(self, notebook: str, report: dict[str, Any]) -> bool:
        """Keep ``report`` as what the bytes whose SHA-256 is ``notebook`` decide; a report of
        the grader's failure decided nothing and is not kept. Returns whether it was."""
        if grader_failed(report):
            return False
        entry = {"notebook": notebook, "release": self.release, "report": report}
        write_atomically(self._path(notebook), json.dumps(entry).encode())
        return True

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


def grader_failed(report: dict[str, Any]) -> bool:
    """Whether ``report`` is the grader's failure rather than a decision about the submission
    (``course.grading.submission.grader_failed``): kept nowhere, written nowhere."""
    return report.get("grader_failed") is True


def _gradebook_key(url: str) -> str:
    """A gradebook's identity without its password (the URL's digest)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]
