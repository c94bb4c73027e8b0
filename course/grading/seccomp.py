"""The system calls a submission's sandbox may not make: a seccomp filter bubblewrap loads.

Student code trains a numpy model; it never needs the internet, the kernel's keyrings, to
trace or read another process, to load BPF programs, to mount or to make namespaces. Each of
those is a way past the run's limits: TCP and UDP buffers over the sandbox's own loopback are
not charged to a version-1 memory cgroup (one run held 5.4 GB of the host's memory that way); a
keyring outlives the run and the next submission in the same slot could read it; the rest are
the usual ways out of a container. The filter (built with libseccomp, through ``pyseccomp``,
with Docker's default profile as the anchor for what to deny) answers each such call with an
error, so the student's code sees an exception, not a killed run:

* ``socket`` for any family but ``AF_UNIX`` (no internet, netlink or packet sockets: nothing
  the sandbox's loopback could buffer; ``multiprocessing`` keeps its Unix socket pairs);
* the keyring calls, ``ptrace`` and ``process_vm_*``, ``bpf``, ``userfaultfd``,
  ``perf_event_open``, ``io_uring_*``, mounts and every ``fs*`` mount call, ``unshare``,
  ``setns``, ``clone`` with a namespace flag (``clone3``, whose flags a filter cannot read,
  answers ``ENOSYS`` so that the C library falls back to ``clone``), and the calls that reach
  the kernel as a whole (modules, ``kexec``, ``reboot``, clocks, swap, accounting).

Calls of another architecture's ABI (i386 through ``int 0x80``, x32) kill the run: libseccomp's
filter admits the native architecture only.
"""

from __future__ import annotations

import errno
import socket
import tempfile
from functools import cache

#: Calls answered with EPERM whatever their arguments.
DENIED = (
    "add_key", "request_key", "keyctl",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "bpf", "userfaultfd", "perf_event_open",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "open_by_handle_at", "name_to_handle_at",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "vhangup",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "iopl", "ioperm", "lookup_dcookie", "uselib", "personality",
)

#: ``clone`` flags that make a namespace (linux/sched.h).
NAMESPACE_FLAGS = {"CLONE_NEWNS": 0x00020000, "CLONE_NEWCGROUP": 0x02000000,
                   "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000,
                   "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000,
                   "CLONE_NEWNET": 0x40000000, "CLONE_NEWTIME": 0x00000080}

#: What the layer is called in a report's isolation layers.
LAYER = ("system calls (seccomp: no internet, netlink or packet sockets, keyrings, ptrace, "
         "bpf, mounts or namespaces)")


@cache
def program() -> bytes:
    """The filter, compiled to the BPF program bubblewrap's ``--seccomp FD`` reads. Raises
    ``OSError`` naming libseccomp when the library is missing."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as error:  # pyseccomp loads libseccomp.so.2 on import
        raise OSError(f"the sandbox's seccomp filter needs libseccomp (Debian: libseccomp2) "
                      f"and pyseccomp: {error}") from error
    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED:
        try:
            rules.add_rule(denied, name)
        except (ValueError, OSError):  # not a call of this architecture (iopl on arm64)
            continue
    rules.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket",
                   seccomp.Arg(0, seccomp.NE, socket.AF_UNIX))
    for flag in NAMESPACE_FLAGS.values():
        rules.add_rule(denied, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as sink:
        rules.export_bpf(sink)
        sink.seek(0)
        return sink.read()

def works() -> bool:
    """Whether this machine can build the filter."""
    try:
        program()
    except OSError:
        return False
    return True
