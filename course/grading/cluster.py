"""Grading a class on a Dask cluster: the same sandbox and judging, on many machines.

    python -m course.grading.grade a.ipynb b.ipynb ... --cluster tls://HOST:8786
    make autograde CLUSTER=tls://HOST:8786

``DaskCluster(ADDRESS)`` is a runner (``course.grading.batch``): it sends each submission (its
bytes, its hidden seeds, the limits) to a worker of the Dask cluster at ``ADDRESS``
(``dask.distributed``), which runs exactly what a local grading process runs
(``course.grading.process``: the student's code in a bubblewrap sandbox, every check judged
outside it) and returns the same report, as JSON text.
Dask schedules, balances and reschedules; nothing here is a scheduler of its own.

Who may be part of the cluster, and what the grader believes
------------------------------------------------------------
A cluster runs whatever it is sent and hands students' notebooks and hidden seeds to its
workers, so only the course may use it, and what comes back is data:

* **Credentials, not claims.** The grader connects only over mutual TLS with the course's
  certificates (``course.grading.certificates``; ``connect``): the scheduler must prove a
  *scheduler* certificate of the course's CA and run the role gate (``course.grading.roles``,
  which lets only a *worker* certificate join as a worker and only the *grader*'s connect as
  a client). A worker is trusted because it holds a worker certificate; what it reports about
  itself (its sandbox, its code's digest, below) only keeps an honest but broken worker out.
  A plain ``tcp://`` address is refused unless it is loopback or the caller says ``insecure``
  (``--insecure``); a loopback cluster this process starts (``local``) uses throw-away
  certificates.
* **Results are data.** A task returns JSON text; the grader parses it within bounds and checks
  every field it reads (``report_problem``), as it reads a sandbox's lines
  (``course.grading.intake``). The grader's process unpickles nothing its cluster sends but
  plain built-in types (``refuse_unpickling``): Dask's ``deserializers`` (msgpack only, here)
  cover results, but not the errors of a failed task, a result's type, pickled frames or the
  print and warn events workers may send, which Dask unpickles regardless. A worker's answer
  the grader cannot believe, or a task that failed on a worker, makes that submission's report
  "grading failed (grader)", never a score; its classmates go on.

What each worker needs, and gets
--------------------------------
* **The release.** The client stages the released packages once (``submission.packages_folder``)
  and ships them inside a worker plugin (``GradingPlugin``, registered with the scheduler, so
  a worker that joins later receives it too); each worker unpacks them into a folder of its
  own and checks the digest. The worker's own grading code (``checks``, ``course.grading``)
  must be the client's: a worker whose code differs is refused, since it would judge with
  other rules.
* **A working sandbox.** Each worker reports its isolation layers (``sandbox.layers()`` and
  ``missing_layers()``). A worker on which bubblewrap does not work is refused, with a message
  naming it, and never trusted with a submission: tasks need the resource
  ``tinytorch-sandbox``, which only a worker whose sandbox works declares.
* **A slot per sandbox, unique on its host.** Judging runs in a judging process per worker
  thread, started by the worker, which takes a host-wide slot (``course.grading.slots``: a lock
  file, released when the process ends) for its sandboxes' uid and control groups, so several
  workers on one machine, or a worker beside a local ``make autograde``, never share a uid.
* **A time budget that works.** Dask runs tasks in threads, where ``SIGALRM`` (the judging
  deadline of ``budget.Budget``) cannot be received, and the memory and CPU budgets are
  rlimits of a whole process. So judging runs in that judging process's main thread, as in a
  local pool: the budgets hold there, and a submission that kills its judging process (out of
  memory, a crash) gets a report saying so while the worker goes on with a new one. The
  round trip to it costs about a millisecond per submission (``benchmarks/grading.py``).

One submission can only fail itself, on a cluster too: an error of the cluster on one task
becomes that submission's report. A worker that dies takes its running tasks with it; Dask
reschedules them on another worker (up to ``distributed.scheduler.allowed-failures`` times),
with the same seeds, so a task is safe to run twice and the client keeps the first report of
each submission: every student is reported once.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import ipaddress
import json
import math
import os
import pickle
import queue
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from checks.diagnose import printable
from course.assignment.cells import GradedCell
from course.grading import cache, intake, places, process, roles, sandbox, submission
from course.grading import certificates as course_ca
from course.grading.budget import Budget
from course.grading.submission import OnReport, Task

#: The Dask resource a worker declares once its sandbox is known to work: tasks require it.
RESOURCE = "tinytorch-sandbox"
#: Files of the grading code a worker must share with the client (the judge and its rules).
_CODE = ("checks", "course/grading", "course/assignment")


class ClusterError(RuntimeError):
    """The cluster cannot grade (unreachable, or no worker that can be trusted)."""


def grader_code_digest() -> str:
    """The digest of the grading code this process would judge with."""
    root = Path(submission.__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for name in _CODE:
        target = root / name
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
        for path in files:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _archive(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(folder, arcname=".")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- on a worker
_STATE_LOCK = threading.Lock()
_RELEASES: dict[str, Path] = {}  # release digest -> its packages folder on this worker
_STATUS: dict[str, dict[str, Any]] = {}  # release digest -> what setup found


def _entries(folder: Path) -> set[str]:
    """Every entry under ``folder`` (files, folders, links, ``__pycache__`` included), as
    paths relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _unlike(folder: Path, members: set[str], release: str,
            graded: list[GradedCell]) -> str | None:
    """Why the release folder ``folder`` is not the release the archive holds (its entries
    ``members``, its digest ``release``), or None when it is."""
    if _entries(folder) != members:
        return (f"its release folder {folder} holds entries the release does not (bytecode, "
                "links or other files) even after unpacking it again")
    if cache.release_digest(folder, graded) != release:
        return ("the release it received does not match the client's (its packages or graded "
                "cells differ)")
    return None


def _check_worker(release: str, archive: bytes, code: str,
                  graded: list[GradedCell], into: Path,
                  threads: int = 1) -> dict[str, Any]:
    """Stage the release on this worker and say whether it can be trusted to grade."""
    status: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid(),
                              "layers": [], "missing": [], "ok": False, "reason": None}
    try:
        status["layers"] = sandbox.layers()
        status["missing"] = sandbox.missing_layers()
        if not sandbox.bubblewrap_works():
            status["reason"] = (
                "no working sandbox: bubblewrap is missing or cannot create namespaces here "
                f"({sandbox.BWRAP}); install bubblewrap (Debian: apt-get install bubblewrap) "
                "and allow user namespaces. Missing layers: " + "; ".join(status["missing"]))
            return status
        if code != grader_code_digest():
            status["reason"] = ("its grading code (checks, course.grading) differs from the "
                                "client's: install the same version of the course on it")
            return status
        folder = into / release[:32]
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = {os.path.normpath(m.name) for m in tar.getmembers()} - {"."}
        unlike = _unlike(folder, members, release, graded) if folder.is_dir() else "missing"
        if unlike is not None:
            # bytecode, a link or any file the release does not hold, or one of its files
            # changed: Python in the sandbox would read it. Unpacked again from the archive.
            if folder.is_dir():
                shutil.rmtree(folder)
            unpacked = Path(tempfile.mkdtemp(prefix=".unpack-", dir=into))
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.extractall(unpacked, filter="data")
            for path in [unpacked, *unpacked.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            try:
                unpacked.rename(folder)
            except OSError:  # another worker of this host unpacked it meanwhile
                shutil.rmtree(unpacked, ignore_errors=True)
            unlike = _unlike(folder, members, release, graded)
        if unlike is not None:
            status["reason"] = unlike
            return status
        with _STATE_LOCK:
            _RELEASES[release] = folder
            warm = _STARTED < threads
        if warm:  # its judging processes, started now rather than by its first tasks
            for _ in range(threads):
                _IDLE.put(_Judge())
        status["ok"] = True
    except Exception as error:  # noqa: BLE001 - the worker is refused, with the reason
        status["reason"] = f"setting it up failed: {type(error).__name__}: {error}"[:1000]
    return status


def _worker_status(release: str, dask_worker: Any = None) -> dict[str, Any]:
    """What ``GradingPlugin`` found on this worker (run by the client on every worker)."""
    with _STATE_LOCK:
        status = _STATUS.get(release)
    if status is None:
        return {"host": socket.gethostname(), "ok": False, "layers": [], "missing": [],
                "reason": "the grading plugin did not run on it"}
    return {**status, "nthreads": getattr(dask_worker, "state", None)
            and dask_worker.state.nthreads}


def _plugin_base() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    return WorkerPlugin


class GradingPlugin(_plugin_base()):  # type: ignore[misc]
    """Set up a worker for one release: unpack its packages, check the sandbox and the grading
    code, and declare the resource ``tinytorch-sandbox`` (one per thread) only if all is well.
    A refused worker logs why; the client names it."""

    def __init__(self, release: str, archive: bytes, code: str,
                 graded: list[GradedCell]) -> None:
        self.release, self.archive, self.code, self.graded = release, archive, code, graded
        self.name = f"tinytorch-grading-{release[:16]}"

    async def setup(self, worker: Any) -> None:
        import asyncio

        # the grading account's own folder (0700), never a shared temporary one: a release
        # folder another account made first could hold bytecode the sandbox would run
        into = places.private_folder(places.grading_folder("tinytorch-grading-releases"))
        status = await asyncio.to_thread(_check_worker, self.release, self.archive, self.code,
                                         self.graded, into, worker.state.nthreads)
        with _STATE_LOCK:
            _STATUS[self.release] = status
        if status["ok"]:
            await worker.set_resources(**{RESOURCE: worker.state.nthreads})
        else:
            import logging

            logging.getLogger("distributed.worker").error(
                "tinytorch grading refused on this worker (%s): %s", worker.address,
                status["reason"])


class _JudgeDied(Exception):
    pass


class _Judge:
    """A judging process of this worker (``python -m course.grading.cluster judge``): it holds a
    host-wide sandbox slot and judges one submission at a time in its main thread."""

    def __init__(self) -> None:
        global _STARTED
        with _STATE_LOCK:
            _STARTED += 1
        self.process = subprocess.Popen(  # noqa: S603 - this module, no shell
            [sys.executable, "-m", "course.grading.cluster", "judge"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE)
        self.slot = self._receive(60.0)["slot"]

    def grade(self, request: tuple[Any, ...], seconds: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            _send(self.process.stdin, request)
        except OSError as error:
            raise _JudgeDied(str(error)) from error
        return self._receive(seconds)

    def _receive(self, seconds: float) -> Any:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=seconds):
                self.close()
                raise _JudgeDied(f"it gave no report in {seconds:g} s")
        message = _receive(self.process.stdout)
        if message is None:
            self.close()
            raise _JudgeDied(f"exit code {self.process.wait()}")
        return message

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


_IDLE: queue.SimpleQueue[_Judge] = queue.SimpleQueue()
_STARTED = 0  # judging processes this worker started


def grade_task(name: str, notebook: bytes, release: str, seeds: dict[str, int],
               limits: sandbox.Limits, graded: list[GradedCell],
               budget: Budget) -> str:
    """Grade one submission on this worker (a Dask task): the report ``process.work`` gives for
    ``notebook`` (its bytes), as if it had been graded at ``name``, as JSON text
    (``{"report": ...}``, or ``{"failed": why}`` when this worker could not grade it): plain
    data, which the grader reads without unpickling anything. Safe to run twice."""
    try:
        report = _grade_here(name, notebook, release, seeds, limits, graded, budget)
        return json.dumps({"report": report}, allow_nan=False)
    except Exception as error:  # noqa: BLE001 - said as data: the grader unpickles no error
        return json.dumps({"failed": f"the worker could not grade it: "
                                     f"{type(error).__name__}: {error}"[:2000]})


def _grade_here(name: str, notebook: bytes, release: str, seeds: dict[str, int],
                limits: sandbox.Limits, graded: list[GradedCell],
                budget: Budget) -> dict[str, Any]:
    from distributed import get_worker

    with _STATE_LOCK:
        template = _RELEASES.get(release)
    if template is None:  # never scheduled here (no resource); said loudly if it were
        raise ClusterError(f"this worker is not set up to grade release {release[:12]}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinytorch-submission-") as folder:
        os.chmod(folder, 0o755)
        path = Path(folder) / (Path(name).name or "submission.ipynb")
        path.write_bytes(notebook)
        try:
            judge = _IDLE.get_nowait()
        except queue.Empty:
            judge = _Judge()
        seconds = limits.wall + budget.seconds + 120
        try:
            report = judge.grade((str(path), seeds, limits, graded, budget, str(template)),
                                 seconds)
        except _JudgeDied as error:
            report = submission.not_gradable(path, graded, start, f"{process.DIED} ({error})")
        else:
            _IDLE.put(judge)
        report = submission.renamed(report, str(path), name)
    worker = get_worker()
    report["grader"] = {"worker": worker.address, "host": socket.gethostname(),
                        "slot": judge.slot,
                        "task_seconds": round(time.perf_counter() - start, 3)}
    return report


# ----------------------------------------------------------------------------- the judging process
_HEADER = struct.Struct("!Q")


def _send(stream: Any, message: Any) -> None:
    data = pickle.dumps(message)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: Any) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    return pickle.loads(data) if len(data) == size else None  # noqa: S301 - our own child


def judge_main() -> int:
    """The judging process: requests on stdin, reports on stdout, until stdin closes. It
    runs no student code (the sandbox does); it is a grading process (``process``)."""
    requests, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print (a library's) cannot corrupt the replies
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker's Ctrl-C is the worker's
    slot = process.start()
    _send(replies, {"slot": slot, "pid": os.getpid()})
    while (request := _receive(requests)) is not None:
        path, seeds, limits, graded, budget, template = request
        process.use(template)
        _send(replies, process.work(Task(path, seeds, limits, graded, budget)))
    return 0


# ----------------------------------------------------------------------------- the client
#: What a worker's answer may hold: an honest one is a few KB, at most about 1 MB (its
#: messages, and the cells that raised, are cut at fixed lengths on the worker).
ANSWER = intake.JsonBounds(max_bytes=8 * 2**20, max_depth=8, max_containers=2**14,
                           max_items=2**17)
#: Why a submission whose task failed on the cluster has no report (the grader reads no error
#: a worker sends: the workers' logs have it).
TASK_FAILED = ("its task failed on the cluster (a worker reported an error, which the grader "
               "does not read: see the workers' logs)")
INSECURE = ("refusing {address}: a plain tcp:// cluster is neither encrypted nor "
            "authenticated, so anyone who can reach it can run code on its workers, read the "
            "students' notebooks and change their grades. Start the cluster with the course's "
            "certificates and grade on tls://{rest} (docs/instructor-guide.md, \"Grading a "
            "class of thousands\"), or say --insecure to grade on it anyway.")


def _client_base() -> type:
    from distributed import Client

    return Client


class GraderClient(_client_base()):  # type: ignore[misc]
    """A ``distributed.Client`` made by ``connect``: it accepts only msgpack from its cluster,
    in a process that unpickles nothing from it but plain built-in types
    (``refuse_unpickling``). ``grade`` takes no other client, so no caller can forget either."""


#: What the grader's process unpickles from its cluster: a few built-in types, as Dask names
#: the type of plain data it sends (``bytes`` for a failed task's error bytes, ``str`` for a
#: result). Calling one of them runs no code a worker chose.
PLAIN_TYPES = frozenset({"bytes", "bytearray", "str", "int", "float", "complex", "bool",
                         "tuple", "list", "dict", "set", "frozenset"})


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in PLAIN_TYPES:
            return super().find_class(module, name)
        raise TypeError(f"refused to unpickle {module}.{name}: the grader unpickles nothing "
                        "but plain built-in types from its Dask cluster "
                        "(course.grading.cluster.refuse_unpickling)")


def _plain_loads(data: Any, *, buffers: Any = ()) -> Any:
    return _PlainUnpickler(io.BytesIO(data), buffers=buffers).load()


def refuse_unpickling() -> None:
    """Make this process unpickle nothing from a Dask cluster but plain built-in types
    (``PLAIN_TYPES``), for as long as it lives. Dask's ``deserializers`` keep a client from
    unpickling results, but Dask unpickles, whatever they say: a failed task's exception and
    traceback (``distributed.core.clean_exception``), a result's type
    (``Client._handle_key_in_memory``), the type of data it sends its own way
    (``dask_loads``), any ``__Pickled__`` frame of a message (``distributed.protocol.core``),
    an RPC error of ``Client.run``, and the ``print`` and ``warn`` events a worker may send
    every client (``warn`` with the standard ``pickle``). Each is an object a worker chose, and
    unpickling it runs the worker's code here. So the function Dask unpickles with refuses
    every global but a built-in type (the standard library's "restricting globals"; Dask then
    keeps a refused error as bytes, or drops the field, and the grader sees a failed task),
    and the clients of this process subscribe to no event. Idempotent."""
    import distributed.client
    import distributed.protocol.pickle

    distributed.protocol.pickle.loads = _plain_loads
    distributed.client.loads = _plain_loads
    distributed.client.Client._default_event_handlers = {}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_for(address: str, *, certificates: Path | None = None, insecure: bool = False,
                 log: Any = None) -> Any:
    """The ``distributed.Security`` the grader reaches ``address`` with: the course's grader
    certificate for ``tls://`` (in ``certificates``, else ``course_ca.default_folder()``);
    None for plain ``tcp://`` on loopback, or anywhere when the caller said ``insecure`` (with
    a warning on ``log``, stderr). Any other plain address, or another protocol, is a
    ``ClusterError`` that says what to do."""
    log = log if log is not None else sys.stderr
    scheme, found, rest = address.partition("://")
    if not found:
        scheme, rest = "tcp", address
    if scheme == "tls":
        try:
            return course_ca.security(certificates or course_ca.default_folder(), "grader")
        except course_ca.CertificateError as error:
            raise ClusterError(str(error)) from error
    if scheme != "tcp":
        raise ClusterError(f"{address}: the grader reaches a cluster over tls:// (the course's "
                           "certificates), or plain tcp:// on loopback or with --insecure")
    host = rest.rsplit(":", 1)[0].strip("[]")
    if not (insecure or _loopback(host)):
        raise ClusterError(INSECURE.format(address=address, rest=rest))
    print(f"warning: {address} is neither encrypted nor authenticated: "
          + ("every account of this machine can use it" if _loopback(host) else
             "anyone who can reach it can use it (--insecure)"), file=log, flush=True)
    return None


def connect(address: str, *, certificates: Path | None = None, insecure: bool = False,
            timeout: float = 30.0, log: Any = None) -> GraderClient:
    """A client of the cluster at ``address`` that the grader may use (``security_for``): over
    TLS, the scheduler must prove a *scheduler* certificate of the course's CA and answer that
    it checks every peer's role (``course.grading.roles``), else it is refused. The process
    unpickles nothing from it but plain built-in types (``refuse_unpickling``)."""
    refuse_unpickling()
    security = security_for(address, certificates=certificates, insecure=insecure, log=log)
    try:
        client = GraderClient(address, security=security, timeout=timeout,
                              deserializers=["msgpack"])
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {error}"
                           + (" (is it started with the course's certificates, and are these "
                              "the course's?)" if security is not None else "")) from error
    if security is None:
        return client
    try:
        _check_scheduler(client, address)
    except BaseException:
        client.close()
        raise
    return client


def _check_scheduler(client: Any, address: str) -> None:
    """The scheduler proved a scheduler certificate, and gates its peers by role."""
    comm = getattr(client.scheduler_comm, "comm", None)
    proved = course_ca.role_of((comm.extra_info if comm is not None else {}).get("peercert"))
    if proved != "scheduler":
        raise ClusterError(f"{address} is not the course's scheduler: its certificate is a "
                           f"{proved or 'certificate of no course role'}, not a scheduler's")
    try:
        answer = client.sync(getattr(client.scheduler, roles.QUESTION))
    except Exception as error:  # noqa: BLE001 - any failure means no gate
        answer = f"{type(error).__name__}: {error}"
    if not (isinstance(answer, dict) and answer.get("version") == roles.VERSION
            and answer.get("you") == "grader"):
        raise ClusterError(
            f"the scheduler at {address} does not check the roles of its peers' certificates "
            f"(asked, it answered {str(answer)[:200]!r}), so any certificate of the course's "
            "CA could join it as a worker: start it with --preload course.grading.roles "
            "(docs/instructor-guide.md)")


def _status(value: Any) -> dict[str, Any]:
    """A worker's status (``_worker_status``) as the grader may use it: every field of its
    type, else a refused worker's status saying so."""
    shape = isinstance(value, dict) and type(value.get("ok")) is bool and all(
        isinstance(value.get(k), list) and all(isinstance(i, str) for i in value[k])
        for k in ("layers", "missing")) and isinstance(value.get("host"), str) and (
        value.get("reason") is None or isinstance(value.get("reason"), str)) and (
        value.get("nthreads") is None or type(value.get("nthreads")) is int)
    if not shape:
        return {"ok": False, "host": "?", "layers": [], "missing": [], "nthreads": None,
                "reason": "its status is not what a grading worker reports"}
    return {"ok": value["ok"], "host": printable(value["host"], 200),
            "layers": [printable(v, 300) for v in value["layers"][:50]],
            "missing": [printable(v, 300) for v in value["missing"][:50]],
            "reason": printable(value["reason"], 2000) if value["reason"] else None,
            "nthreads": value.get("nthreads")}


def setup(client: Any, template: Path, graded: Sequence[GradedCell], *,
          log: Any = None, wait: float = 60.0) -> tuple[str, dict[str, dict[str, Any]]]:
    """Ship the release to every worker (present and future) and learn which can grade.
    Returns (release digest, worker address -> status); prints each worker's isolation and
    names each refused worker on ``log`` (stderr)."""
    log = log if log is not None else sys.stderr
    release = cache.release_digest(template, graded)
    plugin = GradingPlugin(release, _archive(template), grader_code_digest(), list(graded))
    try:
        client.wait_for_workers(1, timeout=wait)
    except TimeoutError as error:
        raise ClusterError(f"the cluster at {client.scheduler.address} has no worker") from error
    try:
        client.register_plugin(plugin)
    except Exception as error:  # noqa: BLE001 - a worker's error, unread (refuse_unpickling)
        raise ClusterError(f"a worker of the cluster at {client.scheduler.address} failed to "
                           f"set up grading: {type(error).__name__} (see its log)") from None
    try:
        statuses = client.run(_worker_status, release, on_error="return")
    except TypeError:  # a worker's error the grader refused to unpickle: ask one at a time
        statuses = {}
        for address in client.scheduler_info()["workers"]:
            try:
                statuses.update(client.run(_worker_status, release, workers=[address]))
            except Exception as error:  # noqa: BLE001 - that worker is refused
                statuses[address] = error
    found: dict[str, dict[str, Any]] = {}
    for address, status in sorted(statuses.items()):
        if isinstance(status, BaseException):
            status = {"ok": False, "host": "?", "layers": [], "missing": [],
                      "reason": f"it could not report ({type(status).__name__})"}
        found[address] = status = _status(status)
        if status["ok"]:
            print(f"worker {address} ({status['host']}): grading, slot per thread; "
                  f"{len(status['layers'])} isolation layers"
                  + (f"; missing: {'; '.join(status['missing'])}" if status["missing"] else ""),
                  file=log, flush=True)
        else:
            print(f"refused worker {address} ({status['host']}): {status['reason']}",
                  file=log, flush=True)
    if not any(s["ok"] for s in found.values()):
        raise ClusterError(f"no worker of the cluster at {client.scheduler.address} can be "
                           "trusted to grade: " + "; ".join(
                               f"{a}: {s['reason']}" for a, s in found.items()))
    return release, found


# ----------------------------------------------------------------------------- what comes back
def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def report_problem(report: Any, graded: Sequence[GradedCell]) -> str | None:
    """What makes ``report`` (a worker's, parsed from JSON) unlike any report this grader would
    make for ``graded``, or None. Every field the grader and its callers read is checked for its
    type, and the points for what the graded cells allow: one per graded cell, in order, each
    all or nothing, adding up to the total. (A worker holding the course's certificate is
    trusted to have judged; this keeps out what no judging gives.)"""
    if not isinstance(report, dict):
        return "it is not an object"
    for key in ("file", "ended"):
        if key in report and report[key] is not None and not isinstance(report[key], str):
            return f"its {key} is not text"
    for key in ("total", "max_total", "seconds", "judge_seconds"):
        if not _number(report.get(key)) or report[key] < 0:
            return f"its {key} is not a number of at least 0"
    for key in ("gradable", "grader_failed"):
        if key in report and type(report[key]) is not bool:
            return f"its {key} is not true or false"
    if "gradable" not in report:
        return "it does not say whether the submission was gradable"
    if "peak_memory_mb" in report and report["peak_memory_mb"] is not None and not _number(
            report["peak_memory_mb"]):
        return "its peak_memory_mb is not a number"
    cells = report.get("cells")
    if not isinstance(cells, list) or len(cells) != len(graded):
        return f"it does not hold one result per graded cell ({len(graded)})"
    for cell, expected in zip(cells, graded, strict=True):
        if not isinstance(cell, dict) or cell.get("grade_id") != expected.grade_id:
            return f"its cells are not the graded cells, in order (expected {expected.grade_id})"
        if not (_number(cell.get("points")) and _number(cell.get("max_points"))
                and type(cell.get("passed")) is bool and isinstance(cell.get("message"), str)):
            return f"its cell {expected.grade_id} is not a cell's result"
        if cell["max_points"] != expected.points or cell["points"] != (
                expected.points if cell["passed"] else 0):
            return (f"its cell {expected.grade_id} gives {cell['points']!r} of "
                    f"{cell['max_points']!r} points (passed: {cell['passed']}); the cell is "
                    f"worth {expected.points}, all or nothing")
    if not (math.isclose(report["total"], sum(c["points"] for c in cells), abs_tol=1e-9)
            and math.isclose(report["max_total"], sum(c["max_points"] for c in cells),
                             abs_tol=1e-9)):
        return "its total is not the sum of its cells' points"
    raised = report.get("cells_that_raised", [])
    if not isinstance(raised, list) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str)
                                        for k in ("cell", "error", "message"))
            and (r.get("line") is None or type(r.get("line")) is int) for r in raised):
        return "its cells_that_raised are not a list of raised cells"
    layers = report.get("isolation", [])
    if not isinstance(layers, list) or not all(isinstance(v, str) for v in layers):
        return "its isolation is not a list of layers"
    grader = report.get("grader", {})
    if not isinstance(grader, dict) or not all(
            isinstance(v, str | int | float | None) for v in grader.values()):
        return "its grader is not an object of plain values"
    return None


def _inert(report: dict[str, Any]) -> dict[str, Any]:
    """Every text of a believed report as inert characters (``printable``): a terminal shows
    it, a gradebook stores it, and a worker wrote it."""
    def inert(value: Any) -> Any:
        if isinstance(value, str):
            return printable(value)
        if isinstance(value, list):
            return [inert(v) for v in value]
        if isinstance(value, dict):
            return {printable(str(k)): inert(v) for k, v in value.items()}
        return value

    return inert(report)


def from_worker(answer: Any, path: Path, graded: Sequence[GradedCell],
                start: float) -> dict[str, Any]:
    """The report a worker's ``answer`` (``grade_task``'s JSON text) gives for ``path``, read
    as a sandbox's lines are (within ``ANSWER``'s bounds, then field by field:
    ``report_problem``); an answer that cannot be believed is the grader's failure for this
    submission ("grading failed (grader)"), never a score."""
    def failed(why: str) -> dict[str, Any]:
        return submission.not_gradable(path, graded, start, why)

    if not isinstance(answer, str):
        return failed(f"the worker's answer is not JSON text but {type(answer).__name__}")
    try:
        parsed = intake.parse(answer.encode("utf-8", "replace"), ANSWER)
    except intake.Refused as error:
        return failed(f"the worker's answer was refused: {error}")
    if isinstance(parsed, dict) and isinstance(parsed.get("failed"), str):
        return failed(printable(parsed["failed"], 2000))
    report = parsed.get("report") if isinstance(parsed, dict) else None
    problem = report_problem(report, graded)
    if problem is not None:
        return failed(f"the worker's report cannot be believed: {problem}")
    assert isinstance(report, dict)
    return {**_inert(report), "file": str(path)}


def _task_failed(error: BaseException) -> str:
    """Why a task failed, from what the grader may read of its error: a ``KilledWorker``
    (Dask's, pickled by the scheduler, never unpickled here) is named by its bytes."""
    if isinstance(error, TypeError) and "deserialize" in str(error):
        return f"the worker's answer was refused: {str(error)[:300]}"
    data = error.args[0] if error.args else None
    if isinstance(data, bytes) and b"KilledWorker" in data:
        return ("the Dask workers grading it died each time it ran; the rest of the class "
                "was graded on the others")
    return TASK_FAILED


def grade(cluster: Any, files: Sequence[Path], *, template: Path,
          seeds: Sequence[dict[str, int]], limits: sandbox.Limits, budget: Budget,
          graded: Sequence[GradedCell], on_report: OnReport | None = None, log: Any = None,
          certificates: Path | None = None, insecure: bool = False) -> list[dict[str, Any]]:
    """Grade a class on a Dask cluster (an address, reached by ``connect`` with
    ``certificates`` and ``insecure``, or a ``GraderClient``): reports in the order of
    ``files``, each handed to ``on_report`` as it arrives. At most a few tasks per worker
    thread are in flight at a time (the notebooks travel with their tasks)."""
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError

    if isinstance(cluster, Client) and not isinstance(cluster, GraderClient):
        raise ClusterError("grade on a client made by course.grading.cluster.connect: a plain "
                           "distributed.Client would unpickle what workers send")
    client = cluster if isinstance(cluster, Client) else connect(
        str(cluster), certificates=certificates, insecure=insecure, log=log)
    owned = client is not cluster
    graded = list(graded)
    try:
        release, statuses = setup(client, template, graded, log=log)
        threads = sum(int(s.get("nthreads") or 1) for s in statuses.values() if s["ok"])
        window = max(4, 3 * threads)
        results: dict[int, dict[str, Any]] = {}
        futures: dict[Any, int] = {}
        running = as_completed()
        waiting = iter(range(len(files)))

        def settle(index: int, report: dict[str, Any]) -> None:
            if index in results:
                return  # a task Dask ran twice: its first report stands
            results[index] = report
            if on_report is not None:
                on_report(index, report)

        def submit_next() -> bool:
            for index in waiting:
                path, start = files[index], time.perf_counter()
                try:
                    if path.stat().st_size > intake.NOTEBOOK.max_bytes:
                        intake.read_notebook(path)  # refuses it with its size, unread
                    data = path.read_bytes()
                except (OSError, intake.Unreadable) as error:
                    settle(index, submission.refused(path, graded, start, str(error)))
                    continue
                future = client.submit(
                    grade_task, str(path), data, release, dict(seeds[index]), limits, graded,
                    budget, key=f"tinytorch-grade-{release[:8]}-{os.urandom(6).hex()}-{index}",
                    resources={RESOURCE: 1}, pure=False)
                futures[future] = index
                running.add(future)
                return True
            return False

        for _ in range(window):
            if not submit_next():
                break
        for future in running:
            index = futures.pop(future)
            start = time.perf_counter()
            try:
                report = from_worker(future.result(), files[index], graded, start)
            except FutureCancelledError:
                report = submission.not_gradable(files[index], graded, start,
                                                 "the cluster cancelled its task")
            except Exception as error:  # noqa: BLE001 - this submission's failure only
                report = submission.not_gradable(files[index], graded, start,
                                                 _task_failed(error))
            future.release()
            settle(index, report)
            submit_next()
        return [results[i] for i in range(len(files))]
    finally:
        if owned:
            client.close()


class DaskCluster:
    """A runner (``course.grading.batch``) that grades on the workers of the Dask cluster at
    ``address`` (a scheduler's address, reached with the course's certificates in
    ``certificates`` or plain when ``insecure``: ``connect``; or a ``GraderClient``)."""

    def __init__(self, address: Any, *, log: Any = None, certificates: Path | None = None,
                 insecure: bool = False) -> None:
        self.address, self.log = address, log
        self.certificates, self.insecure = certificates, insecure

    def grade(self, tasks: Sequence[Task], *, template: Path,
              on_report: OnReport | None = None) -> list[dict[str, Any]]:
        if not tasks:
            return []
        return grade(self.address, [Path(t.path) for t in tasks], template=template,
                     seeds=[t.seeds for t in tasks], limits=tasks[0].limits,
                     budget=tasks[0].budget, graded=tasks[0].graded, on_report=on_report,
                     log=self.log, certificates=self.certificates, insecure=self.insecure)


# ----------------------------------------------------------------------------- a cluster here
@contextlib.contextmanager
def local(workers: int = 2, *, threads: int = 1, env: dict[str, str] | None = None,
          log: Path | None = None) -> Iterator[LocalCluster]:
    """A real cluster on loopback: ``dask scheduler`` and ``workers`` ``dask worker``
    processes (each ``threads`` threads), for tests and the benchmark, over mutual TLS with
    certificates made for this cluster alone. Yields a ``LocalCluster`` (its address and
    certificates; ``connect``, ``add_worker`` and ``kill_worker``)."""
    cluster = LocalCluster(env=env, log=log)
    try:
        cluster.start_scheduler()
        for _ in range(workers):
            cluster.add_worker(threads=threads)
        yield cluster
    finally:
        cluster.stop()


class LocalCluster:
    """Scheduler and worker processes on 127.0.0.1, each in a session of its own (so a worker
    and everything it started can be killed together, as a machine that dies would be). A
    loopback port is open to every account of the machine, so it is not trusted for being
    local: a throw-away CA made here (``course_ca.make``, in this cluster's private folder,
    removed with it) signs its scheduler's, workers' and grader's certificates, and the
    scheduler gates roles (``course.grading.roles``), exactly as the guide's cluster does."""

    def __init__(self, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        self.folder = Path(tempfile.mkdtemp(prefix="tinytorch-dask-"))  # mode 0700
        self.log = log or self.folder
        self.certificates = self.folder / "certificates"
        course_ca.make(self.certificates, days=2)
        self.address = ""
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = open(self.log / f"{name}.log", "wb")  # noqa: SIM115 - kept by the process
        try:
            return subprocess.Popen(  # noqa: S603 - dask's own command line
                [sys.executable, "-m", "dask", *argv], stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=self.folder, start_new_session=True)
        finally:
            out.close()

    def tls_options(self, role: str) -> list[str]:
        """The ``--tls-*`` options of ``dask scheduler`` or ``dask worker`` for ``role``."""
        return course_ca.credentials(self.certificates, role).dask_options()

    def start_scheduler(self, timeout: float = 60.0) -> str:
        port_file = self.folder / "scheduler.json"
        self.scheduler = self._start("scheduler", [
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--protocol", "tls", "--preload", "course.grading.roles",
            *self.tls_options("scheduler"), "--scheduler-file", str(port_file)], self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.is_file():
                try:
                    self.address = json.loads(port_file.read_text())["address"]
                    return self.address
                except (ValueError, KeyError):
                    pass
            if self.scheduler.poll() is not None:
                break
            time.sleep(0.1)
        raise ClusterError(f"the scheduler did not start: {self.log_of('scheduler')}")

    def connect(self, timeout: float = 30.0) -> GraderClient:
        """A grader's client of this cluster, with its grader certificate (``connect``)."""
        return connect(self.address, certificates=self.certificates, timeout=timeout)

    def add_worker(self, *, threads: int = 1, env: dict[str, str] | None = None,
                   preload: str | None = None,
                   tls: Sequence[str] | None = None) -> subprocess.Popen[bytes]:
        """Start a ``dask worker`` named ``worker-N``, with the course's worker certificate
        unless ``tls`` gives other ``--tls-*`` options (a test's rogue worker)."""
        name = f"worker-{len(self.workers)}"
        argv = ["worker", self.address, "--nworkers", "1", "--nthreads", str(threads),
                "--host", "127.0.0.1", "--no-dashboard", "--name", name,
                "--local-directory", str(self.folder / name),
                *(self.tls_options("worker") if tls is None else tls)]
        if preload:
            argv += ["--preload", preload]
        process = self._start(name, argv, {**self.env, **(env or {})})
        self.workers.append(process)
        return process

    def log_of(self, name: str) -> str:
        try:
            return (self.log / f"{name}.log").read_text()[-3000:]
        except OSError:
            return "(no log)"

    def kill_worker(self, index: int) -> None:
        """End worker ``index`` and everything it started at once (SIGKILL)."""
        _kill_session(self.workers[index])

    def stop(self) -> None:
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_session(proc)
        shutil.rmtree(self.folder, ignore_errors=True)


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course.grading.cluster",
        description="A Dask worker's judging process (started by the worker itself; grade on a "
                    "cluster with python -m course.grading.grade --cluster ADDRESS).")
    parser.add_argument("command", choices=["judge"],
                        help="judge: read requests on stdin, write reports on stdout")
    parser.parse_args(argv)
    return judge_main()


if __name__ == "__main__":
    sys.exit(main())
