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


def test_a_folder_another_account_made_is_refused_by_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An account that made the folder first (in a shared temporary folder) could hold every
    lock, or link a lock file elsewhere: the folder must be the grader's own and private."""
    squatted = tmp_path / "slots"
    squatted.mkdir(mode=0o777)
    squatted.chmod(0o777)
    monkeypatch.setenv(slots.ENV_FOLDER, str(squatted))
    with pytest.raises(RuntimeError, match=rf"{squatted} belongs to uid .* mode 777"):
        slots.acquire()
    if os.geteuid() == 0:  # another account's folder, private to it
        squatted.chmod(0o700)
        os.chown(squatted, 65534, 65534)
        with pytest.raises(RuntimeError, match="belongs to uid 65534"):
            slots.acquire()
    assert not list(squatted.iterdir())


def test_a_link_in_place_of_the_folder_or_a_lock_is_never_followed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    linked = tmp_path / "linked"
    linked.symlink_to(elsewhere)
    monkeypatch.setenv(slots.ENV_FOLDER, str(linked))
    with pytest.raises(RuntimeError, match="is not a folder"):
        slots.acquire()
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    (own / "0.lock").symlink_to(elsewhere / "chosen-by-someone")
    monkeypatch.setenv(slots.ENV_FOLDER, str(own))
    with pytest.raises(OSError):
        slots.acquire()
    assert not (elsewhere / "chosen-by-someone").exists()


def test_roots_slots_live_under_run_not_in_a_shared_temporary_folder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(slots.ENV_FOLDER, raising=False)
    where = slots.folder()
    assert not str(where).startswith("/tmp/"), where
    if os.geteuid() == 0:
        assert str(where) == slots.ROOT_FOLDER
