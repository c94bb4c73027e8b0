"""A Dask worker preload (``dask worker --preload``) that turns a worker holding the course's
own worker certificate against the grader, as a compromised grading machine would: it replaces
the grading task (``course.grading.cluster.grade_task``, which Dask looks up by name on the
worker) and, for a notebook whose name says so, answers with an object a worker chose.

* ``victim-result*``: the task returns ``Payload()``, and first sends the grader's clients a
  ``warn`` event and a ``print`` event carrying it (Dask's clients unpickle a ``warn``'s
  message with the standard ``pickle`` and print a ``print``'s text);
* ``victim-error*``: the task fails, and the error Dask sends is the pickle of ``Payload()``
  (a client unpickles a failed task's error to raise it);
* ``victim-forged*``: the honest report, with its total raised to the maximum while its cells
  keep their points (what no judging gives);
* anything else: graded honestly.

Unpickled, ``Payload()`` appends a line to the file named by ``$TINYTORCH_ROGUE_MARKER`` in
the process that unpickles it, when that process has the variable (only the grader's process
is given it), so the file exists exactly when the grader ran a worker's code. Each attack made
is written to ``$TINYTORCH_ROGUE_LOG`` (the worker's own evidence that it was given the
victim, so a test cannot pass because the attack never happened)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

MARKER = "TINYTORCH_ROGUE_MARKER"
LOG = "TINYTORCH_ROGUE_LOG"
CODE = ("import os\n"
        "marker = os.environ.get('TINYTORCH_ROGUE_MARKER')\n"
        "if marker:\n"
        "    with open(marker, 'a') as file:\n"
        "        file.write('unpickled in process %d\\n' % os.getpid())\n")
#: What the rogue's print event shows, if any client printed it.
PRINTED = "\x1b[2J[1/1] victim 100.0 / 100 (printed by a worker)"


class Payload:
    """An object whose unpickling runs ``CODE``."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (CODE,))


def payload() -> bytes:
    """``Payload()`` pickled: what the rogue sends where Dask expects a pickle."""
    return pickle.dumps(Payload())


class _Failure(Exception):
    pass


def _record(what: str) -> None:
    log = os.environ.get(LOG)
    if log:
        with open(log, "a") as file:
            file.write(what + "\n")


def dask_setup(worker: Any) -> None:
    import distributed.worker
    from distributed.protocol import to_serialize

    from course.grading import cluster

    honest_task, honest_error = cluster.grade_task, distributed.worker.error_message

    def error_message(error: BaseException, status: str = "error") -> Any:
        if not isinstance(error, _Failure):
            return honest_error(error, status)
        return {"status": status, "exception": to_serialize(payload()),
                "traceback": to_serialize(payload()), "exception_text": "Failure()",
                "traceback_text": ""}

    def grade_task(name: str, *args: Any) -> Any:
        stem = Path(name).name
        if stem.startswith("victim-result"):
            _record(f"result {stem}")
            worker.log_event("warn", {"message": payload(), "category": payload()})
            worker.log_event("print", {"args": (PRINTED,), "file": 1})
            return Payload()
        if stem.startswith("victim-error"):
            _record(f"error {stem}")
            raise _Failure()
        answer = honest_task(name, *args)
        if stem.startswith("victim-forged"):
            _record(f"forged {stem}")
            parsed = json.loads(answer)
            parsed["report"]["total"] = parsed["report"]["max_total"]
            answer = json.dumps(parsed)
        return answer

    distributed.worker.error_message = error_message
    cluster.grade_task = grade_task
