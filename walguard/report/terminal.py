"""The walguard section of the terminal summary: the hosts, then what failed, then the gate.

At a thousand hosts a line per host and per failed control would bury what matters, so identical
lines are grouped: hosts that fared the same are one line ("997 hosts: reachable, ..."), and a
finding shared by many hosts is one line ("FAIL  WG-ARC-004 (low) on 300 hosts (...): ..."); a
host that differs gets a line of its own, exactly as in a small run. Every host of every group
is in results.json and the report. A message is compared without its host's own name, so that
"db7: ssh: ..." and "db9: ssh: ..." group when the rest is the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from walguard.audit.run import AuditRun, HostInfo
from walguard.controls import severity_rank
from walguard.results import (
    ERROR,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    REMEDIATED,
    REMEDIATION_FAILED,
    REMEDIATION_REFUSED,
    ROLLED_BACK,
    WAIVED,
    Result,
)

_ORDER = (PASS, FAIL, ERROR, WAIVED, NOT_APPLICABLE, REMEDIATED, REMEDIATION_FAILED,
          REMEDIATION_REFUSED, ROLLED_BACK)  # fmt: skip
_SHOWN = (FAIL, ERROR, REMEDIATED, REMEDIATION_FAILED, REMEDIATION_REFUSED, ROLLED_BACK)
NAMED = 3  # hosts named on a grouped line; the rest are counted
HOST = "<host>"


def lines(run: AuditRun, results: list[Result], code: int) -> list[str]:
    out = [f"{len(run.expected)} of {run.total} controls selected"]
    out += host_lines(run, results)
    out += finding_lines(results)
    missing = run.missing()
    if missing:
        out.append(f"{len(missing)} selected controls have no result of their own (ERROR above)")
    out.append(f"gate (--fail-on {run.fail_on}): exit status {code}")
    return out


def without_host(text: str, host: str) -> str:
    """The text with its host's own name taken out, for comparing hosts' lines."""
    name = rf"(?<![\w.-]){re.escape(host)}"
    text = re.sub(rf"{name}: ", "", text)  # "db7: ssh: ..." is the reason, wherever it stands
    return re.sub(rf"{name}(?![\w.-])", HOST, text)


def beside(host: str, text: str) -> str:
    """The text as printed right after its host's name: without the host's own "db1: " prefix,
    which would say the name twice."""
    prefix = f"{host}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _groups(keyed: Iterable[tuple[Any, str]]) -> list[tuple[Any, list[str]]]:
    """(key, hosts) in order: the largest group first, then by first host."""
    found: dict[Any, list[str]] = {}
    for key, host in keyed:
        found.setdefault(key, []).append(host)
    return sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))


def _hosts(hosts: list[str]) -> str:
    named = ", ".join(hosts[:NAMED])
    return f"{len(hosts)} hosts ({named}{', …' if len(hosts) > NAMED else ''})"


def _host_state(name: str, info: HostInfo, mine: list[Result]) -> str:
    counts = {k: sum(1 for r in mine if r.result == k) for k in _ORDER}
    if info.reachable:
        state = "reachable"
    elif info.reachable is None:
        state = "NOT JUDGED"
    else:
        state = f"UNREACHABLE ({beside(name, info.error or 'no reason recorded')})"
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    attempts = f", {len(info.ssh_attempts)} ssh attempts" if len(info.ssh_attempts) > 1 else ""
    trips = f"{info.round_trips} round trip{'' if info.round_trips == 1 else 's'}"
    return f"{state}, {trips}{attempts}; {summary}"


def host_lines(run: AuditRun, results: list[Result]) -> list[str]:
    by_host: dict[str, list[Result]] = {}
    for r in results:
        by_host.setdefault(r.host, []).append(r)
    states = {
        name: _host_state(name, info, by_host[name])
        for name, info in sorted(run.hosts.items())
        if name in by_host
    }
    out = []
    for text, hosts in _groups((without_host(s, n), n) for n, s in states.items()):
        if len(hosts) == 1:
            out.append(f"{hosts[0]}: {states[hosts[0]]}")
        else:
            out.append(f"{_hosts(hosts)}: {text}")
    return out


def _remediation(r: Result) -> str | None:
    if not r.remediation:
        return None
    rem: dict[str, Any] = r.remediation
    detail = " | ".join(str(rem["output"]).splitlines()) or "-"
    return f"      remediation {rem['script']} ({rem['mode']}): {rem['status']}: {detail}"


def finding_lines(results: list[Result]) -> list[str]:
    """FAIL, ERROR and remediation results: one line per finding and the hosts it concerns,
    then findings that concern the same hosts with the same message merged across controls
    (an unreachable host is one line, not one per control)."""
    shown = [r for r in results if r.result in _SHOWN]
    first = {(r.host, r.control): r for r in shown}
    per_control = _groups(
        ((r.result, r.control, r.severity, without_host(r.message, r.host),
          without_host(_remediation(r) or "", r.host)), r.host)
        for r in shown
    )  # fmt: skip
    merged: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for (result, control, severity, message, rem), hosts in per_control:
        merged.setdefault((result, message, rem, tuple(hosts)), []).append((control, severity))
    out = []
    order = sorted(
        merged.items(),
        key=lambda kv: (min(severity_rank(s) for _, s in kv[1]), kv[1][0][0], -len(kv[0][3])),
    )
    for (result, message, rem, hosts), controls in order:
        if len(hosts) == 1 and len(controls) == 1:
            r = first[(hosts[0], controls[0][0])]
            out.append(
                f"{r.result:5} {r.host} {r.control} ({r.severity}): {beside(r.host, r.message)}"
            )
            if (line := _remediation(r)) is not None:
                out.append(line)
            continue
        where = hosts[0] if len(hosts) == 1 else _hosts(list(hosts))
        if len(hosts) == 1:
            message = beside(hosts[0], first[(hosts[0], controls[0][0])].message)
        out.append(f"{result:5} {_controls(controls)} on {where}: {message}")
        if rem:
            out.append(rem)
    return out


def _controls(controls: list[tuple[str, str]]) -> str:
    if len(controls) == 1:
        return f"{controls[0][0]} ({controls[0][1]})"
    ids = sorted(c for c, _ in controls)
    if len(ids) <= NAMED:
        return ", ".join(ids)
    return f"{len(ids)} controls ({ids[0]} … {ids[-1]})"
