"""The grader's state lives in folders of its own account (course/grading/places.py): a Dask
worker's unpacked release too. A release folder that holds anything the release does not
(bytecode Python in the sandbox would load, a link) is unpacked again before it is used, and
the folder of releases is never a shared temporary one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course.assignment.cells import source_graded_cells
from course.grading import cache, cluster, places, sandbox, submission

pytestmark = pytest.mark.skipif(not sandbox.bubblewrap_works(),
                                reason="NOT TESTED: a worker is refused without bubblewrap")


def _release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> tuple[bytes, str, list, Path]:
    """The staged release as a worker receives it: its archive, its digest, the graded cells
    and a private folder of releases; no judging processes are started for the test."""
    monkeypatch.setattr(cluster, "_STARTED", 10**6)
    graded = source_graded_cells()
    into = places.private_folder(tmp_path / "releases")
    with submission.staged() as template:
        archive = cluster._archive(template)
        release = cache.release_digest(template, graded)
    return archive, release, graded, into


def test_a_release_folder_with_planted_or_changed_bytecode_is_unpacked_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, release, graded, into = _release(tmp_path, monkeypatch)
    first = cluster._check_worker(release, archive, cluster.grader_code_digest(), graded, into)
    assert first["ok"], first["reason"]
    folder = into / release[:32]
    released = next((folder / "tinytorch").rglob("__pycache__/training.*.pyc"))
    kept = released.read_bytes()  # the release's own bytecode, covered by its digest
    released.chmod(0o644)
    released.write_bytes(b"bytecode nobody released")
    planted = folder / "checks" / "__pycache__" / "planted.cpython-311.pyc"
    planted.write_bytes(b"bytecode nobody released")
    (folder / "linked").symlink_to("/etc")
    again = cluster._check_worker(release, archive, cluster.grader_code_digest(), graded, into)
    assert again["ok"], again["reason"]
    assert not planted.exists() and not (folder / "linked").is_symlink()
    assert released.read_bytes() == kept


def test_the_folders_are_the_grading_accounts_own(tmp_path: Path) -> None:
    for name in ("tinytorch-grading-releases", "tinytorch-grading-slots"):
        assert not str(places.grading_folder(name)).startswith("/tmp/")
    squatted = tmp_path / "squatted"
    squatted.mkdir(mode=0o755)
    squatted.chmod(0o755)
    with pytest.raises(RuntimeError, match=rf"{squatted} belongs to uid {os.geteuid()} with "
                                           "mode 755"):
        places.private_folder(squatted)


def test_a_release_that_is_not_the_clients_is_refused_after_unpacking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive, _, graded, into = _release(tmp_path, monkeypatch)
    claimed = "0" * 64  # not the digest of what the archive holds
    status = cluster._check_worker(claimed, archive, cluster.grader_code_digest(), graded, into)
    assert not status["ok"]
    assert status["reason"] == ("the release it received does not match the client's (its "
                                "packages or graded cells differ)")
