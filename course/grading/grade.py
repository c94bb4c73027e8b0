"""Grade submitted Module 07 notebooks and report JSON: trusted grading
(``course.grading.submission``), each notebook run in a sandbox, every score decided outside it,
the class in parallel.

    python -m course.grading.grade submission.ipynb             # one JSON object
    python -m course.grading.grade a.ipynb b.ipynb [--jobs N]   # a JSON list, in the order given
    python -m course.grading.grade a.ipynb --limit 30           # seconds a submission may run
    python -m course.grading.grade *.ipynb --cluster tcp://HOST:8786   # on a Dask cluster
    python -m course.grading.grade *.ipynb --cache DIR [--regrade]     # keep each report

For every graded cell: its grade_id, points, max_points, passed, and the check's message; then
total, max_total, seconds, how the run ended (``ended``: None, or why it stopped early), the
code cells that raised, and the isolation layers that were active. Exit status 0 when every
file was graded (whatever the scores; an unreadable notebook gets a report with 0 and the
reason), 2 for a file that does not exist or a cluster that cannot grade.

With several files, a progress bar (or, off a terminal, counted lines) and each score as it is
decided go to stderr. With ``--cache DIR`` each report is stored there the moment it is decided
(``course.grading.cache``: keyed by the notebook's SHA-256 and the release's digest), and a rerun
grades only the files that are new or changed (``--regrade``: all).

This command is the caller that chooses where a class runs (``runner``): this machine's pool,
or a Dask cluster's workers with ``--cluster``; ``course.classroom.autograde`` uses it too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import nbformat

from course.assignment.cells import source_graded_cells
from course.grading import batch, cache, sandbox, submission
from course.grading.batch import Runner
from course.grading.budget import DEFAULT_BUDGET, Budget
from course.grading.pool import LocalPool
from course.grading.progress import Progress, score_line
from course.grading.submission import OnReport


class SubmissionError(ValueError):
    """A file given to grade is missing or is not a readable notebook."""


def check_notebook(path: Path) -> None:
    """Raise SubmissionError unless ``path`` is a readable notebook file."""
    if not path.is_file():
        raise SubmissionError(f"submission {str(path)!r} does not exist or is not a file")
    try:
        nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - any parse failure means "not a notebook"
        raise SubmissionError(f"submission {str(path)!r} is not a notebook: {error}") from error


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


def grade_named(named: dict[str, Path], folder: Path | None, *, jobs: int | None = None,
                limits: sandbox.Limits = sandbox.DEFAULT_LIMITS, cluster: Any = None,
                regrade: bool = False, progress: bool = True,
                ) -> tuple[dict[str, dict[str, Any]], dict[str, str], cache.Reports, int]:
    """The report of every notebook of ``named`` (name -> path): kept from the cache in
    ``folder`` when this notebook was graded against this release already (unless
    ``regrade``), else graded now, each stored the moment it is decided and shown with its
    score. Without ``folder`` nothing is kept. A runner that grades against a release of its
    own (``cluster`` with a ``release`` digest) is trusted for it: nothing is staged here then.
    Returns (reports by name, notebook digests, the cache, how many were graded now)."""
    digests = {name: cache.file_digest(path) for name, path in named.items()}
    release = getattr(cluster, "release", None)
    reports: dict[str, dict[str, Any]] = {}
    with nullcontext(None) if release else submission.staged() as template:
        store = cache.Reports(folder or Path(), release or cache.release_digest(
            template, source_graded_cells()))
        for name, path in named.items():
            kept = None if regrade or folder is None else store.get(digests[name])
            if kept is not None:
                reports[name] = {**kept, "file": str(path)}
        todo = [name for name in named if name not in reports]
        if reports:
            print(f"{len(reports)} of {len(named)} submissions already graded against this "
                  f"release: kept from {folder} (--regrade grades them again)",
                  file=sys.stderr, flush=True)
        with Progress(len(todo), "graded") if progress else nullcontext() as shown:
            def decided(index: int, report: dict[str, Any]) -> None:
                name = todo[index]
                if folder is not None:
                    store.put(digests[name], report)  # on disk before anything else happens
                reports[name] = report
                if shown is not None:
                    shown.advance(score_line(name, report))

            if todo:
                grade([named[n] for n in todo], jobs=jobs, limits=limits, cluster=cluster,
                      on_report=decided, template=template)
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
                        help="grade on this Dask cluster's workers (tcp://HOST:8786)")
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="keep each report in DIR as it is decided; grade only what is new")
    parser.add_argument("--regrade", action="store_true",
                        help="with --cache: grade again what is already decided")
    args = parser.parse_args(argv)
    limits = sandbox.Limits(wall=args.limit, per_line=args.check_limit)
    unusable: tuple[type[BaseException], ...] = (SubmissionError, ValueError)
    if args.cluster:
        from course.grading.cluster import ClusterError

        unusable += (ClusterError,)
    try:
        if args.jobs is not None and args.jobs < 1:
            raise ValueError(f"jobs must be a positive integer, got {args.jobs!r}")
        for path in args.files:
            if not path.is_file():
                raise SubmissionError(f"submission {str(path)!r} does not exist or is not a "
                                      "file")
        given = Counter(args.files)  # a name per file as given (a file given twice: numbered)
        named = {str(path) if given[path] == 1 else f"{path} #{index + 1}": path
                 for index, path in enumerate(args.files)}
        if len(named) == 1 and args.cache is None and args.cluster is None:
            reports = grade(args.files, jobs=args.jobs, limits=limits)  # make grade: no frills
        else:
            by_index, *_ = grade_named(named, args.cache, jobs=args.jobs, limits=limits,
                                       cluster=args.cluster, regrade=args.regrade,
                                       progress=len(named) > 1)
            reports = [by_index[name] for name in named]
    except unusable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    json.dump(reports[0] if len(reports) == 1 else reports, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
