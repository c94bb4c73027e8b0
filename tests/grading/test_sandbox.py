"""The sandbox itself (``course.grading.sandbox``): what it lets through, its limits, and the
fallback where bubblewrap is missing (which still runs, and says which layers it lacks)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from cgroup_support import alive, machine_lacks_cgroups

from course.grading import cgroups, sandbox


def _run(code: str, tmp_path: Path, **limits: float) -> tuple[sandbox.Result, list[bytes]]:
    folder = Path(sandbox.tempfile_dir())
    lines: list[bytes] = []
    try:
        result = sandbox.run(folder, code, stdin=b"", on_line=lambda line: lines.append(line)
                             or True, limits=sandbox.Limits(**limits))
    finally:
        os.rmdir(folder)
    return result, lines


def test_a_run_sees_its_own_private_tmp_and_no_repository(tmp_path: Path) -> None:
    code = ("import os, tempfile\n"
            "with tempfile.NamedTemporaryFile(dir=tempfile.gettempdir()) as f: f.write(b'x')\n"
            f"print(os.path.exists({str(sandbox.Path(__file__).resolve())!r}))\n"
            "print(os.getuid())\n")
    result, lines = _run(code, tmp_path)
    assert result.reason is None and result.returncode == 0, result.stderr
    if sandbox.bubblewrap_works():
        assert lines[0] == b"False"  # the test suite's own file is not there
    if os.getuid() == 0 and sandbox.bubblewrap_works():
        assert int(lines[1]) == sandbox.SANDBOX_UID  # slot 0, never root


def test_the_per_check_limit_stops_a_silent_run(tmp_path: Path) -> None:
    result, _ = _run("print('first', flush=True)\nwhile True: pass\n", tmp_path,
                     wall=30.0, per_line=2.0)
    assert result.reason is not None and "one check ran longer" in result.reason
    assert result.seconds < 10


def test_without_bubblewrap_the_run_goes_on_and_says_what_it_lacks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    result, lines = _run("import tempfile, os\n"
                         "f = tempfile.NamedTemporaryFile(); f.write(b'x'); f.flush()\n"
                         "print('wrote', os.path.dirname(f.name))\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert lines and lines[0].startswith(b"wrote ")
    assert not os.path.exists(lines[0].split(b" ", 1)[1].decode())  # its scratch is gone
    assert not any(layer.startswith(("filesystem", "pid (", "network")) for layer in result.layers)
    assert {"filesystem", "network", "pid"} <= set(sandbox.missing_layers())


# ----------------------------------------------------------------------------- whole-run limits
def _needs_cgroups() -> None:
    reason = machine_lacks_cgroups()
    if reason:
        pytest.skip(f"this machine cannot limit a whole run: {reason}")


MIB = 2**20
HOARD = ("import os\nfds = []\n"
         "for i in range({n}):\n"
         "    fd = os.memfd_create('hoard')\n    os.ftruncate(fd, 32 * 2**20)\n"
         "    for k in range(32): os.pwrite(fd, b'x' * 2**20, k * 2**20)\n"
         "    fds.append(fd)\n"
         "print('held', len(fds) * 32, flush=True)\n")


def test_memfd_pages_count_towards_the_runs_memory(tmp_path: Path) -> None:
    """1 GiB of memfd pages (no address space: RLIMIT_AS never sees them) stop a run limited
    to 256 MiB, with a reason; its group held no more than the limit, and is gone."""
    _needs_cgroups()
    result, lines = _run(HOARD.format(n=32), tmp_path, memory=256 * MIB, wall=20.0)
    assert lines == [], lines  # it never got to hold them all
    assert result.reason == ("stopped: more than 256 MiB of memory (shared memory and files "
                             "in /tmp included)"), (result.reason, result.stderr)
    assert result.memory_peak is not None and result.memory_peak <= 256 * MIB
    assert any(layer.startswith("memory cgroup") for layer in result.layers)
    assert result.cgroups and not any(os.path.exists(group) for group in result.cgroups)


def test_a_run_reports_the_memory_it_held(tmp_path: Path) -> None:
    _needs_cgroups()
    result, lines = _run(HOARD.format(n=3), tmp_path, memory=256 * MIB)
    assert lines == [b"held 96"] and result.reason is None, result.stderr
    assert result.memory_peak is not None and 96 * MIB <= result.memory_peak <= 256 * MIB


def test_dev_shm_is_a_bounded_tmpfs_even_without_cgroups(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not sandbox.bubblewrap_works():
        pytest.skip("no bubblewrap here: the run has no private /dev/shm to bound")
    monkeypatch.setattr(sandbox, "_open_cgroups", lambda limits, slot: None)
    code = ("n = 0\ntry:\n    with open('/dev/shm/fill', 'wb') as f:\n"
            "        for _ in range(300): f.write(b'x' * 2**20); n += 1\n"
            "except OSError as e:\n    print(n, e.errno, flush=True)\n")
    result, lines = _run(code, tmp_path, tmp_size=48 * MIB, file_size=512 * MIB)
    assert result.returncode == 0, result.stderr
    assert lines and int(lines[0].split()[0]) <= 48 and int(lines[0].split()[1]) == 28  # ENOSPC
    assert not any(layer.startswith(("memory cgroup", "cpu share", "pids cgroup"))
                   for layer in result.layers)  # the run had none: its report says so


def test_without_bubblewrap_the_cgroup_ends_what_left_the_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No PID namespace: a daemon in a new session would outlive the run, but not its group."""
    _needs_cgroups()
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    code = ("import subprocess, sys\n"
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], "
            "start_new_session=True)\nprint(p.pid, flush=True)\n")
    result, lines = _run(code, tmp_path)
    daemon = int(lines[0])
    try:
        assert result.returncode == 0, result.stderr
        assert not alive(daemon)
        assert result.cgroups and not any(os.path.exists(group) for group in result.cgroups)
    finally:
        if alive(daemon):
            os.kill(daemon, signal.SIGKILL)


def test_layers_claim_only_what_the_run_got(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose groups could not be made says so, and ``make isolation`` names each
    missing group with its reason."""
    failed = cgroups.Run({}, 0, {"memory": "cannot make a cgroup in /x: Permission denied"})
    monkeypatch.setattr(cgroups, "open_run", lambda *a, **k: failed)
    result, _ = _run("print('ok')", tmp_path)
    assert result.returncode == 0 and result.cgroups == []
    assert not any("cgroup" in layer for layer in result.layers)
    monkeypatch.setattr(cgroups, "probe", lambda: ((cgroups.CPU, cgroups.PIDS), (
        ("memory", "cannot make a cgroup in /x: Permission denied"),)))
    assert cgroups.MEMORY not in sandbox.layers() and cgroups.CPU in sandbox.layers()
    missing = sandbox.missing_layers()
    assert f"{cgroups.MEMORY}: cannot make a cgroup in /x: Permission denied" in missing
    assert any(m.startswith("memory of the whole run") for m in missing)


def test_a_machine_with_cgroups_uses_them(tmp_path: Path) -> None:
    _needs_cgroups()
    result, _ = _run("print('ok')", tmp_path)
    assert {cgroups.MEMORY, cgroups.CPU} <= set(result.layers), sandbox.missing_layers()
    assert {cgroups.MEMORY, cgroups.CPU} <= set(sandbox.layers())


def test_cgroup_v2_limits_are_written_in_a_delegated_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cgroup v2 (not on this project's machines): the run's folder is made in the delegated
    cgroup named by TINYTORCH_GRADING_CGROUP, with memory.max, cpu.max, cpu.weight, pids.max.
    A plain folder stands for the cgroupfs: only the files written are checked."""
    delegated = tmp_path / "delegated"
    delegated.mkdir()
    (delegated / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    monkeypatch.setenv(cgroups.ENV_PARENT, str(delegated))
    monkeypatch.setattr(cgroups, "_mounts", lambda: [("cgroup2", "/", tmp_path, {"rw"})])
    monkeypatch.setattr(cgroups, "_own_paths", lambda: {"": "/"})
    run = cgroups.open_run(1, memory=300 * MIB, cores=0.5, processes=40)
    assert run.missing == {} and run.layers == [cgroups.MEMORY, cgroups.CPU, cgroups.PIDS]
    folders = {folder for _, folder in run.folders.values()}
    assert len(folders) == 1
    (folder,) = folders
    assert folder.parent == delegated and folder.name.startswith("slot-1-")
    assert (folder / "memory.max").read_text() == str(300 * MIB)
    assert (folder / "cpu.max").read_text() == "50000 100000"
    assert (folder / "cpu.weight").read_text() == "100"
    assert (folder / "pids.max").read_text() == "40"
    assert (delegated / "cgroup.subtree_control").read_text() == "+pids"  # the last one written
    assert run.join_files() == [os.fsencode(folder / "cgroup.procs")]


def test_a_long_line_arrives_whole_within_the_limit(tmp_path: Path) -> None:
    """A 64 MiB line is read in place (the buffer once re-split on every read grew quadratic:
    such a line never arrived within a 20 s limit)."""
    code = "import sys; sys.stdout.write('x' * (64 * 2**20) + '\\nend\\n'); sys.stdout.flush()"
    result, lines = _run(code, tmp_path, wall=20.0)
    assert result.reason is None, result.reason
    assert [len(line) for line in lines] == [64 * 2**20, 3]


def test_a_run_whose_reader_fails_is_ended_not_orphaned(tmp_path: Path) -> None:
    """If handling a line raises (the grader ran out of memory, say), the sandboxed process and
    everything it started end with the run all the same."""
    folder = Path(sandbox.tempfile_dir())
    code = "import time\nprint('first', flush=True)\ntime.sleep(60)\n"

    def explode(line: bytes) -> bool:
        raise MemoryError("the grader ran out of memory")
    try:
        with pytest.raises(MemoryError):
            sandbox.run(folder, code, stdin=b"", on_line=explode,
                        limits=sandbox.Limits(wall=30.0))
    finally:
        os.rmdir(folder)
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit()
                 and b"time.sleep(60)" in _cmdline(p)]
    assert leftovers == []


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""
