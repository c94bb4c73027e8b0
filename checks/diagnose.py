"""How a check reports a failure: what was expected, what was observed, and the likely bug.

Three shapes, one per cause:

* a deviation the check observed: ``fail``/``require`` raise ``AssertionError`` with the four
  lines what / expected / observed / likely bug;
* code not written yet: the stub's ``NotImplementedError`` becomes "not written yet:
  ``Trainer.evaluate``", with no guess about a bug;
* any other exception raised while the check runs (in the student's code, in the library
  under it, or by the check reading something the student's object lacks) becomes that check's
  failure, naming the student's call that raised, the exception, and the student's own line
  (their file or notebook cell), never the checks' internals.

``Deviations`` lets a check examine independent requirements one after the other and report
all of them, so one failure does not hide the rest.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

from checks import catalog

CHECKS_DIR = os.path.dirname(os.path.abspath(__file__))
LIBRARY_DIR = os.path.join(os.path.dirname(CHECKS_DIR), "tinytorch")
#: The file students complete: frames in it are theirs, not the library's.
STUDENT_MODULE = os.path.join(LIBRARY_DIR, "core", "training.py")
_INSTALLED = tuple(
    os.path.abspath(p) + os.sep
    for p in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
)


#: What a terminal or a page would act on rather than show: C0 and C1 control characters (a
#: tab and a newline are text) and the bidirectional overrides that reorder what follows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, limit: int | None = None) -> str:
    """``text`` as inert characters: each control character shown as its escape (``\\x1b``)
    instead of acting on a terminal (a cleared screen, a forged score, colours), cut at
    ``limit`` characters. Student code names exceptions and writes warnings; nothing of it
    may steer what a grader's terminal shows."""
    shown = _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)
    if limit is not None and len(shown) > limit:
        shown = f"{shown[:limit]}… ({len(shown) - limit} more characters)"
    return shown


#: The last line of a finding: "  likely bug [TT112]: words" (the code: ``checks.catalog``).
LIKELY_BUG = re.compile(r"^  likely bug(?: \[(TT\d{3})\])?: ", re.M)


def likely(words: str) -> str:
    """The likely-bug line for ``words``, with the code of the cause they name
    (``checks.catalog``; ``tinytorch explain TT112`` prints its explanation), if any."""
    code = catalog.code_for(words)
    return f"  likely bug [{code}]: {words}" if code else f"  likely bug: {words}"


def finding(what: str, expected: Any, observed: Any, likely_bug: str) -> str:
    """A deviation in the one fixed shape a student learns to read: what, expected, observed,
    likely bug."""
    return (
        f"{what}\n"
        f"  expected: {expected}\n"
        f"  observed: {observed}\n"
        f"{likely(likely_bug)}"
    )


def fail(what: str, expected: Any, observed: Any, likely_bug: str) -> NoReturn:
    """Raise the AssertionError every check uses, in one fixed shape a student learns to read."""
    raise AssertionError(finding(what, expected, observed, likely_bug))


#: How a student's report begins a finding a trusted grade leaves out (``checks.replay.graded``):
#: checked in the notebook, where the check fails on it, and costing no point.
NOT_GRADED = "not graded (checked in your notebook, not in the grade)"


def listed(sizes: list[int]) -> str:
    """Batch sizes as a message shows them: ``5, 20, 7``."""
    return ", ".join(str(n) for n in sizes)


def require(condition: bool, what: str, expected: Any, observed: Any, likely_bug: str) -> None:
    """``fail(...)`` unless ``condition`` holds."""
    if not condition:
        fail(what, expected, observed, likely_bug)


def unwritten(error: BaseException) -> None:
    """Re-raise a stub's NotImplementedError: code not written yet is reported as such by
    ``run_check``, never diagnosed as a bug by the check that caught it."""
    if isinstance(error, NotImplementedError):
        raise error


def attempt(what: str, expected: Any, likely_bug: str, call: Callable[..., Any], *args: Any,
            **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``; if the student's code raises, report it as a failure of this
    shape (the exception, and the student's line where it was raised, as the observation)
    instead of as a crash."""
    try:
        return call(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - any crash is the student's to see
        unwritten(error)
        fail(what, expected, f"{type(error).__name__}: {error}{located(error)}", likely_bug)


# ----------------------------------------------------------------------------- where it raised
@dataclass(frozen=True)
class Frame:
    """One frame of a traceback, as a student reads it."""

    where: str  # "cell In[7], line 12" or "my_trainer.py, line 40"
    function: str  # "Trainer.train_epoch"
    source: str  # the line's text

    def __str__(self) -> str:
        text = f"{self.where}, in {self.function}"
        return f"{text}: {self.source}" if self.source else text


def _kind(filename: str) -> str:
    """'checks', 'library' (tinytorch but Module 07), 'installed' (stdlib, site-packages) or
    'student' (a notebook cell, the student's file, Module 07)."""
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    if path.startswith(CHECKS_DIR + os.sep):
        return "checks"
    if path.startswith(LIBRARY_DIR + os.sep) and path != STUDENT_MODULE:
        return "library"
    if path.startswith(_INSTALLED) or filename.startswith("<frozen"):
        return "installed"
    return "student"


def _where(filename: str, line: int) -> str:
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", None)
    ip = shell() if shell else None
    cells = getattr(getattr(ip, "compile", None), "_filename_map", {}) or {}
    if filename in cells:
        return f"cell In[{cells[filename]}], line {line}"
    if filename.startswith("<cell In["):  # a cell run outside a kernel (a graded run)
        return f"{filename[1:-1]}, line {line}"
    return f"{os.path.basename(filename) if _kind(filename) != 'student' else filename}, " \
           f"line {line}"


def _readable(qualname: str) -> str:
    """``Trainer.train_epoch`` for ``test.<locals>.Trainer.train_epoch.<locals>.<listcomp>``."""
    tokens = qualname.split(".")
    starts = [i + 1 for i, t in enumerate(tokens[:-1])
              if t == "<locals>" and not tokens[i + 1].startswith("<")]
    parts = [t for t in tokens[starts[-1] if starts else 0:] if not t.startswith("<")]
    return ".".join(parts) or qualname


def innermost_name(tb: TracebackType | None) -> str:
    """The name of the function where ``tb`` ends, as the student knows it: its qualified name
    (``CosineSchedule.get_lr``), with the class in front for a method attached to one after
    its definition (``add_to_class``: ``Trainer.train_epoch``, not ``train_epoch``), as the
    lesson's pictures say it too."""
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "a function"
    frame = tb.tb_frame
    code = frame.f_code
    name = _readable(getattr(code, "co_qualname", code.co_name))
    if "." not in name and code.co_argcount and code.co_varnames[:1] == ("self",):
        try:
            owner = type(frame.f_locals["self"]).__name__
        except Exception:  # noqa: BLE001 - no self, or a class whose name cannot be read
            return name
        if isinstance(owner, str) and owner.isidentifier():
            name = f"{owner}.{name}"
    return name


def _frames(tb: TracebackType | None) -> list[tuple[str, Frame]]:
    import linecache

    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        line = tb.tb_lineno
        source = linecache.getline(code.co_filename, line, tb.tb_frame.f_globals).strip()
        name = _readable(getattr(code, "co_qualname", code.co_name))
        out.append((_kind(code.co_filename), Frame(_where(code.co_filename, line), name, source)))
        tb = tb.tb_next
    return out


def student_frames(error: BaseException) -> list[Frame]:
    """The frames of ``error``'s traceback in the student's own code, outermost first (as
    recorded, for an error replayed from another process: see ``checks.replay``)."""
    replayed = getattr(error, "__replayed__", None)
    if replayed is not None:
        return list(replayed["frames"])
    return [frame for kind, frame in _frames(error.__traceback__) if kind == "student"]


def located(error: BaseException) -> str:
    """`` (raised at <the student's innermost line>)``, or nothing when no student frame."""
    replayed = getattr(error, "__replayed__", None)
    if replayed is not None:
        return replayed["located"]
    frames = _frames(error.__traceback__)
    mine = [f for kind, f in frames if kind == "student"]
    if not mine:
        return ""
    innermost_kind, innermost = frames[-1]
    text = f" (at {mine[-1]}"
    if innermost_kind == "library":
        text += f"; it surfaced in tinytorch's {innermost.function}, called from that line"
    return text + ")"


# ----------------------------------------------------------------------------- turning errors
class CheckFailed(AssertionError):
    """A check's failure, rendered in a notebook as its message first (IPython calls
    ``_render_traceback_`` instead of printing the traceback through the checks), followed
    by the student's own frames only. nbgrader still sees an error: the cell fails."""

    def __init__(self, check_id: str, message: str, frames: list[Frame] | None = None) -> None:
        super().__init__(message)
        self.check_id = check_id
        self.message = message
        self.frames = frames or []

    def _render_traceback_(self) -> list[str]:
        red, bold, reset = "\x1b[31m", "\x1b[1m", "\x1b[0m"
        first, *rest = self.message.splitlines() or [""]
        lines = [f"{red}{bold}✗ check {self.check_id}: {first}{reset}", *rest]
        if self.frames:
            lines.append("  your code, outermost call first:")
            lines += [f"    {frame}" for frame in self.frames]
        return lines


#: How every message about a stub that still raises NotImplementedError begins.
NOT_WRITTEN = "not written yet"


def not_written(error: NotImplementedError) -> str:
    """The message for a stub that still raises NotImplementedError."""
    replayed = getattr(error, "__replayed__", None)
    if replayed is not None:
        name = replayed["innermost"]
    else:
        name = innermost_name(error.__traceback__)
    return (f"{NOT_WRITTEN}: {name}\n"
            f"  this check runs {name}; write it, then run this cell again")


SIGNATURES = {
    "CosineSchedule": "CosineSchedule(max_lr=0.1, min_lr=0.01, total_epochs=100)",
    "clip_grad_norm": "clip_grad_norm(parameters, max_norm=1.0)",
    "Trainer": "Trainer(model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None)",
    "train_epoch": "train_epoch(dataloader, accumulation_steps=1)",
    "evaluate": "evaluate(dataloader)",
    "get_lr": "get_lr(epoch)",
}


#: How much of an exception's text ``hint`` reads (a TypeError's own text is one line).
MAX_HINT_TEXT = 1000


class NotDefined:
    """Stands for an implementation a notebook never defines (its answer cell deleted or
    renamed): any use raises a NameError that says so, from the checks' own frame, so no line
    of the grader's is shown as the student's."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise NameError(f"name '{self.name}' is not defined ({NEVER_DEFINED})")


#: How a NotDefined's error ends; ``hint`` names the cause from it.
NEVER_DEFINED = "the notebook never defines it"


def hint(error: BaseException, mine: list[Frame]) -> str:
    """The likely bug behind an exception, as far as its type, text and frames tell."""
    if isinstance(error, SystemExit) or type(error).__name__ == "SystemExit":  # or replayed
        return "your code called exit() or sys.exit(): a function must return, not stop Python"
    if isinstance(error, KeyError) and not mine:
        return (f"the check read the key {error} from your object and it is not there: the "
                "spec's history keys are 'train_loss', 'eval_loss' and 'learning_rates'")
    if isinstance(error, AttributeError) and not mine:
        return f"your object lacks what the spec requires: {error}"
    if isinstance(error, NameError) and NEVER_DEFINED in str(error)[:MAX_HINT_TEXT]:
        return (f"{str(error)[:MAX_HINT_TEXT].split(' is not defined')[0]} is graded but the "
                "notebook never defines it: its answer cell was deleted or renamed; keep the "
                "spec's name in the released answer cell")
    # the text is the student's: cut before the search, whose run of names before "()" is
    # tried from every position (quadratic in the text's length)
    text = str(error)[:MAX_HINT_TEXT]
    slip = re.search(r"([\w.<>]+)\(\) (?:got an unexpected keyword argument '(\w+)'|takes|"
                     r"missing)", text)
    if isinstance(error, TypeError) and slip:
        names = _readable(slip.group(1)).split(".")
        owner = next((n for n in names if n in SIGNATURES and n != "__init__"), None)
        spec = f": the spec's signature is {SIGNATURES[owner]}" if owner else ""
        what = f"has no parameter '{slip.group(2)}'" if slip.group(2) else "takes other arguments"
        return f"your {'.'.join(names).replace('.__init__', '')} {what}{spec}"
    if isinstance(error, TypeError) and "len()" in text:
        return ("your code calls len() on the batches: train_epoch and evaluate must work with "
                "any iterable of batches, a generator too (count batches as you go)")
    return "your code raised this error on valid input, at the line shown"


def crashed(error: BaseException) -> tuple[str, list[Frame]]:
    """The message for any other exception, and the student's frames."""
    mine = student_frames(error)
    detail = f"{type(error).__name__}: {error}"
    if mine:
        what = f"{mine[0].function} raised {type(error).__name__}"
        observed = f"{detail} (at {mine[-1]})"
    else:
        what = f"calling your code failed: {type(error).__name__}"
        observed = detail
    message = (f"{what}\n  expected: it to run without an error\n  observed: {observed}\n"
               f"{likely(hint(error, mine))}")
    return message, mine


def as_failure(check_id: str, error: BaseException) -> CheckFailed:
    """Any exception raised while check ``check_id`` ran, as that check's failure."""
    if isinstance(error, CheckFailed):
        return error
    if isinstance(error, NotImplementedError):
        return CheckFailed(check_id, not_written(error))
    if isinstance(error, AssertionError):
        return CheckFailed(check_id, str(error))
    message, frames = crashed(error)
    return CheckFailed(check_id, message, frames)


# ----------------------------------------------------------------------------- every deviation
class Deviations:
    """Independent parts of one check, each examined even when another failed::

        found = Deviations()
        with found.part():
            ...  # fail(...) here is recorded, and the next part still runs
        found.report()  # raises one AssertionError listing every deviation

    A crash inside a part is recorded as that part's failure; code not written yet stops the
    check at once (there is nothing more to learn)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @contextmanager
    def part(self) -> Iterator[None]:
        try:
            yield
        except Deviated as error:  # a part that lists deviations of its own: one flat list
            self.messages.extend(error.messages)
        except AssertionError as error:
            self.messages.append(str(error))
        except Exception as error:  # noqa: BLE001 - reported as this part's failure
            unwritten(error)
            self.messages.append(crashed(error)[0])

    def report(self) -> None:
        """Raise one AssertionError listing every deviation; the same cause (one error at one
        line of the student's, or the same likely bug) met by several parts is listed once,
        with a count."""
        shown: list[str] = []
        repeats: dict[int, int] = {}
        for message in self.messages:
            crash = _cause(message)
            first = next((i for i, m in enumerate(shown) if crash and _cause(m) == crash), None)
            if first is None:
                shown.append(message)
            else:
                repeats[first] = repeats.get(first, 0) + 1
        shown = [m + (f"\n  (the same in {repeats[i]} more case"
                      f"{'s' if repeats[i] > 1 else ''})" if i in repeats else "")
                 for i, m in enumerate(shown)]
        if len(shown) == 1:
            raise Deviated(shown[0], shown)
        if shown:
            numbered = [f"({i}) {m}" for i, m in enumerate(shown, start=1)]
            raise Deviated(f"{len(shown)} deviations:\n" + "\n".join(numbered), shown)


class Deviated(AssertionError):
    """A check's failure listing several deviations; ``messages`` holds each one."""

    def __init__(self, text: str, messages: list[str]) -> None:
        super().__init__(text)
        self.messages = messages


def _cause(message: str) -> str | None:
    """What makes two deviations one: the observation of a crash located in the student's
    code, else the likely bug."""
    lines = message.splitlines()
    crash = [line for line in lines if line.startswith("  observed: ") and " (at " in line]
    bug = [line for line in lines if LIKELY_BUG.match(line)]
    return (crash or bug or [None])[0]
