"""Waivers: accepted risks as data.

A waivers file is YAML: a list (or a mapping with one key, `waivers`, holding the list) of
entries, each with every one of these keys:

    - control: WG-ARC-004            # a control id that exists
      hosts: "db*"                   # a host name or glob, or a list of them
      reason: "the seed command is being replaced by pgBackRest in CHG-2211"
      author: j.smith                # who asks for the waiver
      expires: 2027-03-31            # the last day it waives (UTC)
      ticket: RISK-1042

Who accepts the risk is not written in the file: it is whoever signs the file's exact bytes
(walguard.history.waiver_approval), and no entry's author may be that person
(walguard.history.waiver_identity).
A waiver of a critical control names each host literally (no glob) and expires within
`max_days` (default 90) of today.

A waived failure is WAIVED with its justification and does not fail the gate. From the day after
`expires` on, the waiver waives nothing and the run reports it as expired. A file that breaks any
rule is a usage error naming the file, line and key, before any host is touched: an auditor must
never find a waiver that was silently ignored or silently honoured.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from walguard.errors import one_line
from walguard.history.waiver_identity import Approval, IdentityError, fold
from walguard.results import FAIL, WAIVED, Result
from walguard.yaml_limit import BoundedSafeLoader

KEYS = ("control", "hosts", "reason", "author", "expires", "ticket")
# Only a finding can be an accepted risk: ERROR means nobody could tell, and a waiver must not
# turn "could not look" into a green gate.
WAIVABLE = frozenset({FAIL})
CRITICAL = "critical"
MAX_DAYS = 90  # how far ahead a critical control's waiver may expire, by default
MAX_DAYS_LIMIT = 365  # and at most: a critical risk is accepted again at least once a year
GLOB = re.compile(r"[*?\[]")

ACTIVE = "active"
EXPIRED = "expired"


class WaiverError(ValueError):
    """The waivers file is unusable: file, line and key are in the message, on one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


@dataclass(frozen=True)
class Rules:
    """What an entry is judged against: each known control's severity, today and max_days."""

    severities: Mapping[str, str]
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    max_days: int = MAX_DAYS


@dataclass(frozen=True)
class Waiver:
    control: str
    hosts: tuple[str, ...]
    reason: str
    author: str
    expires: date
    ticket: str
    line: int  # where the entry starts in the file (1-based)
    author_line: int = 0  # where its `author` key is

    def covers(self, host: str, control: str) -> bool:
        return control == self.control and any(fnmatch.fnmatchcase(host, p) for p in self.hosts)

    def status(self, today: date) -> str:
        return ACTIVE if today <= self.expires else EXPIRED

    def as_dict(self, today: date, approver: str) -> dict[str, Any]:
        return {
            "control": self.control,
            "hosts": list(self.hosts),
            "reason": self.reason,
            "author": self.author,
            "approver": approver,
            "expires": self.expires.isoformat(),
            "ticket": self.ticket,
            "line": self.line,
            "status": self.status(today),
        }


@dataclass(frozen=True)
class Waivers:
    path: Path
    sha256: str
    entries: tuple[Waiver, ...]
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    data: bytes = field(default=b"", repr=False)  # the file's bytes as read, checked and signed
    approval: Approval | None = None
    max_days: int = MAX_DAYS

    @property
    def approver(self) -> str:
        return self.approval.approver.name if self.approval is not None else ""

    def apply(self, res: Result) -> Result:
        """The result, WAIVED when an active waiver covers its failure."""
        if res.result not in WAIVABLE:
            return res
        for w in self.entries:
            if w.covers(res.host, res.control) and w.status(self.today) == ACTIVE:
                return replace(res, result=WAIVED, waiver=w.as_dict(self.today, self.approver))
        return res

    def expired_covering(self, res: Result) -> list[Waiver]:
        return [
            w
            for w in self.entries
            if w.covers(res.host, res.control) and w.status(self.today) == EXPIRED
        ]

    def record(self, results: list[Result]) -> dict[str, Any]:
        """What results.json says about the waivers: the file's hash, its approval and each
        entry with its status and the results it waived (an active waiver that waived nothing
        is shown too: the risk it accepted may be gone, and the waiver with it)."""
        entries = []
        for w in self.entries:
            waived = [
                f"{r.host}:{r.control}"
                for r in results
                if r.result == WAIVED and r.waiver is not None and r.waiver["line"] == w.line
            ]
            still_failing = [
                f"{r.host}:{r.control}"
                for r in results
                if w.covers(r.host, r.control) and r.result != WAIVED and r.result in WAIVABLE
            ]
            entries.append(
                {
                    **w.as_dict(self.today, self.approver),
                    "waived": waived,
                    "no_longer_waived": still_failing if w.status(self.today) == EXPIRED else [],
                }
            )
        approval = self.approval.as_dict() if self.approval is not None else None
        return {
            "file": str(self.path),
            "sha256": self.sha256,
            "approval": approval,
            "critical_max_days": self.max_days,
            "entries": entries,
        }


_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WaiverError(f"{path}: cannot read the waivers file: {exc.strerror}") from None


def parse(path: Path, data: bytes, rules: Rules) -> Waivers:
    """The waivers in `data` (the bytes of `path`), every rule checked; WaiverError names file,
    line and key. The approval is checked by walguard.history.waiver_approval."""
    try:
        root = yaml.compose(data.decode("utf-8"), Loader=BoundedSafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WaiverError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    seq = root
    if isinstance(root, yaml.MappingNode):
        keys = [k.value for k, _ in root.value]
        if keys != ["waivers"]:
            raise WaiverError(
                f"{path}:{root.start_mark.line + 1}: expected a list of waivers or one key "
                f"`waivers` holding it, found keys {keys}"
            )
        seq = root.value[0][1]
    if seq is None or (isinstance(seq, yaml.ScalarNode) and seq.value in ("", "~", "null")):
        entries: tuple[Waiver, ...] = ()
    elif not isinstance(seq, yaml.SequenceNode):
        raise WaiverError(f"{path}:{seq.start_mark.line + 1}: expected a list of waivers")
    else:
        entries = tuple(_entry(path, node, rules) for node in seq.value)
    return Waivers(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        entries=entries,
        today=rules.today,
        data=data,
        max_days=rules.max_days,
    )


def _entry(path: Path, node: yaml.Node, rules: Rules) -> Waiver:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        raise WaiverError(f"{path}:{line}: a waiver is a mapping with keys {', '.join(KEYS)}")
    values: dict[str, tuple[Any, int]] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        at = key_node.start_mark.line + 1
        if key == "approver":
            raise WaiverError(
                f"{path}:{at}: key 'approver': the approver is no longer written in the file: "
                "it is whoever signs it. Remove this key, then have the approver run "
                f"`walguard waivers approve {path} --sign-key KEY --sign-cert CERT`, which "
                f"writes {path.name}.p7s beside it"
            )
        if key not in KEYS:
            raise WaiverError(f"{path}:{at}: key {key!r}: unknown (a waiver has {', '.join(KEYS)})")
        if key in values:
            raise WaiverError(f"{path}:{at}: key {key!r}: given twice")
        try:
            # walguard's loader: an impossible date (2027-31-03) is this key's error, not a
            # traceback.
            value = BoundedSafeLoader(b"").construct_object(value_node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise WaiverError(f"{path}:{at}: key {key!r}: {problem}") from None
        values[key] = (value, at)
    for key in KEYS:
        if key not in values:
            raise WaiverError(f"{path}:{line}: key {key!r}: missing")

    def text(key: str) -> str:
        value, at = values[key]
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise WaiverError(f"{path}:{at}: key {key!r}: must be non-empty text")
        return str(value).strip()

    control = text("control")
    at = values["control"][1]
    if not _ID.match(control):
        raise WaiverError(f"{path}:{at}: key 'control': {control!r} is not a control id")
    if control not in rules.severities:
        raise WaiverError(f"{path}:{at}: key 'control': no control {control} exists")
    hosts_value, at = values["hosts"]
    hosts = [hosts_value] if isinstance(hosts_value, str) else hosts_value
    if (
        not isinstance(hosts, list)
        or not hosts
        or not all(isinstance(h, str) and h.strip() for h in hosts)
    ):
        raise WaiverError(f"{path}:{at}: key 'hosts': a host name or glob, or a list of them")
    critical = rules.severities[control] == CRITICAL
    if critical and any(GLOB.search(h) for h in hosts):
        raise WaiverError(
            f"{path}:{at}: key 'hosts': {control} is a critical control: its waiver names each "
            "host (a list of host names, no *, ? or [ glob)"
        )
    author = text("author")
    try:
        fold(author)
    except IdentityError as exc:
        raise WaiverError(f"{path}:{values['author'][1]}: key 'author': {exc}") from None
    expires, at = values["expires"]
    if isinstance(expires, datetime) or not isinstance(expires, date):
        raise WaiverError(f"{path}:{at}: key 'expires': {expires!r} is not a date (YYYY-MM-DD)")
    latest = rules.today + timedelta(days=rules.max_days)
    if critical and expires > latest:
        raise WaiverError(
            f"{path}:{at}: key 'expires': {control} is a critical control: its waiver expires "
            f"within {rules.max_days} days, by {latest.isoformat()} (not {expires.isoformat()})"
        )
    return Waiver(
        control=control,
        hosts=tuple(h.strip() for h in hosts),
        reason=text("reason"),
        author=author,
        expires=expires,
        ticket=text("ticket"),
        line=line,
        author_line=values["author"][1],
    )


def check_four_eyes(waivers: Waivers, approval: Approval) -> Waivers:
    """The waivers with their approval, unless an entry's author is the approver."""
    for w in waivers.entries:
        if approval.approver.is_(w.author):
            raise WaiverError(
                f"{waivers.path}:{w.author_line}: key 'author': {w.author!r} is the approver "
                f"who signed the file ({approval.approver.name}, "
                f"{approval.cert.subject.rfc4514_string()}); a risk is accepted by someone "
                "other than who asks for it"
            )
    return replace(waivers, approval=approval)
