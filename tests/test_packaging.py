"""The two ways to install (pip with pyproject.toml, conda with environment.yml) agree."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements.update(extra)
    return {r.replace(" ", "") for r in requirements}


def _conda_pip_requirements() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml must have exactly one pip: section"
    return {r.replace(" ", "") for r in pip_sections[0] if not r.startswith("-")}


def test_environment_yml_matches_pyproject() -> None:
    pip_reqs, conda_reqs = _pyproject_requirements(), _conda_pip_requirements()
    assert conda_reqs == pip_reqs, (
        f"only in pyproject.toml: {sorted(pip_reqs - conda_reqs)}; "
        f"only in environment.yml: {sorted(conda_reqs - pip_reqs)}"
    )


def test_environment_yml_installs_the_package_itself() -> None:
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert "--editable ." in text


def test_jupyter_book_is_pinned_to_1x() -> None:
    assert "jupyter-book>=1.0.4,<2" in _pyproject_requirements()


def test_torch_has_no_upper_pin() -> None:
    torch_reqs = [r for r in _pyproject_requirements() if r.startswith("torch")]
    assert torch_reqs and not any("<" in r for r in torch_reqs), torch_reqs
