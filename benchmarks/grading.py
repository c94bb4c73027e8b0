"""Grading a class: trusted, sandboxed and parallel, against notebooks run in a kernel serially.

    python -m benchmarks.grading [--class-size 100] [--baseline 10] [--limit 60]

A class of ``--class-size`` submissions (correct implementations, the mutant catalog, and quick
cheats, in turn) is graded the way ``make autograde`` grades it: ``course.trusted`` in one
sandbox per core, nbgrader's autograde writing the trusted outcomes, then ``nbgrader
generate_feedback``. Beside it, in the same run, the same notebooks are executed the old way,
one after another in a Jupyter kernel (nbclient, kernel start included), for ``--baseline`` of
them. Also measured: one file through ``python -m course.grade`` (what ``make grade`` runs), and
an endless loop, which must cost no more than its limit. Results go to stdout and
``benchmarks/results/grading.json``.
"""

from __future__ import annotations

import argparse
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

from course import grade, nbgrader_trusted, paths, sandbox, trusted  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--class-size", type=int, default=100)
    parser.add_argument("--baseline", type=int, default=10,
                        help="notebooks also run in a kernel serially (the old way)")
    parser.add_argument("--limit", type=float, default=sandbox.DEFAULT_LIMITS.wall)
    args = parser.parse_args(argv)
    jobs = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="tinytorch-bench-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        start = time.perf_counter()
        grade.make_course(course)
        setup = time.perf_counter() - start
        release = course / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
        files = _class(args.class_size, course / "submitted", release)

        start = time.perf_counter()
        reports = trusted.grade(list(files.values()), jobs=jobs,
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
        subprocess.run([sys.executable, "-m", "course.grade", str(one)], check=True,
                       capture_output=True, cwd=ROOT)
        single = time.perf_counter() - start

        loop = release.with_name("loop.ipynb")
        notebook = nbformat.read(release, as_version=4)
        notebook.cells.insert(2, nbformat.v4.new_code_cell("while True: pass\n"))
        nbformat.write(notebook, loop)
        loop_limit = min(args.limit, 20.0)
        start = time.perf_counter()
        trusted.grade([loop], jobs=1, limits=sandbox.Limits(wall=loop_limit))
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
    print(f"one file through course.grade: {single:.2f} s (target <= 5 s); a looping "
          f"submission: {looping:.1f} s (limit {loop_limit:g} s); course set-up {setup:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
