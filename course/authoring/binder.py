"""Turn a checkout into the students' Binder image (run by ``binder/postBuild``):

    python -m course.authoring.binder --strip-this-checkout

It deletes the git history, the tests, the course's tools and the sources of the checkout it
runs in, so it does nothing without ``--strip-this-checkout``: run by mistake in a working
copy, it says what it would delete and stops.

1. release the assignment (``course.authoring.release``: stripped notebook and packages, scanned);
2. delete what holds solutions or hidden tests and a student does not need: the nbgrader source
   and the lesson, the gradebook (it stores the graded cells), the tests (mutants and
   alternative solutions), the instructor's tools and guide (the written answers' rubric),
   the git history; replace
   ``tinytorch/core/training.py`` with its stripped version;
3. scan every text file left for solution lines and hidden tests, and fail the build if any.

Students then land on ``notebooks/release/07_training/07_training.ipynb`` (the Binder link's
``urlpath``); nothing in the image shows them a solution.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from course.assignment import paths
from course.assignment.solutions import Leak, scan, strip_solutions
from course.authoring import release

#: Relative to the checkout: removed from the image.
REMOVE = (
    ".git",
    "tests",
    "course",
    "notebooks/source",
    "notebooks/lessons",
    "notebooks/gradebook.db",
    "docs",  # the instructor guide: the rubric of the written answers
)


def strip_checkout(root: Path, secrets: set[str]) -> list[Leak]:
    """Remove and strip the solution-bearing files of the checkout at ``root``; return what a
    scan still finds (empty: the image is clean)."""
    for relative in REMOVE:
        target = root / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    training = root / paths.REFERENCE.relative_to(paths.REPO)
    training.write_text(strip_solutions(training.read_text()))
    return scan(root, secrets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strip-this-checkout", action="store_true",
                        help=f"delete {', '.join(REMOVE)} from {paths.REPO} (a Binder build)")
    args = parser.parse_args(argv)
    if not args.strip_this_checkout:
        print(f"error: this makes {paths.REPO} a Binder image: it would delete "
              f"{', '.join(REMOVE)} there. Binder's postBuild says --strip-this-checkout; "
              "in a working copy, use a throw-away clone.", file=sys.stderr)
        return 2
    secrets = release.secrets()  # read before the sources are deleted
    if release.main([]) != 0:
        return 1
    leaks = strip_checkout(paths.REPO, secrets)
    for leak in leaks:
        print(f"solution left in the image: {leak}", file=sys.stderr)
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
