"""Where walguard finds its controls, remediation scripts and pytest settings, and where a run's
reports go by default: in a checkout of the repository, or in an installed package.

The repository keeps the controls in `checks/` and the remediation scripts in `remediation/`, at
its top level; a wheel or sdist installs the same files inside the package, as `walguard/checks/`
and `walguard/remediation/` (pyproject.toml maps them). Either way pytest's root directory is
the directory that holds `checks/`, so a control's node id always reads
`checks/test_*.py::WG-ID[host]`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPORT_ROOT_ENV = "WALGUARD_REPORT_ROOT"


@dataclass(frozen=True)
class Layout:
    root: Path  # pytest's --rootdir: the directory holding checks/
    checks: Path
    remediation: Path
    examples: Path  # the nightly units, cron line and CI pipelines
    pytest_config: Path  # pytest's -c
    checkout: bool  # a checkout of the repository (an editable install is one too)


def layout(package_dir: Path = PACKAGE_DIR) -> Layout:
    """The checkout's layout when `package_dir` sits in one (its parent holds pyproject.toml,
    checks/ and remediation/), else the installed package's."""
    repo = package_dir.parent
    if (repo / "pyproject.toml").is_file() and (repo / "checks").is_dir():
        return Layout(
            repo,
            repo / "checks",
            repo / "remediation",
            repo / "examples",
            repo / "pyproject.toml",
            True,
        )
    # Installed: no pyproject.toml beside the controls, so pytest's settings ship as an ini file.
    return Layout(
        package_dir,
        package_dir / "checks",
        package_dir / "remediation",
        package_dir / "examples",
        package_dir / "audit-pytest.ini",
        False,
    )


LAYOUT = layout()
CHECKS_DIR = LAYOUT.checks
REMEDIATION_DIR = LAYOUT.remediation
# The lab writes its inventory here (`walguard lab up`); it is the default only in a checkout.
LAB_INVENTORY = LAYOUT.root / "inventories" / "lab.yml"


def default_inventory() -> Path | None:
    """The lab's inventory in a checkout; None when installed, where --inventory is required."""
    return LAB_INVENTORY if LAYOUT.checkout else None


def default_report_root() -> Path:
    """WALGUARD_REPORT_ROOT when set; else the checkout's reports/, or reports/ under the current
    directory when installed (never inside the installed package)."""
    named = os.environ.get(REPORT_ROOT_ENV, "").strip()
    if named:
        return Path(named)
    if LAYOUT.checkout:
        return LAYOUT.root / "reports"
    return Path.cwd() / "reports"


def remediation_dir_for(checks_dir: Path) -> Path:
    """Where the paired scripts of a controls directory's controls are: the remediation/ beside
    it (the shipped controls' scripts are REMEDIATION_DIR, beside CHECKS_DIR, in both layouts)."""
    if checks_dir.resolve() == CHECKS_DIR.resolve():
        return REMEDIATION_DIR
    return checks_dir.parent / "remediation"
