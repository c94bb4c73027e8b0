"""Build the Module 07 notebook (the nbgrader source) and its grading table.

One source of truth for each thing:

* the code (given parts and solutions) is ``tinytorch/core/training.py``;
* the prose, the order of the steps and the graded checks are the lesson,
  ``notebooks/lessons/07_training.py``, in jupytext's percent format.

A lesson cell with the metadata ``include="name ..."`` receives the source of those top-level
definitions of training.py; ``include="Trainer.evaluate"`` receives that method, attached with
``@add_to_class(Trainer)`` so the class grows cell by cell; ``include="Trainer"`` receives the
class without the methods included elsewhere. Every definition must be included exactly once,
so nothing in training.py can be missing from, or drift away from, the notebook.

A cell with ``grade_id="..." points=N`` becomes an nbgrader test cell; a cell holding a
``### BEGIN SOLUTION`` region becomes an answer cell. A markdown cell with
``grade_id="..." points=N manual`` becomes a written answer graded by hand (nbgrader's
"manually graded answer": ``solution`` and ``grade``): a line naming its question ("**R1, your
answer** (...):"), then an example answer between ``### BEGIN SOLUTION`` and
``### END SOLUTION``, which ``nbgrader generate_assignment`` replaces with "YOUR ANSWER HERE".
The line stays in the release, so nbgrader's Validate, which lists an empty answer by its text,
says which question is unanswered; its points come on top of the automatic ones. A test cell and an
answer cell (code) are tagged ``raises-exception``: a check that fails is a test cell's expected
outcome on unfinished code, and an answer cell that raises (a SyntaxError while the student
writes) is named by every check that needs its code (``checks.raised``), so JupyterLab's "Run
All" (and nbclient) go on to the next cell instead of stopping there, and one run shows every
check's result. nbgrader still scores a test cell's error as a failure (it reads the outputs);
the tag is no part of nbgrader's checksums (source, type, flags, grade_id and points).

Beside the notebook go two tables: ``GRADING.md`` (audit test -> graded cell -> points) and
``RULES.md`` (each rule of ``checks/rules.py`` -> the checks that judge it -> the lesson's words
that state it), so students and instructors read what is graded without reading the checks.
With them go the assignment folder's ``README.md``, the first part of the students' page
``docs/student.md`` word for word (install, check, complete, submit: one text, never two that
drift), and ``requirements.txt``, the student's packages at pyproject's pins, which that README
installs for a student who has only the folder. The release hands out all four.

    python -m course.authoring.build           # write the notebook and the four files beside it
    python -m course.authoring.build --check   # exit 1 if they differ from what would be written
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import textwrap
from pathlib import Path

import jupytext
import nbformat

from checks.rules import CELLS, RULES, Rule
from course.assignment import paths
from course.assignment.cells import DEMO, DEMO_CELL, POINTS_SAID, graded_cells, manual_cells
from course.assignment.pins import student_requirements
from course.assignment.solutions import SOLUTION_REGION

ADD_TO_CLASS = "@add_to_class({cls})\n"
#: The tags of a test cell and a code answer cell: neither a failing check nor an answer
#: cell that raises may stop "Run All" (see the docstring).
RUN_ON = ("raises-exception",)
#: Generated beside GRADING.md (and released with it): the rules the checks hold students to.
RULES_TABLE = paths.GRADING_TABLE.parent / "RULES.md"
#: The students' environment on Binder; its exact Python is the students' kernel.
STUDENT_ENVIRONMENT = paths.REPO / "binder" / "environment.yml"
#: The students' page; its part between README_REGION's comments is the folder's README.md.
STUDENT_PAGE = paths.REPO / "docs" / "student.md"
STUDENT_README = paths.GRADING_TABLE.parent / "README.md"
README_REGION = re.compile(
    r"^<!-- BEGIN STUDENT README -->\n(.*?)^<!-- END STUDENT README -->$", re.S | re.M)
README_TITLE = "# Module 07: Training"
#: Generated beside the README: what its "With the assignment's folder alone" installs.
STUDENT_REQUIREMENTS = paths.GRADING_TABLE.parent / "requirements.txt"
#: A markdown link's target.
LINK = re.compile(r"\]\(([^)\s]*)")


# ----------------------------------------------------------------------------- the code
def _span(lines: list[str], node: ast.stmt) -> tuple[int, int]:
    """0-based [start, end) of a definition: decorators included, and the comment lines just
    after its last statement that are indented inside it (``### END SOLUTION``)."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    end = node.end_lineno
    while end < len(lines) and lines[end].lstrip().startswith("#") and (
        len(lines[end]) - len(lines[end].lstrip()) > node.col_offset
    ):
        end += 1
    return start, end


def _name(node: ast.stmt) -> str | None:
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return node.name
    if isinstance(node, ast.Import | ast.ImportFrom):
        return "imports"
    return None


def definitions(source: str) -> dict[str, str]:
    """Each top-level definition of ``source`` by name (all imports together as ``imports``),
    and each method as ``Class.method`` (dedented, to be attached with ``add_to_class``)."""
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    found: dict[str, str] = {}
    imports = [n for n in tree.body if _name(n) == "imports"]
    if imports:  # one block, blank lines between the groups kept
        found["imports"] = "".join(lines[imports[0].lineno - 1 : imports[-1].end_lineno])
    for node in tree.body:
        name = _name(node)
        if name is None or name == "imports":
            continue
        start, end = _span(lines, node)
        found[name] = "".join(lines[start:end])
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    s, e = _span(lines, item)
                    found[f"{node.name}.{item.name}"] = textwrap.dedent("".join(lines[s:e]))
    return found


def class_without(source: str, cls: str, methods: set[str]) -> str:
    """The source of class ``cls`` with ``methods`` removed, together with the comment lines
    and blank lines just above each of them."""
    lines = source.splitlines(keepends=True)
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == cls)
    start, end = _span(lines, node)
    drop: set[int] = set()
    for item in node.body:
        if isinstance(item, ast.FunctionDef) and item.name in methods:
            s, e = _span(lines, item)
            while s - 1 > start and (not lines[s - 1].strip() or lines[s - 1].lstrip()[0] == "#"):
                s -= 1
            drop.update(range(s, e))
    kept = "".join(line for i, line in enumerate(lines[start:end], start) if i not in drop)
    return re.sub(r"\n{3,}", "\n\n", kept).rstrip() + "\n"


# ----------------------------------------------------------------------------- the notebook
def _includes(cell: nbformat.NotebookNode) -> list[str]:
    return cell.metadata.get("include", "").split()


def _code_for(names: list[str], code: dict[str, str], source: str, separate: set[str]) -> str:
    parts = []
    for name in names:
        if name not in code:
            raise ValueError(f"the lesson includes {name!r}, which training.py does not define")
        if "." in name:
            cls = name.split(".")[0]
            parts.append(ADD_TO_CLASS.format(cls=cls) + code[name])
        elif name in {n.split(".")[0] for n in separate}:
            parts.append(class_without(source, name, {n.split(".")[1] for n in separate
                                                      if n.startswith(name + ".")}))
        else:
            parts.append(code[name])
    return "\n\n".join(p.rstrip() for p in parts) + "\n"


def _check_coverage(code: dict[str, str], included: list[str]) -> None:
    """Every top-level definition included exactly once; methods at most once."""
    repeated = sorted({n for n in included if included.count(n) > 1})
    if repeated:
        raise ValueError(f"the lesson includes these more than once: {repeated}")
    missing = sorted(n for n in code if "." not in n and n not in included)
    if missing:
        raise ValueError(f"training.py defines {missing}, which the lesson never includes")


def _written_answer(cell: nbformat.NotebookNode, grade_id: str | None, points: object) -> None:
    """A markdown answer graded by hand (``manual``): nbgrader's solution and grade cell."""
    where = f"written answer {grade_id!r}" if grade_id else "a cell marked manual"
    if cell.cell_type != "markdown":
        raise ValueError(f"{where} is a {cell.cell_type} cell; only markdown is graded by hand")
    if grade_id is None or not re.fullmatch(r"[A-Za-z_][\w-]*", str(grade_id)):
        raise ValueError(f"{where} needs a grade_id (letters, digits, _ and -)")
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise ValueError(f"{where} needs points=N, a positive whole number")
    if (cell.source.count("### BEGIN SOLUTION") != 1
            or not SOLUTION_REGION.search(cell.source + "\n")):
        raise ValueError(f"{where} needs one example answer between ### BEGIN SOLUTION and "
                         "### END SOLUTION (the release shows YOUR ANSWER HERE instead)")
    if not cell.source.split("### BEGIN SOLUTION", 1)[0].strip():
        raise ValueError(f"{where} needs a line above ### BEGIN SOLUTION naming its question "
                         "(nbgrader's Validate shows an empty answer by its text alone)")
    cell.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False,
                                 "grade_id": grade_id, "points": points, "schema_version": 3}
    cell.id = grade_id


def _run_on(meta: dict) -> None:
    """Tag a cell so that "Run All" goes on past its error (``RUN_ON``)."""
    tags = list(meta.get("tags", []))
    meta["tags"] = tags + [tag for tag in RUN_ON if tag not in tags]


def _nbgrader(cell: nbformat.NotebookNode, index: int) -> None:
    meta = cell.metadata
    grade_id, points = meta.pop("grade_id", None), meta.pop("points", None)
    include = meta.pop("include", None)
    if "manual" in meta:
        meta.pop("manual")
        _written_answer(cell, grade_id, points)
        return
    if grade_id is not None and cell.cell_type != "code":
        raise ValueError(f"markdown cell {grade_id!r} has points but is not marked manual")
    if grade_id is not None:
        if points is None:
            raise ValueError(f"graded cell {grade_id!r} has no points")
        meta["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                            "grade_id": grade_id, "points": points, "schema_version": 3}
        _run_on(meta)
        cell.id = grade_id
    elif cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
        answer = "answer_" + re.sub(r"\W+", "_", include or f"cell_{index}").strip("_")
        meta["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                            "grade_id": answer, "schema_version": 3}
        _run_on(meta)
        cell.id = answer
    else:
        cell.id = f"cell-{index:02d}"
        if cell.cell_type == "code" and DEMO_CELL in cell.source:
            tags = list(meta.get("tags", []))
            meta["tags"] = tags + [DEMO] if DEMO not in tags else tags


def build(lesson: str, source: str) -> nbformat.NotebookNode:
    """The nbgrader source notebook from the lesson text and training.py's text."""
    notebook = jupytext.reads(lesson, fmt="py:percent")
    code = definitions(source)
    included = [n for cell in notebook.cells for n in _includes(cell)]
    _check_coverage(code, included)
    separate = {n for n in included if "." in n}
    for index, cell in enumerate(notebook.cells):
        names = _includes(cell)
        if names:
            if cell.source.strip():
                raise ValueError(f"cell {index} includes {names} and also has its own code")
            cell.source = _code_for(names, code, source, separate).rstrip("\n")
        _nbgrader(cell, index)
    check_questions(notebook)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                       "name": "python3"},
        "language_info": language_info(),
    }
    nbformat.validate(notebook)
    return notebook


def student_python() -> str:
    """The Python of the students' kernel, as ``binder/environment.yml`` pins it."""
    pin = re.search(r"^\s*-\s*python=(3\.\d+\.\d+)\s*$", STUDENT_ENVIRONMENT.read_text(), re.M)
    if pin is None:
        raise ValueError(f"{STUDENT_ENVIRONMENT} pins no exact Python (a line '- python=3.x.y')")
    return pin.group(1)


def language_info() -> dict[str, object]:
    """The notebook's ``language_info``, word for word what the students' kernel (ipykernel on
    ``student_python()``) reports. JupyterLab writes the kernel's report into the notebook when
    the kernel starts: any difference, and a notebook nobody touched opens marked modified."""
    return {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
            "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
            "pygments_lexer": "ipython3", "version": student_python()}


def check_questions(notebook: nbformat.NotebookNode) -> None:
    """Every written answer follows its question (a markdown cell), whose heading, when it
    states points ("(3 points)"), states the answer cell's."""
    for grade_id, points, question in manual_cells(notebook):
        if not question:
            raise ValueError(f"written answer {grade_id!r} has no question (a markdown cell) "
                             "right before it")
        said = POINTS_SAID.search(question)
        if said and int(said.group(1)) != points:
            raise ValueError(f"the question before {grade_id!r} says {said.group(1)} points; "
                             f"the answer cell has points={points}")


def _manual_table(notebook: nbformat.NotebookNode, automatic: int) -> list[str]:
    rows = manual_cells(notebook)
    if not rows:
        return []
    extra = sum(points for _, points, _ in rows)
    return [
        "## Written answers, graded by hand",
        "",
        "The reflection's written answers are graded by hand, by a person who reads them:",
        f"{extra} points on top of the {automatic} the checks give, so a submission can earn",
        f"{automatic + extra} in all. An answer left empty earns 0.",
        "",
        "| question (graded by hand) | grade_id | points |",
        "|---|---|---|",
        *[f"| {_cell(POINTS_SAID.sub('', title))} | `{grade_id}` | {points} |"
          for grade_id, points, title in rows],
        f"| **total, graded by hand** | | **{extra}** |",
        "",
    ]


def grading_table(notebook: nbformat.NotebookNode) -> str:
    rows = graded_cells(notebook)
    total = sum(points for _, points, _ in rows)
    lines = [
        "# Module 07: how your notebook is graded",
        "",
        "Each graded cell runs one check on your code; its points are below. The check you run",
        "in the notebook uses the data you see. When your notebook is graded, each check runs",
        "again on data drawn at grading time, which nobody sees in advance: code that is right",
        "passes both, code that only fits the visible data does not.",
        "",
        "| check | grade_id | points |",
        "|---|---|---|",
        *[f"| {check} | `{grade_id}` | {points} |" for grade_id, points, check in rows],
        f"| **total** | | **{total}** |",
        "",
        *_manual_table(notebook, total),
    ]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """``text`` fit for one cell of a markdown table."""
    return " ".join(text.split()).replace("|", "\\|")


def rules_table(notebook: nbformat.NotebookNode, rules: list[Rule] | None = None) -> str:
    """RULES.md: every rule (of ``checks.rules`` unless given) under the answer cell it belongs
    to, with the checks that judge it and the lesson's words that state it; then every graded
    check with its rules. Raises ValueError for a rule naming a check or an answer cell the
    notebook lacks, or an id used twice."""
    rules = RULES if rules is None else rules
    graded = {check: (grade_id, points) for grade_id, points, check in graded_cells(notebook)}
    answers = [cell.id for cell in notebook.cells
               if cell.metadata.get("nbgrader", {}).get("solution")]
    ids = [rule.id for rule in rules]
    problems = [f"{i}: used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    problems += [f"{rule.id}: no answer cell {rule.cell!r}" for rule in rules
                 if rule.cell not in answers or rule.cell not in CELLS]
    problems += [f"{rule.id}: no graded check {check!r}" for rule in rules
                 for check in rule.checks if check not in graded]
    problems += [f"{rule.id}: names no check" for rule in rules if not rule.checks]
    if problems:
        raise ValueError(f"checks/rules.py does not fit the notebook: {problems}")
    lines = [
        "# Module 07 rules: what the checks hold you to",
        "",
        "Each rule is stated in the notebook, in the words quoted here, before the cell where",
        "you write that code (most in the list **What the checks hold you to** right above the",
        "cell). The checks listed judge the rule, first the one whose subject it is; breaking a",
        "rule can fail other checks too. `GRADING.md` gives the points of each check.",
    ]
    for cell in (c for c in answers if c in CELLS):
        lines += ["", f"## `{CELLS[cell]}` (answer cell `{cell}`)", "",
                  "| rule | checks | the notebook says |", "|---|---|---|"]
        lines += [f"| `{rule.id}` | {', '.join(rule.checks)} | {_cell(rule.says)} |"
                  for rule in rules if rule.cell == cell]
    lines += ["", "## Every graded check and the rules it judges", "",
              "| check | grade_id | points | rules |", "|---|---|---|---|"]
    for check, (grade_id, points) in graded.items():
        judged = ", ".join(f"`{rule.id}`" for rule in rules if check in rule.checks)
        lines.append(f"| {check} | `{grade_id}` | {points} | {judged} |")
    return "\n".join(lines) + "\n"


def student_readme(page: str) -> str:
    """The assignment folder's README.md: a title, then the part of the students' page
    ``page`` between its STUDENT README comments, word for word, so that the page and the
    README a student is handed never say different things. ValueError when the page has no
    such part, or when that part links anywhere but the web (a link relative to ``docs/``
    leads nowhere from the assignment's folder)."""
    parts = README_REGION.findall(page)
    if len(parts) != 1:
        raise ValueError(f"expected one part between '<!-- BEGIN STUDENT README -->' and "
                         f"'<!-- END STUDENT README -->' lines in {STUDENT_PAGE.name}; found "
                         f"{len(parts)}")
    text = parts[0].strip("\n")
    local = [target for target in LINK.findall(text)
             if not target.startswith(("https://", "http://"))]
    if local:
        raise ValueError(f"the README part of {STUDENT_PAGE.name} links to {local}, which the "
                         "assignment's folder does not hold: name the file instead")
    return f"{README_TITLE}\n\n{text}\n"


def requirements_text() -> str:
    """requirements.txt: the student's packages at pyproject's pins (its dependencies and
    ``course`` extra without the instructor's tools: what ``make lab`` installs), for a
    student who has only the assignment's folder."""
    return ("# Module 07's packages: pip install -r requirements.txt (see README.md)\n"
            + "".join(f"{spec}\n" for spec in student_requirements()))


def outputs() -> dict[Path, str]:
    """What the build writes: path -> text."""
    notebook = build(paths.LESSON.read_text(), paths.REFERENCE.read_text())
    return {
        paths.SOURCE_NOTEBOOK: nbformat.writes(notebook) + "\n",
        paths.GRADING_TABLE: grading_table(notebook),
        RULES_TABLE: rules_table(notebook),
        STUDENT_README: student_readme(STUDENT_PAGE.read_text()),
        STUDENT_REQUIREMENTS: requirements_text(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(paths.REPO)}")
    if stale:
        names = ", ".join(str(p.relative_to(paths.REPO)) for p in stale)
        print(f"out of date: {names}; run `python -m course.authoring.build`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
