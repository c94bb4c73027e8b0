"""environment.yml and pyproject.toml must pin the same packages at the same versions, so a
student on Binder or conda runs exactly what CI tested."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    specs = project["dependencies"] + extras["course"] + extras["dev"] + extras["hub"]
    return {Requirement(s).name.lower(): str(Requirement(s).specifier) for s in specs}


def _environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    requirements = [Requirement(s) for s in pip_section if not s.startswith("-e")]
    return {r.name.lower(): str(r.specifier) for r in requirements}


def test_every_pin_is_exact() -> None:
    """A range would let the two environments drift apart on the next release."""
    loose = {name: spec for name, spec in _pyproject_pins().items() if not spec.startswith("==")}
    assert not loose, f"pyproject.toml has non-exact pins: {loose}"


def test_environment_yml_matches_pyproject() -> None:
    ours, theirs = _pyproject_pins(), _environment_pins()
    assert ours == theirs, (
        f"only in pyproject.toml: { {k: v for k, v in ours.items() if theirs.get(k) != v} }; "
        f"only in environment.yml: { {k: v for k, v in theirs.items() if ours.get(k) != v} }"
    )


def test_environment_yml_installs_this_project_and_python_311() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python>=3.11") for d in conda), conda
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def test_torch_is_only_an_exactly_pinned_oracle() -> None:
    """Any torch spec but the exact local CPU build would download gigabytes of CUDA wheels."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    everywhere = project["dependencies"] + [
        s for name, group in project["optional-dependencies"].items() if name != "oracle"
        for s in group
    ]
    assert not [s for s in everywhere if Requirement(s).name == "torch"]
    assert project["optional-dependencies"]["oracle"] == ["torch==2.13.0"]
