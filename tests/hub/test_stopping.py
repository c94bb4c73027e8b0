"""``make hub`` stops cleanly whatever stops it: a signal to its process group (what Ctrl-C in a
terminal or ``kill -TERM -PGID`` sends) followed at once by the same signal again (``make``
relaying it to the hub it started), or an interrupt and a terminate together. Every time, the
demo accounts, their homes and the exchange are gone afterwards; no account's password outlives
the demo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course.assignment import paths
from course.classroom import hub as hubmod

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="makes Unix accounts: run as root")]
UP = "The demo hub is up"


def _start(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "course.classroom.hub", "--port", str(port)], cwd=paths.REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_up(process: subprocess.Popen[str]) -> str:
    seen = []
    deadline = time.monotonic() + 240
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if UP in line:
            return "".join(seen)
    process.kill()
    pytest.fail("make hub did not come up:\n" + "".join(seen)[-3000:])


@pytest.mark.parametrize("signals", [(signal.SIGTERM, signal.SIGTERM),
                                     (signal.SIGINT, signal.SIGTERM)],
                         ids=["terminate-relayed", "interrupt-then-terminate"])
def test_a_stop_relayed_twice_leaves_no_account(
        signals: tuple[signal.Signals, signal.Signals], instructor_python: Path,
        student_python: Path) -> None:
    names = [hubmod.INSTRUCTOR, *hubmod.STUDENTS]
    leftover = [n for n in names if hubmod.exists(n)]
    if leftover:
        pytest.skip(f"a demo hub is running here (accounts {leftover}): not stopping it")
    process = _start(hubmod.free_port())
    try:
        _wait_up(process)
        assert all(hubmod.exists(n) for n in names)
        first, second = signals
        os.killpg(process.pid, first)
        time.sleep(0.05)
        os.killpg(process.pid, second)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        assert process.stdout is not None
        process.stdout.close()
    assert [n for n in names if hubmod.exists(n)] == []
    assert not [n for n in names if Path("/home", n).exists()]
    assert not (hubmod.HUB / "exchange").exists() and not (hubmod.HUB / "run").exists()
