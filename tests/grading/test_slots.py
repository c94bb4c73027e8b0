"""Sandbox slots are unique on a host (``course.grading.slots``): a slot another live process holds
is never handed out, and the slot of a process that was killed is free again at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from course.assignment import paths
from course.grading import slots

HOLD = ("import sys; from course.grading import slots; print(slots.acquire(), flush=True); "
        "sys.stdin.read()")


def test_a_slot_is_held_across_processes_until_its_holder_dies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(slots.ENV_FOLDER, str(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", HOLD], cwd=paths.REPO, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, slots.ENV_FOLDER: str(tmp_path)})
    assert holder.stdout is not None
    held = int(holder.stdout.readline())
    mine = slots.acquire()
    try:
        assert mine != held
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        again = slots.acquire()  # the lowest free one: the dead holder's
        assert again == held
        slots.release(again)
    finally:
        slots.release(mine)
        holder.stdout.close()
        if holder.stdin is not None:
            holder.stdin.close()
