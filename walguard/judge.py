"""The one judge: a control's verdict on one host's facts, used by the run and by the re-check
after remediation alike.

A control is a function whose parameters name what it reads (`pg`, `archive`, `policy`, ...);
`PROVIDERS` is the one table that says where each comes from. A fact that cannot be had makes the
verdict ERROR with its reason, never PASS; a control that calls `fail` makes it FAIL.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from walguard.controls import ControlFailed, NotApplicable
from walguard.errors import FactUnavailable
from walguard.facts.host import HostFacts
from walguard.facts.platform import PlatformFacts
from walguard.inventory.load import Target
from walguard.results import ERROR, FAIL, NOT_APPLICABLE, PASS

Provider = Callable[[HostFacts, Target], Any]

PROVIDERS: dict[str, Provider] = {
    "facts": lambda facts, target: facts,
    "target": lambda facts, target: target,
    "policy": lambda facts, target: target.policy,
    "pg": lambda facts, target: facts.pg.get(),
    "archive": lambda facts, target: facts.archive.get(),
    "probe": lambda facts, target: facts.probe.get(),
    "selinux": lambda facts, target: facts.selinux.get(),
    "platform": lambda facts, target: _platform(facts),
    "zones": lambda facts, target: facts.zones.get(),
    "backups": lambda facts, target: facts.backups.get(),
    "window": lambda facts, target: facts.window.get(),
    "drill": lambda facts, target: facts.drill.get(),
}


def _platform(facts: HostFacts) -> PlatformFacts:
    if facts.platform is None:
        raise FactUnavailable("the validation matrix's facts were not collected")
    return facts.platform


@dataclass(frozen=True)
class Verdict:
    result: str  # PASS, FAIL, ERROR or NOT APPLICABLE
    message: str = ""


@functools.cache
def parameters(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The names a control reads (once per control: judge() runs for every host)."""
    return tuple(inspect.signature(fn).parameters)


def unknown_parameters(fn: Callable[..., Any]) -> list[str]:
    """Parameters no provider supplies (a control that could never be judged)."""
    return [name for name in parameters(fn) if name not in PROVIDERS]


def judge(fn: Callable[..., Any], facts: HostFacts, target: Target) -> Verdict:
    try:
        facts.require_reachable()
        kwargs = {name: PROVIDERS[name](facts, target) for name in parameters(fn)}
        note = fn(**kwargs)
    except ControlFailed as exc:
        return Verdict(FAIL, _one_line(exc))
    except NotApplicable as exc:
        return Verdict(NOT_APPLICABLE, _one_line(exc))
    except FactUnavailable as exc:
        return Verdict(ERROR, _one_line(exc))
    except Exception as exc:  # a bug in a control is the control's ERROR, never a PASS
        return Verdict(
            ERROR, f"internal error in the control: {type(exc).__name__}: {_one_line(exc)}"
        )
    # A control may say what it established (e.g. "a symlink to ..."): the PASS's message.
    return Verdict(PASS, " ".join(note.split()) if isinstance(note, str) else "")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
