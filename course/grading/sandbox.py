"""Run untrusted code (a student's notebook) with only what it needs, and nothing that lasts.

    python -m course.grading.sandbox   # the isolation layers this machine provides (make isolation)

Layers, each used where the machine allows it and reported by name:

* ``filesystem``: bubblewrap builds a new root holding the system's ``/usr``, the Python
  installation and this environment's site-packages, read-only, plus one private folder (the
  student's code and the released packages, read-only), an empty ``/tmp`` and ``/dev/shm``,
  each a tmpfs of bounded size (``Limits.tmp_size``). No source notebook, reference,
  gradebook, other submission or instructor repository exists in it.
* ``network``: a network namespace of its own: no route out, and the host's loopback services
  are unreachable.
* ``pid``: a PID namespace: nothing the code starts (a detached daemon included) outlives the
  run; ``--die-with-parent`` ends it with the grader.
* ``unprivileged uid``: when the grader is root, the code runs as a uid of its own per parallel
  slot (61000 + slot) with no capabilities and no-new-privs; otherwise as the grader's own uid.
* ``limits``: per process, CPU seconds, address space, file size and open files (rlimits), and
  processes (RLIMIT_NPROC, which counts the slot's uid); per run, the caller's wall-clock
  deadline and output cap, enforced from outside.
* ``memory cgroup``, ``cpu share``, ``pids cgroup`` (``course.grading.cgroups``): limits for the
whole
  run, whatever its processes, uids and sessions. The run's first process joins a control
  group of its own before anything of the run executes (bubblewrap's cgroup namespace then
  roots the run's view there), and the group is emptied and removed when the run ends.
  ``Limits.memory`` holds everything the run charges together: its processes' pages, memfd,
  shared memory, ``/tmp`` and ``/dev/shm``; past it the kernel's OOM killer ends a process of
  this run only, and the run is stopped with the reason "more than N MiB of memory (shared
  memory and files in /tmp included)". Every slot has the same CPU weight and a quota of
  ``Limits.cores`` cores, so a run that forks many ``setsid`` children (each of which would
  otherwise be a scheduling autogroup of its own, an equal share of the machine) slows its
  neighbour by no more than one slot's share. ``Limits.processes`` bounds its processes and
  threads, of any uid.

Without bubblewrap (macOS, a hub that forbids user namespaces) the code still runs, in a
private temporary folder with the rlimits, a new session and the deadline (and the control
groups where there are some: they then also end a daemon that left the run's session).
Without control groups (macOS, an unprivileged container, a cgroup v2 grader without a
delegated subtree) memory is limited per process only (memfd and shared memory pages are not
counted; ``/tmp`` and ``/dev/shm`` stay bounded inside bubblewrap) and a run's sessions each get
a CPU share. Every result says which layers that run really had, so a report never claims
protection it did not have; ``python -m course.grading.sandbox`` lists the missing ones with the
reason.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO

from course.grading import cgroups, seccomp

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
SANDBOX_UID = 61000  # + slot: one uid per parallel sandbox, so process limits do not mix
INSIDE = "/sandbox"  # where the private folder appears inside


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use. ``wall`` is enforced by the caller's clock."""

    wall: float = 60.0  # seconds for the whole run
    per_line: float = 30.0  # seconds between two lines of output (one check's observation)
    cpu: int = 120  # CPU seconds of each process (all its threads)
    # bytes of memory: the whole sandbox's (memory cgroup: processes, shared memory, memfd,
    # /tmp and /dev/shm together) and each process's address space (rlimit)
    memory: int = 3 * 2**30
    cores: float = 1.0  # CPU a run may use at once (cpu cgroup quota), beside its equal share
    file_size: int = 64 * 2**20  # bytes per file written
    tmp_size: int = 256 * 2**20  # bytes of /tmp
    processes: int = 64
    open_files: int = 256
    output: int = 256 * 2**20  # bytes read from stdout before the run is stopped


DEFAULT_LIMITS = Limits()


@dataclass
class Result:
    """How a run ended. ``reason`` is None for a normal exit, else what stopped it."""

    returncode: int | None
    reason: str | None
    seconds: float
    stderr: bytes = b""
    layers: list[str] = field(default_factory=list)
    memory_peak: int | None = None  # bytes the whole run held at most (memory cgroup only)
    cgroups: list[str] = field(default_factory=list)  # the run's groups (removed by now)
    # the first bytes of stdout nobody read when the run was stopped (at most UNREAD): what
    # the run said before it was stopped, though the stop came before it was read
    unread: bytes = b""


#: Bytes of a stopped run's unread stdout kept in ``Result.unread``.
UNREAD = 4096


def site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def _python() -> str:
    return sys.executable


def _ancestors(path: Path) -> list[Path]:
    return list(reversed([p for p in path.parents if str(p) != "/"]))


def _bwrap_argv(folder: Path, slot: int, limits: Limits) -> list[str]:
    base = Path(os.path.realpath(sys.base_prefix))
    venv = Path(sys.prefix)
    argv = [BWRAP, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if os.getuid() != 0:
        argv += ["--unshare-user", "--cap-drop", "ALL"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    # /tmp first: a Python or environment that lives under /tmp is bound over it afterwards
    argv += ["--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/usr"), Path("/tmp")}
    for target in (base, venv):
        for parent in _ancestors(target):
            if parent not in made:
                made.add(parent)
                argv += ["--perms", "0755", "--dir", str(parent)]
        argv += ["--ro-bind", str(target), str(target)]
    argv += ["--ro-bind", str(folder), INSIDE,
             "--proc", "/proc", "--dev", "/dev",
             # /dev/shm bounded like /tmp (bubblewrap's /dev is a tmpfs as large as the host's)
             "--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/dev/shm",
             "--chdir", INSIDE, "--clearenv"]
    for key, value in _environment().items():
        argv += ["--setenv", key, value]
    argv.append("--")
    if os.getuid() == 0:
        uid = str(SANDBOX_UID + slot)
        argv += [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--no-new-privs", "--bounding-set=-all", "--inh-caps=-all", "--"]
    return argv


def _environment() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "NBGRADER_EXECUTION": "autograde", "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _set_limits(limits: Limits, slot: int, drop: bool,
                join: list[bytes] | None = None) -> Callable[[], None]:
    def apply() -> None:
        if join:  # the run's control groups, before anything of the run executes
            cgroups.join(join)
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if os.getuid() == 0:  # the uid of this slot runs nothing else: its count is the run's
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
        if drop and os.getuid() == 0 and _can_drop():  # no bubblewrap: still not root
            os.setgroups([])
            os.setgid(SANDBOX_UID + slot)
            os.setuid(SANDBOX_UID + slot)
    return apply


@lru_cache(maxsize=1)
def _can_drop() -> bool:
    """Whether this interpreter still starts as the sandbox uid (without bubblewrap the uid
    sees the real filesystem, where the Python installation may sit in root's home)."""
    def drop() -> None:
        os.setgroups([])
        os.setgid(SANDBOX_UID)
        os.setuid(SANDBOX_UID)
    try:
        done = subprocess.run([_python(), "-I", "-S", "-c", "pass"], preexec_fn=drop,
                              capture_output=True, timeout=30, check=False, cwd="/")
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@lru_cache(maxsize=1)
def bubblewrap_works() -> bool:
    """Whether bubblewrap can build the sandbox here (installed, namespaces allowed)."""
    if not os.path.exists(BWRAP) or (os.getuid() == 0 and not os.path.exists(SETPRIV)):
        return False
    probe = Path(tempfile_dir())
    try:
        argv = _bwrap_argv(probe, 0, Limits()) + [_python(), "-I", "-S", "-c", "pass"]
        done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def tempfile_dir() -> str:
    """A private folder the sandboxed uid can read (0755, files 0644)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="tinytorch-sandbox-")
    os.chmod(folder, 0o755)
    return folder


def _base_layers() -> list[str]:
    active = ["limits per process (cpu seconds, address space, file size, open files) and per "
              "run (output, wall clock)",
              "new session"]
    if bubblewrap_works():
        active += ["filesystem (bubblewrap: private root, read-only code, bounded /tmp and "
                   "/dev/shm)",
                   "network (own namespace, host loopback unreachable)",
                   "pid (own namespace: nothing outlives the run)"]
        if seccomp.works():
            active.append(seccomp.LAYER)
    if os.getuid() == 0 and (bubblewrap_works() or _can_drop()):
        active.append("unprivileged uid (61000 + slot, no capabilities, no-new-privs)")
        active.append("processes (per-slot uid)")
    return active


def layers() -> list[str]:
    """The isolation layers a run gets on this machine, by name (a run's own ``Result.layers``
    names those it really got)."""
    return _base_layers() + list(cgroups.probe()[0])


def missing_layers() -> list[str]:
    """The layers this machine cannot give a run, each with the reason."""
    missing = []
    if not bubblewrap_works():
        missing += ["filesystem", "network", "pid"]
    elif not seccomp.works():
        missing.append("system calls: no seccomp filter (install libseccomp2 and pyseccomp), "
                       "so the run may open internet sockets on its own loopback, whose "
                       "buffers a version-1 memory cgroup does not count, and keep keyrings")
    cgroup_missing = dict(cgroups.probe()[1])
    if os.getuid() != 0 and "pids" in cgroup_missing:
        missing.append("processes limit (needs a dedicated uid: run the grader as root, or a "
                       "pids cgroup)")
    elif os.getuid() == 0 and not (bubblewrap_works() or _can_drop()):
        missing.append("unprivileged uid (the sandbox uid cannot reach this Python)")
    missing += cgroups.missing()
    if "memory" in cgroup_missing:
        missing.append("memory of the whole run: only each process's address space is limited, "
                       "so memfd and shared memory are not counted (/tmp and /dev/shm are "
                       "bounded tmpfs inside bubblewrap only)")
    if "cpu" in cgroup_missing:
        missing.append("cpu share: a run that starts many sessions (setsid) takes more than its "
                       "slot's share of the machine")
    return missing


def memory_reason(limits: Limits) -> str:
    return (f"stopped: more than {limits.memory // 2**20} MiB of memory (shared memory and "
            "files in /tmp included)")


def _open_cgroups(limits: Limits, slot: int) -> cgroups.Run | None:
    if not sys.platform.startswith("linux"):
        return None
    run = cgroups.open_run(slot, memory=limits.memory, cores=limits.cores,
                           processes=limits.processes)
    return run if run.folders else None


def run(folder: Path, code: str, *, stdin: bytes, on_line: Callable[[bytes], bool],
        limits: Limits = DEFAULT_LIMITS, slot: int = 0) -> Result:
    """Run ``python -c code`` with ``folder`` as its working directory (read-only, at
    ``/sandbox`` inside bubblewrap), feed it ``stdin``, and hand each line it writes to stdout
    to ``on_line`` (which returns False to stop the run). Stops at ``limits.wall`` seconds,
    ``limits.output`` bytes or ``limits.memory`` bytes of the whole run (where a memory cgroup
    is available); everything it started ends with it."""
    isolated = bubblewrap_works()
    python = [_python(), "-I", "-S", "-c", code]
    scratch, rules = None, None
    if isolated:
        argv, cwd, env = _bwrap_argv(folder, slot, limits) + python, None, None
        if seccomp.works():  # bubblewrap loads it just before it runs the student's Python
            rules = os.memfd_create("tinytorch-seccomp", os.MFD_CLOEXEC)
            os.write(rules, seccomp.program())
            os.lseek(rules, 0, os.SEEK_SET)
            argv[1:1] = ["--seccomp", str(rules)]
    else:  # no private /tmp: a scratch folder of the run's own, removed afterwards
        scratch = tempfile_dir()
        if os.getuid() == 0 and _can_drop():
            os.chown(scratch, SANDBOX_UID + slot, SANDBOX_UID + slot)
        argv, cwd = python, str(folder)
        env = {**_environment(), "HOME": scratch, "TMPDIR": scratch}
    groups = _open_cgroups(limits, slot)
    start = time.monotonic()
    popen = dict(cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, start_new_session=True,
                 pass_fds=(rules,) if rules is not None else ())
    try:
        process = subprocess.Popen(  # noqa: S603 - argv built above, no shell
            argv, **popen, preexec_fn=_set_limits(limits, slot, drop=not isolated,
                                                   join=groups.join_files() if groups else None))
    except subprocess.SubprocessError:
        if groups is None:
            raise
        groups.remove()  # the groups could not be joined: run without them, and say so
        groups = None
        process = subprocess.Popen(  # noqa: S603 - argv built above, no shell
            argv, **popen, preexec_fn=_set_limits(limits, slot, drop=not isolated))
    except BaseException:
        if groups is not None:
            groups.remove()
        raise
    finally:
        if rules is not None:
            os.close(rules)  # bubblewrap has its own descriptor, or no run started

    def over_memory() -> str | None:
        return memory_reason(limits) if groups is not None and groups.oom_kills() else None

    peak, names, stderr, reason, unread = None, [], b"", None, b""
    try:
        reason = _pump(process, stdin, on_line, limits, start, over_memory)
    finally:  # whatever happened here (a MemoryError reading, an interrupt), the run ends
        _kill(process)
        unread = _unread(process.stdout)
        if groups is not None:
            reason = reason or over_memory()
            peak = groups.peak()
            names = [str(f) for f in dict.fromkeys(f for _, f in groups.folders.values())]
            groups.remove()  # whatever is left in the run's groups (a process that left the
            # session without bubblewrap's PID namespace) is killed here
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        try:
            stderr = process.stderr.read(64 * 1024) if process.stderr else b""
        finally:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
    got = _base_layers() + (groups.layers if groups is not None else [])
    return Result(process.returncode, reason, time.monotonic() - start, stderr, got, peak,
                  names, unread)


def _unread(stream: IO[bytes] | None) -> bytes:
    """What the ended run wrote to ``stream`` and nobody read, up to ``UNREAD`` bytes, without
    waiting for more: a run stopped (its time, its memory) before its first line was read
    still said what it said (``course.grading.submission`` asks whether its code began)."""
    if stream is None:
        return b""
    try:
        os.set_blocking(stream.fileno(), False)
        return os.read(stream.fileno(), UNREAD) or b""
    except OSError:  # nothing there (BlockingIOError), or the pipe is gone
        return b""


def _pump(process: subprocess.Popen[bytes], stdin: bytes, on_line: Callable[[bytes], bool],
          limits: Limits, start: float,
          stopped: Callable[[], str | None] = lambda: None) -> str | None:
    assert process.stdin and process.stdout and process.stderr
    try:
        process.stdin.write(stdin)
        process.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    selector.register(process.stderr, selectors.EVENT_READ)
    pending, total, stderr_kept = bytearray(), 0, 0  # the line being read, so far
    open_streams = 2
    last_line = last_look = time.monotonic()
    while open_streams:
        now = time.monotonic()
        left = limits.wall - (now - start)
        if left <= 0:
            return f"stopped at the time limit of {limits.wall:g} s"
        if now - last_line > limits.per_line:
            return f"stopped: one check ran longer than its limit of {limits.per_line:g} s"
        if now - last_look >= 0.2:  # a limit the kernel enforced (the run's memory)
            last_look = now
            if (outside := stopped()) is not None:
                return outside
        ready = selector.select(timeout=min(left, 0.2))
        if not ready and process.poll() is not None:
            break  # the run's process is gone and what it wrote is read: a process it left
            # behind (outside bubblewrap's PID namespace) may hold the pipes, not the run
        for key, _ in ready:
            chunk = os.read(key.fd, 1 << 20)
            if not chunk:
                selector.unregister(key.fileobj)
                open_streams -= 1
                continue
            if key.fileobj is process.stderr:
                stderr_kept += len(chunk)  # read and dropped: a flood cannot block the run
                continue
            total += len(chunk)
            if total > limits.output:
                return f"stopped: more than {limits.output // 2**20} MiB of output"
            if b"\n" not in chunk:  # a long line grows in place: no copy of what came before
                pending += chunk
                continue
            first, *lines, rest = chunk.split(b"\n")
            pending += first
            lines.insert(0, bytes(pending))
            pending = bytearray(rest)
            last_line = time.monotonic()
            for line in lines:
                if not on_line(line):
                    return None
    try:
        process.wait(timeout=max(0.1, limits.wall - (time.monotonic() - start)))
    except subprocess.TimeoutExpired:
        return f"stopped at the time limit of {limits.wall:g} s"
    return None


def _kill(process: subprocess.Popen[bytes]) -> None:
    """End the run and everything in its session (bubblewrap's PID namespace ends the rest)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
    process.wait()


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description="Print the isolation layers a graded run gets on this "
                            "machine, and what is missing.").parse_args(argv)
    print(f"isolation of a graded run on this machine (grader uid {os.getuid()}):")
    for layer in layers():
        print(f"  active:  {layer}")
    for layer in missing_layers():
        print(f"  missing: {layer}")
    if not bubblewrap_works():
        print("install bubblewrap (Debian: apt-get install bubblewrap) and allow user "
              "namespaces for the filesystem, network and pid layers", file=sys.stderr)
    if cgroups.probe()[1]:
        print("grade as root on a host with cgroup v1 controllers mounted read-write, or point "
              f"{cgroups.ENV_PARENT} at a delegated cgroup v2 folder (memory, cpu and pids "
              "enabled in its cgroup.subtree_control), for the whole-run limits",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
