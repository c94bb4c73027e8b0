"""nbgrader's fetch_feedback, as the course runs it on a hub: a student takes only the pages the
instructor released, as regular files, within bounds.

On a hub, students are accounts on the machine and the exchange is a folder they all share.
``nbgrader fetch_feedback`` (and the "Fetch Feedback" button of JupyterLab's Assignment List,
which runs the same class) copies into the student's home the page it finds at
``<exchange>/<course_id>/feedback/<hash>.html``, the hash being that of the student's own
submission (its ``submission_secret.txt`` and the notebook's name, in the student's nbgrader
cache). nbgrader's own copy follows a symbolic link there (to any file the student can read,
shown to them as their feedback), stops the whole fetch at a FIFO, and takes a file of any
size and any owner: whoever could write into that folder (a misconfigured mode, a shared
volume, a classmate in the instructor's group) would choose what a student reads as feedback.
``SafeFetchFeedback``, configured as ``c.ExchangeFactory.fetch_feedback`` in the students'
``nbgrader_config.py`` (``make hub`` and ``hub/Dockerfile`` write it):

* looks only where nbgrader looks (its ``init_src``, unchanged: the page named for the hash of
  each of this student's own submissions), in the course's ``feedback`` folder itself, never
  through a link in its place;
* takes a page only if it is a regular file (no link, FIFO, device, socket or folder) owned by
  the account that owns that ``feedback`` folder (the instructor, who made it with mode 711),
  within ``max_page_bytes`` (its apparent size: a sparse file counts whole), opened without
  following a link and without waiting on a FIFO;
* writes each page it takes whole or not at all (``tinytorch.files``): a refused page never
  replaces one fetched before;
* names every refused page, with its reason, in the fetch's output, copies the others, and then
  fails the fetch (``nbgrader fetch_feedback failed``, exit status 1), so the student is told
  to ask the instructor rather than shown a partial fetch as a success.

It lives in the student wheel (``tinytorch``), not in ``course``: the students' environment
has no ``course``. It imports only the standard library, nbgrader and ``tinytorch.files``;
nothing of Module 07, whose solution students write.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from pathlib import Path

from nbgrader.exchange.default.fetch_feedback import ExchangeFetchFeedback
from traitlets import Integer

from tinytorch.files import write_atomically

#: A page's name as nbgrader's release_feedback writes it: the md5 hex digest of the
#: submission's secret and the notebook's name, then ``.html``.
PAGE_NAME = re.compile(r"[0-9a-f]{32}\.html")
#: Mode of a fetched page (nbgrader's copy keeps the released page's 0644).
PAGE_MODE = 0o644


class Refused(Exception):
    """One feedback page that is not taken, and why."""


def _account(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, in a student's words."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def open_feedback_folder(path: Path) -> int:
    """A descriptor of the course's feedback folder ``path`` itself (``O_PATH``: a student may
    only search it, mode 711, not list it), or ``Refused`` if a link or anything but a folder
    stands in its place. The caller closes it."""
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:  # ELOOP: a link; ENOTDIR: a file
        raise Refused(f"the course's feedback folder {path} is not a folder ("
                      f"{error.strerror}): a link or a file in its place") from None


def read_page(folder: int, name: str, owner: int, limit: int) -> bytes:
    """The bytes of the page ``name`` in the folder open as ``folder``, if it is a regular file
    of ``owner`` no larger than ``limit`` bytes; else ``Refused``, saying why. Its type is read
    before it is opened (a device is never opened), and again from the open file, which is
    opened without following a link and without blocking on a FIFO."""
    if not PAGE_NAME.fullmatch(name):
        raise Refused("not the name of a feedback page (32 hex digits, then .html)")
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        raise Refused("it is gone") from None
    if not stat.S_ISREG(info.st_mode):
        raise Refused(f"{_kind(info.st_mode)}, not a regular file")
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
                             | os.O_CLOEXEC, dir_fd=folder)
    except OSError as error:  # ELOOP: replaced by a link since; EACCES: not readable
        raise Refused(f"cannot be opened as a regular file ({error.strerror})") from None
    with os.fdopen(descriptor, "rb") as stream:
        opened = os.fstat(stream.fileno())
        if not stat.S_ISREG(opened.st_mode):
            raise Refused(f"{_kind(opened.st_mode)}, not a regular file")
        if opened.st_uid != owner:
            raise Refused(f"owned by {_account(opened.st_uid)}, not by {_account(owner)}, who "
                          "owns the course's feedback folder")
        if opened.st_size > limit:
            raise Refused(f"{opened.st_size} bytes, more than the {limit} a feedback page "
                          "may have")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"grew past {limit} bytes while it was read")
    return data


class SafeFetchFeedback(ExchangeFetchFeedback):
    """``nbgrader fetch_feedback`` that takes only regular files of the feedback folder's
    owner, within bounds (module docstring); nbgrader decides which pages are this student's."""

    max_page_bytes = Integer(
        32 * 2**20,
        help="largest feedback page taken, by apparent size: a page renders one collected "
             "notebook (at most 20 MiB), its outputs and the course's template").tag(config=True)

    def do_copy(self, src: str, dest: str) -> None:
        """Each page nbgrader found for this student (``self.feedback_files``, from its
        ``init_src``) into ``dest/<timestamp>/<notebook>.html``, if it passes ``read_page``;
        each refused one is named with its reason, and the fetch then fails."""
        folder_path = Path(src)
        try:
            folder = open_feedback_folder(folder_path)
        except Refused as why:
            self.fail(f"refused all feedback: {why}")
            return  # fail() raises ExchangeError
        refused = []
        try:
            owner = os.fstat(folder).st_uid
            self.log.debug("Feedback pages are taken from %s, owned by %s", folder_path,
                           _account(owner))
            for notebook_id, timestamp, feedbackpath in self.feedback_files:
                page = Path(feedbackpath)
                try:
                    if page.parent != folder_path:
                        raise Refused(f"not in the course's feedback folder {folder_path}")
                    data = read_page(folder, page.name, owner, self.max_page_bytes)
                except Refused as why:
                    refused.append(f"{page} ({notebook_id}, submitted at {timestamp}): {why}")
                    self.log.error("refused feedback page %s for %s submitted at %s: %s",
                                   page, notebook_id, timestamp, why)
                    continue
                target = Path(dest) / timestamp / f"{notebook_id}.html"
                if target.exists():
                    self.log.debug("Overwriting existing feedback: %s", target)
                write_atomically(target, data, mode=PAGE_MODE)
                self.log.info("Fetched feedback: %s", target)
        finally:
            os.close(folder)
        if refused:
            self.fail(f"refused {len(refused)} feedback page(s), copying nothing of them (any "
                      "other page was fetched); tell your instructor:\n  " + "\n  ".join(refused))
