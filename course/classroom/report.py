"""``make report``: the class at a glance, from what grading already kept (no regrading).

nbgrader shows one score per student. The checks say more: every failed check names its
likely bug with a code (``checks.catalog``), and the trusted reports keep those messages. This
page gathers them with the gradebook's scores into what an instructor acts on:

- **totals**: automatic, by hand and overall, as histograms with mean, median and quartiles,
  and how many did not submit or submitted late;
- **per graded cell**: points, mean, the share with full marks, and its discrimination, the
  correlation of the cell's score with the rest of the automatic total (the corrected
  item-total correlation). A cell that the strong students fail as often as the weak ones
  (discrimination under ``LOW_DISCRIMINATION``) is flagged: a check worth a look;
- **the mistakes**: each code with how many students had it and what share of those who
  submitted, the checks that named it, ranked, with the catalog's title, and which mistakes
  go together (pairs of codes in the same submissions);
- **per written question**: the spread of the hand grades and how many wait for a grader
  (nbgrader records no grader per grade, so there is no spread per grader).

Nothing names a student unless ``--names`` asks for a table of them. Written to
``<course>/class-report/``: ``index.html`` (one self-contained page, plots as inline SVG, opens
offline), ``summary.json`` with every figure of the page, and ``cells.csv``, ``mistakes.csv``,
``pairs.csv``, ``written.csv`` (and ``students.csv`` with ``--names``).

Where the figures come from: the scores from the gradebook (``make autograde`` wrote the trusted
ones there; the hand grades count once decided, ``course.classroom.manual``'s rule); each
student's messages from the trusted report ``make autograde`` kept for the bytes it wrote into
the gradebook (``course.grading.cache``), else from the autograded notebook's graded cells. A
likely bug graded before its cause had a code is given the code its words match now.

    python -m course.classroom.report                 # make report
    python -m course.classroom.report --names         # with a table naming each student
    python -m course.classroom.report --course DIR --out DIR
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import itertools
import json
import statistics
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks import catalog
from checks.diagnose import LIKELY_BUG
from checks.registry import TITLES
from course.assignment import cells as graded_cells
from course.assignment import config, paths
from course.classroom import spreadsheet

#: A cell whose discrimination is under this is flagged "worth a look".
LOW_DISCRIMINATION = 0.1
#: How many pairs of mistakes the page lists.
PAIRS_SHOWN = 10
OUT = "class-report"


# ============================================================================= the data
@dataclass
class Student:
    """One student of the gradebook, as the report counts them."""

    id: str
    submitted: bool = False
    late: bool = False
    automatic: float = 0.0
    by_hand: float = 0.0
    #: grade_id -> points of each automatically graded cell
    cells: dict[str, float] = field(default_factory=dict)
    #: grade_id -> (state, points): "graded" by a grader, "waiting" for one, or
    #: "unanswered" (left as released: nbgrader's 0), as ``course.classroom.manual`` rules
    written: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: code -> the grade_ids of the cells whose message named it
    codes: dict[str, set[str]] = field(default_factory=dict)
    #: where the messages were read: "report", "notebook" or "" (none found)
    messages_from: str = ""

    @property
    def total(self) -> float:
        return self.automatic + self.by_hand


@dataclass
class Cell:
    grade_id: str
    points: float
    kind: str  # "code" or "markdown"
    check: str = ""


def codes_in(message: str) -> list[str]:
    """The codes of the likely bugs ``message`` names, in order, once each: the code a line
    carries, else the one its words match in the catalog now."""
    found: list[str] = []
    for match in LIKELY_BUG.finditer(message):
        end = message.find("\n", match.end())
        words = message[match.end():] if end < 0 else message[match.end():end]
        code = match[1] if match[1] in catalog.by_code() else catalog.code_for(words)
        if code and code not in found:
            found.append(code)
    return found


def _graded(course: Path) -> list[Cell]:
    """The graded cells of the release, in the notebook's order."""
    import nbformat

    source = course / "source" / paths.ASSIGNMENT / paths.NOTEBOOK
    notebook = nbformat.read(source if source.is_file() else paths.SOURCE_NOTEBOOK, as_version=4)
    found = [Cell(grade_id, float(points), "code", check)
             for grade_id, points, check in graded_cells.graded_cells(notebook)]
    found += [Cell(grade_id, float(points), "markdown")
              for grade_id, points, _ in graded_cells.manual_cells(notebook)]
    return found


def _messages_from_report(course: Path, student: str) -> dict[str, str] | None:
    """grade_id -> message of the trusted report kept for what the gradebook holds."""
    from course.grading import cache

    folder = course / cache.FOLDER
    try:
        memo = json.loads((folder / "gradebook" / f"{student}.json").read_text())
        release, notebook = str(memo["release"]), str(memo["notebook"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    report = cache.Reports(folder, release).get(notebook)
    if report is None:
        return None
    return {str(c.get("grade_id")): str(c.get("message") or "")
            for c in report.get("cells", []) if isinstance(c, dict)}


def _messages_from_notebook(course: Path, student: str) -> dict[str, str] | None:
    """grade_id -> the text of each graded cell's outputs in the autograded notebook."""
    path = course / "autograded" / student / paths.ASSIGNMENT / paths.NOTEBOOK
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return None
    found = {}
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if not (isinstance(meta, dict) and meta.get("grade") and not meta.get("solution")):
            continue
        texts = []
        for output in cell.get("outputs", []):
            texts += output.get("traceback", []) + [_joined(output.get("text", ""))]
            texts.append(_joined(output.get("data", {}).get("text/plain", "")))
        found[str(meta.get("grade_id"))] = "\n".join(t for t in texts if t)
    return found


def _joined(text: Any) -> str:
    return "".join(text) if isinstance(text, list) else str(text or "")


def collect(course: Path) -> tuple[list[Cell], list[Student]]:
    """The graded cells and every student of the gradebook with their scores and codes."""
    from nbgrader.api import (
        Assignment,
        Gradebook,
        GradeCell,
        SubmittedAssignment,
        SubmittedNotebook,
    )
    from nbgrader.api import Grade as GradeRow
    from nbgrader.api import Student as StudentRow

    graded = _graded(course)
    kinds = {cell.grade_id: cell.kind for cell in graded}
    students: dict[str, Student] = {}
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        db = gradebook.db
        for (student_id,) in db.query(StudentRow.id).order_by(StudentRow.id):
            students[student_id] = Student(student_id)
        due = db.query(Assignment.duedate).filter(Assignment.name == paths.ASSIGNMENT).scalar()
        for student_id, timestamp, extension in (
                db.query(SubmittedAssignment.student_id, SubmittedAssignment.timestamp,
                         SubmittedAssignment.extension)
                .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
                .filter(Assignment.name == paths.ASSIGNMENT)):
            record = students.setdefault(student_id, Student(student_id))
            record.submitted = True
            deadline = None if due is None else due + extension if extension else due
            record.late = bool(deadline and timestamp and timestamp > deadline)
        rows = (db.query(SubmittedAssignment.student_id, GradeCell.name, GradeRow.auto_score,
                         GradeRow.manual_score, GradeRow.extra_credit,
                         GradeRow.needs_manual_grade)
                .join(SubmittedNotebook, GradeRow.notebook_id == SubmittedNotebook.id)
                .join(SubmittedAssignment,
                      SubmittedNotebook.assignment_id == SubmittedAssignment.id)
                .join(Assignment, SubmittedAssignment.assignment_id == Assignment.id)
                .join(GradeCell, GradeRow.cell_id == GradeCell.id)
                .filter(Assignment.name == paths.ASSIGNMENT))
        for student_id, name, auto, hand, extra, waiting in rows:
            record = students[student_id]
            score = (hand if hand is not None else auto or 0.0) + (extra or 0.0)
            if kinds.get(name) == "markdown":
                state = ("waiting" if waiting else "graded" if hand is not None
                         else "unanswered")
                record.written[name] = (state, 0.0 if waiting else score)
                record.by_hand += 0.0 if waiting else score  # manual.counted's rule
            else:
                record.cells[name] = score
                record.automatic += score
    for record in students.values():
        if not record.submitted:
            continue
        messages = _messages_from_report(course, record.id)
        record.messages_from = "report" if messages is not None else ""
        if messages is None:
            messages = _messages_from_notebook(course, record.id)
            record.messages_from = "notebook" if messages is not None else ""
        for grade_id, message in (messages or {}).items():
            for code in codes_in(message):
                record.codes.setdefault(code, set()).add(grade_id)
    return graded, list(students.values())


# ============================================================================= the figures
def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """n, mean, median, quartiles, min and max of ``values`` (None when there are none)."""
    if not values:
        return {"n": 0, "mean": None, "median": None, "q1": None, "q3": None,
                "min": None, "max": None}
    ordered = sorted(values)
    q1, median, q3 = (statistics.quantiles(ordered, n=4, method="inclusive")
                      if len(ordered) > 1 else (ordered[0],) * 3)
    return {"n": len(ordered), "mean": round(statistics.fmean(ordered), 3),
            "median": round(median, 3), "q1": round(q1, 3), "q3": round(q3, 3),
            "min": ordered[0], "max": ordered[-1]}


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson's r, or None when either side does not vary (or fewer than 3 pairs)."""
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return round(statistics.correlation(xs, ys), 3)


def summarize(graded: list[Cell], students: list[Student], names: bool = False
              ) -> dict[str, Any]:
    """Every figure of the page, as plain data (``summary.json``)."""
    submitted = [s for s in students if s.submitted]
    code_cells = [c for c in graded if c.kind == "code"]
    written_cells = [c for c in graded if c.kind == "markdown"]
    max_automatic = sum(c.points for c in code_cells)
    max_by_hand = sum(c.points for c in written_cells)
    totals = {
        "students": len(students), "submitted": len(submitted),
        "not_submitted": len(students) - len(submitted),
        "late": sum(s.late for s in submitted),
        "messages_missing": sum(1 for s in submitted if not s.messages_from),
        "automatic": {**spread([s.automatic for s in submitted]), "of": max_automatic},
        "by_hand": {**spread([s.by_hand for s in submitted]), "of": max_by_hand,
                    "students_waiting": sum(1 for s in submitted if any(
                        state == "waiting" for state, _ in s.written.values()))},
        "overall": {**spread([s.total for s in submitted]), "of": max_automatic + max_by_hand},
    }
    cell_rows = []
    for cell in code_cells:
        scores = [s.cells.get(cell.grade_id, 0.0) for s in submitted]
        rest = [s.automatic - s.cells.get(cell.grade_id, 0.0) for s in submitted]
        r = correlation(scores, rest)
        full = sum(1 for x in scores if x >= cell.points)
        cell_rows.append({
            "grade_id": cell.grade_id, "check": cell.check,
            "title": TITLES.get(cell.check, ""), "points": cell.points,
            "mean": round(statistics.fmean(scores), 3) if scores else None,
            "full_marks": full, "full_marks_share": _share(full, len(scores)),
            "discrimination": r,
            "flag": ("worth a look: the strong fail it as often as the weak"
                     if r is not None and r < LOW_DISCRIMINATION else
                     "" if r is not None or not scores else
                     "no spread: " + ("everyone full marks" if full == len(scores)
                                      else "no one full marks" if full == 0 else "")),
        })
    counts = Counter(code for s in submitted for code in s.codes)
    found_by: dict[str, Counter[str]] = {}
    for s in submitted:
        for code, grade_ids in s.codes.items():
            found_by.setdefault(code, Counter()).update(grade_ids)
    checks = {c.grade_id: c.check for c in code_cells}
    mistakes = []
    for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        cause = catalog.by_code().get(code)
        mistakes.append({
            "code": code, "title": cause.title if cause else "", "students": n,
            "share": _share(n, len(submitted)),
            "checks": [checks.get(g, g) for g, _ in found_by[code].most_common()]})
    pairs = []
    for a, b in itertools.combinations(sorted(counts), 2):
        both = sum(1 for s in submitted if a in s.codes and b in s.codes)
        if both >= 2:
            expected = counts[a] * counts[b] / len(submitted)
            pairs.append({"codes": [a, b], "students": both,
                          "titles": [catalog.by_code()[a].title if a in catalog.by_code() else "",
                                     catalog.by_code()[b].title if b in catalog.by_code() else ""],
                          "lift": round(both / expected, 2) if expected else None})
    pairs.sort(key=lambda p: (-p["students"], -(p["lift"] or 0), p["codes"]))
    written = []
    for cell in written_cells:
        states = [s.written[cell.grade_id] for s in submitted if cell.grade_id in s.written]
        decided = [points for state, points in states if state == "graded"]
        written.append({
            "grade_id": cell.grade_id, "points": cell.points, "graded": len(decided),
            "waiting": sum(1 for state, _ in states if state == "waiting"),
            "unanswered": sum(1 for state, _ in states if state == "unanswered"),
            "mean": round(statistics.fmean(decided), 3) if decided else None,
            "grades": {_number(k): v for k, v in sorted(Counter(decided).items())}})
    summary: dict[str, Any] = {
        "assignment": paths.ASSIGNMENT, "totals": totals, "cells": cell_rows,
        "mistakes": mistakes, "pairs": pairs[:PAIRS_SHOWN], "written": written,
        "graders": "nbgrader records no grader per grade: no spread per grader",
        "low_discrimination": LOW_DISCRIMINATION,
    }
    if names:
        summary["students"] = [
            {"student": s.id, "submitted": s.submitted, "late": s.late,
             "automatic": s.automatic, "by_hand": s.by_hand, "total": s.total,
             "codes": sorted(s.codes)} for s in students]
    return summary


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _number(value: float) -> str:
    return f"{value:g}"


# ============================================================================= the page
def _svg(figure: Any) -> str:
    """A matplotlib figure as inline SVG (text kept as text), then closed."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _histograms(students: list[Student], summary: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    submitted = [s for s in students if s.submitted]
    figure, axes = plt.subplots(1, 3, figsize=(11, 2.8))
    for ax, key, label in zip(axes, ("automatic", "by_hand", "overall"),
                              ("automatic (checks)", "by hand (written answers)", "overall"),
                              strict=True):
        values = [{"automatic": s.automatic, "by_hand": s.by_hand, "overall": s.total}[key]
                  for s in submitted]
        top = summary["totals"][key]["of"] or 1
        ax.hist(values, bins=20, range=(0, top), color="#4a7ab5", edgecolor="white")
        figures = summary["totals"][key]
        if figures["n"]:
            ax.axvline(figures["median"], color="#a94442", linewidth=1.5, label="median")
            ax.axvspan(figures["q1"], figures["q3"], color="#a94442", alpha=0.12,
                       label="middle half")
        ax.set_title(f"{label}, of {top:g}", fontsize=10)
        ax.set_xlabel("points")
        ax.set_ylabel("students")
    axes[0].legend(fontsize=8, loc="upper left")
    return _svg(figure)


def _mistakes_chart(summary: dict[str, Any], shown: int = 15) -> str:
    import matplotlib.pyplot as plt

    rows = summary["mistakes"][:shown]
    if not rows:
        return ""
    figure, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 0.8))
    labels = [f"{r['code']} {r['title']}"[:70] for r in rows][::-1]
    ax.barh(labels, [100 * (r["share"] or 0) for r in rows][::-1], color="#c0504d")
    ax.set_xlabel("% of the students who submitted")
    ax.tick_params(axis="y", labelsize=8)
    return _svg(figure)


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], flagged: Sequence[bool] = ()
           ) -> str:
    flags = list(flagged)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = ' class="flag"' if i < len(flags) and flags[i] else ""
        cells = "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _percent(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.0f}%"


def render(summary: dict[str, Any], students: list[Student]) -> str:
    """The page: one self-contained HTML file."""
    t = summary["totals"]

    def line(key: str) -> str:
        f = t[key]
        if not f["n"]:
            return f"<li>{key.replace('_', ' ')}: no submission</li>"
        waiting = f.get("students_waiting")
        return (f"<li>{key.replace('_', ' ')} (of {f['of']:g}): mean {f['mean']:g}, median "
                f"{f['median']:g}, middle half {f['q1']:g} to {f['q3']:g}, range {f['min']:g} "
                f"to {f['max']:g}"
                + (f"; {waiting} students have written answers still waiting for a grader "
                   "(counted 0 until graded)" if waiting else "") + "</li>")

    flagged = [bool(r["flag"].startswith("worth")) for r in summary["cells"]]
    cells = _table(
        ["cell", "check", "what it checks", "points", "mean", "full marks", "discrimination",
         ""],
        ([r["grade_id"], r["check"], r["title"], f"{r['points']:g}", r["mean"],
          f"{r['full_marks']} ({_percent(r['full_marks_share'])})", r["discrimination"],
          r["flag"]] for r in summary["cells"]), flagged)
    mistakes = _table(
        ["rank", "code", "mistake", "students", "share", "named by checks"],
        ([i + 1, m["code"], m["title"], m["students"], _percent(m["share"]),
          ", ".join(m["checks"])] for i, m in enumerate(summary["mistakes"])))
    pairs = _table(["codes", "mistakes", "students with both", "lift"],
                   ([" + ".join(p["codes"]), " / ".join(p["titles"]), p["students"], p["lift"]]
                    for p in summary["pairs"]))
    written = _table(
        ["question", "points", "graded", "waiting for a grader", "left unanswered (0)",
         "mean of the graded", "grades given"],
        ([w["grade_id"], f"{w['points']:g}", w["graded"], w["waiting"], w["unanswered"],
          w["mean"],
          ", ".join(f"{k}: {v}" for k, v in w["grades"].items())]
         for w in summary["written"]))
    top = summary["mistakes"][:3]
    lecture = "".join(f"<li><b>{html.escape(m['code'])}</b> {html.escape(m['title'])}: "
                      f"{m['students']} students ({_percent(m['share'])})</li>" for m in top)
    named = ""
    if "students" in summary:
        named = "<h2>Students</h2>" + _table(
            ["student", "submitted", "late", "automatic", "by hand", "total", "codes"],
            ([s["student"], s["submitted"], s["late"], s["automatic"], s["by_hand"],
              s["total"], " ".join(s["codes"])] for s in summary["students"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{html.escape(summary['assignment'])}: the class at a glance</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }}
tr.flag td {{ background: #fcf1e0; }}
.note {{ color: #555; font-size: 0.9em; }}
svg {{ max-width: 100%; height: auto; }}
</style></head><body>
<h1>{html.escape(summary['assignment'])}: the class at a glance</h1>
<p>{t['students']} students in the gradebook: {t['submitted']} submitted
({t['late']} late), {t['not_submitted']} did not submit.
{f"{t['messages_missing']} submissions had no kept report or autograded notebook to read "
 "mistakes from." if t['messages_missing'] else ""}</p>
<h2>Totals</h2>
<ul>{line('automatic')}{line('by_hand')}{line('overall')}</ul>
{_histograms(students, summary)}
<h2>Start the next lecture here</h2>
<ol>{lecture or '<li>no mistake named in any submission</li>'}</ol>
<h2>The mistakes</h2>
<p class="note">Each code is a cause the checks name ("likely bug [TT112]"); <code>tinytorch
explain TT112</code> prints its explanation. A student counts once per code, whichever checks
named it.</p>
{_mistakes_chart(summary)}
{mistakes}
<h3>Mistakes that go together</h3>
<p class="note">Pairs of codes in the same submissions (at least 2), with the lift: how many
times more often than if the two were independent.</p>
{pairs}
<h2>Graded cells</h2>
<p class="note">Discrimination: the correlation between a cell's points and the rest of the
automatic total over the students who submitted. Near zero or negative (under
{summary['low_discrimination']:g}, highlighted), the cell is failed by strong and weak students
alike: read its check and its messages before trusting it. Empty when the cell's points do not
vary.</p>
{cells}
<h2>Written answers, graded by hand</h2>
<p class="note">{html.escape(summary['graders'])}.</p>
{written}
{named}
</body></html>
"""


# ============================================================================= the files
def _csv(path: Path, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([spreadsheet.field(v) for v in row])


def write(course: Path, out: Path, names: bool = False) -> dict[str, Any]:
    """Collect, summarize and write the page and its data into ``out``; the summary."""
    graded, students = collect(course)
    summary = summarize(graded, students, names)
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.html").write_text(render(summary, students), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    _csv(out / "cells.csv", ["grade_id", "check", "points", "mean", "full_marks",
                             "full_marks_share", "discrimination", "flag"],
         ([r[k] for k in ("grade_id", "check", "points", "mean", "full_marks",
                          "full_marks_share", "discrimination", "flag")]
          for r in summary["cells"]))
    _csv(out / "mistakes.csv", ["code", "title", "students", "share", "checks"],
         ([m["code"], m["title"], m["students"], m["share"], " ".join(m["checks"])]
          for m in summary["mistakes"]))
    _csv(out / "pairs.csv", ["code_a", "code_b", "students", "lift"],
         ([*p["codes"], p["students"], p["lift"]] for p in summary["pairs"]))
    _csv(out / "written.csv", ["grade_id", "points", "graded", "waiting", "unanswered", "mean",
                               "grades"],
         ([w["grade_id"], w["points"], w["graded"], w["waiting"], w["unanswered"], w["mean"],
           " ".join(f"{k}:{v}" for k, v in w["grades"].items())] for w in summary["written"]))
    names_file = out / "students.csv"
    if names:
        _csv(names_file, ["student", "submitted", "late", "automatic", "by_hand", "total",
                          "codes"],
             ([s["student"], s["submitted"], s["late"], s["automatic"], s["by_hand"],
               s["total"], " ".join(s["codes"])] for s in summary["students"]))
    else:
        names_file.unlink(missing_ok=True)  # a report without names leaves none behind
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course.classroom.report",
        description="The class at a glance: totals, graded cells, the mistakes the checks "
                    "named, hand grades; from the gradebook and the kept reports.")
    parser.add_argument("--course", type=Path, default=paths.COURSE,
                        help="the nbgrader course folder (default: notebooks/)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where the page and its data go (default: <course>/{OUT}/)")
    parser.add_argument("--names", action="store_true",
                        help="add a table naming each student (students.csv and the page)")
    args = parser.parse_args(argv)
    if not (args.course / "nbgrader_config.py").is_file():
        parser.error(f"--course {args.course}: no nbgrader_config.py there (not a course "
                     "folder)")
    out = args.out or args.course / OUT
    summary = write(args.course, out, args.names)
    t = summary["totals"]
    print(f"{t['submitted']} of {t['students']} students submitted; "
          f"{len(summary['mistakes'])} mistakes named; "
          f"{sum(1 for c in summary['cells'] if c['flag'].startswith('worth'))} cells worth a "
          f"look")
    for rank, m in enumerate(summary["mistakes"][:5], 1):
        print(f"  {rank}. {m['code']} {m['title']}: {m['students']} ({_percent(m['share'])})")
    print(f"wrote {out / 'index.html'} and its data (summary.json, *.csv)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
