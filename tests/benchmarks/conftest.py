from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def benchmark_module() -> Callable[[str], ModuleType]:
    """``benchmark_module("train_step")`` is ``benchmarks.train_step`` of this checkout. pytest
    puts ``tests/`` on sys.path, where ``tests/benchmarks`` would be found as a namespace package
    ``benchmarks`` when the repository root is not on the path (``pytest`` run without
    ``python -m``)."""
    def load(name: str) -> ModuleType:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        package = sys.modules.get("benchmarks")
        if package is not None and getattr(package, "__file__", None) is None:
            del sys.modules["benchmarks"]  # the namespace package, not ours
        return importlib.import_module(f"benchmarks.{name}")

    return load
