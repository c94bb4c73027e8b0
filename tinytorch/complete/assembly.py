"""Assembling, after reading the notebook: the answer cells' definitions put where their stubs
are in Module 07 as the student was given it (``released.py``).

A method written as ``@add_to_class(Trainer)`` goes back into its class, indented as a method,
the decorator dropped; a class or function replaces the given one. Helper functions, constants
and imports added in an answer cell are kept (helpers next to the function or class their cell
completes, helper methods after their cell's method, imports with the module's imports). Bare
expressions (a debugging ``print(...)``) are left out, and the command says which: a module
runs its top level on every import. Every definition is compared with its cell's after the
move (``fingerprint``), and each line taken from a cell keeps where it came from, so that a
failing check names the line of the answer cell, not of the assembled module.
"""

from __future__ import annotations

import ast
import copy
import inspect
import io
import tokenize
from dataclasses import dataclass, field

from tinytorch.complete.common import HEADER, CompleteError
from tinytorch.complete.notebook import AnswerCell


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
