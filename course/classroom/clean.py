"""Remove the course's data: what students handed in and what grading made of it.

    python -m course.classroom.clean        # lists what it would remove, asks, then removes it
    python -m course.classroom.clean --yes  # for scripts: no question (make clean-course YES=1)

This is the only command that removes the course's data, and no command regenerates it:

- ``notebooks/submitted/``: the submissions (``nbgrader collect``/``zip_collect``);
- ``notebooks/replaced/``: the earlier submissions a later import replaced (``make autograde``);
- ``notebooks/autograded/``: the autograded copies of the submissions (``make autograde``);
- ``notebooks/feedback/``: the feedback pages (``make feedback``);
- ``notebooks/autograde-cache/``: every report trusted grading decided (``make autograde``);
- ``notebooks/gradebook.db``: nbgrader's gradebook, every student's scores and comments;
- ``notebooks/grades.csv``: the exported grades (``make export``).

It lists what is there (files and size), asks, and removes only on ``y``/``yes``; any other
answer, or no answer (standard input closed), removes nothing. It never removes the student's
working copy ``work/`` or anything else; ``make clean`` removes only what commands regenerate.
A symbolic link is removed, never what it points to. Exit status: 0 removed (or nothing to
remove), 1 not confirmed: nothing removed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from course.assignment import paths

#: The course's data, relative to the repository, and what each is.
DATA = {
    "notebooks/submitted": "the students' submissions (nbgrader collect / zip_collect)",
    "notebooks/replaced": "the earlier submissions a later import replaced (make autograde)",
    "notebooks/autograded": "the autograded submissions (make autograde)",
    "notebooks/feedback": "the students' feedback pages (make feedback)",
    "notebooks/autograde-cache": "the reports trusted grading decided (make autograde)",
    "notebooks/gradebook.db": "the gradebook: every student's scores and comments",
    "notebooks/grades.csv": "the exported grades (make export)",
}


def present(root: Path = paths.REPO) -> list[Path]:
    """The course's data that exists under ``root``, in DATA's order."""
    return [root / name for name in DATA if (root / name).is_symlink() or (root / name).exists()]


def _size(path: Path) -> tuple[int, int]:
    """(files, bytes) under ``path``, symbolic links not followed."""
    if path.is_symlink() or not path.is_dir():
        return 1, path.lstat().st_size
    files = [p for p in path.rglob("*") if p.is_symlink() or p.is_file()]
    return len(files), sum(p.lstat().st_size for p in files)


def _human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def describe(path: Path, root: Path = paths.REPO) -> str:
    name = path.relative_to(root).as_posix()
    files, size = _size(path)
    link = " (a symbolic link: only the link is removed)" if path.is_symlink() else ""
    kind = "/" if path.is_dir() and not path.is_symlink() else ""
    count = f"{files} file{'s' if files != 1 else ''}, " if kind else ""
    return f"{name}{kind}: {DATA[name]} ({count}{_human(size)}){link}"


def remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


def _confirmed() -> bool:
    print("Remove them for good? No command can make them again. [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        answer = ""
    if not answer:
        print()
    return answer.strip().lower() in {"y", "yes"}


def main(argv: list[str] | None = None, root: Path = paths.REPO) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.classroom.clean",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--yes", action="store_true",
                        help="remove without asking (for scripts: make clean-course YES=1)")
    args = parser.parse_args(argv)
    found = present(root)
    if not found:
        print("no course data to remove (" + ", ".join(DATA) + ": none of them is there)")
        return 0
    print(f"the course's data in {root} that this removes:")
    for path in found:
        print(f"  {describe(path, root)}")
    if not args.yes and not _confirmed():
        print("nothing removed (to remove without being asked: python -m "
              "course.classroom.clean --yes, or make clean-course YES=1)")
        return 1
    for path in found:
        remove(path)
        print(f"removed {path.relative_to(root).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
