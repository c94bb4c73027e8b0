"""Grading a class: trusted, sandboxed and parallel, against notebooks run in a kernel serially.

    python -m benchmarks.grading [--class-size 100] [--baseline 10] [--limit 60]
    python -m benchmarks.grading --cluster local [--class-size 1000] [--workers 2]
    python -m benchmarks.grading --cluster tls://HOST:8786 [--class-size 1000] [--certificates DIR]

A class of ``--class-size`` submissions (correct implementations, the mutant catalog, and quick
cheats, in turn) is graded the way ``make autograde`` grades it: ``course.grading.submission`` in
one sandbox per core, nbgrader's autograde writing the trusted outcomes, then ``nbgrader
generate_feedback``. Beside it, in the same run, the same notebooks are executed the old way,
one after another in a Jupyter kernel (nbclient, kernel start included), for ``--baseline`` of
them. Also measured: one file through ``python -m course.grading.grade`` (what ``make grade`` runs),
and an endless loop, which must cost no more than its limit. Results go to stdout and
``benchmarks/results/grading.json``.

``--cluster`` grades the same class twice in one run: on this machine's process pool (one
sandbox per core) and on a Dask cluster (``course.grading.cluster``): ``local`` starts a real
``dask scheduler`` and ``--workers`` ``dask worker`` processes (one thread each) on loopback,
with mutual TLS and certificates made for the run (as the grader always connects); an address
uses that cluster (with the course's certificates: ``course.grading.cluster.connect``).
Measured: both wall times and their ratio, the cluster's set-up (shipping the release,
checking each worker's sandbox), the per-submission cost of going through Dask, and Dask's
own round trip for a task carrying a notebook's bytes; from them, projected wall times for
1,000 and 10,000 submissions on 2, 16 and 64 cores (``benchmarks/results/
grading-cluster.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests", "tests/checks", "tests/course"):  # the proofs' notebooks
    sys.path.insert(0, str(ROOT / folder))

from submissions import from_module, from_training_source, write  # noqa: E402
from variants import mutant_source  # noqa: E402

from course.assignment import cells, paths  # noqa: E402
from course.authoring.release import make_course  # noqa: E402
from course.classroom import nbgrader_trusted  # noqa: E402
from course.grading import batch, sandbox, submission  # noqa: E402
from course.grading.pool import LocalPool  # noqa: E402

CHEATS = {
    "rebind-run-check": "run_check = lambda *a, **k: None\n",
    "exit": "exit()\n",
    "os-exit": "import os\nos._exit(0)\n",
    "read-solutions": "import glob\nfound = glob.glob('/work/**/training.py', recursive=True)\n",
    "flood": "for _ in range(50): print('x' * 2**20)\n",
}


def _class(size: int, folder: Path, release: Path) -> dict[str, Path]:
    import importlib

    correct = [("reference", from_training_source(paths.REFERENCE.read_text()))]
    correct += [(f"solution-{p.stem}", from_module(p))
                for p in sorted((ROOT / "tests/checks/solutions").glob("*.py"))]
    correct += [(f"corpus-{p.stem}", from_module(p))
                for p in sorted((ROOT / "tests/checks/corpus").glob("student_*.py"))]
    mutants = [(f"mutant-{m.name}", from_training_source(mutant_source(m)))
               for path in sorted((ROOT / "tests/checks").glob("mutants_*.py"))
               for m in importlib.import_module(path.stem).MUTANTS]
    cheats = []
    for name, code in CHEATS.items():
        notebook = nbformat.read(release, as_version=4)
        notebook.cells.insert(2, nbformat.v4.new_code_cell(code))
        cheats.append((f"cheat-{name}", notebook))
    pool = correct + mutants + cheats
    chosen = [pool[i % len(pool)] for i in range(size)]
    files = {}
    for i, (name, notebook) in enumerate(chosen):
        student = f"s{i:03d}-{name}"[:60]
        files[student] = write(notebook, folder / student / paths.ASSIGNMENT / paths.NOTEBOOK)
    return files


def _kernel_serially(files: list[Path]) -> list[float]:
    """Each notebook executed top to bottom in a fresh kernel, one after another."""
    seconds = []
    for path in files:
        notebook = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds.append(time.perf_counter() - start)
    return seconds


def _echo(data: bytes) -> int:
    return len(data)


def _cluster(args: argparse.Namespace) -> int:
    """The class on the process pool, then on the Dask cluster; see the module's docstring."""
    from course.grading import cluster

    jobs = os.cpu_count() or 1
    limits = sandbox.Limits(wall=args.limit)
    with tempfile.TemporaryDirectory(prefix="tinytorch-bench-") as tmp, \
            contextlib.ExitStack() as stack:
        course = Path(tmp) / "course"
        course.mkdir()
        make_course(course)
        release = course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
        files = list(_class(args.class_size, course / "submitted", release).values())
        graded = cells.source_graded_cells()
        seeds = [submission.draw_seeds(graded) for _ in files]  # the same for both runs
        template = stack.enter_context(submission.staged())

        start = time.perf_counter()
        pool = batch.grade(files, runner=LocalPool(jobs), limits=limits, seeds=seeds,
                           template=template)
        pool_s = time.perf_counter() - start

        if args.cluster == "local":
            running = stack.enter_context(cluster.local(workers=args.workers))
            where = (f"a local dask scheduler and {args.workers} dask worker processes (1 "
                     "thread each), mutual TLS")
            client = stack.enter_context(running.connect(timeout=60))
        else:
            where = f"the Dask cluster at {args.cluster}"
            client = stack.enter_context(cluster.connect(
                args.cluster, certificates=args.certificates, insecure=args.insecure,
                timeout=60))
        client.wait_for_workers(args.workers if args.cluster == "local" else 1, timeout=120)
        threads = sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())
        start = time.perf_counter()
        cluster.setup(client, template, graded, log=open(os.devnull, "w"))  # noqa: SIM115
        setup_s = time.perf_counter() - start
        arrivals: list[float] = []
        cluster_start = time.perf_counter()
        on_cluster = batch.grade(files, runner=cluster.DaskCluster(client), limits=limits,
                                 seeds=seeds, template=template,
                                 on_report=lambda i, r: arrivals.append(time.perf_counter()))
        cluster_s = time.perf_counter() - cluster_start

        # Dask's own round trip for a task that carries a notebook (its median size)
        payload = b"x" * int(statistics.median(f.stat().st_size for f in files))
        tasks = 400
        start = time.perf_counter()
        client.gather(client.map(_echo, [payload] * tasks, pure=False))
        dask_task_s = (time.perf_counter() - start) * threads / tasks

    same = sum(a["total"] == b["total"] for a, b in zip(pool, on_cluster, strict=True))
    n = len(files)
    per_core = pool_s * jobs / n  # core-seconds one submission costs on the pool
    # what the cluster adds to a submission, measured where it is spent (a wall-time difference
    # between two runs is noise on a shared machine): Dask's round trip for its task, and on
    # the worker the task's time beyond the sandboxed run and judging (notebook written, the
    # request to and report from the judging process)
    on_worker = statistics.median(r["grader"]["task_seconds"] - r["seconds"]
                                  for r in on_cluster if "grader" in r)
    overhead = dask_task_s + max(on_worker, 0.0)
    def projected(size: int, cores: int, dask: bool) -> float:
        return size * (per_core + (max(overhead, 0.0) if dask else 0.0)) / cores + (
            setup_s if dask else 0.0)
    projection = {f"{size}x{cores}": {"pool_s": round(projected(size, cores, False)),
                                      "dask_s": round(projected(size, cores, True))}
                  for size in (1_000, 10_000) for cores in (2, 16, 64)}
    result = {
        "cores": jobs, "class_size": n, "where": where, "cluster_threads": threads,
        "pool_s": round(pool_s, 1), "cluster_s": round(cluster_s, 1),
        "cluster_setup_s": round(setup_s, 2),
        "core_seconds_per_submission": round(per_core, 3),
        "cluster_overhead_per_submission_s": round(overhead, 4),
        "of_which_on_the_worker_s": round(on_worker, 4),
        "wall_difference_per_submission_s": round((cluster_s - pool_s) * threads / n, 3),
        "cluster_vs_pool": round((cluster_s + setup_s) / pool_s, 4),
        "cluster_vs_pool_without_setup": round(cluster_s / pool_s, 4),
        "dask_round_trip_per_task_s": round(dask_task_s, 4),
        "median_report_seconds": {"pool": statistics.median(r["seconds"] for r in pool),
                                  "cluster": statistics.median(r["seconds"] for r in on_cluster)},
        "same_total_on_both": same, "first_report_after_s": round(arrivals[0] - cluster_start, 2)
        if arrivals else None,
        "projection": projection,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "grading-cluster.json").write_text(json.dumps(result, indent=1))
    print(f"class of {n}: process pool ({jobs} processes) {pool_s:.1f} s; {where}: "
          f"{cluster_s:.1f} s (+ {setup_s:.2f} s set-up); the same total for {same} of {n}")
    print(f"the cluster against the process pool: {result['cluster_vs_pool']:.3f}x the wall "
          f"time, set-up included ({result['cluster_vs_pool_without_setup']:.3f}x without)")
    print(f"per submission: {per_core:.3f} core-seconds; the cluster adds "
          f"{overhead * 1000:.1f} ms (Dask's round trip for a task with "
          f"{len(payload) // 1024} KiB: {dask_task_s * 1000:.1f} ms; on the worker: "
          f"{on_worker * 1000:.1f} ms)")
    for key, value in projection.items():
        size, cores = key.split("x")
        print(f"  projected {int(size):>6} submissions on {int(cores):>2} cores: pool "
              f"{value['pool_s']} s, Dask {value['dask_s']} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class-size", type=int, default=100)
    parser.add_argument("--baseline", type=int, default=10,
                        help="notebooks also run in a kernel serially (the old way)")
    parser.add_argument("--limit", type=float, default=sandbox.DEFAULT_LIMITS.wall)
    parser.add_argument("--cluster", metavar="local|ADDRESS",
                        help="compare the process pool with a Dask cluster (see above)")
    parser.add_argument("--workers", type=int, default=2,
                        help="with --cluster local: dask worker processes")
    parser.add_argument("--certificates", type=Path, default=None, metavar="DIR",
                        help="with --cluster tls://...: the course's certificates (default: "
                             "those `make certificates` made)")
    parser.add_argument("--insecure", action="store_true",
                        help="with --cluster tcp://HOST:PORT off loopback: use it without TLS")
    args = parser.parse_args(argv)
    if args.cluster:
        return _cluster(args)
    jobs = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="tinytorch-bench-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        start = time.perf_counter()
        make_course(course)
        setup = time.perf_counter() - start
        release = course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
        files = _class(args.class_size, course / "submitted", release)

        start = time.perf_counter()
        reports = batch.grade(list(files.values()), runner=LocalPool(jobs),
                              limits=sandbox.Limits(wall=args.limit))
        graded = time.perf_counter() - start
        nbgrader_trusted.autograde(course, dict(zip(files, reports, strict=True)))
        autograded = time.perf_counter() - start
        nbgrader_trusted.feedback(course, list(files))
        total = time.perf_counter() - start

        sample = list(files.values())[: args.baseline]
        kernel = _kernel_serially(sample)

        one = list(files.values())[0]
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "course.grading.grade", str(one)], check=True,
                       capture_output=True, cwd=ROOT)
        single = time.perf_counter() - start

        loop = release.with_name("loop.ipynb")
        notebook = nbformat.read(release, as_version=4)
        notebook.cells.insert(2, nbformat.v4.new_code_cell("while True: pass\n"))
        nbformat.write(notebook, loop)
        loop_limit = min(args.limit, 20.0)
        start = time.perf_counter()
        batch.grade([loop], runner=LocalPool(1), limits=sandbox.Limits(wall=loop_limit))
        looping = time.perf_counter() - start

    per = [r["seconds"] for r in reports]
    result = {
        "cores": jobs, "class_size": len(files), "course_setup_s": round(setup, 1),
        "trusted_graded_s": round(graded, 1), "with_autograde_s": round(autograded, 1),
        "with_feedback_s": round(total, 1),
        "per_submission_wall_s": round(total / len(files), 2),
        "per_submission_in_sandbox_median_s": round(statistics.median(per), 2),
        "kernel_serial_per_submission_s": round(statistics.mean(kernel), 2),
        "kernel_serial_class_projected_s": round(statistics.mean(kernel) * len(files), 1),
        "speedup_vs_kernel_serial": round(statistics.mean(kernel) * len(files) / total, 2),
        "make_grade_one_file_s": round(single, 2),
        "looping_submission_s": round(looping, 1), "loop_limit_s": loop_limit,
        "isolation": sandbox.layers(),
        "scores": {"full": sum(r["total"] == 100 for r in reports),
                   "zero": sum(r["total"] == 0 for r in reports)},
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "grading.json").write_text(json.dumps(result, indent=1))
    print(f"class of {len(files)} on {jobs} cores: trusted grading {graded:.1f} s, "
          f"+ nbgrader autograde {autograded:.1f} s, + feedback {total:.1f} s "
          f"({total / len(files):.2f} s per submission; target <= 120 s)")
    print(f"in a kernel serially: {statistics.mean(kernel):.2f} s per submission "
          f"(mean of {len(kernel)}), {result['kernel_serial_class_projected_s']} s for the class "
          f"(projected): {result['speedup_vs_kernel_serial']}x")
    print(f"one file through course.grading.grade: {single:.2f} s (target <= 5 s); a looping "
          f"submission: {looping:.1f} s (limit {loop_limit:g} s); course set-up {setup:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
