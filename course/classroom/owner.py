"""Autograde as root, with root doing only what needs root: the course's owner does the rest.

Grading a class as root gives each submission's sandbox a uid and control groups of its own;
nothing else needs root. A course another account owns (the instructor's ``~/course`` on a
hub) is that account's to write, so to root it is hostile input: a link in ``submitted/``
would have root read ``/etc/shadow`` into a report, a link in ``autograded/`` would have it
write anywhere, a crafted configuration would have it run code. So, when root autogrades a
course it does not own:

1. root looks at the course only to refuse it, naming the files, when a third account (neither
   root nor the owner) could change them (``others_can_change``: ``lstat``, no link followed);
2. root starts ``course.classroom.autograde`` as the owner (``run``: the owner's uid, groups,
   home and login ``PATH``, or ``--owner-python``), which reads the submissions, the times, the
   configuration, the cache and the gradebook, and writes them, with the owner's rights only;
3. that process sends root each notebook's bytes (``RootGrades``, a runner as
   ``course.grading.batch`` knows them) over a pipe; root writes them into a folder of its own,
   grades them with the seeds it draws and the limits it was given (``serve``), and sends back
   each report, plain JSON, as it is decided.

Nothing the owner's process says can make root open, run or write anything but its own
temporary folder; what it prints reaches root's terminal with control characters made inert.
"""

from __future__ import annotations

import base64
import grp
import json
import os
import pwd
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from checks.diagnose import printable
from course.assignment.cells import source_graded_cells
from course.grading import cache, intake, sandbox
from course.grading import grade as grading
from course.grading.submission import OnReport, Task, staged

#: The longest line root reads from the owner's process: one notebook, base64, in JSON.
_MAX_LINE = (intake.NOTEBOOK.max_bytes + 1) * 4 // 3 + 4096
#: How many files a refusal names (the rest are counted).
_NAMED = 20


def owner_of(course: Path) -> pwd.struct_passwd | None:
    """The account that owns ``course`` when root runs and another account owns it, else None
    (not root, or root's own course: nothing to hand over)."""
    if os.geteuid() != 0:
        return None
    uid = course.lstat().st_uid
    if uid == 0:
        return None
    try:
        return pwd.getpwuid(uid)
    except KeyError:
        return None  # no account by that uid: refused by others_can_change's caller


def _members(gid: int) -> set[str]:
    try:
        group = grp.getgrgid(gid)
    except KeyError:
        return {f"gid {gid}"}  # an unknown group: count it as someone else
    return set(group.gr_mem) | {p.pw_name for p in pwd.getpwall() if p.pw_gid == gid}


def others_can_change(course: Path, owner_uid: int) -> list[str]:
    """Every file or folder of ``course`` (the folder included, no link followed) that an
    account other than root and ``owner_uid`` could change: owned by another uid, writable by
    others, or writable by a group with another member. Each as ``path: why``."""
    owner = pwd.getpwuid(owner_uid).pw_name if owner_uid else "root"
    found: list[str] = []
    groups: dict[int, bool] = {}

    def look(path: Path) -> None:
        info = path.lstat()
        if info.st_uid not in (0, owner_uid):
            found.append(f"{path}: owned by uid {info.st_uid}, not by {owner} or root")
        elif stat.S_ISLNK(info.st_mode):
            return  # a link's own mode means nothing; its folder decides who can replace it
        elif info.st_mode & stat.S_IWOTH:
            found.append(f"{path}: writable by every account (mode {info.st_mode & 0o7777:o})")
        elif info.st_mode & stat.S_IWGRP:
            if info.st_gid not in groups:
                groups[info.st_gid] = bool(_members(info.st_gid) - {owner, "root"})
            if groups[info.st_gid]:
                found.append(f"{path}: writable by group {info.st_gid}, which has other members")

    look(course)
    for folder, folders, files in os.walk(course, followlinks=False,
                                          onerror=lambda e: found.append(f"{e.filename}: {e}")):
        for name in [*folders, *files]:
            look(Path(folder) / name)
    return found


def refusal(course: Path, found: Sequence[str]) -> str:
    """What root says when it will not grade ``course``."""
    named = "\n".join(f"  {printable(line, 500)}" for line in found[:_NAMED])
    more = f"\n  ... and {len(found) - _NAMED} more" if len(found) > _NAMED else ""
    return (f"{course} can be changed by accounts other than its owner and root, so root will "
            f"not grade it (the sandboxes' uids and control groups need root, and root trusts "
            f"nothing a third account can write):\n{named}{more}\nmake them the owner's and "
            "not writable by others (chmod o-w,g-w), then run again")


# ----------------------------------------------------------------------------- the owner's side
@dataclass
class RootGrades:
    """A runner (``course.grading.batch``) for the owner's process: each notebook's bytes go
    to root, which grades them against its own release (``release``: its digest, which root
    sends first, and the cache keys reports by) and sends back each report as it is decided.
    Root draws the seeds and grades with the limits root was given."""

    ask: IO[bytes]
    answer: IO[bytes]
    release: str = ""

    def __post_init__(self) -> None:
        if not self.release:
            self.release = str(json.loads(self.answer.readline() or b"{}")["release"])

    def grade(self, tasks: Sequence[Task], *, template: Path,
              on_report: OnReport | None = None) -> list[dict[str, Any]]:
        for task in tasks:
            with open(task.path, "rb") as notebook:  # as many bytes as intake will refuse
                data = notebook.read(intake.NOTEBOOK.max_bytes + 1)
            self.ask.write(json.dumps({"notebook": base64.b64encode(data).decode()}).encode()
                           + b"\n")
        self.ask.write(b'{"end": true}\n')
        self.ask.flush()
        reports: list[dict[str, Any] | None] = [None] * len(tasks)
        for _ in tasks:
            line = self.answer.readline()
            if not line:
                raise RuntimeError("root stopped grading before every report was sent")
            message = json.loads(line)
            index, report = int(message["index"]), message["report"]
            report["file"] = tasks[index].path  # the owner's path, not root's copy
            reports[index] = report
            if on_report is not None:
                on_report(index, report)
        return [r for r in reports if r is not None]


def fds(text: str) -> tuple[IO[bytes], IO[bytes]]:
    """The two pipes ``--grader-fds ASK,ANSWER`` names, opened."""
    ask, answer = (int(n) for n in text.split(","))
    return os.fdopen(ask, "wb"), os.fdopen(answer, "rb")


# ----------------------------------------------------------------------------- root's side
def serve(ask: IO[bytes], answer: IO[bytes], *, jobs: int | None, limits: sandbox.Limits,
          cluster: str | None) -> None:
    """Grade what the owner's process sends, round after round, until it closes its pipe:
    each notebook written into a folder only root can read, graded here (or on ``cluster``),
    each report sent back as it is decided. First, the digest of the release root grades
    against, with root's ``limits`` (the cache's key: a report decided with other limits is
    another)."""
    lock = threading.Lock()

    def send(index: int, report: dict[str, Any]) -> None:
        with lock:
            answer.write(json.dumps({"index": index, "report": report}).encode() + b"\n")
            answer.flush()

    with staged() as template:
        answer.write(json.dumps({"release": cache.release_digest(
            template, source_graded_cells(), limits=limits)}).encode() + b"\n")
        answer.flush()
        _rounds(ask, template, send, jobs=jobs, limits=limits, cluster=cluster)


def _rounds(ask: IO[bytes], template: Path, send: OnReport, *, jobs: int | None,
            limits: sandbox.Limits, cluster: str | None) -> None:
    while True:
        with tempfile.TemporaryDirectory(prefix="tinytorch-root-grades-") as folder:
            files: list[Path] = []
            while True:
                line = ask.readline(_MAX_LINE + 1)
                if not line:
                    return  # the owner's process is done (or gone)
                if len(line) > _MAX_LINE:
                    raise ValueError("the course owner's process sent a line longer than a "
                                     "notebook may be")
                message = json.loads(line)
                if message.get("end"):
                    break
                path = Path(folder) / f"{len(files)}.ipynb"
                path.write_bytes(base64.b64decode(message["notebook"], validate=True))
                files.append(path)
            if not files:
                continue
            grading.grade(files, jobs=jobs, limits=limits, cluster=cluster, on_report=send,
                          template=template)


def _relay(stream: IO[bytes], to: IO[str]) -> None:
    for raw in stream:
        text = raw.decode("utf-8", errors="replace").rstrip("\n")
        to.write(printable(text, 4000) + "\n")
        to.flush()


def _command(account: pwd.struct_passwd, python: Path | None, args: list[str]) -> list[str]:
    """``python ARGS`` as the owner runs it: ``python``, or the first on their login PATH."""
    if python is not None:
        return [str(python), *args]
    shell = account.pw_shell if Path(account.pw_shell or "").name in (
        "sh", "bash", "dash", "zsh") else "/bin/sh"
    # the owner's login shell finds their Python the way their terminal does (~/.profile)
    return [shell, "-lc", 'exec python "$@"', "tinytorch-autograde", *args]


def _as(account: pwd.struct_passwd) -> dict[str, Any]:
    """How a process is started as ``account``: its uid, groups, a clean environment."""
    groups = [g.gr_gid for g in grp.getgrall() if account.pw_name in g.gr_mem]
    env = {"HOME": account.pw_dir, "USER": account.pw_name, "LOGNAME": account.pw_name,
           "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": os.environ.get("LANG", "C.UTF-8"),
           "PYTHONUNBUFFERED": "1"}
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": groups,
            "env": env, "cwd": account.pw_dir if Path(account.pw_dir).is_dir() else "/",
            "stdin": subprocess.DEVNULL}


def usable(account: pwd.struct_passwd, python: Path | None) -> str | None:
    """Why ``account`` cannot run this course's autograde (no Python with the course), or None."""
    probe = subprocess.run(  # noqa: S603 - an import, as the owner
        _command(account, python, ["-c", "import course.classroom.autograde"]),
        capture_output=True, text=True, timeout=120, **_as(account))
    if probe.returncode == 0:
        return None
    said = printable((probe.stderr or probe.stdout).strip().splitlines()[-1:][0]
                     if (probe.stderr or probe.stdout).strip() else "", 300)
    where = str(python) if python else "`python` on their login PATH"
    return (f"{account.pw_name}, who owns the course, cannot run this course's autograde with "
            f"{where} ({said or f'exit status {probe.returncode}'}): pass --owner-python "
            "/path/to/their/environment/bin/python, an environment with this course installed")


def run(account: pwd.struct_passwd, args: list[str], *, python: Path | None, jobs: int | None,
        limits: sandbox.Limits, cluster: str | None) -> int:
    """``course.classroom.autograde ARGS`` as ``account``, grading what it sends here; its exit
    status. ``args`` hold absolute paths only."""
    problem = usable(account, python)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    to_root_r, to_root_w = os.pipe()
    to_owner_r, to_owner_w = os.pipe()
    command = _command(account, python, ["-m", "course.classroom.autograde", *args,
                                         "--grader-fds", f"{to_root_w},{to_owner_r}"])
    try:
        process = subprocess.Popen(  # noqa: S603 - the course's own module, as its owner
            command, pass_fds=(to_root_w, to_owner_r), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, **_as(account))
    finally:
        os.close(to_root_w)
        os.close(to_owner_r)
    relays = [threading.Thread(target=_relay, args=(process.stdout, sys.stdout), daemon=True),
              threading.Thread(target=_relay, args=(process.stderr, sys.stderr), daemon=True)]
    for relay in relays:
        relay.start()
    with os.fdopen(to_root_r, "rb") as ask, os.fdopen(to_owner_w, "wb") as answer:
        try:
            serve(ask, answer, jobs=jobs, limits=limits, cluster=cluster)
        except BrokenPipeError:
            pass  # the owner's process ended early: what it printed says why
        except (ValueError, KeyError, TypeError) as error:
            print(f"error: {account.pw_name}'s process sent what is not a notebook to grade "
                  f"({type(error).__name__}: {str(error)[:200]}): stopped", file=sys.stderr)
            process.kill()
    status = process.wait()
    for relay in relays:
        relay.join()
    return status
