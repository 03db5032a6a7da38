"""The controls registry: each control's declaration, made by the @control decorator.

A control is a pytest test function in checks/ (or in a directory of the user's own controls,
`walguard audit --checks DIR`). The decorator records its stable id, title, severity, rationale,
references, what it reads, its paired remediation and the lab's break scenarios, and marks it so
that `-m severity_high` and `-k WG-ARC-001` select it. A control id names one control: a second
file defining the same id is an error.

The declaration is the one place that says what a control is; everything else reads it:

- `reads`: the facts it judges, collector sections by name and PostgreSQL's as
  `postgresql.KEY` (walguard.fact_names names them all); the report cites these sections
  (their lines in evidence/HOST/collector.txt) and keys as the result's evidence.
- `remediation`: its paired script's file name, checked when the control registers: the script
  exists beside the control's directory and its header names this control, says what it
  changes and is as disruptive as declared (walguard.control_scripts); SCRIPTS holds it.
- `scenarios`: the lab's break scenarios (lab/scenarios/NAME.sh) that must make it FAIL; the
  lab's break-and-fix tests run each one.
- `detail`: what exactly it checks, as the README's table says it (`markdown_table`).

A user's own controls may leave out `reads`, `scenarios` and `detail`.
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

from walguard.control_scripts import Script, paired_script
from walguard.fact_names import known_read
from walguard.paths import CHECKS_DIR

SEVERITIES = ("critical", "high", "medium", "low")
# A control id: WG-, a three-letter area, a number (results.schema.json's pattern; and
# walguard.audit.run.pair_of_nodeid finds a result's control by `::WG-` in its node id).
CONTROL_ID = re.compile(r"WG-[A-Z]{3}-[0-9]{3}")
# A lab scenario's name (lab/scenarios/NAME.sh; walguard lab scenario apply NAME).
SCENARIO_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Control] = {}
FUNCTIONS: dict[str, Callable[..., Any]] = {}  # control id -> its check, for re-evaluation
SOURCES: dict[str, Path] = {}  # control id -> the file defining it (its remediation/ is beside)
SCRIPTS: dict[str, Script] = {}  # control id -> its paired script, header checked


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
    # The option that asks for it (--active-probe, --restore-drill): it changes state, so it runs
    # only when asked for; None: every audit.
    opt_in: str | None = None
    reads: tuple[str, ...] = ()  # collector sections and postgresql.KEY facts it judges
    scenarios: tuple[str, ...] = ()  # lab break scenarios that must make it FAIL
    detail: str = ""  # what exactly it checks, for the README's table (else the title)


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
    opt_in: str | None = None,
    reads: Sequence[str] = (),
    scenarios: Sequence[str] = (),
    detail: str = "",
) -> Callable[[F], F]:
    if not CONTROL_ID.fullmatch(control_id):
        raise ValueError(
            f"control id {control_id!r}: a control id is WG-, a three-letter area and a "
            "three-digit number (e.g. WG-BNK-001 for your own)"
        )
    if severity not in SEVERITIES:
        raise ValueError(f"{control_id}: severity must be one of {SEVERITIES}, not {severity!r}")

    def decorate(fn: F) -> F:
        if _uses_assert(fn):
            raise ValueError(
                f"control {control_id} ({fn.__name__}) uses assert: call walguard.controls.fail "
                "instead, so that its verdict does not depend on Python's optimisation flags"
            )
        source = _source_of(fn)
        for what, names in (("reads", reads), ("scenarios", scenarios)):
            # reads="archive_stat" would read as its letters.
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise ControlsError(
                    f"{source or '(no file)'}: control {control_id}: {what} is a list of names, "
                    f"not {names!r}"
                )
        meta = Control(
            control_id,
            title,
            severity,
            rationale,
            tuple(refs),
            remediation,
            disruptive,
            opt_in,
            tuple(reads),
            tuple(scenarios),
            detail,
        )
        script = _check_declaration(meta, source)
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
        if script is not None:
            SCRIPTS[control_id] = script
        fn.walguard_control = meta  # type: ignore[attr-defined]
        fn = getattr(pytest.mark, f"severity_{severity}")(fn)
        return pytest.mark.walguard_control(control_id)(fn)  # type: ignore[no-any-return]

    return decorate


def _check_declaration(meta: Control, source: Path | None) -> Script | None:
    """What a declaration names exists: every fact it reads, every scenario name, its script
    (returned). ControlsError in one line naming the file and the control otherwise."""
    where = f"{source or '(no file)'}: control {meta.id}"
    for what, names in (("reads", meta.reads), ("scenarios", meta.scenarios)):
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ControlsError(f"{where} names {', '.join(twice)} twice in its {what}")
    unknown = [name for name in meta.reads if not known_read(name)]
    if unknown:
        raise ControlsError(
            f"{where} reads {', '.join(unknown)}: neither a collector section nor a PostgreSQL "
            "fact (postgresql.KEY; walguard.fact_names lists them)"
        )
    bad = [name for name in meta.scenarios if not SCENARIO_NAME.fullmatch(name)]
    if bad:
        raise ControlsError(
            f"{where} has the scenario {', '.join(map(repr, bad))}: a scenario is named with "
            "lowercase letters, digits and '-' (lab/scenarios/NAME.sh)"
        )
    if not meta.remediation:
        return None
    script, problem = paired_script(meta.id, meta.remediation, meta.disruptive, source)
    if script is None:
        raise ControlsError(problem)
    return script


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
        except ControlsError:
            del sys.modules[name]
            raise  # a declaration's mistake: its message names the file and the control
        except Exception as exc:
            del sys.modules[name]
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise ControlsError(f"{path}: cannot import it: {reason}") from exc


def severity_rank(severity: str) -> int:
    """critical 0 ... low 3: lower is more severe."""
    return SEVERITIES.index(severity)


# The README's order: the archive's settings, its directory and its activity first, then the host
# around it; a user's own areas after these. Within an area, an opt-in control comes last.
AREAS = ("ARC", "DIR", "ACT", "RST", "SEL", "SYS", "NET", "IDN")


def table_order(meta: Control) -> tuple[int, str, bool, str]:
    """The README's order of controls (and `walguard controls`')."""
    area = meta.id.split("-")[1]
    return (
        AREAS.index(area) if area in AREAS else len(AREAS),
        area,
        meta.opt_in is not None,
        meta.id,
    )


TABLE_HEADER = "| id | severity | control |\n| --- | --- | --- |\n"


def markdown_table(controls: Sequence[Control]) -> str:
    """The README's table of controls (id, severity, what it checks), from their declarations."""
    rows = [TABLE_HEADER]
    for meta in sorted(controls, key=table_order):
        text = (meta.detail or meta.title).replace("|", "\\|")
        rows.append(f"| {meta.id} | {meta.severity} | {text} |\n")
    return "".join(rows)


def table_span(readme: str) -> tuple[int, int]:
    """Where a README's table of controls is: from its header row to the blank line after it."""
    start = readme.index(TABLE_HEADER)
    end = readme.find("\n\n", start)
    return start, len(readme) if end < 0 else end + 1


def _main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not (args == ["--markdown"] or (len(args) == 2 and args[0] == "--readme")):
        print("usage: python -m walguard.controls --markdown | --readme README.md", file=sys.stderr)
        return 2
    # Run as __main__, this file is a second module: the controls register with the one they
    # import, walguard.controls.
    from walguard import controls as registry

    table = markdown_table(list(registry.load_all().values()))
    if args[0] == "--markdown":
        print(table, end="")
        return 0
    readme = Path(args[1])
    try:
        text = readme.read_text()
        start, end = table_span(text)
        readme.write_text(text[:start] + table + text[end:])
    except OSError as exc:
        print(f"{readme}: {exc.strerror}", file=sys.stderr)
        return 1
    except ValueError:
        print(f"{readme}: has no table of controls to replace", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
