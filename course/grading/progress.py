"""Progress of a long command: how many are done, how fast, how long is left, and each result.

On a terminal, a tqdm bar on stderr (``12/300 [00:15<06:10, 0.8 submission/s]``) with each
student's score printed above it as it is decided. Anywhere else (a CI log, a file, a hub's job
log, where a redrawn bar would be hundreds of lines of carriage returns) one line per result
with the count (``[12/300] alice  85.0 / 100``), and every ``every`` seconds and at the end a
line with the count, rate and time left. ``TINYTORCH_PROGRESS=lines`` or ``bar`` chooses.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import IO, Any

from checks.diagnose import printable

ENV = "TINYTORCH_PROGRESS"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """``total`` things to do; ``advance(line)`` for each one done (``line``: its result)."""

    def __init__(self, total: int, what: str = "graded", *, unit: str = "submission",
                 stream: IO[str] | None = None, every: float = 5.0) -> None:
        self.total, self.what, self.unit, self.every = total, what, unit, every
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.start = self.last = time.monotonic()
        mode = os.environ.get(ENV, "")
        terminal = getattr(self.stream, "isatty", lambda: False)()
        self.bar: Any = None
        if mode == "bar" or (mode != "lines" and terminal):
            from tqdm import tqdm

            try:  # a terminal that does not say its width (0 columns): draw 100 wide
                sized = os.get_terminal_size(self.stream.fileno()).columns > 0
            except (OSError, AttributeError, ValueError):
                sized = False
            self.bar = tqdm(total=total, desc=what, unit=unit, file=self.stream,
                            dynamic_ncols=sized, ncols=None if sized else 100, smoothing=0.1)

    def advance(self, line: str | None = None) -> None:
        self.done += 1
        if self.bar is not None:
            if line:
                self.bar.write(line, file=self.stream)
            self.bar.update(1)
            return
        if line:
            print(f"[{self.done}/{self.total}] {line}", file=self.stream, flush=True)
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            self.last = now
            print(self.summary(), file=self.stream, flush=True)

    def summary(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else None
        text = (f"{self.what} {self.done}/{self.total} "
                f"({100 * self.done / max(self.total, 1):.0f}%) in {_duration(elapsed)}, "
                f"{rate:.2f} {self.unit}/s")
        if self.done < self.total:
            text += f", about {_duration(left)} left" if left is not None else ""
        return text

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def score_line(name: str, report: dict[str, Any]) -> str:
    """One student's result as it is decided: the score, and how the run ended if it did. A
    report of the grader's failure shows no score (``-``): none was decided."""
    total = "-" if report.get("grader_failed") is True else f"{report.get('total', 0):.1f}"
    line = f"{printable(name):24s} {total:>6s} / {report.get('max_total', 0):.0f}"
    ended = report.get("ended")
    if ended:
        first = str(ended).splitlines()[0] if str(ended) else ""
        line += f"  ({printable(first, 120)})"
    return line
