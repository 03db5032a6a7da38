"""Archiving tools and libraries walguard recognises, and what each does with an existing segment.

Every claim in TOOLS was checked against the tool's own source or documentation (cited in
`sources`); a tool is recognised only by its exact program name and subcommand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from walguard.archive.shell import F, P, Rejected, Tok, plain, render, show


@dataclass(frozen=True)
class Tool:
    name: str  # as the report names it
    subcommand: str | None  # the archiving subcommand, when the program has several
    existing_segment: str  # what it does when the segment is already archived
    refuses_overwrite: bool  # never replaces an archived segment with different contents
    identical_only: bool  # succeeds for an identical archived segment, fails for a different one
    sources: tuple[str, ...]
    check: str  # the tool's own repository check (a template)


TOOLS: dict[str, Tool] = {
    "pgbackrest": Tool(
        "pgBackRest",
        "archive-push",
        "archive-push looks for the segment in each repository: same SHA-1 checksum -> warns "
        "'already exists in the repoN archive with the same checksum' and succeeds without "
        "copying; different checksum -> ArchiveDuplicateError 'already exists in the repoN "
        "archive with a different checksum'",
        True,
        True,
        (
            "https://pgbackrest.org/ (features: 'WAL push automatically detects WAL segments that "
            "are pushed multiple times and de-duplicates when the segment is identical, otherwise "
            "an error is raised')",
            "pgbackrest/pgbackrest src/command/archive/push/file.c (archivePushFile)",
        ),
        "pgbackrest --stanza=STANZA check",
    ),
    "wal-g": Tool(
        "WAL-G",
        "wal-push",
        "only with WALG_PREVENT_WAL_OVERWRITE=true does wal-push download an existing segment "
        "and compare it: equal -> 'already archived with equal content, skipping' (success); "
        "different -> error 'contents differ, unable to overwrite'. The setting defaults to "
        "false, and then wal-push uploads over the archived object (.history files excepted)",
        False,
        False,
        (
            "https://github.com/wal-g/wal-g/blob/master/docs/PostgreSQL.md "
            "(WALG_PREVENT_WAL_OVERWRITE)",
            "wal-g/wal-g internal/databases/postgres/wal_push_handler.go (checkWALOverwrite)",
            "wal-g/wal-g internal/config/config.go (PreventWalOverwriteSetting default 'false')",
        ),
        "wal-g wal-verify integrity",
    ),
    "barman-wal-archive": Tool(
        "Barman",
        None,
        "ships the segment over SSH to 'barman put-wal', which refuses a name already waiting "
        "in the incoming directory; the later 'barman archive-wal' drops an identical duplicate "
        "and moves a different one to the errors directory (.duplicate). The archived segment "
        "is never replaced, but PostgreSQL is told of success before any comparison",
        True,
        False,
        (
            "https://docs.pgbarman.org/release/3.7.0/barman-wal-archive.1.html",
            "EnterpriseDB/barman barman/server.py (Server.put_wal: 'Impossible to write already "
            "existing file')",
            "EnterpriseDB/barman barman/wal_archiver.py (WalArchiver.archive_wal: "
            "MatchingDuplicateWalFile / DuplicateWalFile)",
        ),
        "barman check SERVER_NAME",
    ),
    "barman-cloud-wal-archive": Tool(
        "Barman Cloud",
        None,
        "uploads to DEST/SERVER/wals/<dir>/<segment> without looking for an existing object "
        "(CloudWalUploader.upload_wal calls upload_fileobj directly), so a different segment "
        "with the same name replaces the archived one unless the bucket prevents it",
        False,
        False,
        (
            "https://docs.pgbarman.org/release/3.6.0/barman-cloud-wal-archive.1.html",
            "EnterpriseDB/barman barman/clients/cloud_walarchive.py (CloudWalUploader.upload_wal)",
        ),
        "barman-cloud-wal-archive --test DEST_URL SERVER_NAME (connectivity only)",
    ),
    "pg_probackup": Tool(
        "pg_probackup",
        "archive-push",
        "archive-push compares the CRC32 of the segment with the archived file: equal -> "
        "'already exists in archive with the same checksum, skip pushing' (success); different "
        "-> error 'WAL file already exists in archive with different checksum', unless "
        "--overwrite is given",
        True,
        True,
        (
            "postgrespro/pg_probackup src/archive.c (push_file_internal, push_file_internal_gz)",
            "postgrespro/pg_probackup tests/archive.py (test_archive_push_file_exists)",
        ),
        "pg_probackup validate -B BACKUP_DIR --instance INSTANCE",
    ),
    "basic_archive": Tool(  # an archive_library, not a program
        "basic_archive",
        None,
        "if the destination exists with identical contents it fsyncs it and succeeds; if the "
        "contents differ it fails with 'archive file ... already exists'. It copies to a "
        "temporary file and renames it, so only a file created between its check and the rename "
        "could be replaced",
        True,
        True,
        ("postgres/postgres contrib/basic_archive/basic_archive.c (basic_archive_file_internal)",),
        "",
    ),
}

_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})  # what WAL-G's viper.GetBool accepts
_COMMANDS = frozenset({"archive-push", "archive-get", "backup", "backup-push", "check", "wal-push"})
_BARMAN_VALUES = frozenset({"-U", "--user", "--port", "-c", "--config"})
_CLOUD_VALUES = frozenset(
    [
        "--cloud-provider",
        "--endpoint-url",
        "-P",
        "--profile",
        "--aws-profile",
        "--read-timeout",
        "--azure-credential",
        "--credential",
        "--kms-key-name",
        "-e",
        "--encryption",
        "--sse-kms-key-id",
        "--encryption-scope",
        "--max-block-size",
        "--max-concurrency",
        "--max-single-put-size",
        "--compression-level",
        "--tags",
        "--history-tags",
    ]
)


@dataclass(frozen=True)
class ToolUse:
    tool: str  # key in TOOLS
    overwrite: tuple[bool, str]  # WG-ARC-003
    identical: tuple[bool, str]  # WG-ARC-004
    check: str


def tool_key(program: str) -> str | None:
    if program in TOOLS and program != "basic_archive":
        return program
    return "pg_probackup" if re.fullmatch(r"pg_probackup-\d+", program) else None


def _scan(
    args: list[Tok], values: frozenset[str] | None, placeholders: bool = False
) -> tuple[dict[str, str], list[Tok]]:
    """Options and positional words. An option without '=' takes the next word as its value
    when it is listed in `values` (or, with values=None, when that word is neither a known
    subcommand nor an option, nor %p/%f unless `placeholders`)."""
    opts: dict[str, str] = {}
    positional: list[Tok] = []
    i = 0
    while i < len(args):
        text = args[i].text
        if not text.startswith("-") or text == "-":
            positional.append(args[i])
        else:
            name, eq, value = text.partition("=")
            nxt = args[i + 1].text if i + 1 < len(args) else None
            if not eq and nxt is not None:
                greedy = values is None and nxt not in _COMMANDS and not nxt.startswith("-")
                if (values is not None and name in values) or (
                    greedy and (placeholders or nxt not in (P, F))
                ):
                    value, i = nxt, i + 1
            opts[name] = value
        i += 1
    return opts, positional


def _wal_path(tool: Tool, words: list[Tok], what: str) -> None:
    if [w.text for w in words] == [P]:
        return
    if not words:
        raise Rejected(f"{tool.name} {what} is not given %p, the segment to archive", "tool")
    got = render(words)
    raise Rejected(f"{tool.name} {what} expects %p (the segment's path) but gets `{got}`", "tool")


def read_tool(key: str, argv: list[Tok], env: dict[str, str], wrappers: list[str]) -> ToolUse:
    tool = TOOLS[key]
    program, args = show(argv[0].text), argv[1:]
    if key in ("barman-wal-archive", "barman-cloud-wal-archive"):
        opts, pos = _scan(args, _BARMAN_VALUES if key == "barman-wal-archive" else _CLOUD_VALUES)
        if "--tags" in opts or "--history-tags" in opts:
            pos = [w for w in pos if "," not in w.text]
        if "-t" in opts or "--test" in opts:
            raise Rejected(
                f"{program} --test only tests the connection; it archives nothing", "tool"
            )
        if len(pos) != 3:
            raise Rejected(f"{program} takes HOST/URL, SERVER_NAME and %p: `{render(pos)}`", "tool")
        _wal_path(tool, pos[2:], program)
        where, server = show(pos[0].text), show(pos[1].text)
        if key == "barman-wal-archive":
            return ToolUse(
                key,
                (
                    True,
                    f"archived by Barman ({program} to {where}), which never replaces an "
                    "archived segment: a different one lands in Barman's errors directory",
                ),
                (
                    False,
                    f"{program} reports success as soon as the segment reaches Barman's "
                    "incoming directory; only the later 'barman archive-wal' compares it with the "
                    "archived one, so PostgreSQL is never told of a conflict",
                ),
                f"barman check {server}",
            )
        why = (
            f"{program} uploads without checking for an existing object in {where}, so a "
            "different segment with the same name replaces the archived one; approve this "
            "exact command by policy only if the bucket itself refuses overwrites"
        )
        return ToolUse(key, (False, why), (False, why), f"{program} --test {where} {server}")
    opts, pos = _scan(args, None, placeholders=key == "pg_probackup")
    if not pos or pos[0].text != tool.subcommand:
        got = f"`{show(pos[0].text)}`" if pos else "no subcommand"
        raise Rejected(f"{tool.name} is called with {got}, not {tool.subcommand}", "tool")
    if key == "pg_probackup":
        if pos[1:]:
            raise Rejected(
                f"unexpected arguments to {program} archive-push: `{render(pos[1:])}`", "tool"
            )
        if opts.get("--wal-file-name") != F:
            raise Rejected(f"{program} archive-push needs --wal-file-name=%f", "tool")
        if opts.get("--wal-file-path", P) != P:
            raise Rejected(f"{program} archive-push --wal-file-path must be %p", "tool")
        catalog = opts.get("-B", opts.get("--backup-path", "BACKUP_DIR"))
        instance = opts.get("--instance", "INSTANCE")
        check = f"{plain(argv[0].text)} validate -B {plain(catalog)} --instance {plain(instance)}"
        if "--overwrite" in opts:
            why = f"{program} archive-push --overwrite replaces an archived segment that differs"
            return ToolUse(key, (False, why), (False, why), check)
    else:
        _wal_path(tool, pos[1:], f"{pos[0].text}")
        kept = [
            f"{k}={plain(v)}" for k, v in opts.items() if k.startswith(("--stanza", "--config"))
        ]
        check = " ".join([program, *kept, "check"]) if key == "pgbackrest" else tool.check
        if key == "pgbackrest" and "--stanza" not in opts:
            check = f"{program} --stanza=STANZA check"
        if key == "wal-g" and env.get("WALG_PREVENT_WAL_OVERWRITE") not in _TRUE:
            hidden = [w for w in wrappers if w.startswith("envdir")] + [
                f"--config {show(v)}" for k, v in opts.items() if k == "--config"
            ]
            maybe = f" (it may be set through {', '.join(hidden)}, which walguard does not read)"
            why = (
                "WAL-G wal-push overwrites an archived segment unless "
                "WALG_PREVENT_WAL_OVERWRITE is true, and its default is false; the command "
                f"does not set it{maybe if hidden else ''}. Set "
                "WALG_PREVENT_WAL_OVERWRITE=true in the command, or approve this exact command "
                "by policy once the WAL-G configuration is checked"
            )
            return ToolUse(key, (False, why), (False, why), check)
    sub = f" ({tool.subcommand})"
    return ToolUse(
        key,
        (True, f"archived by {tool.name}{sub}, which refuses to overwrite a different segment"),
        (
            True,
            f"{tool.name}{sub} succeeds for an identical segment already archived and fails "
            "for a different one",
        ),
        check,
    )
