"""The program a graded run executes inside the sandbox (copied there as ``_observer.py``).

It reads one request from stdin: the student's code cells and the (check, seed) runs to
observe. It says it is ready (its first line, before any student code runs: a run that ends
before it is the grader's failure, not the student's). It executes the cells in order (a cell
that raises is noted and skipped, as a notebook would go on), takes the student's
``CosineSchedule``, ``clip_grad_norm`` and ``Trainer``, and for each run writes one line of
JSON with what the check observed (``checks.observe``). Nothing here decides a score: the
trusted grader judges the lines, and a line this process forges is judged like any other.

The student's own prints go nowhere: stdout and stderr are the null device, and the lines go
to a copy of the original stdout.
"""

from __future__ import annotations

import json
import linecache
import os
import sys

IMPLEMENTATIONS = ("CosineSchedule", "clip_grad_norm", "Trainer", "training_memory")


def _line(error: BaseException, filename: str) -> int | None:
    """The line of the cell ``filename`` where ``error`` was raised (a syntax error's own line,
    else the last frame of the traceback in that cell)."""
    if isinstance(error, SyntaxError) and error.filename == filename:
        return error.lineno
    line, tb = None, error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def main() -> None:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the whole run

    from checks import observe  # the released checks, imported before any student code runs
    from checks.diagnose import NotDefined

    # the sandbox started: what stops the run from here on is the student's code (a run that
    # ends before this line is the grader's failure, ``submission._Record``)
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    namespace: dict[str, object] = {"__name__": "__main__"}
    failed = []
    for number, source in enumerate(request["cells"], start=1):
        filename = f"<cell In[{number}]>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - the student's cell
        except BaseException as error:  # noqa: BLE001 - a cell's error: go on, as a notebook
            if isinstance(error, KeyboardInterrupt):
                raise
            failed.append([number, type(error).__name__, str(error)[:500],
                           _line(error, filename)])
    out.write(json.dumps({"cells": len(request["cells"]), "failed": failed}) + "\n")
    out.flush()
    implementations = {name: namespace.get(name, NotDefined(name)) for name in IMPLEMENTATIONS}
    for index, (check_id, seed) in enumerate(request["runs"]):
        events = observe(check_id, implementations, seed=seed)
        out.write(json.dumps({"run": index, "events": events}) + "\n")
        out.flush()
    out.write(json.dumps({"done": True}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
