"""The README's examples must run as printed (docs that rot mislead newcomers first)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README.md has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:  # in order, sharing one namespace, as a reader would paste them
        exec(compile(block, "README.md", "exec"), namespace)
    trainer = namespace["trainer"]
    assert trainer.epoch == 20
    assert namespace["accuracy"] > 0.9, f"README example reaches only {namespace['accuracy']:.2f}"
    assert (tmp_path / "runs" / "last.ckpt").is_file()
    failed = {k: v for k, v in namespace["report"].items() if v}
    assert not failed, f"the README's checks example reports failures for the reference: {failed}"
