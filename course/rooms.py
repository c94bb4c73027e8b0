"""The rooms of ``course/`` and the arrows between them, read from the code itself.

    python -m course.rooms            # each room's files and lines, the arrows between rooms
    python -m course.rooms --dot      # the same graph for Graphviz

A room is a subpackage of ``course``; an arrow from room A to room B means a module of A
imports one of B. The rule (``ALLOWED``) keeps them pointing one way, so that what is graded
never depends on how a course is authored or run. Two more things no module may do: import
another module's private names (``from course.grading.submission import _report``, or
``submission._report``), and import a room that the rule does not allow. Exit status 1 names
every breach, with its file and line. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
#: The rooms each room may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "assignment": frozenset(),
    "grading": frozenset({"assignment"}),
    "authoring": frozenset({"assignment"}),
    "student": frozenset({"assignment", "authoring"}),
    "classroom": frozenset({"assignment", "authoring", "student", "grading"}),
}
#: Where the modules that belong to no room are listed (``course`` and this one).
OUTSIDE = "(course)"


@dataclass(frozen=True)
class Breach:
    file: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}"


def room_of(module: str) -> str | None:
    """``course.grading.sandbox`` (or ``course.grading``) -> ``grading``; None for a module
    outside any room (``course``, ``course.rooms``)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "course" or parts[1] not in ALLOWED:
        return None
    return parts[1]


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the package at ``root`` by its dotted name."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(tree: ast.AST, known: dict[str, Path]) -> list[tuple[int, str, list[str]]]:
    """(line, module imported, names taken from it) of every import of a module of ``known``;
    ``from course.grading import sandbox`` imports ``course.grading.sandbox``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if child in known:
                    found.append((node.lineno, child, []))
                elif node.module in known:
                    found.append((node.lineno, node.module, [alias.name]))
    return found


def _bound_modules(tree: ast.AST, known: dict[str, Path]) -> dict[str, str]:
    """Local names bound to modules of ``known`` (``import course.x as y``, ``from course.a
    import x``)."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known and alias.asname:
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                if child in known:
                    bound[alias.asname or alias.name] = child
    return bound


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def survey(root: Path = ROOT) -> tuple[dict[str, list[str]], Counter[tuple[str, str]],
                                        list[Breach]]:
    """(modules by room, arrows between rooms with how many imports make each, breaches)."""
    known = modules(root)
    rooms: dict[str, list[str]] = defaultdict(list)
    arrows: Counter[tuple[str, str]] = Counter()
    breaches: list[Breach] = []
    for name, path in known.items():
        here = room_of(name) or OUTSIDE
        rooms[here].append(name)
        tree = ast.parse(path.read_text(), filename=str(path))
        shown = str(path.relative_to(root.parent))
        for line, target, names in _imports(tree, known):
            private = [n for n in names if _private(n)]
            if private and target != name:
                breaches.append(Breach(shown, line, f"imports private {', '.join(private)} "
                                                    f"from {target}"))
            there = room_of(target)
            if there is None or there == here:
                continue
            arrows[(here, there)] += 1
            if here in ALLOWED and there not in ALLOWED[here]:
                breaches.append(Breach(shown, line, f"room {here} imports {target} (room "
                                                    f"{there}): against the rule"))
        bound = _bound_modules(tree, known)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound and _private(node.attr)
                    and bound[node.value.id] != name):
                breaches.append(Breach(shown, node.lineno, f"uses private {node.attr} of "
                                                           f"{bound[node.value.id]}"))
    return dict(rooms), arrows, breaches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dot", action="store_true", help="print the graph for Graphviz")
    args = parser.parse_args(argv)
    rooms, arrows, breaches = survey()
    known = modules()
    if args.dot:
        print("digraph rooms {")
        for (a, b), count in sorted(arrows.items()):
            print(f'  "{a}" -> "{b}" [label="{count}"];')
        print("}")
    else:
        for room in sorted(rooms):
            names = sorted(rooms[room])
            lines = sum(len(known[n].read_text().splitlines()) for n in names)
            files = ", ".join(n.rsplit(".", 1)[-1] for n in names
                              if known[n].name != "__init__.py")
            print(f"{room:<11} {lines:>6} lines  {len(names):>2} files: {files}")
        print()
        for (a, b), count in sorted(arrows.items()):
            print(f"{a} -> {b}  ({count} imports)")
    for breach in breaches:
        print(f"error: {breach}", file=sys.stderr)
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
