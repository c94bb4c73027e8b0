"""Grade submitted Module 07 notebooks and report JSON: trusted grading
(``course.grading.submission``), each notebook run in a sandbox, every score decided outside it,
the class in parallel.

    python -m course.grading.grade submission.ipynb             # one JSON object
    python -m course.grading.grade a.ipynb b.ipynb [--jobs N]   # a JSON list, in the order given
    python -m course.grading.grade a.ipynb --limit 30           # seconds a submission may run
    python -m course.grading.grade *.ipynb --cluster tls://HOST:8786   # on a Dask cluster
    python -m course.grading.grade *.ipynb --cache DIR [--regrade]     # keep each report

For every graded cell: its grade_id, points, max_points, passed, and the check's message (a
passed cell's is empty, or a note on what the check leaves out of the grade: "not graded
(checked in your notebook, not in the grade): ..."); then
total, max_total, seconds, how the run ended (``ended``: None, or why it stopped early), the
code cells that raised, and the isolation layers that were active. Beside the automatic points
(``max_automatic``, the same as ``max_total``) each report says what this command cannot
decide: the written answers a grader grades by hand (``to_grade_by_hand``: grade_id, points,
question; ``max_by_hand``), read from the assignment's source notebook, and ``max_possible``,
both together.

Each file given is first checked to be a notebook the grader reads (``notebook_refusal``): a
file that does not exist or is not one (not JSON, JSON that is not an nbformat-4 notebook, a
field the grader reads of the wrong kind) is named on stderr in one line, saying what was
expected and received, and gets no report; the other files are still graded and printed.
Exit status 0 when every file was graded (whatever the scores), 1 when the grader failed on
some (``grader_failed``: "grading failed (grader): ...", each named on stderr; no score was
decided for them, a rerun grades them again), 2 when a file given was refused or a cluster
cannot grade. (``course.classroom.autograde`` grades a class through ``grade_named``, where a
submission that is not a notebook is the student's 0, with the reason, beside the rest.)

With several files, a progress bar (or, off a terminal, counted lines) and each score as it is
decided go to stderr. With ``--cache DIR`` each report is stored there the moment it is decided
(``course.grading.cache``: keyed by the SHA-256 of the bytes graded and the digest of the
release, limits and budget), and a rerun grades only the files that are new or changed
(``--regrade``: all). Each file is read once, into a private copy (``snapshots``) that is both
hashed and graded, so a file changed while the class is graded (``nbgrader collect --update``)
can never have one notebook's report kept under another's digest.

This command is the caller that chooses where a class runs (``runner``): this machine's pool,
or a Dask cluster's workers with ``--cluster``; ``course.classroom.autograde`` uses it too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks.diagnose import printable
from course.assignment.cells import ManualCell, source_graded_cells, source_manual_cells
from course.grading import batch, cache, intake, sandbox, submission
from course.grading.batch import Runner
from course.grading.budget import DEFAULT_BUDGET, Budget
from course.grading.pool import LocalPool
from course.grading.progress import Progress, score_line
from course.grading.submission import OnReport


class SubmissionError(ValueError):
    """A file given to grade is missing or is not a readable notebook."""


#: What this command grades, as its refusals say.
EXPECTED = 'a Jupyter notebook (JSON with "nbformat": 4 and a list of cells)'


def check_notebook(path: Path) -> None:
    """Raise SubmissionError (``notebook_refusal``'s line) unless ``path`` is a notebook the
    grader reads."""
    refusal = notebook_refusal(path)
    if refusal:
        raise SubmissionError(refusal)


def notebook_refusal(path: Path) -> str | None:
    """Why the command line refuses ``path`` before grading anything, in one line naming it
    and saying what was expected and what it received; None for a notebook the grader reads.
    A file given by hand that is no notebook (``make grade FILE=README.md``) is the caller's
    mistake: a report of 0 per graded cell would hide it."""
    received = _received(path)
    return None if received is None else f"{path}: expected {EXPECTED}, received {received}"


def _received(path: Path) -> str | None:
    """What ``path`` holds instead of a notebook, or None. The grader's own reading decides
    (``intake``: its bounds, then every field the grader reads), with the notebook format
    besides: a notebook of another kind than nbformat 4 (or later, which the grader reads as
    4) is not this assignment's."""
    if not path.is_file():
        return "nothing: no such file" if not path.exists() else "a folder or other non-file"
    try:
        size = path.stat().st_size
        if size > intake.NOTEBOOK.max_bytes:
            return (f"{size / 2**20:.0f} MiB, more than the "
                    f"{intake.NOTEBOOK.max_bytes // 2**20} MiB a notebook may have")
        data = intake.parse(path.read_bytes(), intake.NOTEBOOK)
    except OSError as error:
        return f"a file that cannot be read ({error.strerror or error})"
    except intake.Refused as error:
        suffix = path.suffix if path.suffix.lower() not in ("", ".ipynb") else ""
        return f"a {printable(suffix, 20)} file the grader cannot read as JSON ({error})" \
            if suffix else f"a file the grader cannot read as JSON ({error})"
    version = data.get("nbformat") if isinstance(data, dict) else None
    if isinstance(data, dict) and (type(version) is not int or version < 4):
        return ('JSON without "nbformat" (not a notebook)' if version is None else
                f"a notebook of nbformat {printable(repr(version), 40)} (open it in Jupyter "
                "and save it to make it nbformat 4)")
    problem = intake.notebook_problem(data)
    return f"JSON that is not a notebook the grader reads: {problem}" if problem else None


def with_maxima(report: dict[str, Any], by_hand: Sequence[ManualCell]) -> dict[str, Any]:
    """``report`` with what this command cannot decide said beside what it did: the automatic
    maximum, the written answers a grader still grades by hand and their points, and the
    maximum of both. Added to what is printed only: reports kept in a cache or written to the
    gradebook stay as they were decided."""
    automatic = float(report.get("max_total", 0.0))
    manual = sum(cell.points for cell in by_hand)
    said = {"max_automatic": automatic, "max_by_hand": manual,
            "max_possible": automatic + manual,
            "to_grade_by_hand": [{"grade_id": c.grade_id, "points": c.points,
                                  "question": c.question} for c in by_hand],
            "by_hand_note": (f"not graded here: the {len(by_hand)} written answers of "
                             f"to_grade_by_hand ({manual:g} points) are graded by hand, in "
                             "nbgrader's formgrader after make autograde") if by_hand else ""}
    before = list(report).index("max_total") + 1 if "max_total" in report else len(report)
    items = list(report.items())
    return dict(items[:before]) | said | dict(items[before:])


def runner(*, jobs: int | None = None, cluster: Any = None) -> Runner:
    """Where a class is graded: the Dask cluster at ``cluster`` (an address or a
    ``distributed.Client``), or ``cluster`` itself when it is a runner already made, else this
    machine's pool of ``jobs`` processes."""
    if isinstance(cluster, Runner):
        return cluster
    if cluster is not None:
        from course.grading.cluster import DaskCluster

        return DaskCluster(cluster)
    return LocalPool(jobs)


def grade(files: Sequence[Path | str], *, jobs: int | None = None,
          limits: sandbox.Limits = sandbox.DEFAULT_LIMITS,
          seeds: Sequence[dict[str, int]] | None = None,
          budget: Budget = DEFAULT_BUDGET, cluster: Any = None,
          on_report: OnReport | None = None, template: Path | None = None
          ) -> list[dict[str, Any]]:
    """Grade every file (``jobs`` sandboxes at a time, default one per core; or on the Dask
    ``cluster``); reports in the order of ``files``, each handed to ``on_report`` as it is
    decided. A missing file is the caller's error (SubmissionError); anything else a file
    holds gets a report. ``budget`` bounds the time and memory of judging each one."""
    files = [Path(f) for f in files]
    if not files:
        raise SubmissionError("no submission given")
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    for path in files:
        if not path.is_file():
            raise SubmissionError(f"submission {str(path)!r} does not exist or is not a file")
    return batch.grade(files, runner=runner(jobs=jobs, cluster=cluster), limits=limits,
                       seeds=seeds, budget=budget, on_report=on_report, template=template)


@dataclass(frozen=True)
class Snapshot:
    """One submission as read once: ``copy``, a private copy of its bytes (None if the file
    could not be read, with ``error``), and ``digest``, the SHA-256 of exactly those bytes."""

    path: Path
    copy: Path | None
    digest: str
    error: str = ""


@contextmanager
def snapshots(named: dict[str, Path]) -> Iterator[dict[str, Snapshot]]:
    """Each file of ``named`` read once, block by block, into a copy that is hashed as it is
    written: the digest a report is kept under is that of the bytes it was decided on, however
    the file changes afterwards. The copies live in a folder of the system's temporary folder
    only this account can enter (mode 0700, files 0600, made with ``O_EXCL`` and without
    following links), removed afterwards; each keeps its file's name, under a folder of its
    own. They take as much room as the class's notebooks (nbgrader's autograde copies them
    once more)."""
    with tempfile.TemporaryDirectory(prefix="tinytorch-snapshots-") as folder:
        os.chmod(folder, 0o700)
        taken: dict[str, Snapshot] = {}
        for index, (name, path) in enumerate(named.items()):
            place = Path(folder) / str(index)
            place.mkdir(mode=0o700)
            copy = place / (path.name or "submission.ipynb")
            try:
                taken[name] = Snapshot(path, copy, _copy_hashed(path, copy))
            except OSError as error:
                taken[name] = Snapshot(path, None, "", f"{str(path)!r} cannot be read: "
                                                       f"{error.strerror or error}")
        yield taken


def _copy_hashed(source: Path, copy: Path) -> str:
    """Copy ``source`` to ``copy`` (a new private file), returning the SHA-256 of every byte
    read. Past what a notebook may hold (``intake.NOTEBOOK``), the copy gets no more bytes,
    only the file's size (a sparse tail): such a file is refused for its size, unread, and a
    submission of gigabytes cannot fill the temporary folder (often memory)."""
    digest = hashlib.sha256()
    keep, size = intake.NOTEBOOK.max_bytes + 1, 0
    descriptor = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
    with open(source, "rb") as stream, os.fdopen(descriptor, "wb") as out:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
            out.write(block[:max(0, keep - size)])
            size += len(block)
        if size > keep:
            out.truncate(size)
    return digest.hexdigest()


def grade_named(named: dict[str, Path], folder: Path | None, *, jobs: int | None = None,
                limits: sandbox.Limits = sandbox.DEFAULT_LIMITS, cluster: Any = None,
                regrade: bool = False, progress: bool = True,
                budget: Budget = DEFAULT_BUDGET,
                ) -> tuple[dict[str, dict[str, Any]], dict[str, str], cache.Reports, int]:
    """The report of every notebook of ``named`` (name -> path): kept from the cache in
    ``folder`` when these bytes were graded against this release, with these limits and this
    budget, already (unless ``regrade``), else graded now, each stored the moment it is
    decided and shown with its score. Each file is read once (``snapshots``): what is hashed
    is what is graded. A report of the grader's own failure is returned but never stored.
    Without ``folder`` nothing is kept. A runner that grades against a release of its own
    (``cluster`` with a ``release`` digest) is trusted for it: nothing is staged here then.
    Returns (reports by name, digests of the bytes graded, the cache, how many were graded
    now)."""
    release = getattr(cluster, "release", None)
    reports: dict[str, dict[str, Any]] = {}
    graded = [] if release else source_graded_cells()  # such a runner has its own release
    with snapshots(named) as taken, \
            nullcontext(None) if release else submission.staged() as template:
        digests = {name: taken[name].digest for name in named}
        store = cache.Reports(folder or Path(), release or cache.release_digest(
            template, graded, limits=limits, budget=budget))
        kept = 0
        for name, path in named.items():
            if taken[name].copy is None:  # nothing read, nothing decided: the grader's to fix
                reports[name] = submission.grader_failed(path, graded, time.perf_counter(),
                                                         taken[name].error)
                continue
            found = None if regrade or folder is None else store.get(digests[name])
            if found is not None:
                reports[name] = {**found, "file": str(path)}
                kept += 1
        todo = [name for name in named if name not in reports]
        if kept:
            print(f"{kept} of {len(named)} submissions already graded against this "
                  f"release: kept from {folder} (--regrade grades them again)",
                  file=sys.stderr, flush=True)
        with Progress(len(todo), "graded") if progress else nullcontext() as shown:
            def decided(index: int, report: dict[str, Any]) -> None:
                name = todo[index]
                copy = taken[name].copy
                report = submission.renamed(report, str(copy), str(named[name]))
                if folder is not None:
                    store.put(digests[name], report)  # on disk before anything else happens
                reports[name] = report
                if shown is not None:
                    shown.advance(score_line(name, report))

            if todo:
                grade([taken[n].copy for n in todo], jobs=jobs, limits=limits,
                      cluster=cluster, on_report=decided, template=template, budget=budget)
    return {n: reports[n] for n in named}, digests, store, len(todo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--jobs", type=int, default=None,
                        help="sandboxes at a time (default: one per core)")
    parser.add_argument("--limit", type=float, default=sandbox.DEFAULT_LIMITS.wall,
                        help="seconds one submission may run (default %(default)s)")
    parser.add_argument("--check-limit", type=float, default=sandbox.DEFAULT_LIMITS.per_line,
                        help="seconds one check may run (default %(default)s)")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="grade on this Dask cluster's workers (tls://HOST:8786)")
    parser.add_argument("--certificates", type=Path, metavar="DIR", default=None,
                        help="with --cluster: the course's certificates (default: "
                             "$TINYTORCH_CLUSTER_CERTIFICATES, else cluster-certificates/)")
    parser.add_argument("--insecure", action="store_true",
                        help="with --cluster tcp://HOST:PORT: grade on a cluster without TLS "
                             "off loopback (anyone who reaches it can change grades)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="keep each report in DIR as it is decided; grade only what is new")
    parser.add_argument("--regrade", action="store_true",
                        help="with --cache: grade again what is already decided")
    args = parser.parse_args(argv)
    limits = sandbox.Limits(wall=args.limit, per_line=args.check_limit)
    unusable: tuple[type[BaseException], ...] = (SubmissionError, ValueError)
    cluster: Any = None
    if args.cluster:
        from course.grading.cluster import ClusterError, DaskCluster

        unusable += (ClusterError,)
        cluster = DaskCluster(args.cluster, certificates=args.certificates,
                              insecure=args.insecure)
    try:
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {args.jobs!r}")
        refusals = _refused(args.files)
        given = Counter(args.files)  # a name per file as given (a file given twice: numbered)
        named = {str(path) if given[path] == 1 else f"{path} #{index + 1}": path
                 for index, path in enumerate(args.files) if index not in refusals}
        if not named:
            return 2
        if len(args.files) == 1 and args.cache is None and args.cluster is None:
            reports = grade(args.files, jobs=args.jobs, limits=limits)  # make grade: no frills
        else:
            by_index, *_ = grade_named(named, args.cache, jobs=args.jobs, limits=limits,
                                       cluster=cluster, regrade=args.regrade,
                                       progress=len(named) > 1)
            reports = [by_index[name] for name in named]
    except unusable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    by_hand = source_manual_cells()
    shown = [with_maxima(report, by_hand) for report in reports]
    json.dump(shown[0] if len(args.files) == 1 else shown, sys.stdout, indent=2)
    print()
    if refusals:
        print(f"error: {len(refusals)} of {len(args.files)} files given were not graded "
              "(named above): missing or not notebooks", file=sys.stderr)
    failed = [r for r in reports if cache.grader_failed(r)]
    for report in failed:
        print(printable(f"error: {report['file']}: {report['ended']}", 2000), file=sys.stderr)
    if failed:
        print(f"error: the grader failed on {len(failed)} of {len(reports)} submissions: no "
              "score was decided for them; run again to grade them", file=sys.stderr)
    return 2 if refusals else 1 if failed else 0


def _refused(files: Sequence[Path]) -> dict[int, str]:
    """The files given that are refused (``notebook_refusal``), by their place among
    ``files``, each named on stderr in one line now, before anything is graded."""
    refusals = {}
    for index, path in enumerate(files):
        refusal = notebook_refusal(path)
        if refusal:
            print(printable(f"error: {refusal}", 2000), file=sys.stderr, flush=True)
            refusals[index] = refusal
    return refusals


if __name__ == "__main__":
    sys.exit(main())
