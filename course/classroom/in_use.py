"""What still runs from the environments ``make clean`` removes, checked before it removes them.

    python -m course.classroom.in_use                # exit 1, naming each, if any process runs
    python -m course.classroom.in_use --force        # name them, exit 0 (make clean FORCE=1)
    python -m course.classroom.in_use --root DIR .venv .venv-student .venv-build

``make clean`` removes ``.venv/``, ``.venv-student/`` and ``.venv-build/``. Removed under a
running JupyterLab (``make lab``, from ``.venv-student``), nbgrader's formgrader or a test run
(from ``.venv``), or their kernels, the folder their interpreter imports from is gone: the lab
answers HTTP 500, a kernel can import nothing more. So ``make clean`` asks this first, and
refuses (exit status 1) while a process runs from one of them, naming each (its command, the
address a Jupyter server says it serves, its pid and its environment) and how to go on: stop
them, or ``make clean FORCE=1``.

A process runs from an environment when its executable (``/proc/PID/exe``) or its interpreter
(the first word of ``/proc/PID/cmdline``, found the way that process found it: from its working
folder, or on its ``PATH``) lies inside it. A venv's ``bin/python`` is a link to the system's
interpreter, so the executable alone would miss every venv Python: the interpreter's path is
kept as the process was given it, never resolved through that link. Processes whose ``/proc``
entries cannot be read (another account's, or ended meanwhile) are skipped. Never counted: this
process, and the shells and ``make`` that run it (up to the first ``make``, when ``PYTHON`` is a
venv's interpreter); a process above that ``make`` is counted like any other (``make clean``
typed in the terminal of a JupyterLab from ``.venv-student`` would break that lab).

The standard library only, so any ``python3`` runs it, like ``course.classroom.clean``. Without
``/proc`` (not Linux) it says it cannot check and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from course.assignment import paths
from course.student.workspace import runtime_dir

#: The environments ``make clean`` removes, relative to the checkout (the Makefile passes its
#: own ``VENV``, ``STUDENT_VENV`` and ``BUILD_VENV``).
ENVIRONMENTS = (".venv", ".venv-student", ".venv-build")
PROC = Path("/proc")
MAX_COMMAND = 160


@dataclass(frozen=True)
class Running:
    """A process that runs from ``environment`` (as given: ``.venv-student``), with its
    command line."""

    pid: int
    argv: tuple[str, ...]
    environment: str


def _read(pid: int, name: str) -> bytes:
    return (PROC / str(pid) / name).read_bytes()


def _link(pid: int, name: str) -> str:
    """Where ``/proc/PID/<name>`` points (``exe``, ``cwd``); a deleted file's path without its
    `` (deleted)`` mark."""
    return os.readlink(PROC / str(pid) / name).removesuffix(" (deleted)")


def _argv(pid: int) -> tuple[str, ...]:
    return tuple(part.decode("utf-8", "replace") for part in _read(pid, "cmdline").split(b"\0")
                 if part)


def _environ(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with, or nothing when it cannot be read."""
    try:
        text = _read(pid, "environ")
    except OSError:
        return {}
    pairs = (item.decode("utf-8", "replace").partition("=") for item in text.split(b"\0"))
    return {name: value for name, _, value in pairs if name}


def _parent(pid: int) -> int | None:
    """The parent of ``pid`` (``/proc/PID/stat``'s fourth field, after the command's
    parentheses, which may hold anything), or None."""
    try:
        stat = _read(pid, "stat").decode("utf-8", "replace")
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def not_counted(pid: int | None = None) -> set[int]:
    """This process and those that run it for ``make clean``, up to the first ``make``: a venv's
    interpreter given as ``PYTHON`` (or a ``make`` of a venv) is no reason to refuse. Without a
    ``make`` among them, this process only: whatever runs a direct call goes on running."""
    pid = os.getpid() if pid is None else pid
    chain, current = [pid], _parent(pid)
    while current and current not in chain:
        chain.append(current)
        try:
            argv = _argv(current)
        except OSError:
            break
        if argv and Path(argv[0]).name in ("make", "gmake"):
            return set(chain)
        current = _parent(current)
    return {pid}


def _found(pid: int, name: str) -> str | None:
    """Where process ``pid`` found the program it was started as ``name``: relative to its
    working folder, or on its ``PATH`` for a bare name; None when that cannot be read."""
    try:
        if "/" in name:
            return os.path.join(_link(pid, "cwd"), name)
        found_in = _environ(pid).get("PATH")
        if found_in is None:
            return None
        folders = found_in.split(":")
        cwd = _link(pid, "cwd") if any(not os.path.isabs(f) for f in folders) else ""
    except OSError:
        return None
    for folder in folders:
        candidate = os.path.join(cwd, folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def programs(pid: int) -> list[str]:
    """The paths process ``pid`` runs: its executable, and its interpreter as it was given (a
    venv's ``bin/python`` stays itself, not the system interpreter it links to). Empty for a
    process that cannot be read, or a kernel thread."""
    found = []
    try:
        found.append(_link(pid, "exe"))
    except OSError:
        pass
    try:
        argv = _argv(pid)
    except OSError:
        return found
    if argv:
        interpreter = _found(pid, argv[0])
        if interpreter:
            found.append(interpreter)
    return found


def _lexical(path: str) -> str:
    """``path`` absolute, with its folders' links resolved but not its last part: a venv's
    ``bin/python`` link stays inside the venv, a checkout reached through a link is found."""
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def environment_of(program: str, environments: dict[str, str]) -> str | None:
    """The environment (by its name as given) that ``program`` lies inside, or None.
    ``environments`` maps each name to its folder, resolved."""
    where = _lexical(program)
    for name, folder in environments.items():
        if where == folder or where.startswith(folder.rstrip(os.sep) + os.sep):
            return name
    return None


def running(root: Path = paths.REPO,
            environments: tuple[str, ...] = ENVIRONMENTS) -> list[Running]:
    """Every process that runs from one of ``environments`` (folders relative to ``root``, or
    absolute), in pid order; ``not_counted`` ones and unreadable ones left out."""
    folders = {name: os.path.realpath(root / name) for name in environments}
    skip = not_counted()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid = int(entry.name)
        for program in programs(pid):
            name = environment_of(program, folders)
            if name is not None:
                try:
                    found.append(Running(pid, _argv(pid), name))
                except OSError:
                    pass
                break
    return sorted(found, key=lambda process: process.pid)


def server(pid: int) -> dict[str, object] | None:
    """What a Jupyter server ``pid`` says of itself in its runtime file (``jpserver-PID.json``:
    its URL and root folder), looked for where this account's Jupyter writes them and where
    that process was told to (its ``JUPYTER_RUNTIME_DIR``); None if it is no such server."""
    folders = [runtime_dir()]
    told = _environ(pid).get("JUPYTER_RUNTIME_DIR")
    if told:
        folders.insert(0, Path(told))
    for folder in folders:
        try:
            info = json.loads((folder / f"jpserver-{pid}.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("pid") == pid:
            return info
    return None


def _shown(text: str) -> str:
    """``text`` as inert characters (a command line may hold anything), cut to a line."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return shown if len(shown) <= MAX_COMMAND else shown[:MAX_COMMAND - 1] + "…"


def command(argv: tuple[str, ...]) -> tuple[str, list[str]]:
    """The program as a person names it, and its arguments: a Python's script or module, not
    ``python`` (``jupyter-lab``, ``python -m ipykernel_launcher``)."""
    first = Path(argv[0]).name
    if first.startswith("python") and len(argv) > 2 and argv[1] == "-m":
        return f"python -m {argv[2]}", list(argv[3:])
    if first.startswith("python") and len(argv) > 1 and not argv[1].startswith("-"):
        return Path(argv[1]).name, list(argv[2:])
    return first, list(argv[1:])


def describe(process: Running, root: Path = paths.REPO) -> str:
    """One line per process: what it is (a Jupyter server: what it serves, at which address),
    its pid and its environment."""
    program, arguments = command(process.argv)
    said = " ".join([program, *arguments])
    info = server(process.pid)
    if info is not None:
        served = Path(str(info.get("root_dir", "")))
        try:
            served = served.resolve().relative_to(root.resolve())
        except ValueError:
            pass
        said = f"{program} serving {served} at {info.get('url')}"
    return f"{_shown(said)} (pid {process.pid}, from {_shown(process.environment)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.classroom.in_use",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("environments", nargs="*", default=list(ENVIRONMENTS),
                        help="the environments make clean removes, relative to --root "
                             "(default: %(default)s)")
    parser.add_argument("--root", type=Path, default=paths.REPO,
                        help="the checkout (default: this one)")
    parser.add_argument("--force", action="store_true",
                        help="name what runs, and exit 0 anyway (make clean FORCE=1)")
    args = parser.parse_args(argv)
    names = ", ".join(args.environments)
    if not PROC.is_dir():
        print(f"note: cannot see running processes ({PROC} is missing): not checked whether "
              f"anything runs from {names}", file=sys.stderr)
        return 0
    found = running(args.root, tuple(args.environments))
    if not found:
        return 0
    lines = [f"  {describe(process, args.root)}" for process in found]
    if args.force:
        print("\n".join([f"make clean FORCE=1: removing {names} under these processes anyway "
                         "(they will fail):", *lines]), file=sys.stderr)
        return 0
    pids = " ".join(str(process.pid) for process in found)
    print("\n".join([
        f"make clean: refusing to remove {names}: these processes run from them, and would "
        "fail (a JupyterLab answers HTTP 500, a kernel can import nothing more):", *lines,
        f"Stop them first (Ctrl-C in their terminals, or kill {pids}), or remove anyway: "
        "make clean FORCE=1"]), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
