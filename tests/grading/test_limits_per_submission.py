"""Limits per submission, not per process (``course.grading.cgroups`` through
``course.grading.sandbox``).

Each attack is a blank release notebook with one cell of the attacker's, graded in parallel
(``jobs=2``) beside an honest classmate (the reference). The attacks spread what they take
over what an rlimit does not see: memory in memfds, in ``/dev/shm`` and ``/tmp`` (tmpfs), and
CPU in many ``setsid`` children, each its own scheduling autogroup. Each must earn nothing,
be stopped at the run's limit, and leave the classmate its 100 points in at most twice its
quiet time: graded the same way (a fresh pool of two workers) beside the blank release, which
ends within a second (graded alone, in the grader's own process, it is also measured, and
warm caches make it faster still); the host's shared memory (``Shmem`` in ``/proc/meminfo``, where
memfd, tmpfs and shared memory pages are all counted) must never grow by more than the
run's limit, and every control group a run made must be gone afterwards.

Where the machine has no control groups this grader may use (macOS, an unprivileged
container), every test here is skipped with that reason; a machine that has them must use
them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from cgroup_support import machine_lacks_cgroups
from submissions import from_training_source, write

from course.assignment import paths
from course.grading import grade, sandbox

# The classmate's pace is compared with its quiet time: measured with no other test beside it
# (make test runs serial tests after the parallel run, alone).
pytestmark = [pytest.mark.slow, pytest.mark.serial]

MEMORY = 384 * 2**20  # the whole run's memory in this suite: the classmate needs ~30 MiB
WALL = 15.0  # seconds a submission may run in this suite
LIMITS = sandbox.Limits(wall=WALL, per_line=WALL, memory=MEMORY)
SLACK = 128 * 2**20  # shared memory the rest of the machine may add meanwhile

ATTACKS = {
    # 2 GiB of memfd pages: no address space, so RLIMIT_AS never sees them
    "memfd-hoard": (
        "import os, time\n"
        "fds = []\n"
        "try:\n"
        "    for i in range(32):\n"
        "        fd = os.memfd_create(f'hoard{i}')\n"
        "        os.ftruncate(fd, 64 * 2**20)\n"
        "        for k in range(64):\n"
        "            os.pwrite(fd, b'x' * 2**20, k * 2**20)\n"
        "        fds.append(fd)\n"
        "except OSError:\n    pass\n"
        "time.sleep(3)\n"),
    # 1 GiB in /dev/shm (as large as the host's memory allows) and 1 GiB in /tmp
    "fill-dev-shm-and-tmp": (
        "import os, time\n"
        "for folder in ('/dev/shm', '/tmp'):\n"
        "    for i in range(32):\n"
        "        try:\n"
        "            with open(f'{folder}/fill-{i}', 'wb') as f:\n"
        "                for k in range(32): f.write(b'x' * 2**20)\n"
        "        except OSError:\n            break\n"
        "time.sleep(3)\n"),
    # 62 children, each in a session (an autogroup) of its own, spinning; the cell spins too
    "setsid-spinners": (
        "import os, time\n"
        "for i in range(62):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            os.setsid()\n"
        "            while True: pass\n"
        "    except OSError:\n        break\n"
        "end = time.time() + 120\n"
        "while time.time() < end: pass\n"),
}


@pytest.fixture(scope="module", autouse=True)
def _needs_cgroups() -> None:
    reason = machine_lacks_cgroups()
    if reason:
        pytest.skip(f"this machine cannot limit a whole run: {reason}")


def _shmem() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no Shmem in /proc/meminfo")


def _grading_parents() -> list[Path]:
    """Where this process's runs keep their groups: ``tinytorch-grading`` in this process's
    own cgroup of every hierarchy mounted."""
    own = {}
    for entry in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = entry.split(":", 2)
        for name in names.split(",") if names else [""]:
            own[name] = path
    parents = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, rest = before.split(), after.split()
        if len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            names = [n for n in rest[2].split(",") if n in own] if rest[0] == "cgroup" else [""]
            for name in names[:1]:
                parents.append(Path(fields[4]) / own[name].lstrip("/") / "tinytorch-grading")
    return parents


PARENTS = _grading_parents()


def _descends_from_me(pid: int, known: dict[int, bool]) -> bool:
    """Whether ``pid`` is this process or one it started (a grading worker)."""
    if pid not in known:
        chain, current = [], pid
        while current > 1 and current != os.getpid() and current not in known:
            chain.append(current)
            try:
                stat = Path(f"/proc/{current}/stat").read_text()
            except OSError:
                current = 0
                break
            current = int(stat.rsplit(")", 1)[1].split()[1])
        mine = current == os.getpid() or known.get(current, False)
        known.update(dict.fromkeys(chain or [pid], mine))
    return known[pid]


def _grading_folders(known: dict[int, bool]) -> list[Path]:
    """The run groups (``slot-<slot>-<pid>-<n>``) of this process's runs present now (other
    graders on the machine share the groups of the hierarchies' roots)."""
    found = []
    for parent in PARENTS:
        try:
            found += [p for p in parent.iterdir() if p.name.startswith("slot-")
                      and p.name.split("-")[2].isdigit()
                      and _descends_from_me(int(p.name.split("-")[2]), known)]
        except OSError:
            pass
    return found


class Watch:
    """While grading: the host's shared memory at its highest, and every run group seen."""

    def __init__(self) -> None:
        self.base = _shmem()
        self.high = self.base
        self.groups: set[Path] = set()
        self._known: dict[int, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.high = max(self.high, _shmem())
            self.groups |= set(_grading_folders(self._known))
            time.sleep(0.02)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def grown(self) -> int:
        return self.high - self.base


def _blank_with(release: str, code: str) -> nbformat.NotebookNode:
    notebook = nbformat.reads(release, as_version=4)
    code_cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    notebook.cells.insert(code_cells[min(2, len(code_cells) - 1)],
                          nbformat.v4.new_code_cell(code))
    return notebook


def _seeds() -> dict[str, int]:
    """The source notebook's hidden seeds: the classmate's score the same in every grading of
    this suite (fresh seeds would make a check's own variance look like a neighbour's harm)."""
    text = "\n".join(c.source for c in nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4).cells)
    return {check: int(seed) for check, seed in
            re.findall(r'run_check\("([^"]+)", mine\(\), seed=(\d+)\)', text)}


@pytest.fixture(scope="module")
def graded(course_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    release = (course_dir / "release" / paths.ASSIGNMENT / paths.NOTEBOOK).read_text()
    folder = tmp_path_factory.mktemp("class")
    honest = write(from_training_source(paths.REFERENCE.read_text()), folder / "honest.ipynb")
    blank = write(nbformat.reads(release, as_version=4), folder / "blank.ipynb")
    seeds = _seeds()
    with Watch() as quiet_watch:
        alone = grade.grade([honest], jobs=2, limits=LIMITS, seeds=[seeds])[0]
        # the same parallel grading as beside an attack (a fresh pool of two workers), beside
        # the blank release, which ends within a second: the classmate's quiet time
        quiet = grade.grade([honest, blank], jobs=2, limits=LIMITS, seeds=[seeds, seeds])[0]
    results: dict[str, Any] = {"alone": alone, "quiet": quiet, "quiet_watch": quiet_watch,
                               "attacks": {}}
    for name, code in ATTACKS.items():
        attack = write(_blank_with(release, code), folder / f"{name}.ipynb")
        with Watch() as watch:
            classmate, report = grade.grade([honest, attack], jobs=2, limits=LIMITS,
                                            seeds=[seeds, seeds])
        results["attacks"][name] = {"classmate": classmate, "attack": report, "watch": watch}
    table = {"classmate alone, in the grader's process (s)": alone["seconds"],
             "classmate beside the blank release (s)": quiet["seconds"],
             **{name: {"classmate (s)": r["classmate"]["seconds"],
                       "classmate points": r["classmate"]["total"],
                       "attack points": r["attack"]["total"],
                       "attack ended": r["attack"]["ended"],
                       "host shared memory grew (MiB)": round(r["watch"].grown / 2**20)}
                for name, r in results["attacks"].items()}}
    out = paths.REPO / "build" / "grading"
    out.mkdir(parents=True, exist_ok=True)
    (out / "limits.json").write_text(json.dumps(table, indent=1))
    return results


def _each(graded: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from graded["attacks"].items()


def test_the_classmate_alone_earns_everything(graded: dict[str, Any]) -> None:
    for quiet in (graded["alone"], graded["quiet"]):
        assert quiet["total"] == 100 and quiet["ended"] is None, json.dumps(quiet)[:2000]
        assert any(layer.startswith("memory cgroup") for layer in quiet["isolation"])
        assert any(layer.startswith("cpu share") for layer in quiet["isolation"])
    assert graded["quiet"]["seconds"] <= 2 * graded["alone"]["seconds"]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_an_attack_earns_nothing(graded: dict[str, Any], name: str) -> None:
    report = graded["attacks"][name]["attack"]
    assert report["total"] == 0, json.dumps(report)[:2000]
    assert report["seconds"] <= WALL + 10


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_classmate_keeps_its_points_and_its_pace(graded: dict[str, Any], name: str) -> None:
    classmate = graded["attacks"][name]["classmate"]
    quiet = graded["quiet"]["seconds"]
    assert classmate["total"] == 100, json.dumps(classmate)[:2000]
    assert classmate["ended"] is None
    assert classmate["seconds"] <= 2 * quiet, (
        f"beside {name} the classmate took {classmate['seconds']} s, alone {quiet} s")


@pytest.mark.parametrize("name", ["memfd-hoard", "fill-dev-shm-and-tmp"])
def test_memory_is_held_for_the_whole_run(graded: dict[str, Any], name: str) -> None:
    """The attack is stopped at the run's limit with a reason, and the host never lent it
    more than that: memfd, /dev/shm and /tmp pages all count."""
    result = graded["attacks"][name]
    ended = result["attack"]["ended"] or ""
    assert f"more than {MEMORY // 2**20} MiB of memory" in ended, ended
    assert result["watch"].grown <= MEMORY + SLACK, (
        f"the host's shared memory grew by {result['watch'].grown / 2**20:.0f} MiB during "
        f"{name}, the run's limit is {MEMORY / 2**20:.0f} MiB")


def test_every_run_group_is_removed_afterwards(graded: dict[str, Any]) -> None:
    seen: set[Path] = set(graded["quiet_watch"].groups)
    for result in graded["attacks"].values():
        seen |= result["watch"].groups
    assert seen, "no run of this suite had a control group of its own"
    left = [path for path in seen if path.exists()]
    assert left == [], f"left behind: {left}"
