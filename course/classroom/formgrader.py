"""``make formgrader``: nbgrader's formgrader for grading the written answers, on a port of its
own, with the course's rubric and every student named.

    python -m course.classroom.formgrader [--course notebooks/] [--open] [--log FILE]

It starts JupyterLab from this environment in the course root (nbgrader's formgrader is a
server extension of it, and reads ``nbgrader_config.py`` there) with the course's formgrader
extension (``course.classroom.formgrader_view``: maths offline, the rubric beside each answer,
names shown) and, while the server boots, checks that every written answer of the assignment
has its rubric in the instructor guide (``course.classroom.rubric``; the server is stopped and
the answer named if not) and names the gradebook's students (``name_students``). Jupyter
chooses a free port of 127.0.0.1 (``make lab``'s student lab may hold 8888) and a token; both
are read from the server's runtime file (``jpserver-<pid>.json``, private to this account),
and as soon as the server answers, one line says where to grade:

    formgrader: http://127.0.0.1:PORT/formgrader?token=...

Nothing opens in a browser unless ``--open`` asks. The server's log goes to ``--log`` (default
``build/formgrader.log``), named if the server fails. Ctrl-C (or SIGTERM) stops the server.

Students have names: nbgrader's formgrader shows a student as "last, first" and writes "None,
None" when the gradebook has neither (nbgrader's autograde adds students by id only).
``name_students`` gives each student a name: the one of the course's roster if there is one
(``<course>/roster.csv``, columns ``id,first_name,last_name``, optional; instructor-only, never
released), else the id itself as the last name, so the formgrader reads "alice". It runs here
at every start and, in ``make autograde``, after each autograde writes the gradebook.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from course.assignment import config, paths

#: The server extension that makes nbgrader's formgrader the course's (imported by the server
#: only: this command stays quick to start).
EXTENSION = "course.classroom.formgrader_view"
#: The course's roster, in the course root: ``id,first_name,last_name`` (other columns ignored).
ROSTER = "roster.csv"
ROSTER_COLUMNS = ("id", "first_name", "last_name")
#: nbgrader's gradebook holds a name in at most this many characters (``String(128)``).
NAME_LIMIT = 128
#: Where the server's log goes unless ``--log`` says otherwise.
LOG = paths.REPO / "build" / "formgrader.log"
START_TIMEOUT = 60.0  # seconds until the server answers
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL


class RosterError(ValueError):
    """The roster cannot be read as ``id,first_name,last_name`` rows."""


class ServerError(RuntimeError):
    """The formgrader's server did not start."""


# ----------------------------------------------------------------------------- names
def shown_name(student: str, first_name: str | None, last_name: str | None) -> str:
    """A student as the formgrader shows them: "last, first" as nbgrader does, one of the two
    if only one is known, else the student's id (never "None")."""
    first, last = (first_name or "").strip(), (last_name or "").strip()
    if first and last:
        return f"{last}, {first}"
    return last or first or student


def read_roster(path: Path) -> dict[str, tuple[str, str]]:
    """Student id -> (first name, last name) from the roster ``path``; an empty dict if there
    is none. Raises ``RosterError`` naming the file (and line) for a missing column, an empty
    or repeated id, or a name longer than the gradebook holds."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise RosterError(f"{path}: cannot be read: {error}") from error
    names: dict[str, tuple[str, str]] = {}
    with handle:
        rows = csv.DictReader(handle)
        missing = [c for c in ROSTER_COLUMNS if c not in (rows.fieldnames or [])]
        if missing:
            raise RosterError(f"{path}: expected the columns {','.join(ROSTER_COLUMNS)} in its "
                              f"first line; missing: {', '.join(missing)}")
        try:
            for row in rows:
                line = rows.line_num
                student = (row["id"] or "").strip()
                if not student:
                    raise RosterError(f"{path}, line {line}: no student id")
                if student in names:
                    raise RosterError(f"{path}, line {line}: {student!r} is listed twice")
                first, last = ((row[c] or "").strip() for c in ("first_name", "last_name"))
                if max(len(first), len(last)) > NAME_LIMIT:
                    raise RosterError(f"{path}, line {line}: a name of {student!r} is longer "
                                      f"than the gradebook holds ({NAME_LIMIT} characters)")
                names[student] = (first, last)
        except (csv.Error, UnicodeDecodeError) as error:
            raise RosterError(f"{path}, line {rows.line_num}: not CSV: {error}") from error
    return names


def name_students(course: Path = paths.COURSE) -> dict[str, str]:
    """Give every student of the course's gradebook a name the formgrader shows: the roster's
    (``<course>/roster.csv``) where it lists them, else, for a student with neither a first nor
    a last name, the id as the last name. A name given by hand (Manage Students) that the
    roster does not list stays. Returns student id -> the name now shown, for each student
    changed. No gradebook yet (no ``make release``): nothing to name. Raises ``RosterError``."""
    roster = read_roster(course / ROSTER)
    url = config.db_url(course)
    file = config.sqlite_file(url)
    if file is not None and not file.is_file():
        return {}
    from nbgrader.api import Gradebook

    changed = {}
    with Gradebook(url, config.course_id(course)) as gradebook:
        for student in gradebook.students:
            if student.id in roster:
                first, last = roster[student.id]
                first_name, last_name = first or None, last or (None if first else student.id)
            elif not (student.first_name or student.last_name):
                first_name, last_name = None, student.id
            else:
                continue
            if (student.first_name, student.last_name) != (first_name, last_name):
                student.first_name, student.last_name = first_name, last_name
                changed[student.id] = shown_name(student.id, first_name, last_name)
        if changed:
            gradebook.db.commit()
    return changed


# ----------------------------------------------------------------------------- the server
@dataclass(frozen=True)
class Server:
    """The formgrader's running server."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path

    @property
    def url(self) -> str:
        """The formgrader's address, with the token that logs the grader in."""
        return f"http://127.0.0.1:{self.port}/formgrader?token={self.token}"


def command(course: Path) -> list[str]:
    """JupyterLab from this environment serving the course root ``course``, on a free port of
    127.0.0.1, with the course's formgrader extension, opening no browser."""
    line = [sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
            f"--ServerApp.root_dir={course}",
            f"--ServerApp.jpserver_extensions={EXTENSION}=True"]
    if os.geteuid() == 0:  # containers run as root; Jupyter refuses it unless told
        line.append("--allow-root")
    return line


def _log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(the log is empty)"


def _server_info(pid: int) -> dict | None:
    """The runtime file a Jupyter server with process id ``pid`` writes once it listens."""
    from jupyter_core.paths import jupyter_runtime_dir

    try:
        return json.loads((Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json").read_text())
    except (OSError, ValueError):
        return None


def _answers(port: int, token: str) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                     headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server (SIGTERM: Jupyter shuts its kernels down), killing it if it hangs."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def start(course: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start the formgrader's server for ``course``, its output into ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        # its own session: a Ctrl-C in the terminal reaches this process, which stops the
        # server, instead of Jupyter's "Shutdown this Jupyter server (y/[n])?"
        return subprocess.Popen(command(course), cwd=course, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_until_up(process: subprocess.Popen[bytes], log: Path,
                  timeout: float = START_TIMEOUT) -> Server:
    """The server once it answers, its port and token read from its runtime file. Raises
    ``ServerError`` (with the log's end) if it exits or stays silent for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerError(f"the formgrader's server exited with code {process.returncode}; "
                              f"the end of its log ({log}):\n{_log_tail(log)}")
        info = _server_info(process.pid)
        if info and info.get("port") and _answers(int(info["port"]), str(info["token"])):
            return Server(process, int(info["port"]), str(info["token"]), log)
        if time.monotonic() > deadline:
            raise ServerError(f"the formgrader's server did not answer within {timeout:.0f} s; "
                              f"the end of its log ({log}):\n{_log_tail(log)}")
        time.sleep(0.1)


def prepare(course: Path) -> dict[str, str]:
    """What the formgrader needs of the course: every written answer's rubric in the guide
    (``rubric.MissingRubric`` otherwise) and every student named (``name_students``, whose
    changes it returns)."""
    from course.classroom import rubric

    source = course / "source" / paths.ASSIGNMENT / paths.NOTEBOOK
    rubric.for_answers(rubric.written_answers(source if source.is_file()
                                              else paths.SOURCE_NOTEBOOK))
    return name_students(course)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=paths.COURSE,
                        help="the nbgrader course root (default: notebooks/)")
    parser.add_argument("--open", action="store_true",
                        help="open the formgrader in this machine's browser")
    parser.add_argument("--log", type=Path, default=LOG,
                        help="the server's log (default: build/formgrader.log)")
    args = parser.parse_args(argv)
    course = args.course.resolve()
    if not (course / config.CONFIG_FILE).is_file():
        print(f"error: --course {args.course}: no {config.CONFIG_FILE} there: not an nbgrader "
              "course root", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    process = None
    try:
        process = start(course, args.log.resolve())  # it boots while the course is checked
        from course.classroom.rubric import RubricError

        try:
            named = prepare(course)
        except (RubricError, RosterError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if named:
            roster = read_roster(course / ROSTER)
            listed = sum(student in roster for student in named)
            print(f"named {len(named)} student{'s' * (len(named) != 1)} in the gradebook: "
                  f"{listed} from {course / ROSTER}, {len(named) - listed} by their id",
                  flush=True)
        server = wait_until_up(process, args.log.resolve())
        print(f"formgrader: {server.url}", flush=True)
        print(f"(the server's log: {server.log}; Ctrl-C stops it)", flush=True)
        if args.open:
            webbrowser.open(server.url)
        process.wait()
        print(f"error: the formgrader's server exited with code {process.returncode}; its "
              f"log: {server.log}", file=sys.stderr)
        return 1
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("formgrader stopped", flush=True)
        return 0
    finally:
        if process is not None:
            stop(process)


if __name__ == "__main__":
    sys.exit(main())
