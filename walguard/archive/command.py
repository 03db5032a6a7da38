"""Reading archive_command / archive_library for WG-ARC-003 and WG-ARC-004.

WG-ARC-003: archiving never overwrites a segment that is already archived. WG-ARC-004: it
succeeds only when an identical segment is already there and fails when a different one is
(PostgreSQL docs 26.3.1). The command is read as /bin/sh reads it (walguard.archive.shell), and
only what walguard can establish passes: a guarded local copy into the policy's archive
directory, a recognised archiving tool (walguard.archive.tools.TOOLS), basic_archive, or a
command or library the policy approves verbatim (walguard_archive_command_approved).
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass

from walguard.archive.local_copy import CopyUse, guard, norm, read_copy, read_guarded, read_if
from walguard.archive.shell import (
    Rejected,
    Tok,
    executable,
    noop,
    redirections,
    render,
    show,
    simple,
    split,
    strip_group,
    substitute,
    tokenise,
    unwrap,
)
from walguard.archive.tools import TOOLS, read_tool, tool_key
from walguard.facts.postgres_state import Postgres
from walguard.policy.model import Policy

__all__ = ["TOOLS", "ArchiveReading", "Finding", "read_archiving", "reading_of"]

APPROVAL = "walguard_archive_command_approved"
_STATEMENTS = frozenset({";", "\n", "&"})
_ANDOR = frozenset({"&&", "||"})
_PIPES = frozenset({"|", "|&"})


@dataclass(frozen=True)
class Finding:
    """One control's verdict on the archiving setup."""

    ok: bool
    message: str  # auditor-readable; when ok, a short description of what was recognised


@dataclass(frozen=True)
class ArchiveReading:
    kind: str  # "copy", "tool", "library", "approved", "unknown", "none"
    tool: str | None  # key in TOOLS, e.g. "pgbackrest"
    target_dir: str | None  # local directory the command writes into, when it is a local copy
    overwrite: Finding  # WG-ARC-003
    identical: Finding  # WG-ARC-004
    repository_check: str | None  # the tool's own check, e.g. "pgbackrest --stanza=main check"


def reading_of(pg: Postgres, policy: Policy) -> ArchiveReading:
    """How this server archives, read from its pg_settings against the policy."""
    library = pg.settings.get("archive_library")
    basic_dir = pg.settings.get("basic_archive.archive_directory")
    return read_archiving(
        pg.setting("archive_command").setting,
        library.setting if library is not None else "",
        policy.archive_dir,
        approved=policy.archive_command_approved,
        basic_archive_directory=basic_dir.setting if basic_dir is not None else None,
    )


# A pure function of its arguments, read by several controls on every host, and an estate's
# hosts mostly share one archive_command: each distinct reading is worked out once per run.
@functools.lru_cache(maxsize=1024)
def read_archiving(
    archive_command: str,
    archive_library: str,
    archive_dir: str,
    *,
    approved: tuple[str, ...] = (),
    basic_archive_directory: str | None = None,
) -> ArchiveReading:
    """What WG-ARC-003 and WG-ARC-004 conclude from pg_settings' archive_command/_library."""
    command, library = archive_command.strip(), archive_library.strip()
    policy_dir = norm(archive_dir) if archive_dir.strip() else ""
    allowed = {a.strip() for a in approved}
    if command == "(disabled)":
        return _failed(
            "archiving is disabled: pg_settings shows archive_command as (disabled), "
            "which means archive_mode is off",
            "none",
        )
    if library and command:
        return _failed(
            f"both archive_command and archive_library set (archive_library = "
            f"{library}): PostgreSQL 16+ refuses this ('Only one of archive_command, "
            "archive_library may be set') and archives nothing",
            "none",
        )
    if library:
        return _read_library(library, policy_dir, allowed, basic_archive_directory)
    if not command:
        return _failed(
            "archive_command is empty and no archive_library is set: no WAL segment is archived",
            "none",
        )
    try:
        reading = _read_command(tokenise(substitute(command)), policy_dir)
    except Rejected as exc:
        reading = _failed(exc.message, exc.kind, exc.target_dir)
    if command in allowed and not (reading.overwrite.ok and reading.identical.ok):
        return _approved(f"archive_command `{command}`", reading)
    return reading


def _failed(
    message: str, kind: str = "unknown", target_dir: str | None = None, tool: str | None = None
) -> ArchiveReading:
    finding = Finding(False, message)
    return ArchiveReading(kind, tool, target_dir, finding, finding, None)


def _approved(what: str, reading: ArchiveReading) -> ArchiveReading:
    def approve(own: Finding) -> Finding:
        note = "" if own.ok else f"; walguard's own reading: {own.message}"
        return Finding(True, f"{what} is approved by policy ({APPROVAL}){note}")

    return ArchiveReading(
        "approved",
        reading.tool,
        reading.target_dir,
        approve(reading.overwrite),
        approve(reading.identical),
        reading.repository_check,
    )


def _read_library(
    library: str, policy_dir: str, allowed: set[str], directory: str | None
) -> ArchiveReading:
    name = re.sub(r"\.(so|dylib|dll)$", "", posixpath.basename(library))
    if name != "basic_archive":
        reading = _failed(
            f"cannot verify what archive library {library} does; if it was "
            f"reviewed, approve it in {APPROVAL}",
            "library",
        )
    elif not (directory or "").strip():
        reading = _failed(
            "archive_library is basic_archive but basic_archive.archive_directory "
            "is not set, so nothing is archived",
            "library",
            tool=name,
        )
    elif norm(directory or "") != policy_dir:
        where = norm(directory or "")
        reading = _failed(
            f"basic_archive copies to {where}, not the policy's archive directory "
            f"{policy_dir or '(none set)'}",
            "library",
            where,
            name,
        )
    else:
        return ArchiveReading(
            "library",
            name,
            policy_dir,
            Finding(
                True,
                f"archived by basic_archive into {policy_dir}, which refuses to "
                "overwrite an archived file with different contents",
            ),
            Finding(
                True,
                f"basic_archive succeeds when {policy_dir}/%f already exists with "
                "identical contents and fails when it differs",
            ),
            None,
        )
    if library in allowed or name in allowed:
        return _approved(f"archive_library {library}", reading)
    return reading


def _read_command(toks: list[Tok], policy_dir: str) -> ArchiveReading:
    parts = split(strip_group(toks), _STATEMENTS)
    for (separator, _), (_, before) in zip(parts[1:], parts, strict=False):
        if separator == "&":
            raise Rejected(
                f"runs `{render(before)}` in the background (&): PostgreSQL is told "
                "the segment is archived before the copy has finished"
            )
    statements = [part for _, part in parts if part]
    if not statements:
        raise Rejected("archive_command runs no command", "none")
    if not statements[0][0].op and statements[0][0].text == "if":
        return _copied(read_if(statements, policy_dir))
    if len(statements) > 1:
        if noop(statements[-1]):
            raise Rejected(
                f"`; {render(statements[-1])}` at the end hides a failed archive: "
                "PostgreSQL is always told the segment was archived"
            )
        listed = ", ".join(f"`{render(s)}`" for s in statements)
        raise Rejected(
            f"runs {len(statements)} commands one after another ({listed}); only the "
            "last one's exit status reaches PostgreSQL, so walguard cannot verify them"
        )
    return _read_andor(statements[0], policy_dir)


def _read_andor(toks: list[Tok], policy_dir: str) -> ArchiveReading:
    parts = split(toks, _ANDOR)
    if any(not part for _, part in parts):
        raise Rejected(f"cannot verify: an incomplete && / || chain in `{render(toks)}`")
    if len(parts) > 1 and parts[-1][0] == "||" and noop(parts[-1][1]):
        raise Rejected(
            f"`|| {render(parts[-1][1])}` hides a failed archive: PostgreSQL would be "
            "told the segment was archived"
        )
    found = guard(parts[0][1])
    if found is not None and len(parts) == 2:
        return _copied(read_guarded(parts[0][1], parts[1][0], parts[1][1], policy_dir))
    if len(parts) > 1:
        keep = 2 if found is not None else 1
        main = " ".join(f"{sep} {render(part)}".strip() for sep, part in parts[:keep])
        extra = " ".join(f"{sep} {render(part)}" for sep, part in parts[keep:])
        raise Rejected(
            f"also runs `{extra}` after `{main}`; walguard cannot verify a chain of commands"
        )
    stages = split(toks, _PIPES)
    if len(stages) > 1:
        rest = " | ".join(render(part) for _, part in stages[1:])
        raise Rejected(
            f"pipes `{render(stages[0][1])}` into `{rest}`; a pipeline's exit status "
            "is its last command's, so walguard cannot verify it"
        )
    return _read_simple(toks, policy_dir)


def _read_simple(toks: list[Tok], policy_dir: str) -> ArchiveReading:
    cmd = simple(toks)
    stdin_null = redirections(cmd)
    argv, wrappers = unwrap(cmd.argv, cmd.env)
    if not argv:
        raise Rejected(f"cannot verify: `{render(toks)}` runs no program")
    if noop(argv):
        raise Rejected(
            f"`{render(argv)}` archives nothing: PostgreSQL is told every segment "
            "was archived and then recycles it",
            "none",
        )
    copy = read_copy(argv, stdin_null, policy_dir)
    if copy is not None:
        return _copied(copy)
    program = executable(argv[0])
    key = tool_key(program) if program else None
    if key is None:
        raise Rejected(
            f"cannot verify what {show(argv[0].text)} does; if it was reviewed, "
            f"approve this exact archive_command in {APPROVAL}"
        )
    use = read_tool(key, argv, cmd.env, wrappers)
    return ArchiveReading(
        "tool", key, None, Finding(*use.overwrite), Finding(*use.identical), use.check
    )


def _copied(use: CopyUse) -> ArchiveReading:
    overwrite, identical = Finding(*use.overwrite), Finding(*use.identical)
    return ArchiveReading("copy", None, use.directory, overwrite, identical, None)
