"""Observation and judgment of a check, split across two processes.

A check is ordinary code that calls the student's implementations and judges what comes back.
For a trusted grade the two halves must not share a process: whatever runs student code can
forge any verdict computed beside it. So the same check runs twice:

* **observe** (in the sandbox, with the student's code): ``Recorder`` wraps the student's
  ``CosineSchedule``, ``clip_grad_norm`` and ``Trainer``. Every call the check makes into them,
  and every attribute it reads from their objects, becomes an event of plain data (JSON): the
  value returned or the exception raised (its type, text and the student's line), the new state
  of every check-owned object the student's code was handed (parameters, gradients, optimizer
  buffers, spies, random generators), and the files in the folders it was given. Where a
  check reads only what its calls return until a loop of them ends (thirty epochs of
  ``train_epoch``), the loop is a ``settled_after`` block: its calls carry no state, and one
  ``settle`` event at its end carries what they changed.
* **judge** (in the trusted parent, which never runs student code): ``Replayer`` stands in for
  the student's implementations. The check runs again on the same seed, builds the same data and
  objects, and at each call into "the student's code" gets the recorded outcome, with the
  recorded state applied to its own objects. Every comparison, tolerance and message is the
  check's own, computed in the parent. A record that does not follow the check's calls exactly
  (tampering) is a failure, and so is one that stops early (a crash, a timeout).

A dishonest record can only pass by holding the numbers a correct implementation produces for
inputs drawn at grading time: it comes down to computing the right numbers.

**Consequences, not instruments.** Nothing a check hands to student code is a witness. The
record carries the state of the check's own objects as the student's code left it, logs of a
spy included, and the student's code may have written any of it. So a check judges what the
trusted side can recompute from that state: a spy's log is believed only as far as its
consequence bears it out (``checks.fixtures.SpySGD`` replays every logged step with
tinytorch's own optimizer from the weights it was built with, and the replay must end at the
weights recorded; the weights before each step are the replay's, not a log's); a model's mode
inside ``forward`` is judged by the random draws its Dropout made, and inside ``evaluate`` by
the loss it returned too (a generator put back hides the draws, not the numbers). A property
that leaves no consequence at all (whether ``forward`` built a graph; whether
``load_checkpoint`` unpickled a file it then refused, known only by a tripwire the student's
code can empty) is the student's feedback in the kernel and is left out of a trusted verdict
(``graded``). The judge still words what the record says of it, as a note that decides no point
(``ungraded``): the student's report then says it was checked in the notebook and not graded,
instead of a silent pass.

Plain data only: arrays travel as base64 of their bytes with dtype and shape (bit for bit, NaN
and -0.0 included), random generators as their bit-generator state, exceptions as names and
text. Nothing is unpickled and no code from the record is run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import operator
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from checks.diagnose import Frame, innermost_name, located, printable, student_frames
from tinytorch.core.tensor import Tensor

#: Module-level state of the checks that student code can change (a tripwire's list): name ->
#: the object, recorded and restored like the objects handed to student code.
TRACKED_GLOBALS: dict[str, Any] = {}

#: Files larger than this in a folder handed to student code are recorded as truncated.
MAX_FILE_BYTES = 8 * 2**20
#: A folder handed to student code is recorded with at most this many files (an honest
#: checkpoint folder holds one or two), of at most this many bytes in all.
MAX_FOLDER_FILES = 32
MAX_FOLDER_BYTES = 16 * 2**20
MAX_FILE_NAME = 255
_SKIP_ATTRIBUTES = {"_parents", "_backward", "_order"}


class ReplayMismatch(BaseException):
    """The record does not follow the check's calls, or stops before the check ends. Not an
    Exception: no handler of the check's (which catch what student code raises) may absorb it."""


# ============================================================================ plain data
def _array(a: np.ndarray) -> dict[str, Any]:
    if a.dtype.kind not in "biufc":
        return {"X": f"array of {a.dtype}"}
    # one string, "<dtype>:<shape>:<bytes in base64>": a record holds thousands of arrays,
    # and each one a single JSON string is what keeps writing and reading the record cheap
    shape = ",".join(map(str, a.shape))
    return {"A": f"{a.dtype.str}:{shape}:{base64.b64encode(a.tobytes(order='C')).decode()}"}


def encode(value: Any, memo: dict[int, int] | None = None,
           sent: dict[int, tuple] | None = None) -> Any:
    """``value`` as JSON-ready plain data; objects as their attributes, deeply.

    ``sent`` (the recorder's, for the state of tracked objects) remembers each list already
    sent: a list whose first items are still what was sent travels as those items' count and
    the new ones (``{"extend": n, "items": [...]}``), so a history or a log that grows by one
    entry per call costs one entry per call, not its whole length again."""
    kind = type(value)  # the exact built-in kinds first: most of a record is made of them
    if kind is float:
        return {"f": value.hex()}
    if kind is str or kind is bool or kind is int or value is None:
        return value
    if kind is np.ndarray:
        return _array(value)
    memo = {} if memo is None else memo
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value if type(value) is int else {"int": int(value), "type": type(value).__name__}
    if isinstance(value, float) and type(value) is float:
        return {"f": value.hex()}
    if isinstance(value, np.generic):
        return {"np": _array(np.asarray(value))}
    if isinstance(value, np.ndarray):  # arrays of every dtype and shape, as their bytes
        return _array(value)
    if isinstance(value, Path):
        return {"path": str(value)}
    if isinstance(value, np.random.Generator):
        return {"rng": value.bit_generator.state}
    if id(value) in memo:
        return {"ref": memo[id(value)]}
    if isinstance(value, Tensor):
        memo[id(value)] = len(memo)
        return {"T": _array(value.data), "grad": encode(value.grad, memo),
                "rg": bool(value.requires_grad)}
    if type(value) is list and sent is not None:
        memo[id(value)] = len(memo)
        return _encode_list(value, memo, sent)
    if isinstance(value, list | tuple):
        memo[id(value)] = len(memo)
        items = [encode(v, memo, sent) for v in value]
        return items if isinstance(value, list) else {"tuple": items}
    if isinstance(value, dict):
        memo[id(value)] = len(memo)
        return {"dict": [[encode(k, memo, sent), encode(v, memo, sent)]
                         for k, v in value.items()]}
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and _is_ours(value):
        memo[id(value)] = len(memo)
        return {"O": type(value).__name__,
                "attrs": {k: encode(v, memo, sent) for k, v in attributes.items()
                          if k not in _SKIP_ATTRIBUTES}}
    return {"X": type(value).__name__}


def _encode_list(value: list, memo: dict[int, int], sent: dict[int, tuple]) -> Any:
    """A list of tracked state, as only its new items when it grew and its sent items are
    still the same: the same objects (which settles numbers and strings), and the mutable ones
    (arrays, lists, objects) with the same fingerprint. Only a list seen growing is
    fingerprinted for this; one that keeps its length (a model's parameters) never is."""
    known = sent.get(id(value))
    start, prefix = 0, None
    if known is not None and known[3] is value and known[2] is not None:
        count, items, mark = known[0], known[1], known[2]
        if 0 < count <= len(value) and all(map(operator.is_, value[:count], items)):
            prefix = _mutables_digest(value[:count])
            if prefix.hexdigest() == mark:
                start = count
            else:
                prefix = None
    encoded = [encode(v, memo, sent) for v in value[start:]]
    growing = known is not None and (known[2] is not None or len(value) > known[0])
    mark = None
    if growing:  # the sent items' digest, carried on over the new ones (not hashed twice)
        mark = (_mutables_digest(value[start:], prefix.copy()) if prefix is not None
                else _mutables_digest(value)).hexdigest()
    sent[id(value)] = (len(value), tuple(value), mark, value)  # the list kept: its id stays
    return {"extend": start, "items": encoded} if start else encoded


_IMMUTABLE = (int, float, str, bool, type(None))


def _mutables_digest(items: list, digest: Any = None) -> Any:
    """``digest`` (a new one by default) fed the items whose content can change in place (not
    numbers or strings)."""
    digest = hashlib.blake2b(digest_size=16) if digest is None else digest
    for item in items:
        if type(item) not in _IMMUTABLE:
            _fingerprint(item, digest, set())
    return digest


_PRIMITIVE_TAGS = {bool: b"bool:", int: b"int:", float: b"float:", str: b"str:",
                   type(None): b"NoneType:"}


def _fingerprint(value: Any, digest: Any, seen: set[int]) -> None:
    """Feed ``value``'s state to ``digest``, walking it as ``encode`` does (cheaply: arrays by
    their bytes, no text)."""
    kind = type(value)
    if kind in _PRIMITIVE_TAGS:
        digest.update(_PRIMITIVE_TAGS[kind])
        digest.update(repr(value).encode())
        return
    if kind is Tensor:
        if id(value) in seen:
            digest.update(b"r")
            return
        seen.add(id(value))
        data = value.data
        digest.update(b"T1" if value.requires_grad else b"T0")
        digest.update(data.tobytes() if type(data) is np.ndarray else repr(data).encode())
        grad = value.grad
        if grad is None:
            digest.update(b"-")
        else:
            _fingerprint(grad, digest, seen)
        return
    if kind is np.ndarray:
        digest.update(value.dtype.str.encode())
        digest.update(repr(value.shape).encode())
        digest.update(value.tobytes() if value.dtype.kind in "biufc" else b"?")
        return
    if value is None or kind in (bool, int, float, str):
        digest.update(f"{kind.__name__}:{value!r}".encode())
        return
    if kind is list or kind is tuple:
        if id(value) in seen:
            digest.update(b"r")
            return
        seen.add(id(value))
        digest.update(f"{kind.__name__}{len(value)}".encode())
        for item in value:
            _fingerprint(item, digest, seen)
        return
    if isinstance(value, np.generic):
        _fingerprint(np.asarray(value), digest, seen)
        return
    if isinstance(value, Path):
        digest.update(str(value).encode())
        return
    if isinstance(value, np.random.Generator):
        digest.update(repr(value.bit_generator.state).encode())
        return
    if id(value) in seen:
        digest.update(b"r")
        return
    seen.add(id(value))
    if isinstance(value, Tensor):  # subclasses of the kinds handled above
        _fingerprint(value.data, digest, seen)
        _fingerprint(value.grad, digest, seen)
    elif isinstance(value, np.ndarray):
        _fingerprint(np.asarray(value), digest, seen)
    elif isinstance(value, list | tuple):
        _fingerprint(list(value), digest, seen)
    elif isinstance(value, dict):
        digest.update(f"dict{len(value)}".encode())
        for k, v in value.items():
            _fingerprint(k, digest, seen)
            _fingerprint(v, digest, seen)
    elif isinstance(getattr(value, "__dict__", None), dict) and _is_ours(value):
        digest.update(kind.__name__.encode())
        for k, v in vars(value).items():
            if k not in _SKIP_ATTRIBUTES:
                digest.update(k.encode())
                _fingerprint(v, digest, seen)
    else:
        digest.update(kind.__name__.encode())


def _mark(value: Any) -> str:
    """A short digest of ``value``'s state: equal marks, same state."""
    digest = hashlib.blake2b(digest_size=16)
    _fingerprint(value, digest, set())
    return digest.hexdigest()


def _is_ours(value: Any) -> bool:
    """Objects of the checks and of tinytorch: the ones whose state a record carries."""
    module = type(value).__module__ or ""
    return module.startswith(("checks.", "tinytorch."))


def decode(data: Any) -> Any:
    """A fresh value from plain data (objects come back only as their recorded arrays and
    numbers: ``restore`` puts state into the judge's own objects). A value the recorder could
    not have written raises ``ReplayMismatch`` (never an error a check would take for the
    student's code's)."""
    if data is None or isinstance(data, bool | int | str):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise ReplayMismatch(f"unreadable value in the record: {data!r:.80}")
    try:
        return _decode_tagged(data)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as error:
        raise ReplayMismatch(f"unreadable value in the record ({type(error).__name__}: "
                             f"{str(error):.120}): {str(data):.80}") from None


def _decode_tagged(data: dict[str, Any]) -> Any:
    if "f" in data:
        return float.fromhex(data["f"])
    if "int" in data:
        return int(data["int"])
    if "A" in data:
        dtype, shape, raw = data["A"].split(":", 2)
        dims = [int(n) for n in shape.split(",")] if shape else []
        return np.frombuffer(base64.b64decode(raw), dtype=np.dtype(dtype)).reshape(dims).copy()
    if "np" in data:
        return decode(data["np"])[()]
    if "path" in data:
        return Path(data["path"])
    if "tuple" in data:
        return tuple(decode(v) for v in data["tuple"])
    if "extend" in data:
        raise ReplayMismatch("the record extends a list the check does not hold")
    if "dict" in data:
        return {_key(decode(k)): decode(v) for k, v in data["dict"]}
    if "T" in data:
        t = Tensor(decode(data["T"]), requires_grad=bool(data["rg"]))
        t.data = decode(data["T"])  # the recorded dtype, bit for bit
        t.grad = decode(data["grad"])
        return t
    if "rng" in data:
        return _Opaque("Generator")
    if "ref" in data or "O" in data or "X" in data:
        return _Opaque(str(data.get("O") or data.get("X") or "object")[:MAX_NAME_CHARS])
    raise ReplayMismatch(f"unreadable value in the record: {data!r:.80}")


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class _Opaque:
    """Something of the student's that has no plain-data form (a generator, an own class)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


def restore(target: Any, data: Any) -> None:
    """Put the recorded state ``data`` into the judge's own object ``target``, in place, so
    that every reference the check holds sees it."""
    if not isinstance(data, dict | list) or (isinstance(data, dict) and "ref" in data):
        return
    if isinstance(target, Tensor) and isinstance(data, dict) and "T" in data:
        target.data = decode(data["T"])
        target.requires_grad = bool(data["rg"])
        grad = data["grad"]
        if isinstance(target.grad, Tensor) and isinstance(grad, dict) and "T" in grad:
            restore(target.grad, grad)
        else:
            target.grad = decode(grad)
        return
    if isinstance(target, np.random.Generator) and isinstance(data, dict) and "rng" in data:
        target.bit_generator.state = data["rng"]
        return
    if isinstance(target, tuple) and isinstance(data, dict) and "tuple" in data:
        if len(target) == len(data["tuple"]):
            for t, d in zip(target, data["tuple"], strict=True):
                restore(t, d)
        return
    if isinstance(target, list) and isinstance(data, dict) and "extend" in data:
        start, items = data["extend"], data.get("items")
        if type(start) is not int or not 0 < start <= len(target) or not isinstance(items,
                                                                                   list):
            raise ReplayMismatch(f"the record extends a list of {len(target)} items from "
                                 f"item {start!r:.20}")
        del target[start:]
        target.extend(decode(d) for d in items)
        return
    if isinstance(target, list) and isinstance(data, list):
        if len(target) == len(data) and all(_restorable(t, d) for t, d in zip(target, data,
                                                                              strict=True)):
            for t, d in zip(target, data, strict=True):
                restore(t, d)
        else:
            target[:] = [decode(d) for d in data]
        return
    if isinstance(target, dict) and isinstance(data, dict) and "dict" in data:
        pairs = [(_key(decode(k)), v) for k, v in data["dict"]]
        if list(target) == [k for k, _ in pairs] and all(_restorable(target[k], v)
                                                         for k, v in pairs):
            for k, v in pairs:
                restore(target[k], v)
        else:
            target.clear()
            target.update({k: decode(v) for k, v in pairs})
        return
    if isinstance(data, dict) and "O" in data and hasattr(target, "__dict__"):
        attrs = data["attrs"]
        for name in [n for n in vars(target) if n not in attrs and n not in _SKIP_ATTRIBUTES]:
            delattr(target, name)
        for name, value in attrs.items():
            current = vars(target).get(name, None)
            if current is not None and _restorable(current, value):
                restore(current, value)
            elif isinstance(value, dict) and ("X" in value or "ref" in value or "O" in value):
                continue  # the student's own objects, or one met earlier: nothing to judge
            else:
                setattr(target, name, decode(value))


def _restorable(target: Any, data: Any) -> bool:
    """Whether ``target`` takes ``data`` in place (same kind of thing) rather than by value."""
    if isinstance(target, Tensor):
        return isinstance(data, dict) and "T" in data
    if isinstance(target, np.random.Generator):
        return isinstance(data, dict) and "rng" in data
    if isinstance(target, list):
        return isinstance(data, list) or (isinstance(data, dict) and "extend" in data)
    if isinstance(target, dict):
        return isinstance(data, dict) and "dict" in data
    return isinstance(data, dict) and ("O" in data or "ref" in data) and hasattr(target,
                                                                                 "__dict__")


# ============================================================================ exceptions
_BASES: tuple[type[BaseException], ...] = (
    NotImplementedError, RecursionError, ZeroDivisionError, FloatingPointError,
    OverflowError, ArithmeticError, KeyError, IndexError, LookupError, UnicodeError,
    ValueError, TypeError, AttributeError, NameError, AssertionError, ImportError,
    FileNotFoundError, PermissionError, IsADirectoryError, OSError, MemoryError, StopIteration,
    RuntimeError, Exception,
)
#: What a recorded exception may carry: its text, frames, and each name and line, cut here.
#: An exception replayed is an ``Exception`` of these bounds whatever the record says, so no
#: record can stop the judge (a ``SystemExit`` keeps its name and text, as an Exception), make
#: it hold megabytes of text, or feed a check's regular expressions a pathological string.
MAX_ERROR_TEXT = 2000
MAX_FRAMES = 40
MAX_NAME_CHARS = 100
MAX_LINE_CHARS = 300
_MAX_CLASSES = 512
_CLASSES: dict[tuple[str, str], type[BaseException]] = {}


def _error_base(error: BaseException) -> type[BaseException]:
    """The built-in class a recorded exception is rebuilt on: never one that is not an
    ``Exception`` (SystemExit, KeyboardInterrupt, GeneratorExit), which no check catches."""
    return next((b for b in _BASES if isinstance(error, b)), Exception)


def _frames_kept(frames: list[Any]) -> list[Any]:
    """At most MAX_FRAMES frames: the outermost and innermost halves (a check names the
    outermost call and the innermost line)."""
    if len(frames) <= MAX_FRAMES:
        return frames
    return frames[:MAX_FRAMES // 2] + frames[-(MAX_FRAMES // 2):]


def encode_error(error: BaseException) -> dict[str, Any]:
    frames = student_frames(error) if not hasattr(error, "__replayed__") else \
        error.__replayed__["frames"]
    innermost = getattr(error, "__replayed__", {}).get("innermost")
    if innermost is None:
        innermost = innermost_name(error.__traceback__)
    frames = _frames_kept(list(frames or []))
    return {"type": type(error).__name__[:MAX_NAME_CHARS], "base": _error_base(error).__name__,
            "text": _text_of(error)[:MAX_ERROR_TEXT],
            "located": located(error)[:MAX_LINE_CHARS],
            "frames": [[f.where[:MAX_LINE_CHARS], f.function[:MAX_LINE_CHARS],
                        f.source[:MAX_LINE_CHARS]] for f in frames] if frames and
            isinstance(frames[0], Frame) else frames, "innermost": innermost[:MAX_NAME_CHARS]}


def _text_of(error: BaseException) -> str:
    """``str(error)``, or what it raised instead (a student's ``__str__`` may raise)."""
    try:
        return str(error)
    except Exception as failure:  # noqa: BLE001 - the student's __str__
        return f"<str() of the error raised {type(failure).__name__}>"


def decode_error(data: Any) -> Exception:
    """The exception a record describes, rebuilt as an ``Exception`` of the recorded name (on
    the recorded built-in base when it is one), its text and frames within the bounds above.
    The same on both sides: the sandbox's check sees what the judge's sees."""
    if not isinstance(data, dict):
        raise ReplayMismatch(f"the record's exception is not a mapping: {data!r:.80}")
    base = next((b for b in _BASES if b.__name__ == data.get("base")), Exception)
    name = str(data.get("type", "Exception"))[:MAX_NAME_CHARS].replace("\0", "") or "Exception"
    error = _error_class(name, base)(str(data.get("text", ""))[:MAX_ERROR_TEXT])
    recorded = data.get("frames", [])
    frames = [Frame(*(str(part)[:MAX_LINE_CHARS] for part in f))
              for f in _frames_kept(recorded if isinstance(recorded, list) else [])
              if isinstance(f, list) and len(f) == 3]
    error.__replayed__ = {"located": str(data.get("located", ""))[:MAX_LINE_CHARS],
                          "frames": frames,
                          "innermost": str(data.get("innermost", "a function"))[:MAX_NAME_CHARS]}
    return error


def _error_class(name: str, base: type[BaseException]) -> type[Exception]:
    """A class named ``name`` on ``base``, made once per pair (up to a bound: a record naming
    thousands of classes gets fresh ones, never a cache that grows without end)."""
    cls = _CLASSES.get((name, base.__name__))
    if cls is None:
        text_of: Callable[[BaseException], str] = lambda self: self.args[0]  # noqa: E731
        cls = type(name, (base,), {"__str__": text_of, "__module__": "student"})
        if len(_CLASSES) < _MAX_CLASSES:
            _CLASSES[(name, base.__name__)] = cls
    return cls  # type: ignore[return-value]


# ============================================================================ warnings
_WARNINGS = {w.__name__: w for w in (RuntimeWarning, UserWarning, DeprecationWarning,
                                     FutureWarning, SyntaxWarning, ResourceWarning)}


def _warnings(caught: list[warnings.WarningMessage]) -> list[list[str]]:
    return [[w.category.__name__, str(w.message)] for w in caught]


#: A record's warnings are the student's text: a check sees at most this many per call, each
#: cut to this length and shown inert (``printable``), whatever the record holds.
MAX_WARNINGS, MAX_WARNING_TEXT = 20, 500


def _reissue(event: dict[str, Any]) -> None:
    """The warnings the student's call raised, raised again where the check can see them."""
    items = event.get("warnings", []) or []
    for item in items[:MAX_WARNINGS] if isinstance(items, list) else []:
        if isinstance(item, list) and len(item) == 2:
            warnings.warn(printable(str(item[1])[:MAX_WARNING_TEXT * 4], MAX_WARNING_TEXT),
                          _WARNINGS.get(str(item[0]), UserWarning), stacklevel=2)


# ============================================================================ files
def _paths(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Path]:
    return [Path(a) for a in (*args, *kwargs.values())
            if isinstance(a, str | Path) and os.path.isabs(a)]


def _folder_state(folder: Path) -> dict[str, str] | None:
    """The files of a folder handed to student code, as base64, within the bounds the judge
    accepts (at most MAX_FOLDER_FILES files, MAX_FILE_BYTES each, MAX_FOLDER_BYTES in all):
    what lies beyond is cut, so the judge's verdict is on the files it can hold."""
    if not folder.is_dir():
        return None
    files = {}
    room = MAX_FOLDER_BYTES
    for path in sorted(folder.iterdir()):
        if len(files) >= MAX_FOLDER_FILES:
            break
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as f:
                content = f.read(min(MAX_FILE_BYTES, room))
            room -= len(content)
            files[path.name] = base64.b64encode(content).decode()
    return files


def _put_folder(folder: Path, files: Any) -> None:
    """Make the judge's ``folder`` hold the recorded files, after checking the listing against
    the bounds (so a record cannot make the grader write thousands of files or gigabytes)."""
    if files is None:
        return
    problem = _listing_problem(files)
    if problem:
        raise ReplayMismatch(f"the record's files of a folder the check handed over: {problem}")
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file() and path.name not in files:
            path.unlink()
    for name, content in files.items():
        path = folder / name
        try:
            data = base64.b64decode(content)
        except ValueError as error:  # binascii.Error
            raise ReplayMismatch(f"the record's content of {name!r} is not base64: {error}"
                                 ) from None
        path.unlink(missing_ok=True)  # a new file: never write through a link the check made
        path.write_bytes(data)


def _listing_problem(files: Any) -> str | None:
    """What makes a recorded folder listing one the recorder could not have written, or
    None. Sizes are read from the base64 text's length, before anything is decoded."""
    if not isinstance(files, dict):
        return f"a {type(files).__name__}, not a mapping of names to contents"
    if len(files) > MAX_FOLDER_FILES:
        return f"{len(files)} files, more than the {MAX_FOLDER_FILES} a folder may hold"
    total = 0
    for name, content in files.items():
        if not isinstance(name, str) or "/" in name or "\0" in name or name in ("", ".", "..") \
                or len(name) > MAX_FILE_NAME:
            return f"a recorded file name is not a plain name: {str(name)[:80]!r}"
        if not isinstance(content, str):
            return f"the content of {name!r} is not text"
        size = len(content) // 4 * 3
        if size > MAX_FILE_BYTES + 3:
            return f"{name!r} holds {size} bytes, more than the {MAX_FILE_BYTES} recorded"
        total += size
    if total > MAX_FOLDER_BYTES + 3 * len(files):
        return f"{total} bytes in all, more than the {MAX_FOLDER_BYTES} a folder may hold"
    return None


# ============================================================================ both sides
class _Side:
    """What the recorder and the replayer share: the objects handed to student code, in the
    order they were first handed over."""

    def __init__(self) -> None:
        self.tracked: list[Any] = []
        self._ids: dict[int, int] = {}  # id of a tracked object -> its index

    def track(self, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> tuple[tuple, dict, set[int]]:
        """Remember the check's objects handed over in this call; returns the arguments with
        each one-pass iterator (a generator of batches or parameters) replaced by a fresh
        generator over its items (tracked like any argument), and the indices of the tracked
        objects this call was handed."""
        indices: set[int] = set()

        def handed(value: Any) -> Any:
            if isinstance(value, Iterator) and not isinstance(value, _Proxy):
                items = list(value)  # the check's own generator: check code, safe to run
                for item in items:
                    indices.add(self._remember(item))
                return (item for item in items)
            indices.add(self._remember(value))
            return value
        args = tuple(handed(a) for a in args)
        kwargs = {k: handed(v) for k, v in kwargs.items()}
        indices.discard(-1)
        return args, kwargs, indices

    def _remember(self, value: Any) -> int:
        if isinstance(value, _Proxy) or value is None or isinstance(
                value, bool | int | float | str | Path):
            return -1
        if id(value) not in self._ids:
            self._ids[id(value)] = len(self.tracked)
            self.tracked.append(value)
        return self._ids[id(value)]


class _Proxy:
    """Stands for one of the student's objects in the check's hands."""

    __slots__ = ("_side", "_name", "_obj", "_related")

    def __init__(self, side: Any, name: str, obj: Any = None,
                 related: frozenset[int] = frozenset()) -> None:
        object.__setattr__(self, "_side", side)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_obj", obj)
        # the tracked objects its constructor was handed: what its methods may change
        object.__setattr__(self, "_related", related)

    def __getattr__(self, attribute: str) -> Any:
        return self._side.get(self, attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._side.call(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<{self._name}>"


def graded(implementation: Any) -> bool:
    """Whether a check runs for a trusted grade (observed in a sandbox, or judged from its
    record) rather than directly in the student's kernel. What a check can only learn from an
    instrument's log with no consequence the judge recomputes (whether ``forward`` built a
    graph) is then left out of the verdict: the student's feedback, never the grade."""
    return isinstance(implementation, _Proxy)


def ungraded(implementation: Any, note: str) -> None:
    """Keep ``note`` (a finding a trusted verdict leaves out, see ``graded``) for the student's
    report when the check is being judged from a record: the judge words what the record's
    instrument says, which the student's code may have written, so a note only ever words the
    report and never decides a point. Observing in the sandbox, or running in the kernel (where
    the check fails instead), it does nothing."""
    side = getattr(implementation, "_side", None) if isinstance(implementation, _Proxy) else None
    if isinstance(side, Replayer) and note not in side.notes:
        side.notes.append(note)


def settled_after(implementation: Any) -> contextlib.AbstractContextManager[None]:
    """A block of calls into the student's ``implementation`` inside which the check reads
    only what the calls return, and the state of its own objects only after the block: the
    state those calls change then travels once, when the block ends, instead of after every
    call (thirty epochs of ``train_epoch`` record the model and optimizer once, not thirty
    times). The judge applies it at the same point of the check, so every comparison after the
    block sees what the student's code left. In the kernel, and in a block already open, it
    does nothing."""
    side = implementation._side if isinstance(implementation, _Proxy) else None
    if isinstance(side, Recorder | Replayer):
        return side.settling()
    return contextlib.nullcontext()


def _unwrap(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple, dict]:
    def real(v: Any) -> Any:
        return v._obj if isinstance(v, _Proxy) else v
    return tuple(real(a) for a in args), {k: real(v) for k, v in kwargs.items()}


class Recorder(_Side):
    """The observing side (sandbox): runs the student's code, records what the check saw."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self._last: dict[str, str] = {}
        # per tracked object, the lists of its state already sent (see ``encode``)
        self._sent: dict[str, dict[int, tuple]] = {}
        self._depth = 0
        # inside ``settled_after``: the tracked objects the block's calls could reach
        self._settling: set[int] | None = None

    def wrap(self, implementations: dict[str, Any]) -> dict[str, Any]:
        return {name: _Proxy(self, name, obj) for name, obj in implementations.items()}

    @contextlib.contextmanager
    def settling(self) -> Iterator[None]:
        """``settled_after``'s block: its calls record no state; when it ends, however it
        ends, one ``settle`` event records what they changed."""
        if self._settling is not None:
            yield
            return
        self._settling = set()
        try:
            yield
        finally:
            reached, self._settling = self._settling, None
            self.events.append({"settle": True, "state": self._changes(reached)})

    def _changes(self, indices: set[int]) -> dict[str, Any]:
        """The state of the tracked objects a call could reach (its arguments, and what its
        object's constructor was handed) that changed since they were last recorded; a fast
        fingerprint decides, and only what changed is encoded. A change to any other object
        is not recorded: the judge then sees that object as its own calls left it, so hiding
        a change cannot make a wrong result look right."""
        changed = {}
        for key, obj in self._reachable(indices):
            mark = _mark(obj)
            if self._last.get(key) != mark:
                self._last[key] = mark
                changed[key] = encode(obj, sent=self._sent.setdefault(key, {}))
        return changed

    def _reachable(self, indices: set[int]) -> list[tuple[str, Any]]:
        items = [(str(i), self.tracked[i]) for i in sorted(indices)]
        return items + [(f"g:{name}", obj) for name, obj in TRACKED_GLOBALS.items()]

    def _first_seen(self, indices: set[int]) -> None:
        """Fingerprint the objects a call is about to reach for the first time: the judge
        builds the same objects from the same seed, so only what the student's code then
        changes in them needs to travel (a batch of data it only reads never does)."""
        for key, obj in self._reachable(indices):
            if key not in self._last:
                self._last[key] = _mark(obj)

    def _emit(self, event: dict[str, Any], paths: list[Path] = (),
              indices: set[int] | None = None) -> None:
        """Record ``event``; a call also carries the state its run changed (reading an
        attribute does not: whatever a property changed travels with the next call)."""
        if "call" in event:
            if self._settling is None:
                event["state"] = self._changes(indices or set())
            else:  # recorded when the block ends (``settling``)
                self._settling |= indices or set()
                event["state"] = {}
            event["files"] = [_folder_state(p.parent) for p in paths]
        self.events.append(event)

    def call(self, proxy: _Proxy, args: tuple, kwargs: dict) -> Any:
        if self._depth:
            real_args, real_kwargs = _unwrap(args, kwargs)
            return proxy._obj(*real_args, **real_kwargs)
        args, kwargs, handed = self.track(args, kwargs)
        reach = handed | proxy._related
        self._first_seen(reach)
        real_args, real_kwargs = _unwrap(args, kwargs)
        self._depth += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = proxy._obj(*real_args, **real_kwargs)
            except (Exception, SystemExit) as error:  # noqa: BLE001 - the student's, recorded
                self._depth -= 1
                event = {"call": proxy._name, "raise": encode_error(error),
                         "warnings": _warnings(caught)}
                self._emit(event, _paths(args, kwargs), reach)
                _reissue(event)
                raise decode_error(event["raise"]) from None
        self._depth -= 1
        warned = _warnings(caught)
        if isinstance(proxy._obj, type):  # a constructor: the check gets a stand-in
            event = {"call": proxy._name, "instance": True, "warnings": warned}
            self._emit(event, _paths(args, kwargs), reach)
            _reissue(event)
            return _Proxy(self, proxy._name, result, frozenset(reach))
        event = {"call": proxy._name, "return": encode(result), "warnings": warned}
        self._emit(event, _paths(args, kwargs), reach)
        _reissue(event)
        return decode(event["return"])

    def get(self, proxy: _Proxy, attribute: str) -> Any:
        if self._depth:
            return getattr(proxy._obj, attribute)
        self._depth += 1
        try:
            value = getattr(proxy._obj, attribute)
        except (Exception, SystemExit) as error:  # noqa: BLE001
            self._depth -= 1
            event = {"get": attribute, "raise": encode_error(error)}
            self._emit(event)
            raise decode_error(event["raise"]) from None
        self._depth -= 1
        name = f"{proxy._name}.{attribute}"
        if callable(value) and not isinstance(value, type):
            self._emit({"get": attribute, "method": True})
            return _Proxy(self, name, value, proxy._related)
        event = {"get": attribute, "value": encode(value)}
        self._emit(event)
        return decode(event["value"])


class Replayer(_Side):
    """The judging side (trusted parent): no student code, only the record."""

    def __init__(self, events: list[dict[str, Any]], ended: str | None = None) -> None:
        super().__init__()
        self.events = list(events)
        self.position = 0
        self.ended = ended  # why the record stops early (a crash, a timeout), if it does
        self.notes: list[str] = []  # findings left out of the verdict (``ungraded``)
        self._settling = False

    def wrap(self, names: list[str] | tuple[str, ...]) -> dict[str, Any]:
        return {name: _Proxy(self, name) for name in names}

    @contextlib.contextmanager
    def settling(self) -> Iterator[None]:
        """``settled_after``'s block, replayed: its calls must carry no state, and the
        ``settle`` event that ends it is applied where the observed block ended."""
        if self._settling:
            yield
            return
        self._settling = True
        try:
            yield
        except ReplayMismatch:
            self._settling = False
            raise
        except BaseException:  # the check's failure inside the block: settle, then raise it
            self._settling = False
            self._apply(self._next("settle", True))
            raise
        self._settling = False
        self._apply(self._next("settle", True))

    def _next(self, kind: str, name: str) -> dict[str, Any]:
        if self.position >= len(self.events):
            raise ReplayMismatch(self.ended or f"the record ends before the check's {kind} of "
                                 f"{name}")
        event = self.events[self.position]
        self.position += 1
        if not isinstance(event, dict) or event.get(kind) != name:
            raise ReplayMismatch(f"the record does not follow the check: expected the {kind} "
                                 f"of {name}, found {str(event)[:120]}")
        return event

    def _apply(self, event: dict[str, Any], paths: list[Path] = ()) -> None:
        state = event.get("state", {})
        if not isinstance(state, dict):
            raise ReplayMismatch("the record's state is not a mapping")
        if state and self._settling:
            raise ReplayMismatch("the record changes state inside a block whose state is "
                                 "recorded only when it ends")
        for key, value in state.items():
            if key.startswith("g:"):
                target = TRACKED_GLOBALS.get(key[2:])
            else:
                index = int(key)
                target = self.tracked[index] if 0 <= index < len(self.tracked) else None
            if target is None:
                raise ReplayMismatch(f"the record changes an object the check never handed "
                                     f"over ({key})")
            restore(target, value)
        files = event.get("files", [])
        if len(files) != len(paths):
            raise ReplayMismatch("the record's files do not match the paths handed over")
        for path, listing in zip(paths, files, strict=True):
            _put_folder(path.parent, listing)

    def call(self, proxy: _Proxy, args: tuple, kwargs: dict) -> Any:
        event = self._next("call", proxy._name)
        args, kwargs, _ = self.track(args, kwargs)
        self._apply(event, _paths(args, kwargs))
        _reissue(event)
        if "raise" in event:
            raise decode_error(event["raise"])
        if event.get("instance"):
            return _Proxy(self, proxy._name)
        return decode(event.get("return"))

    def get(self, proxy: _Proxy, attribute: str) -> Any:
        event = self._next("get", attribute)
        self._apply(event)
        if "raise" in event:
            raise decode_error(event["raise"])
        if event.get("method"):
            return _Proxy(self, f"{proxy._name}.{attribute}")
        return decode(event.get("value"))

    def finish(self) -> None:
        """The whole record was used: a longer one was not made by this check."""
        if self.position != len(self.events):
            raise ReplayMismatch(f"the record holds {len(self.events) - self.position} events "
                                 "the check never asked for")
