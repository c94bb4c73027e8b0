"""How every picture behaves in the notebook: silent while nbgrader grades it, and "not written
yet" in place of a traceback while the student's code is unfinished.

Two rules come from nbgrader, which runs the notebook to grade it:

* it scores any stderr output (a warning included) of a graded cell as a failure, so nothing in
  ``tinytorch.viz`` writes to stderr: progress bars go to stdout, and the tests run with
  warnings as errors;
* it sets ``NBGRADER_EXECUTION`` while it runs notebooks (see ``headless()``). Then the explorer
  and the live view draw nothing at all, so grading time is not spent on pictures nobody sees.

Code not written yet never breaks a cell that only shows something: a picture draws the words
"not written yet: clip_grad_norm" instead, the explorer puts them in its title, and a demo cell
of the lesson runs inside ``with viz.demo():``, which shows them in place of the traceback. So
"Run All" on a blank notebook goes on to every check (the checks still fail: that is the
grade) and shows every part left to write, in the checks' own words (``checks.diagnose``). A
demo whose code is missing because the cell defining it raised names that cell, in the checks'
words too (``checks.raised``).
"""

from __future__ import annotations

import contextlib
import html
import os
import sys
import sysconfig
from collections.abc import Iterator
from typing import Any

#: How every message about code not written yet begins (the checks' words: checks.diagnose).
NOT_WRITTEN = "not written yet"
#: The tinytorch package (this file is tinytorch/viz/notebook.py).
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The module students write: a NotImplementedError raised there is a stub of theirs.
_STUDENT_MODULE = os.path.join(_PACKAGE, "core", "training.py")
_INSTALLED = tuple(
    os.path.abspath(p) + os.sep
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def headless() -> bool:
    """True while nbgrader executes the notebook (autograde or validate): nobody watches then."""
    return "NBGRADER_EXECUTION" in os.environ


def unwritten(error: BaseException) -> str | None:
    """The student's function that ``error`` says is not written yet (``"CosineSchedule.get_lr"``,
    ``"Trainer.train_epoch"``, ``"clip_grad_norm"``), or None: ``error`` is no
    NotImplementedError, or one raised outside the student's code (an abstract method of
    tinytorch's library, another package), which is a real error and is never hidden."""
    if not isinstance(error, NotImplementedError):
        return None
    tb = error.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    code, frame = tb.tb_frame.f_code, tb.tb_frame
    path = code.co_filename if code.co_filename.startswith("<") else \
        os.path.abspath(code.co_filename)
    if path != _STUDENT_MODULE and (path.startswith(_PACKAGE + os.sep)
                                    or path.startswith(_INSTALLED)):
        return None
    name = getattr(code, "co_qualname", code.co_name).rsplit("<locals>.", 1)[-1]
    owner = frame.f_locals.get("self") if code.co_argcount else None
    if "." not in name and owner is not None:  # a method attached with add_to_class
        name = f"{type(owner).__name__}.{name}"
    return name


class Unwritten:
    """What a demo cell shows instead of a traceback while the code it runs is not written
    yet: one line, in the checks' words, red in a notebook (plain text elsewhere)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"{NOT_WRITTEN}: {self.name} (write it, then run this cell again)"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return (f'<span style="color: firebrick">{NOT_WRITTEN}: '
                f"<code>{html.escape(self.name)}</code> (write it, then run this cell "
                "again)</span>")


class CellRaised:
    """What a demo cell shows instead of a traceback when the code it runs is missing or old
    because the cell defining it raised: the checks' first line ("the answer cell for
    Trainer.train_epoch raised SyntaxError at line 12: fix it first"), red in a notebook."""

    def __init__(self, said: str) -> None:
        self.said = said

    def __str__(self) -> str:
        return self.said

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f'<span style="color: firebrick">{html.escape(self.said)}</span>'


def _raised_cell(error: BaseException) -> str | None:
    """The checks' words for a cell of the student's that raised and explains ``error``, or
    None. tinytorch does not depend on the course's checks: their record of the cells that
    raised (``checks.raised``) exists only when the notebook imported it."""
    record = sys.modules.get("checks.raised")
    behind = getattr(record, "behind", None)
    return behind(error) if callable(behind) else None


@contextlib.contextmanager
def demo() -> Iterator[None]:
    """Run a demo of the student's code (``with viz.demo(): ...``). While a part it runs is
    not written yet (its stub raises NotImplementedError), the cell shows "not written yet:
    CosineSchedule.get_lr" instead of a traceback and ends there, so that "Run All" goes on to
    the next cells; when the cell that defines that part raised (a SyntaxError in an answer
    cell), it shows that cell and its error instead, as the checks do. Every other error, and
    a NotImplementedError that is not a stub of the student's (see ``unwritten``), is raised
    as usual."""
    try:
        yield
    except Exception as error:
        said = _raised_cell(error)
        if said is not None:
            _show(CellRaised(said))
            return
        name = unwritten(error)
        if name is None:
            raise
        _show(Unwritten(name))


def _show(obj: Any) -> None:
    """Display ``obj`` in a notebook, print it elsewhere (stdout: nbgrader scores stderr)."""
    try:
        _display(obj)
    except ImportError:
        print(obj)


def _display(obj: Any, **kwargs: Any) -> Any:
    """IPython's display, looked up at each call (tests replace it to see what is shown)."""
    import IPython.display

    return IPython.display.display(obj, **kwargs)
