"""Grading a class on a Dask cluster: the same sandbox and judging, on many machines.

    python -m course.grading.grade a.ipynb b.ipynb ... --cluster tcp://HOST:8786
    make autograde CLUSTER=tcp://HOST:8786

``DaskCluster(ADDRESS)`` is a runner (``course.grading.batch``): it sends each submission (its
bytes, its hidden seeds, the limits) to a worker of the Dask cluster at ``ADDRESS``
(``dask.distributed``), which runs exactly what a local grading process runs
(``course.grading.process``: the student's code in a bubblewrap sandbox, every check judged
outside it) and returns the same plain-data report.
Dask schedules, balances and reschedules; nothing here is a scheduler of its own.

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

from course.assignment.cells import GradedCell
from course.grading import cache, intake, process, sandbox, submission
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
        if not folder.is_dir():
            unpacked = Path(tempfile.mkdtemp(prefix=".unpack-", dir=into))
            with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
                tar.extractall(unpacked, filter="data")
            for path in [unpacked, *unpacked.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            try:
                unpacked.rename(folder)
            except OSError:  # another worker of this host unpacked it meanwhile
                shutil.rmtree(unpacked, ignore_errors=True)
        if cache.release_digest(folder, graded) != release:
            status["reason"] = ("the release it received does not match the client's (its "
                                "packages or graded cells differ)")
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

        into = Path(tempfile.gettempdir()) / "tinytorch-grading-releases"
        into.mkdir(mode=0o755, exist_ok=True)
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
               budget: Budget) -> dict[str, Any]:
    """Grade one submission on this worker (a Dask task): the report ``process.work`` gives for
    ``notebook`` (its bytes), as if it had been graded at ``name``. Safe to run twice."""
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
        report = _renamed(report, str(path), name)
    worker = get_worker()
    report["grader"] = {"worker": worker.address, "host": socket.gethostname(),
                        "slot": judge.slot,
                        "task_seconds": round(time.perf_counter() - start, 3)}
    return report


def _renamed(value: Any, old: str, new: str) -> Any:
    """``value`` with the worker's temporary path replaced by the submission's own name."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    return value


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
def connect(address: str, timeout: float = 30.0) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except OSError as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {error}") from error


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
    client.register_plugin(plugin)
    statuses = client.run(_worker_status, release, on_error="return")
    found: dict[str, dict[str, Any]] = {}
    for address, status in sorted(statuses.items()):
        if isinstance(status, BaseException):
            status = {"ok": False, "host": "?", "layers": [], "missing": [],
                      "reason": f"it could not report: {type(status).__name__}: {status}"}
        found[address] = status
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


def grade(cluster: Any, files: Sequence[Path], *, template: Path,
          seeds: Sequence[dict[str, int]], limits: sandbox.Limits, budget: Budget,
          graded: Sequence[GradedCell],
          on_report: OnReport | None = None, log: Any = None) -> list[dict[str, Any]]:
    """Grade a class on a Dask cluster (an address or a ``distributed.Client``): reports in
    the order of ``files``, each handed to ``on_report`` as it arrives. At most a few tasks per
    worker thread are in flight at a time (the notebooks travel with their tasks)."""
    from distributed import Client, as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    client = cluster if isinstance(cluster, Client) else connect(str(cluster))
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
                report = future.result()
            except KilledWorker as error:
                report = submission.not_gradable(files[index], graded, start, (
                    "the Dask workers grading it died each time it ran; the rest of the "
                    f"class was graded on the others ({error})")[:1000])
            except FutureCancelledError as error:
                report = submission.not_gradable(files[index], graded, start,
                                              f"the cluster cancelled it ({error})"[:1000])
            except Exception as error:  # noqa: BLE001 - this submission's failure only
                report = submission.not_gradable(files[index], graded, start, (
                    f"the cluster failed on it: {type(error).__name__}: {error}")[:1000])
            future.release()
            settle(index, report)
            submit_next()
        return [results[i] for i in range(len(files))]
    finally:
        if owned:
            client.close()


class DaskCluster:
    """A runner (``course.grading.batch``) that grades on the workers of the Dask cluster at
    ``address`` (a scheduler's address, or a ``distributed.Client`` already connected)."""

    def __init__(self, address: Any, *, log: Any = None) -> None:
        self.address, self.log = address, log

    def grade(self, tasks: Sequence[Task], *, template: Path,
              on_report: OnReport | None = None) -> list[dict[str, Any]]:
        if not tasks:
            return []
        return grade(self.address, [Path(t.path) for t in tasks], template=template,
                     seeds=[t.seeds for t in tasks], limits=tasks[0].limits,
                     budget=tasks[0].budget, graded=tasks[0].graded, on_report=on_report,
                     log=self.log)


# ----------------------------------------------------------------------------- a cluster here
@contextlib.contextmanager
def local(workers: int = 2, *, threads: int = 1, env: dict[str, str] | None = None,
          log: Path | None = None) -> Iterator[LocalCluster]:
    """A real cluster on loopback: ``dask scheduler`` and ``workers`` ``dask worker``
    processes (each ``threads`` threads), for tests and the benchmark. Yields a
    ``LocalCluster`` (its address; ``add_worker`` and ``kill_worker``)."""
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
    and everything it started can be killed together, as a machine that dies would be)."""

    def __init__(self, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.env = {**os.environ, **(env or {})}
        self.folder = Path(tempfile.mkdtemp(prefix="tinytorch-dask-"))
        self.log = log or self.folder
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

    def start_scheduler(self, timeout: float = 60.0) -> str:
        port_file = self.folder / "scheduler.json"
        self.scheduler = self._start("scheduler", [
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
            "--no-show", "--scheduler-file", str(port_file)], self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.is_file():
                import json

                try:
                    self.address = json.loads(port_file.read_text())["address"]
                    return self.address
                except (ValueError, KeyError):
                    pass
            if self.scheduler.poll() is not None:
                break
            time.sleep(0.1)
        raise ClusterError(f"the scheduler did not start: {self.log_of('scheduler')}")

    def add_worker(self, *, threads: int = 1, env: dict[str, str] | None = None,
                   preload: str | None = None) -> subprocess.Popen[bytes]:
        name = f"worker-{len(self.workers)}"
        argv = ["worker", self.address, "--nworkers", "1", "--nthreads", str(threads),
                "--host", "127.0.0.1", "--dashboard-address", ":0", "--name", name,
                "--local-directory", str(self.folder / name)]
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
