"""Your finished notebook becomes your library: Module 07 of your own tinytorch.

    tinytorch complete 07_training.ipynb            # the command the student wheel installs
    python -m tinytorch.complete 07_training.ipynb  # the same

In the notebook, your code lives in answer cells; ``from tinytorch.core.training import
Trainer`` elsewhere still gives the stub that raises ``NotImplementedError``. This command
writes your answer cells into ``tinytorch/core/training.py`` so that later modules, scripts and
other notebooks import your Trainer, the way TinyTorch's ``tito module complete`` does:

1. it reads the notebook's answer cells (nbgrader's solution cells) and puts each definition
   where its stub is in Module 07 as you were given it (the stripped ``training.py`` your
   tinytorch shipped with, kept as ``tinytorch/core/training_released.py``): a method written
   as ``@add_to_class(Trainer)`` goes back into its class, indented as a method, the decorator
   dropped; a class or function replaces the given one. Helper functions, constants and
   imports you added in an answer cell are kept (helpers next to the function or class their
   cell completes, helper methods after their cell's method, imports with the module's
   imports). Bare expressions (a debugging ``print(...)``) are left out, and the command says
   which: a module runs its top level on every import;
2. it runs every check of ``checks`` (the package installed beside tinytorch) on the assembled
   module, imported from a throw-away copy of your tinytorch in a separate process with a time
   limit: code that crashes, exits or loops cannot stop this command, and the files it is
   about to write are not the ones under test (this is not a sandbox: your code runs as you,
   as it does in your notebook). If a check fails, it prints the check's id, what the check
   verifies and its message (naming the lines of your answer cells), and writes nothing;
3. when every check passes, it writes the module, atomically (a temporary file renamed into
   place), to each tinytorch your code is imported from: the ``tinytorch/`` folder beside the
   notebook (a working copy's, which shadows any installed one), and the tinytorch installed
   in the environment of the Python running this command, if there is one (your kernels
   import that one). The file it replaces is kept beside it as
   ``training.py.before-complete`` (``-2``, ``-3``, ... when an older backup with other
   contents is already there).

It needs only Python's standard library and what the student wheel ships (the checks run in a
separate process, with the environment's numpy); it names a failing check's graded cell from
the notebook's own graded cells (nbgrader's metadata, as released). ``--protect DIR`` (any
number) names folders it must never write into (the course's ``make complete`` protects the
reference solution and the nbgrader course folder). Exit status: 0 written (or already up to
date), 1 a check failed, 2 bad input or a refused target; nothing is changed unless the status
is 0.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.util
import inspect
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from tinytorch import files

#: The notebook completed when none is named: the assignment's, in the current folder.
DEFAULT_NOTEBOOK = Path("07_training.ipynb")
#: How a graded cell names its check: ``run_check("1.2", mine())``.
RUN_CHECK = re.compile(r"""run_check\(\s*["']([^"']+)["']""")
#: The module a notebook completes, relative to the folder holding a ``tinytorch`` package.
MODULE = Path("tinytorch") / "core" / "training.py"
BACKUP = ".before-complete"
#: Module 07 as the student was given it (stubs raising ``NotImplementedError``), shipped by
#: the student wheel beside ``training.py``, which this command overwrites.
RELEASED = MODULE.with_name("training_released.py")
#: The first line of a module this command wrote.
HEADER = "# Your Module 07: the answer cells of "
#: What the checks take from the module.
IMPLEMENTATIONS = ("CosineSchedule", "clip_grad_norm", "Trainer", "training_memory")
#: Seconds the whole check run may take (the reference needs about one).
DEFAULT_TIMEOUT = 600.0


class CompleteError(Exception):
    """Bad input or a refused target: nothing was changed (exit status 2)."""


# ----------------------------------------------------------------------------- the notebook
@dataclass(frozen=True)
class AnswerCell:
    """One answer cell: its name (nbgrader's grade_id) and its parsed code."""

    name: str
    source: str
    tree: ast.Module


def _notebook_cells(notebook: Path) -> list:
    """The cells of ``notebook``; CompleteError naming the file when it is missing or is not a
    notebook."""
    if not notebook.is_file():
        hint = (": name your notebook (`tinytorch complete path/to/07_training.ipynb`)"
                if notebook == DEFAULT_NOTEBOOK else "")
        raise CompleteError(f"no notebook at {notebook}{hint}")
    try:
        data = json.loads(notebook.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CompleteError(f"{notebook} is not a Jupyter notebook (not JSON: {error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise CompleteError(f"{notebook} is not a Jupyter notebook (it has no list of cells)")
    return data["cells"]


def graded_cells(notebook: Path) -> dict[str, str]:
    """Check id -> grade_id of the notebook's graded cells (nbgrader's ``grade`` metadata, as
    the release ships them, each running ``run_check("<id>", ...)``), for naming the cell of a
    failing check; a cell the student changed or removed is simply not named."""
    try:
        cells = _notebook_cells(notebook)
    except CompleteError:
        return {}
    found: dict[str, str] = {}
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if not isinstance(grading, dict) or not grading.get("grade") or not grading.get(
                "grade_id"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        check = RUN_CHECK.search(source)
        if check:
            found.setdefault(check.group(1), str(grading["grade_id"]))
    return found


def answer_cells(notebook: Path) -> list[AnswerCell]:
    """The code answer cells of ``notebook``, in order; CompleteError naming the file (and the
    cell) when it is missing, not a notebook, has no answer cell or a cell is not Python."""
    cells = []
    for index, cell in enumerate(_notebook_cells(notebook)):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        grading = cell.get("metadata", {}).get("nbgrader", {})
        if not isinstance(grading, dict) or not grading.get("solution"):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        name = str(grading.get("grade_id") or cell.get("id") or f"cell {index + 1}")
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            line = (error.text or "").strip()
            hint = ("; remove IPython's magics and shell lines (%, !) from answer cells"
                    if line.startswith(("%", "!")) else "")
            raise CompleteError(
                f"{notebook}: answer cell {name} is not valid Python: line {error.lineno}: "
                f"{error.msg}: {line!r}{hint}"
            ) from error
        cells.append(AnswerCell(name, source if source.endswith("\n") else source + "\n", tree))
    if not cells:
        raise CompleteError(
            f"{notebook} has no answer cells (nbgrader solution cells): is it the Module 07 "
            "notebook?"
        )
    return cells


# ----------------------------------------------------------------------------- assembling
@dataclass
class Piece:
    """One statement of an answer cell, as it goes into the module (at column 0, without
    ``@add_to_class``), and where it came from."""

    cell: str
    text: str
    node: ast.stmt
    after: str | None = None  # a new method: the method of its cell it follows

    @property
    def name(self) -> str | None:
        return getattr(self.node, "name", None)


@dataclass
class Assembled:
    """The module's text; for lines that came from an answer cell, (cell, line in the cell);
    and what was left out of the cells."""

    text: str
    origins: dict[int, tuple[str, int]] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)


Function = ast.FunctionDef | ast.AsyncFunctionDef
Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _is_add_to_class(decorator: ast.expr) -> str | None:
    """The class name of an ``@add_to_class(Name)`` decorator, else None."""
    if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)
            and decorator.func.id == "add_to_class" and len(decorator.args) == 1
            and not decorator.keywords and isinstance(decorator.args[0], ast.Name)):
        return decorator.args[0].id
    return None


def _span(lines: list[str], node: ast.stmt, *, comments_above: bool = False) -> tuple[int, int]:
    """0-based [start, end) of a statement: its decorators, the comment lines just after its
    last line that are indented inside it, and (``comments_above``) the comment lines right
    above it at its own indentation."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    end = node.end_lineno or node.lineno
    if isinstance(node, Definition):
        while end < len(lines) and lines[end].lstrip().startswith("#") and (
            len(lines[end]) - len(lines[end].lstrip()) > node.col_offset
        ):
            end += 1
    if comments_above:
        while start > 0 and lines[start - 1].startswith(" " * node.col_offset + "#"):
            start -= 1
    return start, end


def _piece_text(lines: list[str], node: ast.stmt) -> str:
    """The statement's text from its cell, the lines of ``@add_to_class`` decorators removed."""
    start, end = _span(lines, node, comments_above=True)
    drop = {
        row
        for d in getattr(node, "decorator_list", [])
        if _is_add_to_class(d)
        for row in range(d.lineno - 1, (d.end_lineno or d.lineno))
    }
    return "".join(line for row, line in enumerate(lines[start:end], start) if row not in drop)


def _string_rows(text: str) -> set[int]:
    """1-based rows of ``text`` that begin inside a multi-line string whose value is used:
    indenting those would change the string. A string statement (a docstring) may move."""
    rows: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.end[0] > token.start[0] and token.type not in (tokenize.NEWLINE, tokenize.NL):
            rows.update(range(token.start[0] + 1, token.end[0] + 1))
    for string in _string_statements(ast.parse(text)):
        rows.difference_update(range(string.lineno + 1, (string.end_lineno or 0) + 1))
    return rows


def _string_statements(tree: ast.AST) -> list[ast.Constant]:
    """Strings standing alone as statements (docstrings): their margin means nothing (help()
    and ``inspect.cleandoc`` remove it), so they are indented with the code around them."""
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)]


def _indented(text: str, prefix: str) -> str:
    """``text`` (a definition at column 0) indented by ``prefix``, strings left as they are
    (docstrings move with the code)."""
    keep = _string_rows(text)
    return "".join(
        line if row in keep or not line.strip() else prefix + line
        for row, line in enumerate(text.splitlines(keepends=True), start=1)
    )


def fingerprint(node: ast.AST) -> str:
    """What a definition does, whatever its position, its indentation or its docstrings'
    margins, and without ``@add_to_class``: equal fingerprints, equal code."""
    node = copy.deepcopy(node)
    for sub in ast.walk(node):
        if isinstance(sub, Definition):
            sub.decorator_list = [d for d in sub.decorator_list if not _is_add_to_class(d)]
    for string in _string_statements(node):
        string.value = inspect.cleandoc(string.value)
    return ast.dump(node)


def _with_methods(text: str, cls: str, methods: dict[str, Piece]) -> str:
    """``text`` (a module or a class at column 0) with each of ``methods`` put into class
    ``cls``: in place of the method of that name, or after the method of its cell, or last."""
    lines = text.splitlines(keepends=True)
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == cls)
    prefix = " " * node.body[0].col_offset
    spans = {item.name: _span(lines, item) for item in node.body
             if isinstance(item, Function)}
    replace: dict[int, tuple[int, str]] = {}  # start -> (end, text)
    insert: dict[int, list[str]] = {}  # at line -> texts
    for name, piece in methods.items():
        body = _indented(piece.text, prefix)
        if name in spans:
            start, end = spans[name]
            replace[start] = (end, body)
        else:
            at = spans[piece.after][1] if piece.after in spans else _span(lines, node)[1]
            insert.setdefault(at, []).append("\n" + body)
    out: list[str] = []
    row = 0
    while row <= len(lines):
        out.extend(insert.get(row, []))
        if row == len(lines):
            break
        if row in replace:
            end, body = replace[row]
            out.append(body)
            row = end
            continue
        out.append(lines[row])
        row += 1
    return "".join(out)


def _joined(parts: list[str]) -> str:
    """Top-level blocks separated by two blank lines."""
    return "\n\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def assemble(base: str, cells: list[AnswerCell], notebook_name: str) -> Assembled:
    """The module ``base`` (the given Module 07) with the answer cells' definitions in place
    of its stubs; raises RuntimeError if a definition did not survive the move unchanged."""
    tree = ast.parse(base)
    top = {n.name: n for n in tree.body if isinstance(n, Definition)}
    classes = {name for name, n in top.items() if isinstance(n, ast.ClassDef)}
    base_methods = {name: {m.name for m in top[name].body if isinstance(m, Function)}
                    for name in classes}
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    seen_imports = {ast.dump(n) for n in imports}
    seen_extras: set[str] = set()
    new_imports: list[str] = []
    new_future: list[str] = []
    replaced: dict[str, Piece] = {}
    methods: dict[str, dict[str, Piece]] = {}
    before: dict[str, list[str]] = {}
    after: dict[str, list[str]] = {}
    tail: list[str] = []
    helpers: list[Piece] = []  # functions and classes the answer cells add
    result = Assembled("")

    for cell in cells:
        lines = cell.source.splitlines(keepends=True)
        anchor: tuple[str, str] | None = None  # ("slot" | "class", top-level name)
        main_method: str | None = None
        waiting: list[str] = []  # extras above the cell's first definition
        extras: list[str] = []
        new_methods: list[Piece] = []  # helper methods: they follow the cell's own method
        for node in cell.tree.body:
            text = _piece_text(lines, node)
            if isinstance(node, ast.Import | ast.ImportFrom):
                if ast.dump(node) not in seen_imports:
                    seen_imports.add(ast.dump(node))
                    future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
                    (new_future if future else new_imports).append(text)
                continue
            if isinstance(node, ast.Expr):
                first = text.strip().splitlines()[0] if text.strip() else ""
                result.left_out.append(f"answer cell {cell.name}, line {node.lineno}: {first}")
                continue
            owners = [c for d in getattr(node, "decorator_list", []) if (c := _is_add_to_class(d))]
            if isinstance(node, Function) and owners and owners[0] in classes:
                cls = owners[0]
                piece = Piece(cell.name, text, node)
                if node.name in base_methods[cls]:
                    main_method = main_method or node.name
                else:
                    new_methods.append(piece)
                methods.setdefault(cls, {}).pop(node.name, None)  # the last definition wins
                methods[cls][node.name] = piece
                anchor = anchor or ("class", cls)
                continue
            if isinstance(node, Definition) and node.name in top:
                replaced[node.name] = Piece(cell.name, text, node)
                if anchor is None:
                    anchor = ("slot", node.name)
                    before.setdefault(node.name, []).extend(waiting)
                    waiting = []
                continue
            key = fingerprint(node)
            if key in seen_extras:
                continue
            seen_extras.add(key)
            if isinstance(node, Definition):
                helpers.append(Piece(cell.name, text, node))
            (extras if anchor else waiting).append(text)
        for piece in new_methods:
            piece.after = main_method
        if anchor is None:
            tail.extend(waiting)
        else:
            after.setdefault(anchor[1], []).extend(waiting + extras)

    lines = base.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    for name, node in top.items():
        if not (name in replaced or name in methods or before.get(name) or after.get(name)):
            continue
        start, end = _span(lines, node)
        text = replaced[name].text if name in replaced else "".join(lines[start:end])
        if name in methods:
            if not isinstance(ast.parse(text).body[-1], ast.ClassDef):
                cells_of = sorted({piece.cell for piece in methods[name].values()})
                raise CompleteError(f"answer cells {', '.join(cells_of)} add methods to {name}, "
                                    f"which answer cell {replaced[name].cell} makes a "
                                    "function, not a class")
            text = _with_methods(text, name, methods[name])
        edits.append((start, end, _joined([*before.get(name, []), text, *after.get(name, [])])))
    if new_imports:
        end = imports[-1].end_lineno or imports[-1].lineno
        edits.append((end, end, "".join(new_imports)))
    if new_future:
        futures = [n for n in imports if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
        at = (futures[-1].end_lineno or 0) if futures else (imports[0].lineno - 1 if imports else 0)
        edits.append((at, at, "".join(new_future)))
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        lines[start:end] = [text]
    text = "".join(lines)
    if tail:
        text = text.rstrip("\n") + "\n\n\n" + _joined(tail)
    header = f"{HEADER}{notebook_name}, each in its place (tinytorch complete).\n"
    result.text = header + text
    # what made it in (the last definition of each name); a class of an answer cell that then
    # received methods is no longer as its cell wrote it: its methods are compared one by one
    kept = [*(piece for name, piece in replaced.items() if name not in methods),
            *(piece for pieces in methods.values() for piece in pieces.values()), *helpers]
    result.origins = _origins(result.text, kept)
    return result


def _origins(text: str, pieces: list[Piece]) -> dict[int, tuple[str, int]]:
    """Module line -> (answer cell, line) for every definition taken from a cell; raises
    RuntimeError if one is not in ``text`` exactly as its cell wrote it."""
    tree = ast.parse(text)
    found: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        if isinstance(node, Definition):
            found.setdefault(fingerprint(node), []).append(node)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, Definition):
                        found.setdefault(fingerprint(item), []).append(item)
    origins: dict[int, tuple[str, int]] = {}
    for piece in pieces:
        matches = found.get(fingerprint(piece.node))
        if not matches:
            raise RuntimeError(f"the definition of {piece.name} from answer cell {piece.cell} "
                               "changed on its way into the module")
        node = matches[0]
        for offset in range((node.end_lineno or node.lineno) - node.lineno + 1):
            origins[node.lineno + offset] = (piece.cell, piece.node.lineno + offset)
    return origins


def given_module(packages: list[Path]) -> str:
    """Module 07 as the student was given it, from what they have: the released module the
    student wheel ships (``RELEASED``) in the first of the tinytorch ``packages`` (this one,
    then the targets' folders) that holds it; else a ``training.py``, or the backup
    ``complete`` made of it, that this command never wrote (a working copy fresh from the
    release). CompleteError when there is none: nothing is assembled from anything else."""
    for package in packages:
        if (package.parent / RELEASED).is_file():
            return (package.parent / RELEASED).read_text(encoding="utf-8")
    for package in packages:
        module = package.parent / MODULE
        for candidate in (module, module.with_name(module.name + BACKUP)):
            if candidate.is_file():
                text = candidate.read_text(encoding="utf-8")
                if not text.startswith(HEADER) and "NotImplementedError" in text:
                    return text
    shown = ", ".join(str(package) for package in packages) or "nowhere"
    raise CompleteError(f"no Module 07 as released ({RELEASED.name}) in the tinytorch at "
                        f"{shown}: reinstall the student wheel")


# ----------------------------------------------------------------------------- where to write
@dataclass(frozen=True)
class Target:
    """A ``tinytorch/core/training.py`` to write, and whose it is (for the messages)."""

    path: Path
    what: str


#: Folders never written into: folder -> why (``--protect``; the course adds its own).
Protected = dict[Path, str]


def forbidden(path: Path, protected: Protected | None = None) -> str | None:
    """Why ``path`` must never receive a student's module (it lies in a ``protected``
    folder), or None."""
    resolved = path.resolve()
    for root, why in (protected or {}).items():
        if resolved.is_relative_to(root.resolve()):
            return why
    return None


_FIND_INSTALLED = (
    "import importlib.util, json\n"
    "spec = importlib.util.find_spec('tinytorch')\n"
    "print(json.dumps(list(spec.submodule_search_locations or []) if spec else []))\n"
)


def installed_module(python: str = sys.executable) -> Path | None:
    """The ``tinytorch/core/training.py`` that ``import tinytorch`` finds in ``python``'s
    environment from a neutral folder (no working copy, no current folder on the path)."""
    with tempfile.TemporaryDirectory(prefix="complete-find-") as neutral:
        found = subprocess.run([python, "-B", "-P", "-c", _FIND_INSTALLED], cwd=neutral,
                               capture_output=True, text=True, timeout=120, check=False)
    printed = found.stdout.strip().splitlines()
    if found.returncode != 0 or not printed:
        return None
    for location in json.loads(printed[-1]):
        module = Path(location).parent / MODULE
        if module.is_file():
            return module
    return None


def targets(notebook: Path, *, notes: list[str],
            protected: Protected | None = None) -> list[Target]:
    """Every Module 07 the notebook's code is imported from: the tinytorch beside the notebook
    and the one installed in this Python's environment. CompleteError for a ``protected``
    folder beside the notebook (an installed tinytorch in one is skipped with a note) or when
    there is nowhere to write."""
    found: list[Target] = []
    beside = notebook.parent / MODULE
    if beside.is_file():
        why = forbidden(beside, protected)
        if why:
            raise CompleteError(f"refusing to write {beside}: it is {why} "
                                f"({beside.resolve()}); complete your working copy's notebook")
        found.append(Target(beside, "the tinytorch beside your notebook"))
    installed = installed_module()
    if installed is not None and installed.resolve() not in {t.path.resolve() for t in found}:
        why = forbidden(installed, protected)
        if why:
            notes.append(f"left alone: {installed.resolve()}, the tinytorch of the environment "
                         f"{_shown(Path(sys.prefix))}, is {why}: that is not a student's "
                         "environment; run this with the Python of yours")
        else:
            found.append(Target(installed, f"your environment's tinytorch, in "
                                f"{_shown(Path(sys.prefix))}: what your kernels import"))
    if not found:
        raise CompleteError(f"nowhere to write: no {MODULE} beside {notebook} and no tinytorch "
                            f"installed in the environment {_shown(Path(sys.prefix))}")
    return found


# ----------------------------------------------------------------------------- the checks
_RUN_CHECKS = """
import json, os, sys, traceback
result, root = sys.argv[1], os.getcwd()
sys.path.insert(0, root)
from checks import run_all                 # the course's checks, before any student code
from checks.registry import TITLES
def report(data):
    with open(result, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
try:
    import tinytorch.core.training as module
except BaseException:
    report({"import_error": traceback.format_exc()})
    raise SystemExit(0)
expected = os.path.join(root, "tinytorch", "core", "training.py")
if os.path.realpath(module.__file__) != os.path.realpath(expected):
    report({"import_error": f"imported {module.__file__} instead of {expected}"})
    raise SystemExit(0)
names = json.loads(sys.argv[2])
missing = [name for name in names if not hasattr(module, name)]
if missing:
    report({"import_error": "the module does not define " + ", ".join(missing)})
    raise SystemExit(0)
results = run_all({name: getattr(module, name) for name in names})
report({"results": results, "titles": TITLES})
"""


@dataclass
class CheckRun:
    """What the check run found: each check's failure message (None: passed), or why the
    module could not be checked at all."""

    results: dict[str, str | None] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def failed(self) -> dict[str, str]:
        return {check: message for check, message in self.results.items() if message}

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.results) and not self.failed


def _readable(text: str, module: Path, origins: dict[int, tuple[str, int]]) -> str:
    """``text`` with the throw-away module's lines named as the student knows them: a line of
    an answer cell, or a line of the training.py to be written."""
    def name(match: re.Match[str]) -> str:
        line = int(match.group("line"))
        if line in origins:
            cell, cell_line = origins[line]
            return f"answer cell {cell}, line {cell_line}"
        return f"training.py, line {line}"

    for spelling in {str(module), os.path.realpath(module)}:
        text = re.sub(rf'(?:File ")?{re.escape(spelling)}"?, line (?P<line>\d+)', name, text)
    return text


def installed_checks() -> Path:
    """The ``checks`` package installed beside this tinytorch (the student wheel ships both)."""
    spec = importlib.util.find_spec("checks")
    folders = list(spec.submodule_search_locations or []) if spec else []
    if not folders:
        raise CompleteError("the course's checks are not installed in this environment "
                            f"({_shown(Path(sys.prefix))}): reinstall the student wheel")
    return Path(folders[0])


def run_checks(assembled: Assembled, package: Path, *, checks: Path | None = None,
               timeout: float = DEFAULT_TIMEOUT, python: str = sys.executable) -> CheckRun:
    """Run every check on ``assembled`` in a fresh process, in a throw-away copy of the
    tinytorch ``package`` (the one it will be written into) beside the course's ``checks``
    (default: the installed ones)."""
    checks = checks or installed_checks()
    with tempfile.TemporaryDirectory(prefix="complete-checks-") as temp:
        root = Path(temp) / "root"
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", f"*{BACKUP}*")
        shutil.copytree(package, root / "tinytorch", ignore=skip)
        shutil.copytree(checks, root / "checks", ignore=skip)
        module = root / MODULE
        module.write_text(assembled.text, encoding="utf-8")
        result = Path(temp) / "result.json"
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg"}
        with open(Path(temp) / "out", "wb") as out, open(Path(temp) / "err", "wb") as err:
            process = subprocess.Popen(
                [python, "-B", "-c", _RUN_CHECKS, str(result), json.dumps(IMPLEMENTATIONS)],
                cwd=root, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return CheckRun(error=f"the checks did not finish within {timeout:g} s: is "
                                      "there an endless loop in your code?")
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        if not result.is_file():
            stderr = (Path(temp) / "err").read_text(encoding="utf-8", errors="replace")[-3000:]
            return CheckRun(error=_readable(
                f"the check run ended without a result (exit status {process.returncode}); "
                f"its last output:\n{stderr}", module, assembled.origins))
        report = json.loads(result.read_text(encoding="utf-8"))
        if "import_error" in report:
            return CheckRun(error=_readable(f"the assembled module does not import:\n"
                                            f"{report['import_error']}", module,
                                            assembled.origins))
        results = {check: None if message is None else _readable(message, module,
                                                                  assembled.origins)
                   for check, message in report["results"].items()}
        return CheckRun(results, report["titles"])


# ----------------------------------------------------------------------------- writing
@dataclass
class Written:
    """One target after writing: the file, its backup (None: nothing replaced), changed?"""

    path: Path
    what: str
    backup: Path | None
    changed: bool


def _backup_for(path: Path, old: bytes) -> tuple[Path, bool]:
    """Where the file's current contents go, and whether they must be written there: an
    existing backup with the same bytes is reused, one with other bytes is never replaced."""
    number = 1
    while True:
        candidate = path.with_name(path.name + BACKUP + ("" if number == 1 else f"-{number}"))
        if not candidate.exists():
            return candidate, True
        if candidate.is_file() and candidate.read_bytes() == old:
            return candidate, False
        number += 1


def _temporary(beside: Path, data: bytes, mode: int) -> Path:
    return files.temporary_beside(beside, data, mode=mode)


def write(targets: list[Target], text: str,
          protected: Protected | None = None) -> list[Written]:
    """Write ``text`` to every target: first every temporary file (a folder that cannot be
    written fails here, with nothing changed), then each backup and module renamed into
    place. Python's cached bytecode of the old module is removed."""
    data = text.encode("utf-8")
    plans: list[tuple[Target, Path, Path | None, Path | None, Path | None]] = []
    temporaries: list[Path] = []
    try:
        for target in targets:
            path = target.path.resolve()
            why = forbidden(path, protected)
            if why:  # targets() refuses these already; never write one whatever the caller
                raise CompleteError(f"refusing to write {path}: it is {why}")
            old = path.read_bytes()
            if old == data:
                plans.append((target, path, None, None, None))
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            backup, needed = _backup_for(path, old)
            saved = _temporary(backup, old, mode) if needed else None
            temporaries += [saved] if saved else []
            new = _temporary(path, data, mode)
            temporaries.append(new)
            plans.append((target, path, new, backup, saved))
    except OSError as error:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise CompleteError(f"cannot write beside {error.filename or 'the module'}: "
                            f"{error.strerror or error}; nothing was changed") from error
    written = []
    for target, path, new, backup, saved in plans:
        if new is None:
            written.append(Written(path, target.what, None, False))
            continue
        if saved is not None and backup is not None:
            os.replace(saved, backup)
        os.replace(new, path)
        for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
            cached.unlink(missing_ok=True)
        written.append(Written(path, target.what, backup, True))
    return written


# ----------------------------------------------------------------------------- the command
def _shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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
        given = given_module([Path(__file__).resolve().parent,
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
    """The ``tinytorch`` command of the student wheel: ``tinytorch complete [NOTEBOOK]``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("complete",):
        print("usage: tinytorch complete [NOTEBOOK] [--timeout S] [--protect DIR]\n"
              "  complete: your notebook's checked answers become your tinytorch's Module 07",
              file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return main(argv[1:], prog="tinytorch complete")


if __name__ == "__main__":
    sys.exit(main(prog="python -m tinytorch.complete"))
