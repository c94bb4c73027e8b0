"""Section 5's times, measured five times over in fresh processes: does a student's picture hold?

Run from the repository root::

    .venv/bin/python -m benchmarks.section5                   # make bench-section5
    .venv/bin/python -m benchmarks.section5 --runs 3 --unpinned   # BLAS threads left free
    .venv/bin/python -m benchmarks.section5 --wall                # timed by the wall clock

Each run is a new Python process that measures what section 5 of the notebook measures, the way
the notebook measures it (``tinytorch.viz``, the reference Trainer, the digits training split):
the epoch at batch 32 of the "Measured, on this machine" cell, the epochs of the memory-and-time
picture, the optimizer steps of the clipping picture. BLAS is pinned to one thread, each point
runs 2 warm-ups and 7 timed repeats, interleaved, timed in CPU time (``tinytorch/viz/timing.py``);
``--unpinned`` leaves numpy's BLAS threads as the machine sets them, to see what the pinning
buys, and ``--wall`` times by the wall clock, to see what the CPU clock buys.

For each figure the report gives every run's median, how far the medians move (largest over
smallest), one run's spread (interquartile range over median, the median over runs), and
whether the runs' interquartile ranges all share a point: then each run's error bars contain a
value every other run's contain too, and the pictures of any two runs tell the same story. For
each comparison a picture labels (accumulation against one batch, clipping against none) it
gives the change in every run and the verdict each run printed: "noise" (within the noise of
the machine) or "spread" (outside the spread). A verdict is stable when all runs agree.

Nothing here is a test: it reports, it does not judge (the tests of the timing helper run on a
fake clock: ``tests/viz/test_viz_timing.py``). Results go to stdout and to
``benchmarks/results/section5.json`` and ``section5.md``; ``--screenshots N`` saves the two
timing pictures of runs 1 to N as ``build/screenshots/section5-run<i>.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinytorch.viz.timing import REPEATS, WARMUP, quartiles

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SCREENSHOTS = ROOT / "build" / "screenshots"
RUNS = 5


# ============================================================================ one run (a child)
def _digits() -> tuple[Any, Any]:
    """The notebook's training split of the digits (section 4's ``x_train``, ``y_train``)."""
    from tinytorch.datasets import load_digits, split

    images, labels = load_digits()
    x_train, y_train, _, _ = split(images, labels, test_fraction=0.25, seed=0)
    return x_train, y_train


def _figure(timing: Any, unit: str, scale: float) -> dict[str, Any]:
    return {"samples": [s * scale for s in timing.samples], "unit": unit,
            "warmup": timing.warmup, "threads": timing.threads}


def measure(threads: int | None) -> tuple[dict[str, Any], dict[str, list[str]], Any, Any]:
    """Section 5's three timed cells, with their defaults: the figures (each point's samples,
    in the picture's unit), the comparisons the pictures label (base figure, other figure),
    and the two measurements the pictures are drawn from."""
    from tinytorch.core.training import Trainer
    from tinytorch.viz.clipping_cost import measure_clipping_cost, parameters
    from tinytorch.viz.measure import measure_epoch
    from tinytorch.viz.memory_and_time import measure_memory_and_time

    x, y = _digits()
    figures: dict[str, Any] = {}
    comparisons: dict[str, list[str]] = {}
    epoch = measure_epoch(Trainer, x, y, batch_size=32, threads=threads)
    figures["measure_epoch: epoch, batch 32"] = _figure(epoch.time, "ms", 1e3)
    batches = measure_memory_and_time(Trainer, x, y, threads=threads)
    for i, b in enumerate(batches.effective):
        one = f"epoch, one batch of {b}"
        if batches.same_run(i):
            figures[f"{one} (k = 1: both lines)"] = _figure(batches.one_batch[i].time, "ms", 1e3)
            continue
        acc = f"epoch, {batches.k(i)} accumulated batches of {batches.micro_batch}"
        figures[one] = _figure(batches.one_batch[i].time, "ms", 1e3)
        figures[acc] = _figure(batches.accumulated[i].time, "ms", 1e3)
        comparisons[f"accumulation at {b} (k = {batches.k(i)})"] = [one, acc]
    clipping = measure_clipping_cost(Trainer, x, y, threads=threads)
    for width, a, b in zip(clipping.widths, clipping.without, clipping.with_clip, strict=True):
        base = f"step, hidden {width}, no clipping"
        other = f"step, hidden {width}, clipping at {clipping.max_norm:g}"
        figures[base], figures[other] = _figure(a, "µs", 1e6), _figure(b, "µs", 1e6)
        comparisons[f"clipping, hidden {width} ({parameters(width):,} parameters)"] = [base, other]
    return figures, comparisons, batches, clipping


def screenshot(batches: Any, clipping: Any, path: Path) -> None:
    """Section 5's two timing pictures of this run, one above the other, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image
    import numpy as np

    from tinytorch.core.training import training_memory
    from tinytorch.viz.clipping_cost import draw_clipping_cost
    from tinytorch.viz.measure import _adam, digits_mlp
    from tinytorch.viz.memory_and_time import draw_memory_and_time

    def predicted(batch: int) -> float:
        model = digits_mlp()
        return float(training_memory(model, _adam(model.parameters()), batch)["total"])

    sizes = dict.fromkeys((*batches.effective, batches.micro_batch))
    pictures = []
    for fig in (draw_memory_and_time(batches, {b: predicted(b) for b in sizes}),
                draw_clipping_cost(clipping)):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        buffer.seek(0)
        pictures.append(matplotlib.image.imread(buffer, format="png"))
    width = max(p.shape[1] for p in pictures)
    padded = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=1.0)
              for p in pictures]
    path.parent.mkdir(parents=True, exist_ok=True)
    matplotlib.image.imsave(path, np.vstack(padded))


def child(out: Path, threads: int | None, shot: Path | None, wall: bool) -> int:
    if wall:  # every timing of this process by the wall clock, as section 5 did before
        from tinytorch.viz import timing

        timing.time_runs.__kwdefaults__["clock"] = time.perf_counter
    started = time.perf_counter()
    load = os.getloadavg()[0]
    figures, comparisons, batches, clipping = measure(threads)
    seconds = time.perf_counter() - started
    if shot is not None:
        screenshot(batches, clipping, shot)
    out.write_text(json.dumps({"figures": figures, "comparisons": comparisons,
                               "seconds": seconds, "load_before": load}, indent=1))
    return 0


# ============================================================================ the report
def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure: each run's median and interquartile range, the ratio of the largest median to
    the smallest, the median relative spread, and whether all ranges share a point. Per
    comparison: each run's change of the median and verdict, and whether the verdicts agree."""
    figures = {}
    for name in runs[0]["figures"]:
        stats = [quartiles(run["figures"][name]["samples"]) for run in runs]
        medians = [m for _, m, _ in stats]
        figures[name] = {
            "unit": runs[0]["figures"][name]["unit"],
            "medians": medians,
            "quartiles": [[q1, q3] for q1, _, q3 in stats],
            "max_over_min": max(medians) / min(medians),
            "spread_over_median": statistics.median((q3 - q1) / m for q1, m, q3 in stats),
            "ranges_share_a_point": max(q1 for q1, _, _ in stats) <= min(q3 for _, _, q3 in stats),
        }
    comparisons = {}
    for name, (base, other) in runs[0]["comparisons"].items():
        changes, verdicts = [], []
        for run in runs:
            a = quartiles(run["figures"][base]["samples"])
            b = quartiles(run["figures"][other]["samples"])
            changes.append((b[1] - a[1]) / a[1])
            verdicts.append("noise" if a[0] <= b[2] and b[0] <= a[2] else "spread")
        comparisons[name] = {"changes": changes, "verdicts": verdicts,
                             "stable": len(set(verdicts)) == 1}
    return {"figures": figures, "comparisons": comparisons}


def render_markdown(report: dict[str, Any]) -> str:
    settings, summary = report["settings"], report["summary"]
    runs = settings["runs"]
    threads = "1 BLAS thread" if settings["threads"] == 1 else "BLAS threads left free"
    threads += ", wall-clock time" if settings.get("wall") else ", CPU time where pinned"
    lines = [
        f"Section 5's times in {runs} fresh processes, one after another ({threads}; each point "
        f"the median of {settings['repeats']} runs after {settings['warmup']} warm-ups, "
        f"interleaved). {report['environment']['cpu']}, {os.cpu_count()} cores, Python "
        f"{report['environment']['python']}; load average (1 min) at the start of each run: "
        + ", ".join(f"{load:.1f}" for load in report["load_before"])
        + "; measuring took " + ", ".join(f"{s:.1f}" for s in report["seconds"]) + " s.",
        "",
        "| figure | unit | " + " | ".join(f"run {i + 1}" for i in range(runs))
        + " | max / min | IQR / median | ranges share a point |",
        "|---|---|" + "---:|" * runs + "---:|---:|---|",
    ]
    for name, f in summary["figures"].items():
        cells = [f"{m:.3g}" if m < 100 else f"{m:.0f}" for m in f["medians"]]
        lines.append(f"| {name} | {f['unit']} | " + " | ".join(cells)
                     + f" | {f['max_over_min']:.2f} | {f['spread_over_median']:.0%} | "
                     + ("yes" if f["ranges_share_a_point"] else "**no**") + " |")
    lines += [
        "",
        "| comparison | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | verdict |",
        "|---|" + "---:|" * runs + "---|",
    ]
    for name, c in summary["comparisons"].items():
        cells = [f"{ch:+.0%} {v}" for ch, v in zip(c["changes"], c["verdicts"], strict=True)]
        verdict = f"stable ({c['verdicts'][0]})" if c["stable"] else "**changes**"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(lines) + "\n"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parent(runs: int, threads: int | None, screenshots: int, output_dir: Path,
           wall: bool) -> int:
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(1, runs + 1):
            out = Path(folder) / f"run{i}.json"
            command = [sys.executable, "-m", "benchmarks.section5", "--child", str(out)]
            command += ["--unpinned"] if threads is None else []
            command += ["--wall"] if wall else []
            if i <= screenshots:
                command += ["--screenshot", str(SCREENSHOTS / f"section5-run{i}.png")]
            done = subprocess.run(command, cwd=ROOT)
            if done.returncode != 0:
                print(f"error: run {i} failed (exit status {done.returncode})", file=sys.stderr)
                return 1
            results.append(json.loads(out.read_text()))
            print(f"run {i} of {runs}: {results[-1]['seconds']:.1f} s", flush=True)
    report = {
        "settings": {"runs": runs, "threads": threads, "repeats": REPEATS, "warmup": WARMUP,
                     "wall": wall},
        "environment": {"python": platform.python_version(), "cpu": _cpu_name(),
                        "cores": os.cpu_count(), "platform": platform.platform()},
        "load_before": [r["load_before"] for r in results],
        "seconds": [r["seconds"] for r in results],
        "summary": summarize(results),
        "runs": results,
        "elapsed_s": time.perf_counter() - started,
    }
    markdown = render_markdown(report)
    print()
    print(markdown, end="")
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "section5.md").write_text(markdown)
    (output_dir / "section5.json").write_text(json.dumps(report, indent=1) + "\n")
    shots = [SCREENSHOTS / f"section5-run{i}.png" for i in range(1, min(screenshots, runs) + 1)]
    print(f"\nWrote {output_dir / 'section5.md'}, {output_dir / 'section5.json'}"
          + "".join(f", {p}" for p in shots) + f" in {report['elapsed_s']:.1f} s.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.section5",
        description="Section 5's times in fresh processes: how much they move from run to run.")
    parser.add_argument("--runs", type=int, default=RUNS,
                        help=f"fresh processes, one after another (default {RUNS})")
    parser.add_argument("--unpinned", action="store_true",
                        help="leave numpy's BLAS threads as the machine sets them")
    parser.add_argument("--wall", action="store_true",
                        help="time by the wall clock, not the CPU time of the pinned thread")
    parser.add_argument("--screenshots", type=int, default=2, metavar="N",
                        help="save the timing pictures of runs 1 to N to build/screenshots/ "
                        "(default 2)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS,
                        help="where section5.md and section5.json go (default benchmarks/results)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--screenshot", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = None if args.unpinned else 1
    if args.child is not None:
        return child(args.child, threads, args.screenshot, args.wall)
    if args.runs < 2:
        parser.error("--runs must be >= 2: one run cannot show how runs differ")
    return parent(args.runs, threads, args.screenshots, args.output_dir, args.wall)


if __name__ == "__main__":
    sys.exit(main())
