"""Progress of the long commands (``course.grading.progress``): on a terminal a tqdm bar with
counts, rate and time left, each result printed above it; anywhere else (a CI log, a file, a hub's
job log) one counted line per result and a closing line with the count, rate and time, never a
redrawn bar. ``course.grading.grade`` with several files shows it on stderr, its JSON alone on
stdout."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from course.assignment import paths
from course.grading.progress import Progress, score_line

REPORT = {"total": 85.0, "max_total": 100.0, "ended": None}


def test_off_a_terminal_each_result_is_a_counted_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYTORCH_PROGRESS", raising=False)
    stream = io.StringIO()
    with Progress(3, "graded", stream=stream, every=3600) as progress:
        for name in ("alice", "bob", "carol"):
            progress.advance(score_line(name, REPORT))
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert lines[0].split()[1] == "alice" and "85.0 / 100" in lines[0]
    assert re.fullmatch(r"graded 3/3 \(100%\) in \d+:\d\d, [\d.]+ submission/s", lines[3])
    assert "\r" not in stream.getvalue()


def test_off_a_terminal_a_long_run_says_its_count_rate_and_time_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYTORCH_PROGRESS", raising=False)
    stream = io.StringIO()
    progress = Progress(300, "graded", stream=stream, every=0)
    progress.advance(None)
    assert re.fullmatch(r"graded 1/300 \(0%\) in \d+:\d\d, [\d.]+ submission/s, about "
                        r"\d+:\d\d(:\d\d)? left\n", stream.getvalue())


def _drain(leader: int) -> str:
    """Everything written to a pseudo-terminal whose other end is closed: one read returns only
    what the line discipline has passed on so far, so read until the end (EIO on Linux)."""
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks).decode()


def test_on_a_terminal_a_bar_with_rate_and_time_left_and_results_above_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYTORCH_PROGRESS", raising=False)
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    terminal = os.fdopen(follower, "w")
    assert terminal.isatty()
    with Progress(2, "graded", stream=terminal) as progress:
        progress.advance(score_line("alice", REPORT))
        progress.advance(score_line("bob", {**REPORT, "total": 0.0, "ended": "exit code 1"}))
    terminal.close()
    shown = _drain(leader)
    assert "\r" in shown, "a bar redrawn in place"
    assert re.search(r"graded: 100%.*2/2 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?submission/s\]",
                     shown), shown
    assert "alice" in shown and "85.0 / 100" in shown
    assert "bob" in shown and "(exit code 1)" in shown


def test_course_grade_counts_on_stderr_and_keeps_stdout_json(
        course_dir: Path, tmp_path: Path) -> None:
    release = course_dir / "release" / paths.ASSIGNMENT / paths.NOTEBOOK
    first, second = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    first.write_bytes(release.read_bytes())
    second.write_bytes(release.read_bytes())
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "course.grading.grade", str(first), str(second), "--cache",
               str(cache), "--limit", "30"]
    done = subprocess.run(command, cwd=paths.REPO, capture_output=True, text=True, check=False,
                          env={**os.environ, "TINYTORCH_PROGRESS": ""})  # noqa: S603
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    assert [r["file"] for r in reports] == [str(first), str(second)]
    assert re.search(r"^\[1/2\] .*a\.ipynb|^\[1/2\] .*b\.ipynb", done.stderr, re.M), done.stderr
    assert "[2/2]" in done.stderr and "graded 2/2 (100%)" in done.stderr
    # the same bytes twice: one report decided, kept; a rerun grades nothing
    again = subprocess.run(command, cwd=paths.REPO, capture_output=True, text=True,
                           check=False, env={**os.environ, "TINYTORCH_PROGRESS": ""})  # noqa: S603
    assert again.returncode == 0, again.stderr
    assert "2 of 2 submissions already graded" in again.stderr and "[1/" not in again.stderr
    assert [r["total"] for r in json.loads(again.stdout)] == [r["total"] for r in reports]
