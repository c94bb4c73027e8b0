"""Limits for a whole sandboxed run, from Linux control groups (used by ``course.grading.sandbox``).

An rlimit holds one process: a run that spreads its memory over memfds, ``/dev/shm`` or a
tmpfs, or its CPU over many ``setsid`` children (each its own scheduling autogroup), escapes
it. A control group holds every process of the run together, whatever its uid or session:

* ``memory``: everything the run's processes charge (their pages, page cache, tmpfs, shared
  memory and memfd pages) under one limit; past it the kernel's OOM killer ends a process of
  this run only, and the sandbox stops the run with a reason.
* ``cpu``: the same weight for every slot and a quota of ``Limits.cores`` cores, so any
  number of processes and sessions inside shares one slot's part of the machine.
* ``pids``: at most ``Limits.processes`` processes and threads in the run, whatever their uid.

Each run gets its own group, ``<the grader's own cgroup>/tinytorch-grading/slot-<slot>-<pid>-
<n>``, made before the run starts; the run's first process joins it before it executes
anything (bubblewrap's cgroup namespace then roots its view there, so nothing inside can move
out), and the group is emptied (every process left in it killed) and removed afterwards.

cgroup v1 (one hierarchy per controller, as on this project's grading machines) is used and
tested. cgroup v2 (``memory.max``, ``cpu.weight``, ``cpu.max``, ``pids.max``) is used where its
controllers are mounted and the grader may hand them to a subtree: a grader whose own cgroup
holds processes (the usual case) cannot, so point ``TINYTORCH_GRADING_CGROUP`` at a delegated,
empty cgroup (for instance one made by ``systemd-run --scope -p Delegate=yes``). Where none of
this is possible (macOS, an unprivileged container, a read-only cgroupfs) nothing is made, and
``missing()`` says which layer is missing and why.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

GROUP = "tinytorch-grading"
ENV_PARENT = "TINYTORCH_GRADING_CGROUP"  # a delegated cgroup v2 folder to make runs' groups in
SHARES = 1024  # cgroup v1 cpu.shares of one slot (the kernel's default weight)
WEIGHT = 100  # cgroup v2 cpu.weight of one slot (its default)
PERIOD = 100_000  # microseconds of a CPU quota period

MEMORY = "memory cgroup (whole sandbox: processes, shared memory, memfd and tmpfs together)"
CPU = "cpu share (cgroup: one equal share and a core quota per slot, setsid gains nothing)"
PIDS = "pids cgroup (processes and threads of the whole sandbox, any uid)"
LAYERS = {"memory": MEMORY, "cpu": CPU, "pids": PIDS}
CONTROLLERS = tuple(LAYERS)

_counter = itertools.count()


@dataclass(frozen=True)
class Hierarchy:
    """Where one controller's groups are made: ``version`` 1 or 2, and the folder under which
    this grader's runs get their groups (``<own cgroup>/tinytorch-grading``)."""

    version: int
    parent: Path


def _mounts() -> list[tuple[str, str, Path, set[str]]]:
    """(fstype, root inside the hierarchy, mount point, super options) of every cgroup mount."""
    found = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        before, _, after = line.partition(" - ")
        fields, rest = before.split(), after.split()
        if len(fields) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            point = fields[4].replace("\\040", " ")
            found.append((rest[0], fields[3], Path(point), set(rest[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup per controller (v1), and ``""`` -> its cgroup v2 path."""
    own: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return own
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for name in parts[1].split(",") if parts[1] else [""]:
                own[name] = parts[2]
    return own


def _inside(point: Path, root: str, path: str) -> Path:
    """The folder of cgroup ``path`` in a hierarchy mounted at ``point`` from ``root``."""
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return point / path.lstrip("/")


def hierarchies() -> tuple[dict[str, Hierarchy], dict[str, str]]:
    """Where each controller's groups would be made, and why the others cannot be."""
    found: dict[str, Hierarchy] = {}
    why: dict[str, str] = {}
    if not Path("/proc/self/cgroup").exists():
        return found, {c: "no Linux control groups on this system" for c in CONTROLLERS}
    mounts, own = _mounts(), _own_paths()
    for fstype, root, point, options in mounts:  # cgroup v1: a hierarchy per controller
        for name in CONTROLLERS:
            if fstype == "cgroup" and name in options and name not in found and name in own:
                found[name] = Hierarchy(1, _inside(point, root, own[name]) / GROUP)
    unified = [(root, point) for fstype, root, point, _ in mounts if fstype == "cgroup2"]
    for root, point in unified:  # cgroup v2: the controllers its root makes available
        base = _inside(point, root, own.get("", "/"))
        top = Path(os.environ[ENV_PARENT]) if os.environ.get(ENV_PARENT) else base
        try:
            available = set((top / "cgroup.controllers").read_text().split())
        except OSError:
            continue
        for name in CONTROLLERS:
            if name not in found and name in available:
                found[name] = Hierarchy(2, top if os.environ.get(ENV_PARENT) else top / GROUP)
    for name in CONTROLLERS:
        if name not in found:
            why[name] = (f"no cgroup {name} controller this grader can use is mounted "
                         "(cgroup v1 /sys/fs/cgroup/" + name + ", or cgroup v2 with it enabled)")
    return found, why


@dataclass
class Run:
    """The control groups of one run: made with ``open_run``, removed with ``remove``."""

    folders: dict[str, tuple[int, Path]]  # controller -> (version, folder)
    memory: int
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return [LAYERS[name] for name in CONTROLLERS if name in self.folders]

    def join_files(self) -> list[bytes]:
        """The ``cgroup.procs`` files a process writes its pid into to join (one per folder)."""
        unique = dict.fromkeys(folder for _, folder in self.folders.values())
        return [os.fsencode(folder / "cgroup.procs") for folder in unique]

    def oom_kills(self) -> int:
        """How many processes of this run the kernel's OOM killer ended (or 1 when the group
        is under OOM on a kernel that does not count kills)."""
        if "memory" not in self.folders:
            return 0
        version, folder = self.folders["memory"]
        name = "memory.oom_control" if version == 1 else "memory.events"
        try:
            fields = dict(line.split() for line in (folder / name).read_text().splitlines()
                          if len(line.split()) == 2)
        except (OSError, ValueError):
            return 0
        if "oom_kill" in fields:
            return int(fields["oom_kill"])
        return int(fields.get("under_oom", 0))

    def peak(self) -> int | None:
        """The most memory the run's group held at once, in bytes, if the kernel tells."""
        if "memory" not in self.folders:
            return None
        version, folder = self.folders["memory"]
        try:
            name = "memory.max_usage_in_bytes" if version == 1 else "memory.peak"
            return int((folder / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self) -> set[int]:
        found: set[int] = set()
        for _, folder in self.folders.values():
            try:
                found |= {int(p) for p in (folder / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return found

    def remove(self, deadline: float = 5.0) -> bool:
        """Kill every process left in the run's groups and remove them; True when gone."""
        end = time.monotonic() + deadline
        folders = list(dict.fromkeys(folder for _, folder in self.folders.values()))
        while True:
            for version, folder in self.folders.values():
                if version == 2 and (folder / "cgroup.kill").exists():
                    _write(folder / "cgroup.kill", "1")
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for folder in folders:
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    continue
            folders = [folder for folder in folders if folder.exists()]
            if not folders:
                _remove_parents(self.folders)
                return True
            if time.monotonic() > end:
                return False
            time.sleep(0.02)


def _remove_parents(folders: dict[str, tuple[int, Path]]) -> None:
    """The grading group goes with its last run (it would keep the grader's own cgroup from
    being removed); a run starting meanwhile makes it again."""
    for parent in dict.fromkeys(folder.parent for _, folder in folders.values()):
        if parent.name == GROUP:
            try:
                parent.rmdir()
            except OSError:
                pass  # another run's group is still in it


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _prepare_parent(hierarchy: Hierarchy, name: str, slot: int) -> None:
    parent = hierarchy.parent
    if hierarchy.version == 2 and not os.environ.get(ENV_PARENT):
        _write(parent.parent / "cgroup.subtree_control", f"+{name}")
    parent.mkdir(exist_ok=True)
    if hierarchy.version == 2:
        _write(parent / "cgroup.subtree_control", f"+{name}")
    if hierarchy.version == 1 and name == "cpu":
        # the grading group weighs what its slots would weigh side by side
        current = int((parent / "cpu.shares").read_text())
        if current < SHARES * (slot + 1):
            _write(parent / "cpu.shares", str(SHARES * (slot + 1)))
    _remove_stale(parent)


def _remove_stale(parent: Path) -> None:
    """Groups left by a grader that died before removing them (empty ones only)."""
    try:
        children = [p for p in parent.iterdir() if p.is_dir() and p.name.startswith("slot-")]
    except OSError:
        return
    for child in children:
        parts = child.name.split("-")
        if len(parts) == 4 and parts[2].isdigit() and not _alive(int(parts[2])):
            try:
                child.rmdir()
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _configure(name: str, version: int, folder: Path, *, memory: int, cores: float,
               processes: int) -> None:
    quota = max(1000, int(cores * PERIOD))
    if name == "memory" and version == 1:
        _write(folder / "memory.limit_in_bytes", str(memory))
        if (folder / "memory.memsw.limit_in_bytes").exists():  # swap counted too
            _write(folder / "memory.memsw.limit_in_bytes", str(memory))
    elif name == "memory":
        _write(folder / "memory.max", str(memory))
        if (folder / "memory.swap.max").exists():
            _write(folder / "memory.swap.max", "0")
    elif name == "cpu" and version == 1:
        _write(folder / "cpu.shares", str(SHARES))
        _write(folder / "cpu.cfs_period_us", str(PERIOD))
        _write(folder / "cpu.cfs_quota_us", str(quota))
    elif name == "cpu":
        _write(folder / "cpu.weight", str(WEIGHT))
        _write(folder / "cpu.max", f"{quota} {PERIOD}")
    elif name == "pids":
        _write(folder / "pids.max", str(processes))


def open_run(slot: int, *, memory: int, cores: float, processes: int) -> Run:
    """Make this run's groups with their limits; what cannot be made is in ``missing``."""
    found, missing = hierarchies()
    run = Run({}, memory, dict(missing))
    label = f"slot-{slot}-{os.getpid()}-{next(_counter)}"
    made_v2: Path | None = None
    for name in CONTROLLERS:
        if name not in found:
            continue
        hierarchy = found[name]
        folder = hierarchy.parent / label
        try:
            for attempt in range(3):  # another grader's last run may remove the parent
                try:
                    _prepare_parent(hierarchy, name, slot)
                    if hierarchy.version == 1 or made_v2 is None:
                        folder.mkdir()
                        made_v2 = folder if hierarchy.version == 2 else made_v2
                    break
                except FileNotFoundError:
                    if attempt == 2:
                        raise
            run.folders[name] = (hierarchy.version, folder)
            _configure(name, hierarchy.version, folder, memory=memory, cores=cores,
                       processes=processes)
        except (OSError, ValueError) as error:
            text = error.strerror if isinstance(error, OSError) and error.strerror else error
            run.missing[name] = f"cannot make a cgroup in {hierarchy.parent}: {text}"
            if hierarchy.version == 2 and not os.environ.get(ENV_PARENT):
                run.missing[name] += (" (cgroup v2: point " + ENV_PARENT + " at a delegated "
                                      "cgroup without processes of its own)")
            if name in run.folders:
                _, made = run.folders.pop(name)
                if made not in {f for _, f in run.folders.values()}:
                    try:
                        made.rmdir()
                    except OSError:
                        pass
    return run


def join(files: list[bytes]) -> None:
    """Move the calling process into the run's groups (in the child, before it executes)."""
    pid = str(os.getpid()).encode()
    for path in files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)


@lru_cache(maxsize=1)
def probe() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The cgroup layers this machine gives a run, and the missing ones with the reason:
    a probe group is made, entered by a short process and removed."""
    import subprocess
    import sys

    run = open_run(0, memory=64 * 2**20, cores=1.0, processes=8)
    try:
        if run.folders:
            files = run.join_files()
            try:
                subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True,
                               capture_output=True, timeout=30,
                               preexec_fn=lambda: join(files))
            except (OSError, subprocess.SubprocessError) as error:
                for name in list(run.folders):
                    run.missing[name] = f"a process cannot join its cgroup: {error}"
                run.remove()
                run.folders.clear()
    finally:
        run.remove()
    active = tuple(run.layers) if run.folders else ()
    return active, tuple(sorted(run.missing.items(), key=lambda kv: CONTROLLERS.index(kv[0])))


def missing() -> list[str]:
    """Each cgroup layer this machine cannot give a run, and why."""
    return [f"{LAYERS[name]}: {reason}" for name, reason in probe()[1]]
