"""Grading a class on a real Dask cluster (``course.grading.cluster``): a ``dask scheduler`` and two
``dask worker`` processes on loopback, over mutual TLS with certificates made for the run (as
the grader always connects: ``cluster.local``, ``connect``), grade a mixed class of 40 (the
reference, mutants, the blank release and attacks on it) with the same sandbox and judging as a
local run; one worker is killed (with everything it started) once some reports have arrived,
and every student still gets exactly the local run's points, once. A worker whose sandbox does
not work is refused by name and never given a submission."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from grading.scale import a_class, fixed_seeds, outcome

from course.assignment import cells
from course.grading import batch, budget, cluster, sandbox, submission
from course.grading.pool import LocalPool

pytestmark = pytest.mark.slow

CLASS_SIZE = 40
KILL_AFTER = 12  # reports arrived before one worker is killed
PRELOAD = Path(__file__).with_name("worker_without_bubblewrap.py")
LIMITS = sandbox.Limits(wall=30.0)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    logs = tmp_path_factory.mktemp("dask-logs")
    with cluster.local(workers=2, log=logs) as running:
        yield running


@pytest.fixture(scope="module")
def client(dask_cluster: Any) -> Any:
    with dask_cluster.connect() as connected:  # mutual TLS, the course's throw-away CA
        connected.wait_for_workers(2, timeout=60)
        yield connected


def _addresses(client: Any) -> dict[str, str]:
    """worker name (worker-0, ...) -> its address."""
    return {str(info["name"]): address
            for address, info in client.scheduler_info()["workers"].items()}


@pytest.fixture(scope="module")
def graded(dask_cluster: Any, client: Any, scale_notebooks: dict[str, Path]) -> dict[str, Any]:
    kinds = a_class(scale_notebooks, CLASS_SIZE)
    seeds = fixed_seeds()
    # the local run: each distinct notebook once, in this machine's process pool
    local = dict(zip(scale_notebooks, batch.grade(list(scale_notebooks.values()),
                                                runner=LocalPool(jobs=2),
                                                seeds=[seeds] * len(scale_notebooks),
                                                limits=LIMITS), strict=True))
    addresses = _addresses(client)
    arrivals: list[int] = []
    killed: dict[str, Any] = {}

    def arrived(index: int, report: dict[str, Any]) -> None:
        arrivals.append(index)
        if len(arrivals) == KILL_AFTER:
            killed["running"] = list(client.processing().get(addresses["worker-0"], []))
            dask_cluster.kill_worker(0)

    start = time.monotonic()
    reports = batch.grade([scale_notebooks[kind] for kind in kinds],
                          runner=cluster.DaskCluster(client), seeds=[seeds] * len(kinds),
                          limits=LIMITS, on_report=arrived)
    return {"kinds": kinds, "local": local, "reports": reports, "arrivals": arrivals,
            "killed": killed, "addresses": addresses, "seconds": time.monotonic() - start}


def test_the_cluster_gives_every_student_the_local_points_though_a_worker_died(
        graded: dict[str, Any]) -> None:
    reports, local = graded["reports"], graded["local"]
    assert len(reports) == CLASS_SIZE
    for kind, report in zip(graded["kinds"], reports, strict=True):
        assert outcome(report) == outcome(local[kind]), (kind, report, local[kind])
    # each student reported once, though the killed worker's tasks ran again elsewhere
    assert sorted(graded["arrivals"]) == list(range(CLASS_SIZE))
    assert {r["total"] for r in reports} > {0.0}, "the class must hold passing and failing work"


def test_both_workers_graded_and_the_dead_one_stopped(graded: dict[str, Any]) -> None:
    dead, alive = graded["addresses"]["worker-0"], graded["addresses"]["worker-1"]
    by = [r["grader"]["worker"] for r in graded["reports"]]
    assert dead in by and alive in by
    # whatever arrived after the kill was graded by the worker left (the dead one's running
    # tasks were rescheduled there)
    assert graded["killed"]["running"], "the killed worker held no task: nothing was lost"
    after = graded["arrivals"][KILL_AFTER:]
    assert after and all(graded["reports"][i]["grader"]["worker"] == alive for i in after)
    slots = {r["grader"]["slot"] for r in graded["reports"]}
    assert len(slots) == 2, f"two workers on one host must use two sandbox slots: {slots}"


def test_reports_from_the_cluster_name_the_file_and_real_isolation(
        graded: dict[str, Any], scale_notebooks: dict[str, Path]) -> None:
    for kind, report in zip(graded["kinds"], graded["reports"], strict=True):
        assert report["file"] == str(scale_notebooks[kind])
        assert any(layer.startswith("filesystem (bubblewrap") for layer in report["isolation"]
                   ) or not report["gradable"], report["isolation"]
        assert "tinytorch-submission-" not in repr(report), "a worker's temporary path leaked"


def test_a_worker_without_a_working_sandbox_is_refused_by_name(
        dask_cluster: Any, client: Any, graded: dict[str, Any],
        scale_notebooks: dict[str, Path]) -> None:
    dask_cluster.add_worker(preload=str(PRELOAD))
    client.wait_for_workers(2, timeout=60)  # the survivor and the new one
    bad = _addresses(client)["worker-2"]
    log = io.StringIO()
    files = [scale_notebooks["release"], scale_notebooks["attack-exit"]] * 2
    with submission.staged() as template:
        reports = cluster.grade(client, files, template=template, seeds=[fixed_seeds()] * 4,
                                limits=LIMITS, budget=budget.DEFAULT_BUDGET,
                                graded=cells.source_graded_cells(), log=log)
    text = log.getvalue()
    refusal = next((line for line in text.splitlines() if line.startswith("refused worker")), "")
    assert bad in refusal and "no working sandbox" in refusal and "bubblewrap" in refusal, text
    assert all(r["grader"]["worker"] != bad for r in reports), "a refused worker graded"
    assert all(r["total"] == 0 and r["gradable"] for r in reports)


def test_a_cluster_with_no_trustworthy_worker_grades_nothing_and_says_why(
        dask_cluster: Any, client: Any, graded: dict[str, Any],
        scale_notebooks: dict[str, Path]) -> None:
    dask_cluster.kill_worker(1)  # the last good worker: only the refused one is left
    deadline = time.monotonic() + 30
    while graded["addresses"]["worker-1"] in client.scheduler_info()["workers"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with submission.staged() as template, pytest.raises(cluster.ClusterError,
                                                     match="no worker .* can be trusted"):
        cluster.grade(client, [scale_notebooks["release"]], template=template,
                      seeds=[fixed_seeds()], limits=LIMITS, budget=budget.DEFAULT_BUDGET,
                      graded=cells.source_graded_cells(), log=io.StringIO())
