"""Import a folder of downloaded submissions into nbgrader's ``submitted/`` layout, by one stated
rule, so that an odd file name fails alone and no import ever replaces a submission silently.

A download is a file ``<name>.ipynb`` or a folder ``<name>/07_training.ipynb``. Its student id:

1. the id the map gives it (``--students map.csv``, columns ``file,student``: the name as
   downloaded, the id to use), for names no rule reads, e.g. an LMS's
   ``smithdave_12345_67890_07_training.ipynb``; a map's id must be a usable id;
2. else ``<name>`` itself when it is a usable id already (``STUDENT_ID``: a letter or digit,
   then letters, digits, ``_``, ``.``, ``-``; e.g. ``alice``, ``bob.smith-2``);
3. else its slug (``slug``): Unicode NFKD, accents dropped, lower case, every run of characters
   outside ``[a-z0-9]`` one ``_``, no ``_`` at either end: ``Dave Smith.ipynb -> dave_smith``,
   ``Zoë Ångström.ipynb -> zoe_angstrom``.

Every download whose id is not its name is said so (``Dave Smith.ipynb -> dave_smith``). A name
that gives no id (``???.ipynb``), and each of two downloads that give the same id (``Dave
Smith.ipynb`` and ``dave smith.ipynb``; ``alice.ipynb`` and a folder ``alice/``), is named with
the reason and not imported; every other download is imported. The map decides such names.

The later submission counts, as in nbgrader; for a student who has a submission already:

- the same bytes: nothing is copied (``alice: unchanged (already submitted at ...)``);
- other bytes, submitted later (the time ``--times`` gives, else the file's modification time,
  against the held ``timestamp.txt``): the held notebook and its ``timestamp.txt`` move to
  ``<course>/replaced/<student>/<its time>/``, never deleted, and the new one is imported,
  said with the earlier one's grade;
- other bytes, not later (or the held time unknown): not imported, said so; ``--replace``
  imports it anyway, keeping the held one in ``replaced/`` the same way.

Below ``submitted/`` and ``replaced/`` (whose folders a hub's students' submissions make) nothing
is read or written through a symbolic link: each folder and file is opened without following
one, and each file is written to a temporary file renamed into place. A student whose folders
are not what an import writes is named and not imported; the others are.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
import secrets
import stat
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TextIO

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import parse_utc

from checks.diagnose import printable
from course.assignment import config, paths
from course.grading.grade import SubmissionError

#: A usable student id: what nbgrader's folders and the gradebook take as it is.
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: How nbgrader writes and reads a submission's time (its ``timestamp.txt``).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
SUFFIX = ".ipynb"


def usable(student: str) -> bool:
    """Whether ``student`` is a usable id as it is (the whole of it: no newline after it)."""
    return STUDENT_ID.fullmatch(student) is not None


def slug(name: str) -> str:
    """``name`` as an id: NFKD, accents (combining marks) dropped, lower case, each run of
    characters outside ``[a-z0-9]`` one ``_``, none at either end; empty when nothing is left."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "_", bare.lower()).strip("_")


def student_id(name: str) -> str:
    """The id of a download named ``name`` (without ``.ipynb``) when no map names it: the name
    itself when usable, so existing ids and nbgrader's usual ones stay, else its slug."""
    return name if usable(name) else slug(name)


# ------------------------------------------------------------ the instructor's files
def _rows(path: Path, what: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of the CSV file ``path`` (the ``what`` of the command line), which must have
    ``columns``; a byte-order mark (spreadsheets write one) is not part of the first column."""
    if not path.is_file():
        raise SubmissionError(f"{what} {str(path)!r} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not set(columns) <= set(rows[0]):
        raise SubmissionError(f"{what} {str(path)!r}: expected the columns "
                              f"{', '.join(map(repr, columns))}, found {sorted(rows[0])}")
    return rows


def read_times(path: Path) -> dict[str, datetime]:
    """Student -> submission time, from a CSV file with the columns ``student`` and
    ``submitted`` (ISO 8601; a time without a zone is read as UTC)."""
    times: dict[str, datetime] = {}
    for number, row in enumerate(_rows(path, "times file", ("student", "submitted")), start=2):
        try:
            when = datetime.fromisoformat(row["submitted"].strip())
        except (ValueError, AttributeError) as error:
            raise SubmissionError(
                f"times file {str(path)!r}, line {number}: {row['submitted']!r} is not a time "
                "(ISO 8601, e.g. 2026-12-06T15:00:00+00:00)") from error
        times[row["student"].strip()] = when if when.tzinfo else when.replace(tzinfo=UTC)
    return times


def read_map(path: Path) -> dict[str, str]:
    """Download name -> student id, from a CSV file with the columns ``file`` (the name as
    downloaded; a folder's name, with or without ``/``) and ``student``. Every id must be usable
    and every file named once: a wrong map would import a student under another's id."""
    names: dict[str, tuple[str, int]] = {}
    for number, row in enumerate(_rows(path, "students map", ("file", "student")), start=2):
        name = (row["file"] or "").strip().rstrip("/")
        student = (row["student"] or "").strip()
        where = f"students map {str(path)!r}, line {number}"
        if not name:
            raise SubmissionError(f"{where}: no file name (expected the name of a download, "
                                  "e.g. smithdave_12345_67890_07_training.ipynb)")
        if not usable(student):
            raise SubmissionError(
                f"{where}: {student!r} is not a usable student id (expected a letter or digit, "
                "then letters, digits, '_', '.' or '-', e.g. dave_smith)")
        if name in names and names[name][0] != student:
            raise SubmissionError(f"{where}: {name!r} is {student!r} here but "
                                  f"{names[name][0]!r} on line {names[name][1]}")
        names[name] = (student, number)
    return {name: student for name, (student, _) in names.items()}


# ------------------------------------------------------------ the downloads
@dataclass
class Downloads:
    """What a downloads folder holds, by the rule: the notebook of each student id, the
    downloads whose id is not their name (download name -> id), and the downloads refused
    (download name -> why)."""

    found: dict[str, Path] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def _downloads(folder: Path) -> Iterator[tuple[str, str, Path]]:
    """(name as downloaded, name without ``.ipynb``, notebook) of each download in ``folder``:
    ``<name>.ipynb`` files and ``<name>/07_training.ipynb`` folders (shown as ``<name>/``)."""
    for entry in sorted(folder.iterdir()):
        if entry.name.endswith(SUFFIX) and entry.is_file():
            yield entry.name, entry.name.removesuffix(SUFFIX), entry
        elif entry.is_dir() and (entry / paths.NOTEBOOK).is_file():
            yield f"{entry.name}/", entry.name, entry / paths.NOTEBOOK


def submissions_in(folder: Path, names: dict[str, str] | None = None) -> Downloads:
    """Each download of ``folder`` under its student id (the map ``names``, else the name when
    usable, else its slug). A name without an id, and each of the downloads that give one id,
    is refused alone. Only a folder without any download is an error."""
    if not folder.is_dir():
        raise SubmissionError(f"submissions folder {str(folder)!r} is not a directory")
    names = names or {}
    claims: dict[str, list[tuple[str, str, Path]]] = {}
    result = Downloads()
    for shown, name, notebook in _downloads(folder):
        student = names.get(shown.rstrip("/")) or student_id(name)
        if not student:
            result.refused[shown] = (
                "its name has no letter or digit to make a student id of: not imported; "
                "give it an id in --students map.csv (columns file,student)")
            continue
        claims.setdefault(student, []).append((shown, name, notebook))
    if not claims and not result.refused:
        raise SubmissionError(
            f"no submissions in {str(folder)!r}: expected <student>.ipynb files or "
            f"<student>/{paths.NOTEBOOK} folders"
        )
    for student, downloads in claims.items():
        if len(downloads) > 1:
            for shown, _, _ in downloads:
                others = [repr(other) for other, _, _ in downloads if other != shown]
                result.refused[shown] = (
                    f"is the student id {student!r}, as {' and '.join(others)} "
                    f"{'is' if len(others) == 1 else 'are'} too: not imported; "
                    "--students map.csv (columns file,student) decides which id each is")
            continue
        shown, name, notebook = downloads[0]
        result.found[student] = notebook
        if student != name:
            result.renamed[shown] = student
    # an unreadable notebook is imported all the same: it is graded 0 with the reason, alone
    return result


# ------------------------------------------------------------ the course's folders
class Unsafe(Exception):
    """A path below ``submitted/`` or ``replaced/`` that is not what an import writes (a link,
    a file where a folder belongs): nothing is read or written through it."""


_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@contextmanager
def _opened(descriptor: int) -> Iterator[int]:
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def _folder(parent: int, name: str, shown: Path, *, new: bool = False,
            follow: bool = False) -> int:
    """The folder ``name`` in the folder ``parent`` (made if missing; with ``new``, made now or
    FileExistsError), opened without following a link; with ``follow``, through one (the
    course's own ``submitted/`` and ``replaced/``, which the instructor may keep elsewhere)."""
    try:
        os.mkdir(name, dir_fd=parent)
    except FileExistsError:
        if new:
            raise
    try:
        return os.open(name, _FOLDER & ~os.O_NOFOLLOW if follow else _FOLDER, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Unsafe(f"{shown} is a link or not a folder, not what an import writes: "
                         "nothing is written through it") from error
        raise


@contextmanager
def _held(folder: int, name: str, shown: Path) -> Iterator[BinaryIO | None]:
    """The regular file ``name`` of ``folder``, open to read; None if there is none."""
    try:
        descriptor = os.open(name, _READ, dir_fd=folder)
    except FileNotFoundError:
        yield None
        return
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Unsafe(f"{shown} is a link, not the file a collect or an import writes: "
                         "nothing is read through it") from error
        raise
    with open(descriptor, "rb", closefd=True) as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise Unsafe(f"{shown} is not a regular file, not what a collect or an import "
                         "writes")
        yield stream


def _digest_of(stream: BinaryIO | None) -> str | None:
    """The SHA-256 of what ``stream`` holds, read in blocks (a held file may be of any size)."""
    if stream is None:
        return None
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def _write(folder: int, name: str, data: bytes) -> None:
    """``data`` as the file ``name`` of ``folder``, whole or not at all: a new temporary file
    renamed over it (a link in its place is replaced, never followed)."""
    temporary = f".{name}.{secrets.token_hex(6)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o666, dir_fd=folder)
    try:
        with open(descriptor, "wb", closefd=True) as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=folder)
        except OSError:
            pass
        raise


# ------------------------------------------------------------ times
def _time_of(stamp: BinaryIO | None) -> datetime | None:
    """The time a ``timestamp.txt`` holds, read as nbgrader reads it; None if it is missing or
    not a time."""
    if stamp is None:
        return None
    try:
        when = parse_utc(stamp.read(200).decode("utf-8").strip())
    except (ValueError, OverflowError, TypeError, UnicodeDecodeError):
        return None
    return when.replace(tzinfo=UTC) if when is not None else None


def shown_time(when: datetime | None) -> str:
    """``2026-12-01 10:00:00 UTC`` (fractions of a second only when there are some)."""
    if when is None:
        return "an unknown time (no readable timestamp.txt)"
    when = when.astimezone(UTC)
    fraction = f".{when.microsecond:06d}" if when.microsecond else ""
    return f"{when:%Y-%m-%d %H:%M:%S}{fraction} UTC"


def _folder_name(when: datetime | None) -> str:
    """A held submission's time as a file name: ``2026-12-01T10-00-00Z``."""
    if when is None:
        return "unknown-time"
    when = when.astimezone(UTC)
    fraction = f".{when.microsecond:06d}" if when.microsecond else ""
    return f"{when:%Y-%m-%dT%H-%M-%S}{fraction}Z"


def earlier_grade(course: Path, student: str, when: datetime | None) -> str:
    """What the gradebook holds of the submission submitted at ``when``: ``graded 100.0 / 100``
    when its entry is that submission's (nbgrader's autograde records the time it graded;
    an entry of another time is an older submission's), else ``not graded yet``."""
    url = config.db_url(course)
    file = config.sqlite_file(url)
    if file is not None and not file.exists():
        return "not graded yet"  # opening it would make an empty gradebook
    try:
        with Gradebook(url, config.course_id(course)) as gradebook:
            entry = gradebook.find_submission(paths.ASSIGNMENT, student)
            recorded = entry.timestamp
            if recorded is not None and (
                    when is None or recorded != when.astimezone(UTC).replace(tzinfo=None)):
                return "not graded yet"
            return f"graded {entry.score:.1f} / {entry.max_score:.0f}"
    except MissingEntry:
        return "not graded yet"


# ------------------------------------------------------------ importing
@dataclass
class Imported:
    """What an import did: a line for the instructor per student it did not simply add, and
    the students it could not import (student -> why)."""

    said: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _keep(root: int, student: str, held: int, when: datetime | None, course: Path) -> Path:
    """Move the held notebook and timestamp.txt of the folder ``held`` into a new folder
    ``replaced/<student>/<their time>[-N]/`` of the course (open as ``root``); returns it. A
    move, not a copy: not a byte of a submission is read here, whatever its size."""
    shown = course / "replaced" / student
    with _opened(_folder(root, "replaced", course / "replaced", follow=True)) as replaced, \
            _opened(_folder(replaced, student, shown)) as mine:
        base = _folder_name(when)
        for number in range(1, 1000):
            name = base if number == 1 else f"{base}-{number}"
            try:
                kept = _folder(mine, name, shown / name, new=True)
            except FileExistsError:
                continue
            with _opened(kept):
                for file in (paths.NOTEBOOK, "timestamp.txt"):
                    try:
                        os.rename(file, file, src_dir_fd=held, dst_dir_fd=kept)
                    except FileNotFoundError:
                        pass  # a submission without timestamp.txt
            return shown / name
    raise Unsafe(f"{shown} holds a thousand submissions of that time already")


def _import_one(course: Path, root: int, student: str, data: bytes, when: datetime, *,
                replace: bool) -> str | None:
    """Import one student's notebook ``data`` submitted at ``when`` by the rule (see the
    module); returns what to tell the instructor, None when there was nothing to tell."""
    submitted = course / "submitted" / student / paths.ASSIGNMENT
    with _opened(_folder(root, "submitted", course / "submitted", follow=True)) as top, \
            _opened(_folder(top, student, submitted.parent)) as mine, \
            _opened(_folder(mine, paths.ASSIGNMENT, submitted)) as folder:
        with _held(folder, paths.NOTEBOOK, submitted / paths.NOTEBOOK) as notebook:
            held = _digest_of(notebook)
        with _held(folder, "timestamp.txt", submitted / "timestamp.txt") as stamp:
            held_time = _time_of(stamp)
        said = None
        if held is not None:
            if held == hashlib.sha256(data).hexdigest():
                return f"{student}: unchanged (already submitted at {shown_time(held_time)})"
            later = held_time is not None and when > held_time
            if not later and not replace:
                known = "is not later" if held_time is not None else "cannot be shown later"
                return (f"{student}: kept the submission of {shown_time(held_time)}; this file "
                        f"({shown_time(when)}) {known}: not imported (--replace imports it "
                        "anyway)")
            grade = earlier_grade(course, student, held_time)
            kept = _keep(root, student, folder, held_time, course)
            which = "replaced an earlier submission" if later else \
                "--replace: replaced the submission"
            said = (f"{student}: {which} ({grade}) submitted at "
                    f"{shown_time(held_time)} by one submitted at {shown_time(when)}; the "
                    f"replaced one is kept in {kept}/")
        _write(folder, paths.NOTEBOOK, data)
        _write(folder, "timestamp.txt",
               when.astimezone(UTC).strftime(TIMESTAMP_FORMAT).encode())
        return said


def import_submissions(found: dict[str, Path], course: Path = paths.COURSE,
                       times: dict[str, datetime] | None = None, *,
                       replace: bool = False) -> Imported:
    """Import each student's notebook into nbgrader's ``submitted/<student>/07_training/``,
    with its submission time in ``timestamp.txt`` beside it (the time ``times`` gives, else
    the downloaded file's modification time), as ``nbgrader collect`` does, so nbgrader's late
    penalty applies; a student who has a submission already is decided by the rule (see the
    module). A student whose folders are not what an import writes is refused alone."""
    result = Imported()
    course.mkdir(parents=True, exist_ok=True)
    with _opened(os.open(course, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)) as root:
        for student, path in found.items():
            try:
                data = path.read_bytes()
                when = (times or {}).get(student) or datetime.fromtimestamp(
                    path.stat().st_mtime, tz=UTC)
                said = _import_one(course, root, student, data, when, replace=replace)
            except Unsafe as error:
                result.refused[student] = f"{error}: not imported"
            except OSError as error:
                result.refused[student] = (f"{error.filename or path}: {error.strerror or error}"
                                           ": not imported")
            else:
                if said is not None:
                    result.said.append(said)
    return result


def import_folder(folder: Path, course: Path, *, times: Path | None = None,
                  students: Path | None = None, replace: bool = False,
                  out: TextIO | None = None, err: TextIO | None = None) -> list[str]:
    """``make autograde SUBMISSIONS=folder``'s import: the rule's lines on ``out``, each
    download or student not imported named with why on ``err`` (every line inert: file names
    are anyone's text). Returns the names of those not imported; raises SubmissionError only
    when nothing in ``folder`` could be imported, or for an unusable map or times file."""
    out, err = out or sys.stdout, err or sys.stderr
    given = read_times(times) if times else None
    downloads = submissions_in(folder, read_map(students) if students else None)
    for shown, student in downloads.renamed.items():
        print(printable(f"{shown} -> {student}", 2000), file=out)
    for shown, why in downloads.refused.items():
        print(printable(f"error: {shown!r}: {why}", 2000), file=err)
    if not downloads.found:
        raise SubmissionError(f"no usable submission in {str(folder)!r}: each one is named "
                              "above with the reason")
    imported = import_submissions(downloads.found, course, given, replace=replace)
    for line in imported.said:
        print(printable(line, 2000), file=out)
    for student, why in imported.refused.items():
        print(printable(f"error: {student}: {why}", 2000), file=err)
    return [*downloads.refused, *imported.refused]
