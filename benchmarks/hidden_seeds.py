"""Every check at many hidden seeds: correct code never loses a point, no bug ever escapes.

Run from the repository root::

    .venv/bin/python -m benchmarks.hidden_seeds                    # make bench-seeds
    .venv/bin/python -m benchmarks.hidden_seeds --seeds 20 --mutant-seeds 2   # a quick look

Grading draws a fresh seed per check at grading time (``course.grading.submission.draw_seeds``),
from 2**31 - 2 values. The test suite runs correct code at seeds 1 to 5 and the bug catalog at seed
7, so a check that fails correct code at one seed in a few hundred (a saturated unit, a batch
that happens to fit) would pass the suite and still take points from an honest student now and
then. This draws seeds the same way and runs, in a process pool:

* the reference and every alternative correct solution (``tests/checks/solutions``) through
  every check at ``--seeds`` seeds: each failure is a seed at which correct code loses points;
* every mutant of the catalog (``tests/checks/mutants_*.py``) at ``--mutant-seeds`` seeds: an
  escape is a seed at which a check meant for that bug (``named_by``) passes it, and an extra
  is a check outside ``caught_by`` that fails (but for those the catalog says the bug fails at
  some seeds only, ``at_some_seeds``, through a consequence only those runs reach).

The report goes to ``benchmarks/results/hidden-seeds.json`` with the seeds, so any failure can
be replayed with ``checks.run_all(..., seed=S)``. Exit status 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHECKS_TESTS = ROOT / "tests" / "checks"
RESULTS = ROOT / "benchmarks" / "results" / "hidden-seeds.json"


def _importable() -> None:
    """The catalog lives beside the checks' tests; the repository root comes first, so that
    ``checks`` is the package and not the folder ``tests/checks``."""
    for path in (str(CHECKS_TESTS), str(ROOT / "tests")):
        if path not in sys.path:
            sys.path.append(path)
    if str(ROOT) not in sys.path[:1]:
        sys.path.insert(0, str(ROOT))


def _mutants() -> list[Any]:
    _importable()
    return [mutant for path in sorted(CHECKS_TESTS.glob("mutants_*.py"))
            for mutant in importlib.import_module(path.stem).MUTANTS]


def _correct(name: str, seeds: list[int]) -> dict[str, Any]:
    """``name`` is "reference" or a solution file's stem: the seeds where a check failed it."""
    _importable()
    import variants

    from checks import run_all

    if name == "reference":
        implementations = variants.reference_implementations()
    else:
        path = CHECKS_TESTS / "solutions" / f"{name}.py"
        implementations = variants.solution_implementations(path)
    failures = []
    for seed in seeds:
        failed = {k: v for k, v in run_all(implementations, seed=seed).items() if v}
        if failed:
            failures.append({"seed": seed, "failed": failed})
    return {"name": name, "seeds": len(seeds), "failures": failures}


def _mutant(name: str, seeds: list[int]) -> dict[str, Any]:
    """The seeds at which the mutant ``name`` escaped a check meant for it, or failed another."""
    _importable()
    import variants

    from checks import run_all

    mutant = next(m for m in _mutants() if m.name == name)
    implementations = variants.mutant_implementations(mutant)
    failures = []
    for seed in seeds:
        failed = {k for k, v in run_all(implementations, seed=seed).items() if v}
        escaped = set(mutant.named_by) - failed
        extra = failed - set(mutant.caught_by) - set(mutant.at_some_seeds)
        if escaped or extra:
            failures.append({"seed": seed, "escaped": sorted(escaped), "extra": sorted(extra)})
    return {"name": name, "seeds": len(seeds), "failures": failures}


def _draw(count: int) -> list[int]:
    """Seeds as grading draws them."""
    return [1 + secrets.randbelow(2**31 - 2) for _ in range(count)]


def run(seeds: int, mutant_seeds: int, jobs: int) -> dict[str, Any]:
    solutions = sorted((CHECKS_TESTS / "solutions").glob("*.py"))
    correct_names = ["reference"] + [p.stem for p in solutions]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        # the same seeds for every correct implementation, in chunks the processes share
        chunks = [_draw(min(50, seeds - i)) for i in range(0, seeds, 50)]
        correct = [pool.submit(_correct, name, chunk)
                   for name in correct_names for chunk in chunks]
        mutants = [pool.submit(_mutant, m.name, _draw(mutant_seeds)) for m in _mutants()]
        correct_results = [f.result() for f in correct]
        mutant_results = [f.result() for f in mutants]
    merged: dict[str, dict[str, Any]] = {}
    for result in correct_results:
        into = merged.setdefault(result["name"], {"name": result["name"], "seeds": 0,
                                                  "failures": []})
        into["seeds"] += result["seeds"]
        into["failures"] += result["failures"]
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "jobs": jobs,
        "correct": list(merged.values()),
        "mutants": mutant_results,
    }


def summary(report: dict[str, Any]) -> list[str]:
    lines = []
    for row in report["correct"]:
        lines.append(f"{row['name']}: failed at {len(row['failures'])} of {row['seeds']} seeds"
                     + "".join(f"\n  seed {f['seed']}: {sorted(f['failed'])}"
                               for f in row["failures"]))
    escapes = [(row["name"], f) for row in report["mutants"] for f in row["failures"]]
    each = report["mutants"][0]["seeds"] if report["mutants"] else 0
    lines.append(f"{len(report['mutants'])} mutants at {each} seeds each: "
                 f"{len(escapes)} escapes or extra failures"
                 + "".join(f"\n  {name} at seed {f['seed']}: escaped {f['escaped']}, "
                           f"extra {f['extra']}" for name, f in escapes))
    lines.append(f"in {report['seconds']} s on {report['jobs']} processes")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hidden_seeds",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1000,
                        help="seeds for each correct implementation (default 1000)")
    parser.add_argument("--mutant-seeds", type=int, default=12,
                        help="seeds for each mutant of the catalog (default 12)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for name in ("seeds", "mutant_seeds", "jobs"):
        value = getattr(args, name)
        if value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    report = run(args.seeds, args.mutant_seeds, args.jobs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print("\n".join(summary(report)))
    print(f"report: {args.output}")
    failed = any(row["failures"] for row in report["correct"] + report["mutants"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
