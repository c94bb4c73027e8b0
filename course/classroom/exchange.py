"""nbgrader's exchange, as the course runs it on a hub: a submission is taken from its owner, as
regular files, within bounds.

On a hub, students are accounts on the machine, and the exchange's inbound folder is theirs to
write: whatever a student leaves there, ``nbgrader collect`` (run by the instructor, whose
account can read the gradebook, the solutions and the hub's API token) then reads. nbgrader's own
collect follows symbolic links, copies FIFOs and devices, takes a folder named for a classmate
with a later time over the classmate's own, and copies everything in it. ``SafeCollect``,
configured as ``c.ExchangeFactory.collect`` (the command line and the formgrader both use it):

* counts a folder in the inbound for student X only if X's account owns it (``accounts`` maps
  nbgrader ids to accounts; by default they are the same), so a folder named for a classmate
  is refused, never compared with the classmate's;
* takes only the assignment's notebook, nbgrader's ``timestamp.txt`` and its
  ``submission_secret.txt`` (which keys the feedback), each a regular file
  the student owns, opened without following links, within ``max_file_bytes`` (its apparent
  size: a sparse file counts whole); nothing else goes on to grading or feedback;
* writes the submission into a temporary folder first, so a refused submission never replaces
  the student's earlier, valid one;
* names every refusal with its student and reason in collect's output, and goes on with
  everyone else.

Each refused entry is reported with its name shown inert (``printable``): a file name is the
student's text too.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import parse_utc
from traitlets import Dict, Integer

from checks.diagnose import printable

#: The files a submission is made of besides its notebook (``nbgrader submit`` writes both;
#: the secret keys the feedback the student fetches); every other entry is left in the inbound.
TIMESTAMP, SECRET = "timestamp.txt", "submission_secret.txt"


class Refused(Exception):
    """One submission, or one file of it, that collect does not take, and why."""


class SafeCollect(ExchangeCollect):
    """``nbgrader collect`` that takes regular files only, from their owner (module docstring)."""

    accounts = Dict(
        key_trait=None, value_trait=None, default_value={},
        help="nbgrader student id -> the Unix account that submits as that student (default: "
             "the id itself)").tag(config=True)
    max_file_bytes = Integer(
        20 * 2**20, help="largest notebook taken, by apparent size").tag(config=True)

    # ------------------------------------------------------------------ which submissions
    def init_src(self) -> None:
        """The newest submission of each student (before the due date, with
        ``--before-duedate``) among the folders that student's account owns. nbgrader's own
        version stops the whole collect at one folder name it cannot parse."""
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            try:
                self.duedate = gradebook.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                self.duedate = None
        by_student: dict[str, list[dict[str, Any]]] = defaultdict(list)
        student = self.coursedir.student_id or "*"
        for entry in sorted(Path(self.inbound_path).glob(
                f"{student}+{self.coursedir.assignment_id}+*")):
            try:
                record = self._record(entry)
                self._check_owner(entry, record["username"])
            except Refused as why:
                self.log.error("refused: %s: %s", printable(entry.name, 200),
                               printable(str(why), 300))
                continue
            by_student[record["username"]].append(record)
        self.src_records = []
        for mine in by_student.values():
            newest = self._sort_by_timestamp(mine)
            if self.duedate is not None and self.before_duedate:
                newest = [r for r in newest if r["timestamp"] <= self.duedate] or newest
            self.src_records.append(newest[0])

    def _record(self, entry: Path) -> dict[str, Any]:
        parts = entry.name.rsplit("+", 3)
        if len(parts) < 3 or not parts[0]:
            raise Refused("not the name of a submission (student+assignment+time)")
        try:
            timestamp = parse_utc(parts[2])
        except (ValueError, OverflowError):
            raise Refused("its time is not a time") from None
        return {"username": parts[0], "filename": entry.name, "timestamp": timestamp}

    def account_of(self, student_id: str) -> str:
        return str(self.accounts.get(student_id, student_id))

    def _check_owner(self, entry: Path, student_id: str) -> None:
        info = entry.lstat()
        if not stat.S_ISDIR(info.st_mode):
            raise Refused("not a folder (a link or a file in its place)")
        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = f"uid {info.st_uid}"
        if owner != self.account_of(student_id):
            raise Refused(f"owned by {owner}, not by {self.account_of(student_id)}: "
                          "a submission in another student's name")

    # ------------------------------------------------------------------ what is copied
    def do_copy(self, src: str, dest: str, log: Any = None) -> None:
        """Take the notebook and timestamp of the submission at ``src`` into ``dest``, or
        raise ``Refused`` and leave ``dest`` as it was."""
        source = Path(src)
        owner = source.lstat().st_uid
        notebook = f"{self.coursedir.assignment_id}.ipynb"
        files = {}
        for name in (notebook, TIMESTAMP):
            files[name] = read_regular(source / name, owner, self.max_file_bytes)
        if (source / SECRET).exists() or (source / SECRET).is_symlink():
            files[SECRET] = read_regular(source / SECRET, owner, 4096)
        left = sorted(p.name for p in _entries(source) if p.name not in files)
        if left:
            self.log.warning("%s: left in the inbound, not collected: %s", printable(src, 300),
                             printable(", ".join(left[:20]), 400)
                             + (f" (and {len(left) - 20} more)" if len(left) > 20 else ""))
        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".collecting-", dir=target.parent))
        try:
            for name, data in files.items():
                (staging / name).write_bytes(data)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def copy_files(self) -> None:
        """Each chosen submission into ``submitted/``, as nbgrader decides (new, or newer with
        ``--update``, or another one with ``--before-duedate``); a refused one is named, keeps
        the student's earlier one, and stops no other student's."""
        if not self.src_records:
            self.log.warning("No submissions of '%s' for course '%s' to collect",
                             self.coursedir.assignment_id, self.coursedir.course_id)
        for record in self.src_records:
            student_id = record["username"]
            source = os.path.join(self.inbound_path, record["filename"])
            dest = self.coursedir.format_path(self.coursedir.submitted_directory, student_id,
                                              self.coursedir.assignment_id)
            if os.path.isdir(dest):
                existing = self.coursedir.get_existing_timestamp(dest)
                newer = existing is None or record["timestamp"] > existing
                if not ((self.update and newer) or (self.before_duedate
                                                    and existing != record["timestamp"])):
                    self.log.info("No newer submission to collect: %s %s", student_id,
                                  self.coursedir.assignment_id)
                    continue
            try:
                self.do_copy(source, dest)
            except (Refused, OSError) as why:
                self.log.error("refused: %s: %s: %s (an earlier submission, if any, is kept)",
                               printable(student_id, 100), printable(record["filename"], 200),
                               printable(str(why), 300))
                continue
            self.log.info("Collected submission: %s %s", student_id,
                          self.coursedir.assignment_id)


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def read_regular(path: Path, owner: int, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of ``owner`` no larger than ``limit``,
    opened without following a link and without blocking on a FIFO; else ``Refused``."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise Refused(f"{path.name} is missing") from None
    except OSError as error:  # ELOOP: a symbolic link
        raise Refused(f"{path.name} is not a regular file ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{path.name} is not a regular file")
        if info.st_uid != owner:
            raise Refused(f"{path.name} belongs to another account (uid {info.st_uid})")
        if info.st_size > limit:
            raise Refused(f"{path.name} is {info.st_size} bytes, more than the "
                          f"{limit} a submission's file may have")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"{path.name} grew past {limit} bytes while it was read")
    return data
