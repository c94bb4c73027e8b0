"""Whether this machine can give a sandboxed run control groups, read from the machine itself
(never from ``course.grading.sandbox``, which must use them wherever they exist): the tests of
per-run limits skip, with this reason, only where it cannot."""

from __future__ import annotations

import os
from pathlib import Path


def machine_lacks_cgroups() -> str | None:
    """Why a run here cannot have a memory cgroup of its own; None when it can."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "no Linux control groups on this system"
    for line in mounts:
        before, _, after = line.partition(" - ")
        fields, rest = before.split(), after.split()
        if len(rest) < 3 or len(fields) < 5:
            continue
        point = Path(fields[4])
        if rest[0] == "cgroup" and "memory" in rest[2].split(","):
            mine = [e.split(":", 2)[2] for e in own if "memory" in e.split(":")[1].split(",")]
            folder = point / mine[0].lstrip("/") if mine else point
            if os.access(folder, os.W_OK):
                return None
            return f"the memory cgroup {folder} is not writable by uid {os.getuid()}"
        if rest[0] == "cgroup2":
            try:
                if "memory" in (point / "cgroup.controllers").read_text().split():
                    return None
            except OSError:
                pass
    return "no cgroup memory controller is mounted"


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
