"""The user's own controls, beside the shipped ones: directories of test_*.py files whose
functions use the same `@control` decorator and fact parameters.

They come from `--checks DIR` (repeatable) and from the inventory's `walguard_checks_dirs` (a list
of directories, relative to the inventory's own directory). The inventory's list is a property
of the whole run, since controls are collected once for every host: it must be the same for every
database host (set it under `all`). Before any host is touched, each directory is checked and its
files imported (`walguard.controls.load_all`): a directory that does not exist or holds no
test_*.py, a file that fails to import, a control id that another file already defines, a
control whose paired remediation script is missing or mislabelled (checked as each control
registers) or one that reads a fact no provider gives is a usage error naming the directory or
file.
The directories are then added to pytest's collection, so `walguard audit --checks DIR` is
`pytest checks DIR` with the checks made first.

A user control's remediation script is looked up, by the file name its `remediation=` names, in
the `remediation/` directory beside its controls directory (`DIR/../remediation/`), as the shipped
controls' scripts sit beside checks/; it runs with the shipped `remediation/lib/common.sh`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from walguard.controls import FUNCTIONS, SOURCES, ControlsError, load_all
from walguard.inventory.load import Target
from walguard.judge import unknown_parameters
from walguard.paths import CHECKS_DIR

INVENTORY_KEY = "walguard_checks_dirs"
_DIRS_KEY = pytest.StashKey[list[Path]]()


def from_inventory(targets: Sequence[Target], source: str) -> list[Path]:
    """The inventory's walguard_checks_dirs, resolved against the inventory's directory; one
    list for the whole run, or ControlsError."""
    by_value: dict[tuple[str, ...], list[str]] = {}
    for t in targets:
        by_value.setdefault(tuple(t.vars.get(INVENTORY_KEY) or ()), []).append(t.name)
    if len(by_value) > 1:
        seen = "; ".join(
            f"{list(value) if value else 'unset'} on {', '.join(names[:3])}"
            + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            for value, names in by_value.items()
        )
        raise ControlsError(
            f"{INVENTORY_KEY} differs between hosts ({seen}): controls are collected once for "
            "the whole run, so set it once, for all"
        )
    found = next(iter(by_value), ())
    path = Path(source)
    base = (path if path.is_dir() else path.parent) if path.exists() else Path.cwd()
    return [base / d for d in found]


def prepare(config: pytest.Config, targets: Sequence[Target], source: str) -> list[Path]:
    """Check and import the user's controls directories (--checks, then the inventory's), add
    them to what pytest collects, and remember them for the run's set of controls."""
    option = [Path(d) for d in config.getoption("checks") or ()]
    dirs = list(dict.fromkeys(d.resolve() for d in [*option, *from_inventory(targets, source)]))
    load_all(CHECKS_DIR, dirs)
    if dirs:
        _check_parameters(dirs)
    collected = {Path(a.split("::")[0]).resolve() for a in config.args}
    config.args.extend(str(d) for d in dirs if d not in collected)
    config.stash[_DIRS_KEY] = dirs
    return dirs


def _check_parameters(dirs: list[Path]) -> None:
    """Each user control reads only facts walguard provides (else it could never be judged)."""
    for cid, source in SOURCES.items():
        if source.parent in dirs and cid in FUNCTIONS:
            unknown = unknown_parameters(FUNCTIONS[cid])
            if unknown:
                raise ControlsError(
                    f"{source}: control {cid} reads {', '.join(unknown)}, which no fact provides"
                )


def dirs_of(config: pytest.Config) -> list[Path]:
    """The user's controls directories of this run (none before `prepare`)."""
    return config.stash.get(_DIRS_KEY, [])
