"""Reading an archive_command: does it copy %p to %f, and does it refuse to overwrite?"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# Tools that implement archiving themselves, including refusing to overwrite a different segment.
ARCHIVE_TOOLS = (
    "pgbackrest",
    "wal-g",
    "barman-wal-archive",
    "barman-cloud-wal-archive",
    "pg_probackup",
)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    form: str  # a short name for what was recognised
    message: str


def _norm(cmd: str) -> str:
    return " ".join(cmd.split())


def _tokens(cmd: str) -> list[str]:
    try:
        return shlex.split(cmd)
    except ValueError:
        return cmd.split()


_GUARD_OR = re.compile(
    r"^(?:test\s+-[ef]\s+(?P<g1>\S+)|\[\s+-[ef]\s+(?P<g2>\S+)\s+\])\s*\|\|\s*(?P<copy>.+)$"
)
_GUARD_AND = re.compile(
    r"^(?:test\s+!\s+-[ef]\s+(?P<g1>\S+)|\[\s+!\s+-[ef]\s+(?P<g2>\S+)\s+\])\s*&&\s*(?P<copy>.+)$"
)
_CMP_IF = re.compile(
    r"^if\s+(?:test\s+-[ef]\s+(?P<g1>\S+)|\[\s+-[ef]\s+(?P<g2>\S+)\s+\]);\s*then\s+cmp\s+(?:-s\s+)?"
    r"%p\s+(?P<c>\S+);\s*else\s+(?P<copy>.+?);\s*fi$"
)


def _copy_target(copy: str) -> str | None:
    """`cp %p DEST/%f` (or rsync) -> DEST/%f; None when it is not a plain copy of %p."""
    toks = _tokens(copy)
    if not toks or toks[0] not in ("cp", "/bin/cp", "/usr/bin/cp", "rsync", "/usr/bin/rsync"):
        return None
    args = [t for t in toks[1:] if not t.startswith("-")]
    if len(args) == 2 and args[0] == "%p":
        return args[1]
    return None


def refuses_overwrite(cmd: str) -> Verdict:
    """WG-ARC-003: an archive_command must never replace a segment that is already archived."""
    c = _norm(cmd)
    toks = _tokens(c)
    if toks and any(toks[0].endswith(tool) for tool in ARCHIVE_TOOLS):
        return Verdict(
            True, "tool", f"archiving is delegated to {toks[0]}, which refuses overwrites"
        )
    for pattern, form in (
        (_CMP_IF, "if-cmp"),
        (_GUARD_AND, "test-not-and"),
        (_GUARD_OR, "test-or"),
    ):
        m = pattern.match(c)
        if m:
            guard = m.group("g1") or m.group("g2")
            target = _copy_target(m.group("copy"))
            if target is None:
                break
            if guard != target:
                return Verdict(False, form, f"the guard tests {guard} but the copy writes {target}")
            return Verdict(True, form, f"guarded: existing {target} is never overwritten")
    toks_copy = _tokens(c)
    if toks_copy and toks_copy[0] in ("cp", "/bin/cp", "/usr/bin/cp"):
        flags = [t for t in toks_copy[1:] if t.startswith("-")]
        if any(
            f in ("-n", "--no-clobber", "--update=none")
            or (f.startswith("-") and not f.startswith("--") and "n" in f)
            for f in flags
        ):
            return Verdict(True, "cp-no-clobber", "cp --no-clobber never overwrites")
        return Verdict(False, "unguarded-cp", "a plain cp overwrites an already archived segment")
    if toks_copy and toks_copy[0].endswith("rsync"):
        if "--ignore-existing" in toks_copy:
            return Verdict(
                True, "rsync-ignore-existing", "rsync --ignore-existing never overwrites"
            )
        return Verdict(False, "unguarded-rsync", "rsync overwrites an already archived segment")
    return Verdict(
        False,
        "unknown",
        "not a recognised guarded form (test -f … || cp, "
        "test ! -f … && cp, cp -n, rsync --ignore-existing or an archiving tool)",
    )


def safer_form(cmd: str) -> str:
    """The form PostgreSQL's docs ask for: success for an identical existing file, failure for a
    different one."""
    m = _GUARD_OR.match(_norm(cmd)) or _GUARD_AND.match(_norm(cmd))
    target = (m.group("g1") or m.group("g2")) if m else "/pg_archive/%f"
    return f"if [ -f {target} ]; then cmp -s %p {target}; else cp %p {target}; fi"


def identical_only_semantics(cmd: str) -> Verdict:
    """WG-ARC-004 (low): what happens when the segment is already there?"""
    verdict = refuses_overwrite(cmd)
    if verdict.form in ("tool", "if-cmp"):
        return Verdict(True, verdict.form, "an existing segment is compared, not blindly accepted")
    if verdict.form == "test-or":
        return Verdict(
            False,
            verdict.form,
            "it reports success even when the existing archived file differs from the "
            f"segment, hiding a conflict; safer: {safer_form(cmd)}",
        )
    if verdict.form in ("test-not-and", "cp-no-clobber", "rsync-ignore-existing"):
        return Verdict(
            False,
            verdict.form,
            "it never compares an existing archived file with the segment (identical "
            f"should succeed, different should fail); safer: {safer_form(cmd)}",
        )
    return Verdict(False, verdict.form, verdict.message)
