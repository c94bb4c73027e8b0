"""Validate the assignment both ways with nbgrader's Validator:

* the source notebook (with the solutions) passes every graded cell;
* the released notebook (run `make release` first) fails, and only with NotImplementedError:
  nothing in it is broken except the parts a student has yet to write.

    python -m course.authoring.validate
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nbgrader.validator import Validator

from checks.diagnose import NOT_WRITTEN
from course.assignment import config, paths

RELEASED = paths.COURSE / "release" / paths.ASSIGNMENT / paths.NOTEBOOK


def validator(**options: object) -> Validator:
    """nbgrader's Validator with the course's settings (timeouts) and ``options``."""
    settings = config.load()
    for name, value in options.items():
        setattr(settings.Validator, name, value)
    return Validator(config=settings)


def problems_in_source(path: Path = paths.SOURCE_NOTEBOOK) -> list[str]:
    results = validator(ignore_checksums=True).validate(str(path))
    return [f"graded cell failed with the solution:\n{f['source']}\n{f['raw_error']}"
            for f in results.get("failed", [])]


def problems_in_release(path: Path = RELEASED) -> list[str]:
    if not path.exists():
        return [f"{path} does not exist: run `make release` first"]
    results = validator(ignore_checksums=True).validate(str(path))
    failed = results.get("failed", [])
    problems = [f"released cell fails for another reason than code not written yet "
                f"(NotImplementedError):\n{f['source']}\n{f['raw_error']}"
                for f in failed if NOT_WRITTEN not in f["raw_error"]]
    if not failed:
        problems.append("the released notebook passes its graded cells: solutions leaked?")
    return problems


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args(argv)
    problems = problems_in_source() + problems_in_release()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print("source: every graded cell passes; release: graded cells fail only with "
          f"'{NOT_WRITTEN}' (NotImplementedError)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
