"""What a wheel or sdist of walguard carries: every control, every remediation script and its
library, the collector and the pytest settings of an installed audit; the paths walguard uses in
a checkout (editable install included) and when installed."""

from __future__ import annotations

import configparser
import re
import subprocess
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from setuptools import find_packages

from tests.dist import (
    REPO,
    build,
    copy_tree,
    fresh_venv,
    pinned_subset,
    runtime_requirements,
    sdist_names,
    wheel_names,
)
from walguard import paths

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _expected_sources() -> dict[str, str]:
    """Each file that must travel: its path in the repository -> its path in the wheel."""
    files = {
        "walguard/facts/collector/collect.sh": "walguard/facts/collector/collect.sh",
        "walguard/audit-pytest.ini": "walguard/audit-pytest.ini",
        "walguard/report/results.schema.json": "walguard/report/results.schema.json",
    }
    for path in sorted((REPO / "checks").glob("test_*.py")):
        files[f"checks/{path.name}"] = f"walguard/checks/{path.name}"
    for path in sorted((REPO / "remediation").glob("*.sh")):
        files[f"remediation/{path.name}"] = f"walguard/remediation/{path.name}"
    for path in sorted((REPO / "remediation" / "lib").iterdir()):
        files[f"remediation/lib/{path.name}"] = f"walguard/remediation/lib/{path.name}"
    for path in sorted(p for p in (REPO / "examples").rglob("*") if p.is_file()):
        rel = path.relative_to(REPO / "examples")
        files[f"examples/{rel}"] = f"walguard/examples/{rel}"
    return files


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The wheel and sdist built from a copy of the work tree, and a wheel built from that
    sdist (what `pip install walguard-*.tar.gz` installs)."""
    base = tmp_path_factory.mktemp("dist")
    tree = copy_tree(base / "tree")
    wheel = build(tree, base / "out", "wheel")
    sdist = build(tree, base / "out", "sdist")
    unpacked = base / "unpacked"
    subprocess.run(["tar", "-xzf", str(sdist), "-C", str(unpacked.mkdir() or unpacked)], check=True)
    (from_sdist_tree,) = unpacked.iterdir()
    from_sdist = build(from_sdist_tree, base / "from-sdist", "wheel")
    yield {"wheel": wheel, "sdist": sdist, "wheel_from_sdist": from_sdist}


def test_the_wheel_carries_controls_scripts_and_collector(built: dict[str, Path]) -> None:
    names = wheel_names(built["wheel"])
    expected = set(_expected_sources().values())
    assert len([n for n in expected if n.startswith("walguard/checks/")]) >= 7
    assert len([n for n in expected if n.startswith("walguard/remediation/WG-")]) >= 13
    assert "walguard/examples/systemd/walguard-audit@.service" in expected
    assert sorted(expected - names) == []
    assert "walguard/examples/inventory/group_vars/production/10-recovery.yml" in names
    # The repository's single source: no second copy at the wheel's top level.
    assert not [n for n in names if n.startswith(("checks/", "remediation/", "examples/"))]


def test_the_wheel_names_its_license_and_needs_no_testinfra(built: dict[str, Path]) -> None:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(meta).decode()
        licensed = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert licensed and b"Apache License" in wheel.read(licensed[0])
    assert "License-Expression: Apache-2.0" in metadata
    needs = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    # testinfra only for the benchmarks: its plugin never loads into an audit.
    assert not [n for n in needs if "testinfra" in n and "extra ==" not in n]
    assert any("testinfra" in n and 'extra == "bench"' in n for n in needs)


def _pins(lock: str) -> dict[str, str]:
    """A hash-pinned lock's pins: canonical name -> version."""
    found = {}
    for line in (REPO / lock).read_text().splitlines():
        if re.match(r"[A-Za-z0-9]", line):
            name, version = line.split(" ")[0].split("==")
            found[canonicalize_name(name)] = version
    return found


def test_the_runtime_lock_pins_exactly_what_the_wheel_needs(built: dict[str, Path]) -> None:
    """requirements.txt is a jump host's install (no dev, bench or Ansible tools); the
    developers' lock holds the same pins and more."""
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert sorted(runtime) == runtime_requirements(built["wheel"])
    assert {k: dev[k] for k in runtime if k in dev} == runtime
    assert {"ruff", "mypy", "ansible-core", "pytest-testinfra"} <= set(dev) - set(runtime)


def test_the_sdist_carries_the_sources_and_builds_the_same_wheel(built: dict[str, Path]) -> None:
    names = sdist_names(built["sdist"])
    assert sorted(set(_expected_sources()) - names) == []
    assert {"pyproject.toml", "README.md"} <= names
    assert wheel_names(built["wheel_from_sdist"]) == wheel_names(built["wheel"])


def test_every_subpackage_of_walguard_is_packaged() -> None:
    """pyproject.toml lists the packages by hand (for the checks/ and remediation/ mapping): a
    new subpackage must be added there, or the wheel would lack it."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {p for p in find_packages(str(REPO), include=["walguard*"])}
    mapped = {"walguard.checks": "checks", "walguard.examples": "examples",
              "walguard.remediation": "remediation"}  # fmt: skip
    assert found | set(mapped) == listed
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == mapped


def test_an_installed_audit_has_the_checkouts_pytest_settings() -> None:
    ini = configparser.ConfigParser()
    ini.read(REPO / "walguard" / "audit-pytest.ini")
    checkout = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert ini["pytest"]["addopts"] == checkout["addopts"]


def test_the_checkout_layout() -> None:
    found = paths.layout(REPO / "walguard")
    assert found == paths.Layout(
        REPO,
        REPO / "checks",
        REPO / "remediation",
        REPO / "examples",
        REPO / "pyproject.toml",
        checkout=True,
    )
    assert found == paths.LAYOUT
    assert paths.default_inventory() == REPO / "inventories" / "lab.yml"
    assert paths.remediation_dir_for(REPO / "checks") == REPO / "remediation"


def test_the_installed_layout(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "walguard"
    (package / "checks").mkdir(parents=True)
    found = paths.layout(package)
    assert found == paths.Layout(
        package,
        package / "checks",
        package / "remediation",
        package / "examples",
        package / "audit-pytest.ini",
        checkout=False,
    )
    # Node ids are relative to the directory holding checks/, in both layouts.
    assert found.checks.parent == found.root


def test_the_report_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WALGUARD_REPORT_ROOT", raising=False)
    assert paths.default_report_root() == REPO / "reports"
    monkeypatch.setenv("WALGUARD_REPORT_ROOT", str(tmp_path / "audits"))
    assert paths.default_report_root() == tmp_path / "audits"
    monkeypatch.delenv("WALGUARD_REPORT_ROOT")
    # Installed: under the current directory, never inside the package.
    monkeypatch.setattr(paths, "LAYOUT", paths.layout(tmp_path / "site-packages" / "walguard"))
    monkeypatch.chdir(tmp_path)
    assert paths.default_report_root() == tmp_path / "reports"
    assert paths.default_inventory() is None


def test_an_editable_install_runs_from_the_checkout(tmp_path: Path) -> None:
    """`pip install -e .` (what `make venv` does) runs the checkout's walguard, which then uses
    the checkout's checks/, remediation/ and pyproject.toml. (walguard finds those by path, never
    by importing walguard.checks, which setuptools' editable finder does not map below a regular
    package.)"""
    tree = copy_tree(tmp_path / "tree")
    python = fresh_venv(tmp_path / "venv")
    # As `make venv`: the pinned setuptools builds the editable package, without isolation.
    pinned = pinned_subset(["setuptools"], tmp_path / "setuptools.txt")
    for argv in (
        ["--require-hashes", "-r", str(pinned)],
        ["--no-deps", "--no-build-isolation", "-e", str(tree)],
    ):
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *argv],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    code = (
        "import walguard, walguard.paths as p;"
        "print(walguard.__file__); print(p.LAYOUT.checkout, p.LAYOUT.root);"
        "print(p.CHECKS_DIR, p.REMEDIATION_DIR, p.LAYOUT.pytest_config)"
    )
    # Run from elsewhere: the import must come from the editable install, not the cwd.
    shown = subprocess.run(
        [str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        str(tree / "walguard" / "__init__.py"),
        f"True {tree}",
        f"{tree / 'checks'} {tree / 'remediation'} {tree / 'pyproject.toml'}",
    ]
