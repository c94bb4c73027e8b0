"""Where one submission's cost goes, from file to feedback page: measure before cutting.

    python -m benchmarks.profile_submission            # make bench-profile
    python -m benchmarks.profile_submission --repeats 5

One notebook (the reference's code in the lesson, as a student hands it in) is taken through
every stage a class's submission goes through, each timed on its own and repeated
(``--repeats``, the median is shown):

- **end to end in the sandbox**: ``course.grading.grade`` on the file (sandbox, observation,
  judging outside it), as ``make grade`` runs it;
- **a bare sandboxed interpreter**: the same sandbox running ``pass``, so the rest is the work;
- **interpreter and imports**: a fresh Python importing numpy, the staged ``tinytorch`` and
  ``checks`` (what the observer imports before the student's first cell);
- **the student's cells**: the notebook's code cells executed in one namespace;
- **observation, per check**: ``checks.observe`` at the visible seed and one hidden seed, as the
  sandbox runs each graded cell's check;
- **judging, per check**: ``checks.judge`` on those records, as the trusted grader does;
- **gradebook write**: nbgrader's autograde writing the trusted report (one student);
- **feedback page**: nbgrader's ``generate_feedback`` through the course's exporter.

Stages run in this process where the sandbox would run them elsewhere (the cells, observation,
judging), so they show the work without the sandbox's start. Results: stdout and
``benchmarks/results/profile.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
for folder in ("tests", "tests/checks", "tests/course"):  # the proofs' notebooks
    sys.path.insert(0, str(ROOT / folder))


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_submission",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each stage (median)")
    args = parser.parse_args(argv)

    from submissions import from_training_source, write

    from checks import CHECKS, judge, observe
    from course.assignment import paths
    from course.assignment.cells import source_graded_cells
    from course.authoring.release import make_course
    from course.classroom import nbgrader_trusted
    from course.grading import grade, sandbox, submission

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="tinytorch-profile-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        make_course(course)
        release = course / "release" / paths.ASSIGNMENT
        notebook = write(from_training_source(paths.REFERENCE.read_text()),
                         course / "submitted" / "alice" / paths.ASSIGNMENT / paths.NOTEBOOK)

        report: dict[str, Any] = {}

        def end_to_end() -> None:
            report.update(grade.grade([notebook], jobs=1)[0])

        rows.append(("end to end: course.grading.grade, one file", _median_seconds(
            end_to_end, args.repeats)))
        rows.append(("a sandboxed interpreter running `pass`", _median_seconds(
            lambda: sandbox.run(release, "pass", stdin=b"", on_line=lambda line: True),
            args.repeats)))
        imports = [sys.executable, "-c", "import numpy, tinytorch.core.training, checks"]
        rows.append(("a fresh interpreter importing numpy, tinytorch, checks", _median_seconds(
            lambda: subprocess.run(imports, cwd=release, check=True), args.repeats)))

        # the cells the sandbox runs: code and answer cells, no graded cell, no demo
        cells = submission.student_code(notebook, source_graded_cells())
        namespace: dict[str, Any] = {}

        def run_cells() -> None:
            namespace.clear()
            namespace["__name__"] = "__main__"
            with contextlib.redirect_stdout(io.StringIO()):
                for number, source in enumerate(cells, 1):
                    with contextlib.suppress(Exception):
                        exec(compile(source, f"<cell In[{number}]>", "exec"), namespace)  # noqa: S102

        rows.append(("the student's cells, executed in one namespace", _median_seconds(
            run_cells, args.repeats)))
        implementations = {name: namespace[name] for name in
                           ("CosineSchedule", "clip_grad_norm", "Trainer", "training_memory")}
        observed: dict[str, float] = {}
        judged: dict[str, float] = {}
        for check_id in CHECKS:
            for seed in (0, 4242):
                records: list[list[dict]] = []
                observed[check_id] = observed.get(check_id, 0.0) + _median_seconds(
                    lambda c=check_id, s=seed, r=records: r.append(observe(
                        c, implementations, seed=s)), args.repeats)
                judged[check_id] = judged.get(check_id, 0.0) + _median_seconds(
                    lambda c=check_id, s=seed, r=records[-1]: judge(c, r, seed=s), args.repeats)
        rows.append(("observation, every check at 2 seeds", sum(observed.values())))
        rows.append(("judging, every check at 2 seeds", sum(judged.values())))

        def write_gradebook() -> None:
            with contextlib.redirect_stderr(io.StringIO()):
                nbgrader_trusted.autograde(course, {"alice": report})

        rows.append(("gradebook write: nbgrader autograde, one student", _median_seconds(
            write_gradebook, args.repeats)))
        rows.append(("feedback page: nbgrader generate_feedback, one student", _median_seconds(
            lambda: nbgrader_trusted.feedback(course, ["alice"], jobs=1), args.repeats)))

    width = max(len(name) for name, _ in rows)
    print(f"One submission (the reference), median of {args.repeats} runs, "
          f"{os.cpu_count()} cores:\n")
    print(f"| {'stage'.ljust(width)} | seconds |\n|{'-' * (width + 2)}|--------:|")
    for name, seconds in rows:
        print(f"| {name.ljust(width)} | {seconds:7.3f} |")
    slowest = sorted(((c, observed[c] + judged[c]) for c in observed), key=lambda t: -t[1])[:6]
    print("\nslowest checks (observation + judging, 2 seeds): "
          + ", ".join(f"{c} {s:.3f} s" for c, s in slowest))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "profile.json").write_text(json.dumps(
        {"repeats": args.repeats, "cores": os.cpu_count(), "stages": dict(rows),
         "observation": observed, "judging": judged}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
