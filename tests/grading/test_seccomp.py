"""The sandbox's seccomp filter (course/grading/seccomp.py): a run cannot open an internet,
netlink or packet socket (whose buffers on the sandbox's own loopback a v1 memory cgroup does
not count), touch a keyring (which would outlive the run, for the next submission in its slot),
trace, load BPF, make a namespace or watch performance counters; what student code needs
(Unix socket pairs, fork, threads) still works. Each call is made with ctypes from inside a
real bubblewrap sandbox; the same calls made without the filter succeed or reach the kernel,
so each assertion can fail."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from course.grading import sandbox, seccomp

pytestmark = pytest.mark.skipif(not sandbox.bubblewrap_works(),
                                reason="NOT TESTED: bubblewrap does not work here")

#: x86_64 system call numbers of the calls made through ctypes' syscall().
CALLS = """
import ctypes, errno, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(number, *args):
    done = libc.syscall(number, *args)
    return "ok" if done >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
said = {}
for family in ("AF_INET", "AF_INET6", "AF_NETLINK"):
    kind = socket.SOCK_RAW if family == "AF_NETLINK" else socket.SOCK_STREAM
    try:
        socket.socket(getattr(socket, family), kind).close()
        said[family] = "ok"
    except OSError as error:
        said[family] = errno.errorcode.get(error.errno, "?")
said["keyctl"] = call(250, 0, -3, 0)
said["add_key"] = call(248, b"user", b"tinytorch", b"left for the next run", 21, -3)
said["bpf"] = call(321, 0, 0, 0)
said["perf_event_open"] = call(298, 0, 0, -1, -1, 0)
said["unshare"] = call(272, 0x10000000)
left, right = socket.socketpair()
left.sendall(b"x")
said["socketpair"] = "ok" if right.recv(1) == b"x" else "no"
child = os.fork()
if child == 0:
    os._exit(7)
said["fork"] = "ok" if os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 7 else "no"
seen = []
thread = threading.Thread(target=seen.append, args=(1,))
thread.start(); thread.join()
said["thread"] = "ok" if seen == [1] else "no"
print(repr(said))
"""

DENIED = ("AF_INET", "AF_INET6", "AF_NETLINK", "keyctl", "add_key", "bpf", "perf_event_open",
          "unshare")
NEEDED = ("socketpair", "fork", "thread")


def _calls(tmp_path: Path) -> tuple[dict[str, str], list[str]]:
    tmp_path.chmod(0o755)
    lines: list[bytes] = []
    result = sandbox.run(tmp_path, CALLS, stdin=b"", on_line=lambda line: lines.append(line)
                         or True)
    assert result.returncode == 0 and lines, (result.reason, result.stderr[-2000:])
    return ast.literal_eval(lines[-1].decode()), result.layers


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the calls' numbers are x86_64's")
def test_a_run_cannot_make_the_calls_student_code_never_needs(tmp_path: Path) -> None:
    said, layers = _calls(tmp_path)
    assert {name: said[name] for name in DENIED} == {
        **{family: "EAFNOSUPPORT" for family in ("AF_INET", "AF_INET6", "AF_NETLINK")},
        **{name: "EPERM" for name in DENIED[3:]}}, said
    assert {name: said[name] for name in NEEDED} == dict.fromkeys(NEEDED, "ok"), said
    assert seccomp.LAYER in layers


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the calls' numbers are x86_64's")
def test_without_the_filter_the_same_calls_reach_the_kernel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "works", lambda: False)
    said, layers = _calls(tmp_path)
    assert said["AF_INET"] == "ok" and said["add_key"] == "ok", said
    assert said["bpf"] != "EPERM" and said["perf_event_open"] != "EPERM", said
    assert seccomp.LAYER not in layers


def test_the_filter_is_a_bpf_program_of_whole_instructions() -> None:
    program = seccomp.program()
    assert program and len(program) % 8 == 0  # struct sock_filter: 8 bytes an instruction
