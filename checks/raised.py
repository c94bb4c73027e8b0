"""Errors before checks: a check whose code comes from a cell that raised names that cell.

A cell that raised while defining the student's code (a SyntaxError, a NameError in a
decorator, any exception while it ran) leaves that code missing, still the stub, or an older
version. A check that runs it would then report the consequence ("not written yet", an
AttributeError, a wrong number) instead of the cause. So a failing check that receives code a
raised cell defines says instead::

    the answer cell for Trainer.train_epoch raised SyntaxError at line 12: fix it first
      expected: the cell runs without an error (this check runs the code it defines)
      observed: SyntaxError: invalid syntax

Two places know which cells raised, and both word it here, alike:

* in the student's kernel, ``watch_cells()`` (called by the notebook's first cell of course
  code) registers an IPython ``post_run_cell`` hook that keeps ``RECORD``: each cell that
  defines code, and whether and where it raised the last time it ran. ``run_check`` and
  ``tinytorch.viz`` (demos, pictures) read it. A cell that raised before defining its class or
  function at all (a SyntaxError in a fresh kernel) would leave the name undefined, and every
  later cell using it would stop "Run All" with a NameError: the hook then binds the name to
  the library's stub of it (what the student's tinytorch holds before they write anything),
  whose NotImplementedError every check, demo and picture traces back to the raised cell;
* in trusted grading, the sandbox reports the cells that raised (number, error, text, line)
  and the grader, which holds the cells' text, builds the same ``Raised`` from them
  (``course.grading.submission``). There the record only words a message: a verdict never
  depends on it.

Which code a check needs is which implementations it receives (``Trainer``,
``CosineSchedule``...): a cell blocks a check when a name it defines is, or belongs to, one of
them (``Trainer.train_epoch`` belongs to ``Trainer``). What a cell defines is read from its
text by a tolerant scan of its lines, not by ``ast``: a cell with a SyntaxError does not parse,
and the grader reads a submission's text in time linear in its length. Standard library only:
the student wheel ships this module.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from checks.rules import CELLS

#: The code of each answer cell, as the student knows it (``Trainer.train_epoch``).
ANSWERS: tuple[str, ...] = tuple(CELLS.values())
#: How much of an error's text a message shows.
MAX_TEXT = 200
#: The library module whose stubs stand in for a definition a raised cell never made.
LIBRARY = "tinytorch.core.training"

_DEF = re.compile(r"(?:async[ \t]+)?def[ \t]+(\w+)")
_CLASS = re.compile(r"class[ \t]+(\w+)")
_ATTACH = re.compile(r"@[ \t]*add_to_class[ \t]*\([ \t]*(\w+)[ \t]*\)")
#: The place Python appends to a SyntaxError's text: " (1812328410.py, line 3)".
_WHERE = re.compile(r" \([^()]*, line \d+\)$")


@dataclass(frozen=True)
class Raised:
    """A cell that raised: the names it defines, the error's name and text, and its line in
    the cell (None when unknown)."""

    defines: tuple[str, ...]
    error: str
    text: str
    line: int | None

    @classmethod
    def of(cls, source: str, error: str, text: str, line: int | None) -> Raised | None:
        """The record of a cell with text ``source`` that raised ``error``; None for a cell
        that defines nothing (no check receives its code)."""
        defines = definitions(source)
        if not defines:
            return None
        return cls(defines, error, shown_text(text), line if type(line) is int else None)

    @property
    def answer(self) -> str | None:
        """The answer this cell holds (``Trainer.train_epoch``), if any: one it defines, else a
        method of an answer attached to a misspelled class (``@add_to_class(Trainr)``, whose
        NameError is exactly what leaves ``Trainer.train_epoch`` missing)."""
        exact = next((name for name in ANSWERS if name in self.defines), None)
        if exact is not None:
            return exact
        methods = {name.split(".")[-1] for name in self.defines if "." in name}
        return next((name for name in ANSWERS
                     if "." in name and name.split(".")[-1] in methods), None)

    @property
    def cell(self) -> str:
        """How the student finds the cell: by the answer it holds, else by what it defines."""
        answer = self.answer
        return f"the answer cell for {answer}" if answer else \
            f"the cell defining {self.defines[0]}"

    @property
    def at(self) -> str:
        return f" at line {self.line}" if self.line else ""

    def same_code(self, other: Raised) -> bool:
        """Whether ``other`` defines code this cell defines: a name, or the answer."""
        return bool(set(self.defines) & set(other.defines)) or (
            self.answer is not None and self.answer == other.answer)

    def owners(self) -> set[str]:
        """The top-level names whose code this cell defines (``Trainer`` for a method), and
        the answer's it holds."""
        answer = self.answer
        return {name.split(".")[0] for name in [*self.defines, *([answer] if answer else [])]}


def shown_text(text: str) -> str:
    """An error's text as one short line, without the cell file Python names in a
    SyntaxError's text (a kernel's temporary file, or the sandbox's ``<cell In[9]>``): the
    notebook and the grader then say the same."""
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    first = _WHERE.sub("", first)
    return first if len(first) <= MAX_TEXT else first[:MAX_TEXT] + "…"


def definitions(source: str) -> tuple[str, ...]:
    """The names a cell's text defines at its top level, in order: functions and classes,
    each class's methods as ``Class.method``, and a function under
    ``@add_to_class(Class)`` as ``Class.function``. Reads lines only, so a cell that does not
    parse (a SyntaxError) still says what it was meant to define."""
    names: list[str] = []
    owner: str | None = None  # the class whose body the scan is in
    body: str | None = None  # that body's indentation (of its first statement)
    attach: str | None = None  # the class an @add_to_class names, for the def that follows
    for line in source.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if not indent:
            owner, body, attach = _top_level(stripped, names, attach)
            continue
        if owner is None:
            continue
        if body is None:
            body = indent
        method = _DEF.match(stripped)
        if method and indent == body:
            names.append(f"{owner}.{method.group(1)}")
    return tuple(dict.fromkeys(names))


def _top_level(line: str, names: list[str], attach: str | None
               ) -> tuple[str | None, str | None, str | None]:
    """Read one unindented line into ``names``; the new (class, body, attach) of the scan."""
    attached = _ATTACH.match(line)
    if attached:
        return None, None, attached.group(1)
    if line.startswith("@"):  # another decorator: the def below it is still attached
        return None, None, attach
    function = _DEF.match(line)
    if function:
        names.append(f"{attach}.{function.group(1)}" if attach else function.group(1))
        return None, None, None
    cls = _CLASS.match(line)
    if cls:
        names.append(cls.group(1))
        return cls.group(1), None, None
    return None, None, None


def blocking(needs: Iterable[str], raised: Iterable[Raised] | None = None) -> list[Raised]:
    """The raised cells (the kernel's ``RECORD`` unless given) that define code a check
    receiving the implementations ``needs`` runs."""
    wanted = set(needs)
    return [cell for cell in (RECORD if raised is None else raised) if cell.owners() & wanted]


def message(raised: list[Raised]) -> str:
    """A failing check's message when cells it needs raised: the cause, not its consequence."""
    first, *more = raised
    lines = [f"{first.cell} raised {first.error}{first.at}: fix it first",
             "  expected: the cell runs without an error (this check runs the code it defines)",
             f"  observed: {first.error}: {first.text}" if first.text else
             f"  observed: {first.error}"]
    lines += [f"  also: {cell.cell} raised {cell.error}{cell.at}: {cell.text}" for cell in more]
    return "\n".join(lines)


def note(raised: list[Raised]) -> str:
    """What a passing check adds when cells it needs raised: it passed on the code from before
    (an earlier run of the cell), or without that cell's code, not on what the cell says now."""
    cells = "; ".join(f"{cell.cell} raised {cell.error}{cell.at}" for cell in raised)
    return (f"  but {cells}: this check ran without that cell's code as it is now; fix it, "
            "then run this check again")


# ----------------------------------------------------------------------------- in the kernel
#: The cells that raised, in the student's kernel, in the order they last ran.
RECORD: list[Raised] = []


def noted(source: str, error: BaseException | None, line: int | None) -> None:
    """Record that a cell with text ``source`` ran, raising ``error`` (None: it ran cleanly).
    A run replaces what earlier runs of the same cell recorded: of cells defining the same
    names, or holding the same answer (under a class name misspelled once, not the next
    time)."""
    ran = Raised.of(source, "", "", None)
    if ran is None:
        return
    RECORD[:] = [cell for cell in RECORD if not cell.same_code(ran)]
    if error is not None:
        RECORD.append(Raised(ran.defines, type(error).__name__, shown_text(str(error)), line))


def _shell() -> Any:
    """The running IPython shell, or None (a plain Python: the grader's sandbox, a test). Not
    imported here: where no notebook runs, there is nothing to watch."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if callable(get) else None


def watch_cells() -> None:
    """Keep ``RECORD`` from now on in this kernel: after each cell runs, what it defines and
    whether it raised. Does nothing outside IPython; calling it again registers nothing new."""
    shell = _shell()
    if shell is None:
        return
    if _after_cell not in shell.events.callbacks.get("post_run_cell", []):
        shell.events.register("post_run_cell", _after_cell)


def _after_cell(result: Any) -> None:
    """IPython's ``post_run_cell``: note the cell that just ran, and put back the library's
    stubs of what it failed to define. Never raises: the record only words the checks'
    messages, and must not break a student's cell."""
    try:
        error = result.error_before_exec or result.error_in_exec
        source = result.info.raw_cell or ""
        noted(source, error, None if error is None else _line(error, result.execution_count))
        if error is not None:
            stub_back(definitions(source), _shell().user_ns)
    except Exception:  # noqa: BLE001, S110 - see the docstring
        pass


def stub_back(defines: Iterable[str], namespace: dict[str, Any]) -> list[str]:
    """Bind each top-level name of ``defines`` that ``namespace`` lacks to the library's stub
    of it; the names bound. Only a stub (its source still raises NotImplementedError, as the
    student's tinytorch has it): never a solution (the instructor's library), so a check
    can pass on nothing the student did not write."""
    missing = [name for name in defines if "." not in name and name not in namespace]
    if not missing:
        return []
    try:
        library = importlib.import_module(LIBRARY)
    except ImportError:
        return []
    bound = []
    for name in missing:
        stub = getattr(library, name, None)
        if stub is not None and _is_stub(stub):
            namespace[name] = stub
            bound.append(name)
    return bound


def _is_stub(obj: Any) -> bool:
    """Whether ``obj``'s source still raises NotImplementedError (a part left to write)."""
    try:
        return "raise NotImplementedError" in inspect.getsource(obj)
    except (OSError, TypeError):
        return False


def _line(error: BaseException, count: int | None) -> int | None:
    """The line of the cell (execution ``count``) where ``error`` was raised: a syntax error's
    own line, else the last frame of the traceback in that cell's code, as the grader's
    sandbox finds it too (``course.grading.observer``)."""
    shell = _shell()
    cells: dict[str, int] = getattr(getattr(shell, "compile", None), "_filename_map", {}) or {}
    if isinstance(error, SyntaxError) and (error.filename in cells or not cells):
        return error.lineno
    line, tb = None, error.__traceback__
    while tb is not None:
        if cells.get(tb.tb_frame.f_code.co_filename, -1) == count:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def behind(error: BaseException) -> str | None:
    """The first line of the message naming a raised cell that explains ``error``, raised
    while the student's code ran outside a check (a demo cell), or None. Explained: the
    name is missing (NameError), the object lacks the attribute (AttributeError), or the
    code is still a stub (NotImplementedError), and a raised cell defines that code."""
    owner = _culprit(error)
    found = blocking([owner]) if owner else []
    return message(found).splitlines()[0] if found else None


def _culprit(error: BaseException) -> str | None:
    """The top-level name whose code ``error`` says is missing or unwritten."""
    if isinstance(error, NameError) and isinstance(getattr(error, "name", None), str):
        return error.name
    if isinstance(error, AttributeError) and getattr(error, "obj", None) is not None:
        obj = error.obj
        return obj.__name__ if isinstance(obj, type) else type(obj).__name__
    if isinstance(error, NotImplementedError):
        from checks.diagnose import innermost_name

        return innermost_name(error.__traceback__).split(".")[0]
    return None
