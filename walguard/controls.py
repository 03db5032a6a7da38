"""The controls registry: metadata for each control, attached by the @control decorator.

A control is a pytest test function in checks/ (or in a directory of the user's own controls,
`walguard audit --checks DIR`). The decorator records its stable id, title, severity, rationale,
references and paired remediation, and marks it so that `-m severity_high` and `-k WG-ARC-001`
select it. A control id names one control: a second file defining the same id is an error.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from walguard.paths import CHECKS_DIR

SEVERITIES = ("critical", "high", "medium", "low")
# A control id: WG-, a three-letter area, a number (results.schema.json's pattern; and
# walguard.audit.run.pair_of_nodeid finds a result's control by `::WG-` in its node id).
CONTROL_ID = re.compile(r"WG-[A-Z]{3}-[0-9]{3}")
F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Control] = {}
FUNCTIONS: dict[str, Callable[..., Any]] = {}  # control id -> its check, for re-evaluation
SOURCES: dict[str, Path] = {}  # control id -> the file defining it (its remediation/ is beside)


class ControlsError(Exception):
    """A controls directory or file that cannot be used, in one line naming it."""


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    severity: str
    rationale: str
    refs: tuple[str, ...]
    remediation: str | None
    disruptive: bool
    opt_in: bool = False  # runs only when asked for (e.g. --active-probe: it changes state)


class NotApplicable(Exception):
    """Raised by a control when the policy explicitly opts out of it (shown with its reason)."""


class ControlFailed(Exception):
    """Raised by `fail`: the control looked and found the host not as the policy expects."""


def fail(message: str) -> NoReturn:
    """A control's FAIL, with a message an auditor can read.

    Controls call this instead of using `assert`, because Python drops assert statements when
    optimising (PYTHONOPTIMIZE) and a control whose checks vanished would PASS.
    """
    raise ControlFailed(message)


def _uses_assert(fn: Callable[..., Any]) -> bool:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return False  # no source to read (e.g. built at run time): the judge still maps it
    return any(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(source)))


def _source_of(fn: Callable[..., Any]) -> Path | None:
    code = getattr(fn, "__code__", None)
    name = code.co_filename if code is not None else ""
    return Path(name).resolve() if name and not name.startswith("<") else None


def control(
    control_id: str,
    title: str,
    *,
    severity: str,
    rationale: str,
    refs: tuple[str, ...] = (),
    remediation: str | None = None,
    disruptive: bool = False,
    opt_in: bool = False,
) -> Callable[[F], F]:
    if not CONTROL_ID.fullmatch(control_id):
        raise ValueError(
            f"control id {control_id!r}: a control id is WG-, a three-letter area and a "
            "three-digit number (e.g. WG-BNK-001 for your own)"
        )
    if severity not in SEVERITIES:
        raise ValueError(f"{control_id}: severity must be one of {SEVERITIES}, not {severity!r}")
    meta = Control(
        control_id, title, severity, rationale, tuple(refs), remediation, disruptive, opt_in
    )

    def decorate(fn: F) -> F:
        if _uses_assert(fn):
            raise ValueError(
                f"control {control_id} ({fn.__name__}) uses assert: call walguard.controls.fail "
                "instead, so that its verdict does not depend on Python's optimisation flags"
            )
        source = _source_of(fn)
        known = SOURCES.get(control_id) if control_id in REGISTRY else None
        # The same file imported twice (by load_all, then by pytest) defines the same control.
        if control_id in REGISTRY and (
            REGISTRY[control_id].title != title or (known and source and known != source)
        ):
            where = f" in {known}" if known else ""
            raise ValueError(f"control id {control_id} is already used for another control{where}")
        REGISTRY[control_id] = meta
        FUNCTIONS[control_id] = fn
        if source is not None:
            SOURCES[control_id] = source
        fn.walguard_control = meta  # type: ignore[attr-defined]
        fn = getattr(pytest.mark, f"severity_{severity}")(fn)
        return pytest.mark.walguard_control(control_id)(fn)  # type: ignore[no-any-return]

    return decorate


def load_all(checks_dir: Path | None = None, extra_dirs: Sequence[Path] = ()) -> dict[str, Control]:
    """Import every test_*.py of the shipped controls (`checks_dir`, default checks/) and of the
    user's `extra_dirs`, so that REGISTRY holds every control; returns a copy of REGISTRY.

    Raises ControlsError, naming the directory or file, for a directory that does not exist or
    holds no test_*.py, a file whose name a shipped or earlier file already has (pytest imports
    controls files by name), or a file that fails to import (a duplicate control id included).
    """
    shipped = (checks_dir or CHECKS_DIR).resolve()
    seen = {p.name: shipped for p in shipped.glob("test_*.py")}
    _import_dir(shipped)
    for directory in dict.fromkeys(d.resolve() for d in extra_dirs):
        if directory == shipped:
            continue
        if not directory.is_dir():
            raise ControlsError(f"controls directory {directory}: no such directory")
        files = sorted(directory.glob("test_*.py"))
        if not files:
            raise ControlsError(f"controls directory {directory}: holds no test_*.py file")
        for path in files:
            if path.name in seen:
                raise ControlsError(
                    f"{path}: {seen[path.name]} has a controls file of that name; pytest imports "
                    "controls files by name, so give it another one"
                )
            seen[path.name] = directory
        # As pytest will when it collects them: the directory's own modules are importable.
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
        _import_dir(directory)
    return dict(REGISTRY)


def _import_dir(directory: Path) -> None:
    for path in sorted(directory.glob("test_*.py")):
        # Named by the file's path: two directories may both hold a test_x.py.
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        name = f"walguard_checks_{digest}_{path.stem}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ControlsError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise ControlsError(f"{path}: cannot import it: {reason}") from exc


def severity_rank(severity: str) -> int:
    """critical 0 ... low 3: lower is more severe."""
    return SEVERITIES.index(severity)
