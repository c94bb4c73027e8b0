"""tinytorch.files: what the checkpoint, the grading cache and `tinytorch complete` write is
written whole or not at all (a temporary file beside the target, synced, renamed over it)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tinytorch import files


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".tmp")


def test_bytes_or_a_writer_land_whole_in_a_new_folder(tmp_path: Path) -> None:
    target = tmp_path / "new" / "report.json"
    assert files.write_atomically(target, b'{"total": 85}') == target
    assert target.read_bytes() == b'{"total": 85}'
    files.write_atomically(target, lambda out: out.write(b"second"))
    assert target.read_bytes() == b"second"
    assert _leftovers(target.parent) == []


def test_a_writer_that_fails_half_way_leaves_the_old_file_and_no_temporary(
        tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    target.write_bytes(b"the previous checkpoint")

    def half(out) -> None:
        out.write(b"half a fi")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_atomically(target, half)
    assert target.read_bytes() == b"the previous checkpoint"
    assert _leftovers(tmp_path) == []


def test_a_temporary_beside_keeps_the_mode_and_the_tag(tmp_path: Path) -> None:
    target = tmp_path / "training.py"
    made = files.temporary_beside(target, b"x = 1\n", mode=0o640, tag="123.")
    assert made.parent == tmp_path and made.name.startswith(".training.py.123.")
    assert made.suffix == ".tmp" and made.read_bytes() == b"x = 1\n"
    assert stat.S_IMODE(made.stat().st_mode) == 0o640
    assert not target.exists()
