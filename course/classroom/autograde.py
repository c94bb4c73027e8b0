"""Autograde a class, after `make release`: trusted grades, in nbgrader's gradebook.

    python -m course.classroom.autograde             # what is in notebooks/submitted/ already
    python -m course.classroom.autograde DOWNLOADS/  # first import DOWNLOADS/<student>.ipynb files
                                                     # (or DOWNLOADS/<student>/07_training.ipynb)
    python -m course.classroom.autograde DOWNLOADS/ --students map.csv   # file,student: LMS names
    python -m course.classroom.autograde --jobs 4 --limit 60
    python -m course.classroom.autograde --cluster tcp://HOST:8786   # on a Dask cluster's workers
    python -m course.classroom.autograde --student alice --student bob   # only these students
    python -m course.classroom.autograde --regrade     # grade again what is already decided

Imported files go to notebooks/submitted/<student>/07_training/ (nbgrader's layout; nbgrader's
`collect` and `zip_collect` fill it too), each with its submission time in nbgrader's
timestamp.txt (the file's modification time, or `--times times.csv` with columns
student,submitted), so nbgrader's late penalty applies. A download's student id is its name,
its slug (``Dave Smith.ipynb -> dave_smith``) or what ``--students map.csv`` says; a name
without an id, or two downloads of one id, fail alone; and an import never replaces a
submission silently: the later one counts, the earlier is kept in ``<course>/replaced/``
(``--replace``: even one not later; ``course.classroom.imports``). Every submission is graded by
``course.grading.submission`` (run in a sandbox, judged outside it, one sandbox per core); then
nbgrader's autograde writes those outcomes into the graded cells instead of executing the notebook
(``course.classroom.nbgrader_trusted``), so the gradebook, ``make feedback`` and ``make export``
carry the trusted scores and messages. The scores are printed here. With ``--cluster`` the
submissions are graded on a Dask cluster's workers instead (``course.grading.cluster``), with the
same sandbox and judging.

Nothing lost, nothing graded twice: each report is stored the moment it is decided
(``course.grading.cache``: ``<course>/autograde-cache/``, keyed by the SHA-256 of the bytes
graded and the digest of the release, limits and budget), so a rerun, after a finished run or a
killed one, grades only the submissions that are new or changed (``--regrade`` grades all
again), and writes into the gradebook only the students whose entry is missing or stale, as
the gradebook itself says (``gradebook_holds``: a deleted and remade gradebook is written
again whole). A progress bar (on a terminal; elsewhere, counted lines) and each score as it is
decided go to stderr; the table of scores, read back from the gradebook, to stdout.

The gradebook is the one nbgrader is configured with (``c.CourseDirectory.db_url`` in
``nbgrader_config.py``; by default ``<course>/gradebook.db``): graders on several machines may
share one database server, each grading its own students (``--student``).

One submission can only fail itself: a notebook that cannot be read or graded (not JSON, a
malformed cell, a judging budget it broke) is imported and scored 0 like any other, the others
are graded and written, and only then is each such student named with the reason (on stderr)
and the exit status 1. When the grader itself failed on a submission ("grading failed
(grader): ...": its judging process killed, no sandbox slot, the grader's own error), nothing
was decided about it: no score is written (the gradebook keeps what it held), nothing is
cached, the student is named the same way, and a plain rerun grades them again.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from checks.diagnose import printable
from course.assignment import config, paths
from course.classroom import formgrader, imports, manual, nbgrader_trusted, owner
from course.grading import cache, grade, sandbox
from course.grading.grade import SubmissionError
from course.grading.progress import Progress


def scores(course: Path = paths.COURSE) -> list[tuple[str, float, float]]:
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        assignment = gradebook.find_assignment(paths.ASSIGNMENT)
        return [(s.student.id, s.score, s.max_score) for s in assignment.submissions]


def gradebook_problem(course: Path) -> str | None:
    """Why the course's gradebook cannot take grades (no release yet, unreachable), or None."""
    url = config.db_url(course)
    file = config.sqlite_file(url)
    if file is not None and not file.exists():
        return f"no gradebook in {course} ({file}): run `make release` first"
    try:
        with Gradebook(url, config.course_id(course)) as gradebook:
            gradebook.find_assignment(paths.ASSIGNMENT)
    except Exception as error:  # noqa: BLE001 - any failure is reported, with its kind
        return (f"the gradebook {config.shown(url)} has no assignment {paths.ASSIGNMENT!r} or "
                f"cannot be reached ({type(error).__name__}: {str(error)[:300]}); run "
                "`make release` with this configuration first")
    return None


def grade_submissions(submitted: dict[str, Path], course: Path, *, jobs: int | None = None,
                      limits: sandbox.Limits = sandbox.DEFAULT_LIMITS,
                      cluster: str | None = None, regrade: bool = False,
                      ) -> tuple[dict[str, dict], dict[str, str], cache.Reports, int]:
    """The report of every student of ``submitted`` (``course.grading.grade.grade_named``, the cache
    in ``<course>/autograde-cache/``)."""
    return grade.grade_named(submitted, course / cache.FOLDER, jobs=jobs, limits=limits,
                             cluster=cluster, regrade=regrade)


def gradebook_holds(course: Path, reports: dict[str, dict]) -> set[str]:
    """The students of ``reports`` the gradebook itself holds with these reports' scores: a
    submission of the assignment whose every autograded cell has its report's points. The
    cache's memo of what was written (``cache.Reports.written``) says only what this grader
    once wrote; a gradebook deleted and made again, restored from a backup or edited holds
    something else, and its students are written again."""
    if not reports:
        return set()
    held = set()
    with Gradebook(config.db_url(course), config.course_id(course)) as gradebook:
        for entry in gradebook.find_assignment(paths.ASSIGNMENT).submissions:
            report = reports.get(entry.student.id)
            if report is None:
                continue  # another grader's student (a shared gradebook)
            points = {c["grade_id"]: c["points"] for c in report.get("cells", [])}
            autograded = [grade for notebook in entry.notebooks for grade in notebook.grades
                          if grade.cell_type == "code"]
            if autograded and all(grade.auto_score == points.get(grade.name, 0.0)
                                  for grade in autograded):
                held.add(entry.student.id)
    return held


#: What nbgrader copies from a submission into its autograded folder and from there into the
#: feedback: the submission's time, and the secret its feedback is released under.
SUBMISSION_FILES = ("timestamp.txt", "submission_secret.txt")


def resubmitted(course: Path, students: dict[str, dict] | list[str]) -> set[str]:
    """The students whose autograded folder is of another submission than the one in
    ``submitted/``: its time or secret differ (a resubmission of the same bytes). Autograded
    again, their feedback belongs to the submission they made last."""
    found = set()
    for student in students:
        made = course / "submitted" / student / paths.ASSIGNMENT
        graded = course / "autograded" / student / paths.ASSIGNMENT
        for name in SUBMISSION_FILES:
            given = _small_file(made / name)
            if given is None:
                continue  # an import writes no secret: nothing to compare
            if _small_file(graded / name) != given:
                found.add(student)
    return found


def _small_file(path: Path, most: int = 4096) -> bytes | None:
    """The first ``most`` bytes of a regular file (never through a link, never a FIFO's
    wait), or None."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read(most)


def write_gradebook(course: Path, reports: dict[str, dict], digests: dict[str, str],
                    store: cache.Reports, *, jobs: int | None = None,
                    rewrite: bool = False) -> dict[str, str]:
    """nbgrader's autograde for every student whose gradebook entry is missing or stale (all
    with ``rewrite``): the memo of what was written is believed only for a student the
    gradebook holds with these scores (``gradebook_holds``). Each is remembered as written the
    moment it is. A report of the grader's failure is never written: no score was decided.
    Returns nbgrader's refusals (``nbgrader_trusted.autograde``)."""
    url = config.db_url(course)
    decided = {s: r for s, r in reports.items() if not cache.grader_failed(r)}
    held = set() if rewrite else gradebook_holds(course, decided) - resubmitted(course, decided)
    todo = {s: {**r, "sha256": digests[s]} for s, r in decided.items()
            if rewrite or s not in held or not store.written(s, digests[s], url)}
    for student in todo:
        store.forget_written(student)
    manual.settle(course, [s for s in decided if s not in todo])
    with Progress(len(todo), "written to the gradebook", unit="student") as progress:
        def done(student: str, written: bool) -> None:
            if written:
                store.mark_written(student, digests[student], url)
            progress.advance(None)

        return nbgrader_trusted.autograde(course, todo, jobs=jobs, on_student=done)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="a folder of submissions")
    parser.add_argument("--times", type=Path, default=None,
                        help="with a folder: a CSV of student,submitted (ISO 8601) giving each "
                             "submission's time (default: each file's modification time)")
    parser.add_argument("--students", type=Path, default=None, metavar="MAP",
                        help="with a folder: a CSV of file,student giving the student id of "
                             "downloads named otherwise (default: the name, or its slug)")
    parser.add_argument("--replace", action="store_true",
                        help="with a folder: import a changed submission even when it is not "
                             "later than the one held (that one is kept in replaced/)")
    parser.add_argument("--course", type=Path, default=paths.COURSE,
                        help="the nbgrader course root (default: notebooks/)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="sandboxes at a time (default: one per core)")
    parser.add_argument("--limit", type=float, default=sandbox.DEFAULT_LIMITS.wall,
                        help="seconds one submission may run (default %(default)s)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="grade on this Dask cluster's workers (tcp://HOST:8786)")
    parser.add_argument("--student", action="append", default=None,
                        help="grade only this student (repeat for more)")
    parser.add_argument("--regrade", action="store_true",
                        help="grade again the submissions already graded against this release")
    parser.add_argument("--owner-python", type=Path, default=None, metavar="PYTHON",
                        help="as root, for a course another account owns: the Python (with "
                             "this course installed) that account runs everything but the "
                             "sandboxes with (default: `python` on its login PATH)")
    parser.add_argument("--grader-fds", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.course.is_dir():
        print(f"error: the course {str(args.course)!r} is not a folder", file=sys.stderr)
        return 2
    if args.grader_fds is None and os.geteuid() == 0:
        status = _as_root(args)
        if status is not None:
            return status
    problem = gradebook_problem(args.course)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    not_imported: list[str] = []
    try:
        if args.folder is not None:
            not_imported = imports.import_folder(args.folder, args.course, times=args.times,
                                                 students=args.students, replace=args.replace)
    except SubmissionError as error:
        print(printable(f"error: {error}", 2000), file=sys.stderr)
        return 2
    skipped: dict[str, str] = {}
    submitted = submitted_notebooks(args.course, skipped)
    for student, why in skipped.items():
        print(printable(f"error: {student}: {why}", 2000), file=sys.stderr)
    if not submitted:
        print(f"error: nothing submitted in {args.course / 'submitted'}", file=sys.stderr)
        return 2
    if args.student:
        unknown = sorted(set(args.student) - set(submitted))
        if unknown:
            print(f"error: nothing submitted by {', '.join(unknown)} in "
                  f"{args.course / 'submitted'}", file=sys.stderr)
            return 2
        submitted = {s: p for s, p in submitted.items() if s in args.student}
    # the cluster's errors (unreachable, no worker to trust), when there is one: dask is
    # imported only then
    unusable: tuple[type[BaseException], ...] = ()
    if args.cluster:
        from course.grading.cluster import ClusterError

        unusable = (ClusterError,)
    try:
        by_student, digests, store, _ = grade_submissions(
            submitted, args.course, jobs=args.jobs, limits=sandbox.Limits(wall=args.limit),
            cluster=owner.RootGrades(*owner.fds(args.grader_fds)) if args.grader_fds
            else args.cluster, regrade=args.regrade)
    except unusable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    refused = write_gradebook(args.course, by_student, digests, store, jobs=args.jobs,
                              rewrite=args.regrade)
    try:  # the formgrader's lists name each student (the roster's name, else the id)
        formgrader.name_students(args.course)
    except formgrader.RosterError as error:
        print(f"error: {error}", file=sys.stderr)
    for student, score, max_score in scores(args.course):
        if student not in by_student:
            continue  # another grader's student (a shared gradebook)
        ended = by_student.get(student, {}).get("ended")
        note = f"  ({ended})" if ended else ""
        if cache.grader_failed(by_student[student]):
            note = f"  (the gradebook's earlier entry: not graded now, {ended})"
        raised = by_student.get(student, {}).get("cells_that_raised") or []
        if raised:  # the first thing to fix: every failing check's message starts with it
            first = raised[0]
            line = f", line {first['line']}" if first.get("line") else ""
            note += f"  ({first['cell']} raised {first['error']}{line})"
        note += "  (nbgrader refused the notebook: scores written directly)" \
            if student in refused and not refused[student].startswith(NO_SCORE) else ""
        # every part of a student's line may be theirs (an id, an exception's name): inert
        print(printable(f"{student:24s} {score:6.1f} / {max_score:.0f}{note}", 2000))
    for line in manual.lines(manual.waiting(args.course, list(by_student))):
        print(printable(line))  # the written answers: graded by hand, in nbgrader's formgrader
    problems = not_graded(by_student, refused)
    for student, reason in problems.items():
        print(printable(f"error: {student}: {reason}", 2000), file=sys.stderr)
    lost = sum(cache.grader_failed(by_student[s]) for s in problems if s in by_student)
    if len(problems) > lost:
        print(f"error: {len(problems) - lost} of {len(by_student)} submissions could not be "
              "graded (their score is 0); every other score is written", file=sys.stderr)
    if lost:
        print(f"error: the grader failed on {lost} of {len(by_student)} submissions: no score "
              "was decided or written for them; run again to grade them", file=sys.stderr)
    if not_imported:
        print(f"error: {len(not_imported)} of the downloads in {str(args.folder)!r} were not "
              "imported (each named above with the reason); every other one is graded",
              file=sys.stderr)
    return 1 if problems or skipped or not_imported else 0


NO_SCORE = nbgrader_trusted.NO_SCORE


def _as_root(args: argparse.Namespace) -> int | None:
    """Root grades the sandboxes only: a course a third account can change is refused; one
    another account owns is autograded by that account's process, which sends root the
    notebooks to grade (``course.classroom.owner``). None: root's own course, graded here."""
    account = owner.owner_of(args.course)
    found = owner.others_can_change(args.course, account.pw_uid if account else 0)
    if found:
        print(f"error: {owner.refusal(args.course, found)}", file=sys.stderr)
        return 2
    if account is None:
        return None
    given = [str(args.folder.resolve())] if args.folder is not None else []
    given += ["--course", str(args.course.resolve()), "--limit", str(args.limit)]
    given += ["--times", str(args.times.resolve())] if args.times else []
    given += ["--students", str(args.students.resolve())] if args.students else []
    given += ["--replace"] if args.replace else []
    given += ["--jobs", str(args.jobs)] if args.jobs else []
    given += ["--regrade"] if args.regrade else []
    for student in args.student or []:
        given += ["--student", student]
    return owner.run(account, given, python=args.owner_python, jobs=args.jobs,
                     limits=sandbox.Limits(wall=args.limit), cluster=args.cluster)


def not_graded(reports: dict[str, dict], refused: dict[str, str]) -> dict[str, str]:
    """Student -> why their submission could not be graded: a notebook the grader cannot
    read, a grading that failed (the submission's: 0; the grader's: nothing written), or a
    score nbgrader could not take (those get 0)."""
    problems = {student: str(report.get("ended") or "not gradable")
                for student, report in reports.items() if report.get("gradable") is False}
    for student, error in refused.items():
        if error.startswith(NO_SCORE):
            problems[student] = (f"{problems[student]}; " if student in problems else "") + error
    return problems


def submitted_notebooks(course: Path = paths.COURSE,
                        skipped: dict[str, str] | None = None) -> dict[str, Path]:
    """Student id -> submitted notebook, from nbgrader's submitted/ folder: regular files only
    (what ``collect`` and an import write). A link, or a file this account cannot read, is
    left out and, with ``skipped``, named there with the reason: nothing is read through it."""
    root = course / "submitted"
    found = {}
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        notebook = folder / paths.ASSIGNMENT / paths.NOTEBOOK
        try:
            kind = notebook.lstat().st_mode
        except FileNotFoundError:
            continue
        except OSError as error:
            why = f"cannot be read ({error.strerror})"
        else:
            why = ("is a link, not the file a collect or an import writes" if stat.S_ISLNK(kind)
                   else "" if stat.S_ISREG(kind) and os.access(notebook, os.R_OK)
                   else "is not a readable regular file")
        if why and skipped is not None:
            skipped[folder.name] = f"{notebook} {why}: not graded"
        elif not why:
            found[folder.name] = notebook
    return found

if __name__ == "__main__":
    sys.exit(main())
