"""The sandbox itself (``course.sandbox``): what it lets through, its limits, and the fallback
where bubblewrap is missing (which still runs, and says which layers it lacks)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from course import sandbox


def _run(code: str, tmp_path: Path, **limits: float) -> tuple[sandbox.Result, list[bytes]]:
    folder = Path(sandbox.tempfile_dir())
    lines: list[bytes] = []
    try:
        result = sandbox.run(folder, code, stdin=b"", on_line=lambda line: lines.append(line)
                             or True, limits=sandbox.Limits(**limits))
    finally:
        os.rmdir(folder)
    return result, lines


def test_a_run_sees_its_own_private_tmp_and_no_repository(tmp_path: Path) -> None:
    code = ("import os, tempfile\n"
            "with tempfile.NamedTemporaryFile(dir=tempfile.gettempdir()) as f: f.write(b'x')\n"
            f"print(os.path.exists({str(sandbox.Path(__file__).resolve())!r}))\n"
            "print(os.getuid())\n")
    result, lines = _run(code, tmp_path)
    assert result.reason is None and result.returncode == 0, result.stderr
    if sandbox.bubblewrap_works():
        assert lines[0] == b"False"  # the test suite's own file is not there
    if os.getuid() == 0 and sandbox.bubblewrap_works():
        assert int(lines[1]) == sandbox.SANDBOX_UID  # slot 0, never root


def test_the_per_check_limit_stops_a_silent_run(tmp_path: Path) -> None:
    result, _ = _run("print('first', flush=True)\nwhile True: pass\n", tmp_path,
                     wall=30.0, per_line=2.0)
    assert result.reason is not None and "one check ran longer" in result.reason
    assert result.seconds < 10


def test_without_bubblewrap_the_run_goes_on_and_says_what_it_lacks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    result, lines = _run("import tempfile, os\n"
                         "f = tempfile.NamedTemporaryFile(); f.write(b'x'); f.flush()\n"
                         "print('wrote', os.path.dirname(f.name))\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert lines and lines[0].startswith(b"wrote ")
    assert not os.path.exists(lines[0].split(b" ", 1)[1].decode())  # its scratch is gone
    assert not any(layer.startswith(("filesystem", "pid", "network")) for layer in result.layers)
    assert {"filesystem", "network", "pid"} <= set(sandbox.missing_layers())
