"""Your finished notebook becomes your library: Module 07 of your own tinytorch.

The command itself (``tinytorch complete``, ``python -m tinytorch.complete``): it reads the
answer cells, assembles them onto the module as released, runs every check on the result and
writes it only when all pass, printing what it did; ``main`` is what
``course.student.complete`` calls with the course's defaults, ``cli`` the ``tinytorch`` console
script of the student wheel.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinytorch.complete.assembly import assemble
from tinytorch.complete.checking import DEFAULT_TIMEOUT, CheckRun, run_checks
from tinytorch.complete.common import CompleteError, _shown
from tinytorch.complete.destinations import Protected, targets
from tinytorch.complete.notebook import DEFAULT_NOTEBOOK, answer_cells, graded_cells
from tinytorch.complete.released import given_module
from tinytorch.complete.writing import write


def _failure_report(run: CheckRun, notebook: Path, graded: dict[str, str]) -> str:
    lines = []
    if run.error is not None:
        lines.append(f"not exported: {run.error.rstrip()}")
    else:
        failed = run.failed
        lines.append(f"not exported: {len(failed)} of {len(run.results)} checks fail on your "
                     f"code from {_shown(notebook)}:")
        for check, message in failed.items():
            cell = f" (graded cell {graded[check]})" if check in graded else ""
            lines.append(f"\n\N{BALLOT X} {check}: {run.titles.get(check, '')}{cell}")
            lines.extend(f"    {line}" for line in message.splitlines())
    lines.append("\nNothing was written. Fix your answer cells (each graded cell shows its "
                 "check's message), then run this again.")
    return "\n".join(lines)


def complete(notebook: Path, *, timeout: float = DEFAULT_TIMEOUT, given: str | None = None,
             protected: Protected | None = None, checks: Path | None = None) -> int:
    """Check the notebook's code and export it; the exit status (see the module's doc).
    ``given``: Module 07 as released (default: ``given_module`` of what the student has);
    ``checks``: the checks package (default: the installed one)."""
    notes: list[str] = []
    cells = answer_cells(notebook)
    found = targets(notebook, notes=notes, protected=protected)
    if given is None:
        given = given_module([Path(__file__).resolve().parents[1],  # this tinytorch
                              *(target.path.parent.parent for target in found)])
    assembled = assemble(given, cells, notebook.name)
    for line in notes:
        print(line, file=sys.stderr)
    for line in assembled.left_out:
        print(f"left out (it would run on every import): {line}", file=sys.stderr)
    run = run_checks(assembled, found[0].path.parent.parent, checks=checks, timeout=timeout)
    if not run.passed:
        print(_failure_report(run, notebook, graded_cells(notebook)), file=sys.stderr)
        return 1
    print(f"all {len(run.results)} checks pass on your code from {_shown(notebook)}")
    for result in write(found, assembled.text, protected):
        if not result.changed:
            print(f"up to date: {_shown(result.path)} ({result.what})")
            continue
        kept = f"; the file it replaced is {result.backup.name}" if result.backup else ""
        print(f"wrote {_shown(result.path)} ({result.what}{kept})")
    print("`from tinytorch.core.training import Trainer` now gives your Trainer (restart a "
          "running kernel to import it again)")
    return 0


def _protect(value: str) -> tuple[Path, str]:
    """``--protect DIR`` or ``--protect DIR=WHY``."""
    folder, _, why = value.partition("=")
    return Path(folder), why or "a folder this command was told to protect (--protect)"


def parser(prog: str | None = None,
           default: Path = DEFAULT_NOTEBOOK) -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    made.add_argument("notebook", nargs="?", type=Path, default=default,
                      help=f"the Module 07 notebook (default: {_shown(default)})")
    made.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                      help="seconds the checks may take in all (default: %(default)s)")
    made.add_argument("--protect", type=_protect, action="append", default=[],
                      metavar="DIR[=WHY]", help="never write into DIR (any number)")
    return made


def main(argv: list[str] | None = None, *, prog: str | None = None,
         default: Path = DEFAULT_NOTEBOOK, given: str | None = None,
         protected: Protected | None = None, checks: Path | None = None) -> int:
    """``python -m tinytorch.complete``; the course's ``course.student.complete`` calls it with its
    own defaults (its working copy, the released module, the folders it protects)."""
    made = parser(prog, default)
    args = made.parse_args(argv)
    if args.timeout <= 0:
        made.error(f"--timeout must be positive, got {args.timeout}")
    try:
        return complete(args.notebook, timeout=args.timeout, given=given, checks=checks,
                        protected={**(protected or {}), **dict(args.protect)})
    except CompleteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def cli(argv: list[str] | None = None) -> int:
    """The ``tinytorch`` command of the student wheel: ``tinytorch complete [NOTEBOOK]`` and
    ``tinytorch explain CODE`` (what a check's ``likely bug [TT112]`` means)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "explain":
        from checks.explain import main as explain

        return explain(argv[1:], prog="tinytorch explain")
    if not argv or argv[0] not in ("complete",):
        print("usage: tinytorch complete [NOTEBOOK] [--timeout S] [--protect DIR]\n"
              "       tinytorch explain CODE | --list\n"
              "  complete: your notebook's checked answers become your tinytorch's Module 07\n"
              "  explain:  what a check's 'likely bug [TT112]' means, with a wrong and a right "
              "line", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return main(argv[1:], prog="tinytorch complete")
