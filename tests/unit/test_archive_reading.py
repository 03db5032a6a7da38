"""Reading archive_command / archive_library for WG-ARC-003 (never overwrites an archived segment)
and WG-ARC-004 (succeeds only for an identical existing segment), against real commands."""

from __future__ import annotations

import pytest

from walguard.archive.command import TOOLS, ArchiveReading, read_archiving

DIR = "/pg_archive"
SAFER = "if [ -f /pg_archive/%f ]; then cmp -s %p /pg_archive/%f; else cp %p /pg_archive/%f; fi"

# (archive_command, WG-ARC-003 ok, WG-ARC-004 ok, expected in the failing message, source / why)
TABLE: list[tuple[str, bool, bool, str | None, str]] = [
    # --- PostgreSQL documentation (26.3.1) and the shell forms derived from it
    (
        "test ! -f /mnt/server/archivedir/%f && cp %p /mnt/server/archivedir/%f",
        False,
        False,
        "copies to /mnt/server/archivedir, not the policy's archive directory /pg_archive",
        "PostgreSQL docs 26.3.1 example, verbatim: not the policy's directory",
    ),
    (
        "test ! -f /pg_archive/%f && cp %p /pg_archive/%f",
        True,
        False,
        "fails even when the archived /pg_archive/%f is identical",
        "docs example on the policy directory: refuses overwrite, but fails an identical retry",
    ),
    (
        "[ ! -f /pg_archive/%f ] && cp %p /pg_archive/%f",
        True,
        False,
        "fails even when",
        "[ ] variant of the docs example",
    ),
    (
        "test -f /pg_archive/%f || cp %p /pg_archive/%f",
        True,
        False,
        "even if it differs from the segment, hiding a conflict",
        "common variant: success for any existing file",
    ),
    (
        "[ -f /pg_archive/%f ] || cp %p /pg_archive/%f",
        True,
        False,
        "hiding a conflict",
        "[ ] variant of test -f || cp",
    ),
    (
        "! test -e /pg_archive/%f && cp %p /pg_archive/%f",
        True,
        False,
        "fails even when",
        "shell-level negation and -e",
    ),
    (
        "(test ! -f /pg_archive/%f && cp %p /pg_archive/%f)",
        True,
        False,
        "fails even when",
        "the whole command in a subshell",
    ),
    (
        "test ! -f /pg_archive/%f && cp %p /pg_archive/%f 2>/dev/null",
        True,
        False,
        "fails even when",
        "stderr discarded: harmless",
    ),
    (
        SAFER,
        True,
        True,
        None,
        "the form the docs ask for: identical -> success, different -> failure",
    ),
    (
        "if test -e /pg_archive/%f\nthen cmp %p /pg_archive/%f >/dev/null\n"
        "else cp %p /pg_archive/%f\nfi",
        True,
        True,
        None,
        "the same over several lines (postgresql.conf allows newlines)",
    ),
    (
        "if [ ! -f /pg_archive/%f ]; then cp %p /pg_archive/%f; else cmp -s /pg_archive/%f %p; fi",
        True,
        True,
        None,
        "negated condition, cmp operands swapped",
    ),
    (
        "if [ -f /pg_archive/%f ]; then true; else cp %p /pg_archive/%f; fi",
        True,
        False,
        "`true` reports success even if it differs",
        "if-form that does not compare",
    ),
    (
        SAFER + "; true",
        False,
        False,
        "runs `true` after the if … fi",
        "a trailing command after fi",
    ),
    (
        "cp -n %p /pg_archive/%f",
        True,
        False,
        "cp -n skips an existing /pg_archive/%f without comparing",
        "GNU cp -n: never overwrites; exit status depends on the coreutils version",
    ),
    (
        "cp --no-clobber %p /pg_archive/%f",
        True,
        False,
        "without comparing",
        "long option",
    ),
    (
        "cp --update=none %p /pg_archive/%f",
        True,
        False,
        "without comparing",
        "coreutils 9.3+ spelling of 'skip existing'",
    ),
    (
        "/bin/cp -an %p /pg_archive/%f",
        True,
        False,
        "cp -n skips",
        "-n inside a short-option cluster, absolute path",
    ),
    (
        "cp -i %p /pg_archive/%f </dev/null",
        True,
        False,
        "without comparing",
        "PostgreSQL 8.x docs example: cp -i with no answer never overwrites",
    ),
    (
        "rsync -a --ignore-existing %p /pg_archive/%f",
        True,
        False,
        "rsync --ignore-existing skips",
        "rsync's no-clobber",
    ),
    # --- pgBackRest user guide
    (
        "pgbackrest --stanza=demo archive-push %p",
        True,
        True,
        None,
        "pgBackRest user guide, Configure Archiving",
    ),
    (
        "/usr/bin/pgbackrest --stanza=main --config=/etc/pgbackrest/pgbackrest.conf "
        "archive-push %p",
        True,
        True,
        None,
        "absolute path, options before the subcommand",
    ),
    (
        "pgbackrest archive-push %p --stanza=main",
        True,
        True,
        None,
        "options after the subcommand",
    ),
    (
        "pgbackrest --stanza=main backup",
        False,
        False,
        "pgBackRest is called with `backup`, not archive-push",
        "wrong subcommand",
    ),
    (
        "pgbackrest --stanza=main archive-get %f %p",
        False,
        False,
        "called with `archive-get`",
        "the restore_command pasted into archive_command",
    ),
    (
        "pgbackrest --stanza=main archive-push",
        False,
        False,
        "is not given %p",
        "missing %p",
    ),
    (
        "pgbackrest --stanza=main archive-push %f",
        False,
        False,
        "expects %p (the segment's path) but gets `%f`",
        "%f where the tool needs the path",
    ),
    # --- WAL-G documentation
    (
        "wal-g wal-push %p",
        False,
        False,
        "unless WALG_PREVENT_WAL_OVERWRITE is true",
        "WAL-G docs form: overwrites by default (WALG_PREVENT_WAL_OVERWRITE=false)",
    ),
    (
        "envdir /etc/wal-g.d/env wal-g wal-push %p",
        False,
        False,
        "envdir /etc/wal-g.d/env, which walguard does not read",
        "WAL-G README form: the setting may hide in the envdir",
    ),
    (
        "/usr/bin/timeout 600 wal-g --config=/etc/wal-g.json wal-push %p",
        False,
        False,
        "--config /etc/wal-g.json",
        "WAL-G's own test scripts; setting may be in the config file",
    ),
    (
        "WALG_PREVENT_WAL_OVERWRITE=true wal-g wal-push %p",
        True,
        True,
        None,
        "overwrite prevention set in the command: equal -> skip, different -> error",
    ),
    (
        "env WALG_PREVENT_WAL_OVERWRITE=1 /usr/local/bin/wal-g wal-push %p",
        True,
        True,
        None,
        "set through env(1); viper.GetBool accepts 1",
    ),
    (
        "wal-g backup-push",
        False,
        False,
        "WAL-G is called with `backup-push`, not wal-push",
        "wrong subcommand",
    ),
    # --- Barman documentation
    (
        "barman-wal-archive backup pg %p",
        True,
        False,
        "only the later 'barman archive-wal' compares it",
        "Barman docs: put-wal never replaces, but success precedes the comparison",
    ),
    (
        "barman-wal-archive -U barman --port 2222 backup.example.com pg %p",
        True,
        False,
        "incoming directory",
        "options with values",
    ),
    (
        "barman-wal-archive --test backup pg %p",
        False,
        False,
        "--test only tests the connection",
        "test mode archives nothing",
    ),
    (
        "barman-wal-archive backup %p",
        False,
        False,
        "takes HOST/URL, SERVER_NAME and %p",
        "missing the server name",
    ),
    (
        "barman-cloud-wal-archive s3://bucket/path pg %p",
        False,
        False,
        "uploads without checking for an existing object in s3://bucket/path",
        "Barman Cloud docs form: upload_fileobj replaces the object",
    ),
    (
        "barman-cloud-wal-archive --cloud-provider aws-s3 -z s3://bucket/path pg %p",
        False,
        False,
        "without checking for an existing object",
        "with options",
    ),
    # --- pg_probackup documentation
    (
        "pg_probackup archive-push -B /backup --instance main "
        "--wal-file-path=%p --wal-file-name=%f",
        True,
        True,
        None,
        "pg_probackup docs: CRC equal -> skip, different -> error",
    ),
    (
        '"/usr/bin/pg_probackup-16" archive-push -B "/backup" --instance=main --wal-file-name=%f',
        True,
        True,
        None,
        "docs form with quoted paths, only --wal-file-name, versioned binary",
    ),
    (
        "pg_probackup-12 archive-push -B /backup --instance main --wal-file-name=%f --overwrite",
        False,
        False,
        "--overwrite replaces an archived segment",
        "--overwrite disables the protection",
    ),
    (
        "pg_probackup archive-push -B /backup --instance main --wal-file-path=%p",
        False,
        False,
        "needs --wal-file-name=%f",
        "missing %f",
    ),
    # --- failure hiding, extra commands, substitutions
    ("cp -n %p /pg_archive/%f || true", False, False, "`|| true` hides a failed archive", "hides"),
    ("cp -n %p /pg_archive/%f || :", False, False, "`|| :` hides", "hides"),
    (
        "pgbackrest --stanza=main archive-push %p || /bin/true",
        False,
        False,
        "`|| /bin/true` hides",
        "hides a tool's failure",
    ),
    (
        "test ! -f /pg_archive/%f && cp %p /pg_archive/%f; exit 0",
        False,
        False,
        "`; exit 0` at the end hides",
        "hides",
    ),
    ("cp -n %p /pg_archive/%f; true", False, False, "`; true` at the end", "hides"),
    (
        "cp -n /dev/null /tmp/x; cp %p /pg_archive/%f",
        False,
        False,
        "`cp -n /dev/null /tmp/x`",
        "an extra command before a plain copy",
    ),
    (
        "cp -n %p /pg_archive/%f && rm -f /pg_archive/0*",
        False,
        False,
        "also runs `&& rm -f /pg_archive/0*`",
        "deletes archived segments after copying",
    ),
    (
        "pgbackrest --stanza=main archive-push %p; cp %p /pg_archive/%f",
        False,
        False,
        "`cp %p /pg_archive/%f`",
        "a second, overwriting copy after the tool",
    ),
    (
        "cp -n %p /pg_archive/%f & ",
        False,
        False,
        "in the background (&)",
        "backgrounded: success before the copy",
    ),
    (
        "cp -n %p /pg_archive/%f | tee -a /tmp/archive.log",
        False,
        False,
        "pipes `cp -n %p /pg_archive/%f` into `tee -a /tmp/archive.log`",
        "pipeline status is tee's",
    ),
    (
        "cp %p /pg_archive/%f $(touch /tmp/x)",
        False,
        False,
        "command substitution $(touch /tmp/x)",
        "$( ) runs at archive time",
    ),
    (
        "cp -n %p `echo /pg_archive`/%f",
        False,
        False,
        "command substitution `echo /pg_archive`",
        "backticks",
    ),
    (
        'cp -n %p "$(cat /etc/archive_dir)"/%f',
        False,
        False,
        "$(cat /etc/archive_dir)",
        "substitution inside double quotes",
    ),
    (
        'cp -n %p "$ARCHIVE"/%f',
        False,
        False,
        "depends on a shell expansion",
        "a variable walguard cannot resolve",
    ),
    # --- wrong targets and plain overwrites
    (
        "cp -n %p /tmp/%f",
        False,
        False,
        "copies to /tmp, not the policy's archive directory /pg_archive",
        "not the policy's directory",
    ),
    (
        "cp -n %p /pg_archive/../tmp/%f",
        False,
        False,
        "copies to /tmp, not the policy's archive directory",
        ".. resolved",
    ),
    ("cp %p /pg_archive/%f", False, False, "a plain cp overwrites", "plain overwrite"),
    ("rsync -a %p /pg_archive/%f", False, False, "a plain rsync overwrites", "rsync overwrites"),
    (
        "rsync -a --ignore-existing %p backup:/pg_archive/%f",
        False,
        False,
        "remote target backup:/pg_archive/%f",
        "remote: not the local policy directory",
    ),
    (
        "scp %p backup:/pg_archive/%f",
        False,
        False,
        "scp replaces an existing file at backup:/pg_archive/%f",
        "scp has no no-clobber",
    ),
    (
        "test ! -f /other/%f && cp %p /pg_archive/%f",
        False,
        False,
        "the guard tests /other/%f but the copy writes /pg_archive/%f",
        "guard on another path",
    ),
    (
        "test -f /pg_archive/%f && cp %p /pg_archive/%f",
        False,
        False,
        "copies only when /pg_archive/%f already exists",
        "inverted guard: copies over existing files only",
    ),
    (
        "cp -n %p /pg_archive/%f.gz",
        False,
        False,
        "writes /pg_archive/%f.gz, not a file named %f",
        "another file name",
    ),
    (
        "cp -n %p /pg_archive/%f > /pg_archive/last",
        False,
        False,
        "redirects with `> /pg_archive/last`",
        "output redirection into a file",
    ),
    # --- nothing walguard can verify
    ("", False, False, "archive_command is empty", "empty"),
    ("(disabled)", False, False, "shows archive_command as (disabled)", "archive_mode off"),
    ("/bin/true", False, False, "`/bin/true` archives nothing", "fake archiving"),
    (
        "/tmp/not-pgbackrest %p %f",
        False,
        False,
        "cannot verify what /tmp/not-pgbackrest does",
        "unknown executable",
    ),
    (
        "/tmp/pgbackrest --stanza=main archive-push %p",
        False,
        False,
        "cannot verify what /tmp/pgbackrest does",
        "a tool's name in /tmp is not trusted",
    ),
    (
        "/usr/local/bin/archive_wal.sh %p %f",
        False,
        False,
        "cannot verify what /usr/local/bin/archive_wal.sh does",
        "unknown wrapper script",
    ),
    (
        "sh -c 'test ! -f /pg_archive/%f && cp %p /pg_archive/%f'",
        False,
        False,
        "cannot verify what sh does",
        "a nested shell",
    ),
    (
        "cp -n %p '/pg_archive/%f",
        False,
        False,
        "unbalanced quotes (the ' opening `'/pg_archive/%f` is never closed)",
        "unbalanced quotes",
    ),
]


def _verdicts(reading: ArchiveReading) -> tuple[bool, bool]:
    return reading.overwrite.ok, reading.identical.ok


@pytest.mark.parametrize(
    ("command", "arc003", "arc004", "reason", "why"), TABLE, ids=[row[4] for row in TABLE]
)
def test_archive_command_table(
    command: str, arc003: bool, arc004: bool, reason: str | None, why: str
) -> None:
    reading = read_archiving(command, "", DIR)
    assert _verdicts(reading) == (arc003, arc004), (command, reading)
    failing = [f.message for f in (reading.overwrite, reading.identical) if not f.ok]
    if reason is None:
        assert not failing
    else:
        assert failing and any(reason in m for m in failing), (reason, failing)


def test_table_is_large_enough_and_has_no_duplicates() -> None:
    commands = [row[0] for row in TABLE]
    assert len(commands) >= 45
    assert len(set(commands)) == len(commands)


def test_docs_example_passes_overwrite_when_its_directory_is_the_policy_directory() -> None:
    cmd = "test ! -f /mnt/server/archivedir/%f && cp %p /mnt/server/archivedir/%f"
    reading = read_archiving(cmd, "", "/mnt/server/archivedir")
    assert reading.kind == "copy" and reading.target_dir == "/mnt/server/archivedir"
    assert reading.overwrite.ok and not reading.identical.ok
    assert "safer: if [ -f /mnt/server/archivedir/%f ]" in reading.identical.message


def test_tool_readings_name_the_tool_and_its_repository_check() -> None:
    pgbackrest = read_archiving("pgbackrest --stanza=main archive-push %p", "", DIR)
    assert pgbackrest.kind == "tool" and pgbackrest.tool == "pgbackrest"
    assert pgbackrest.overwrite.message == (
        "archived by pgBackRest (archive-push), which refuses to overwrite a different segment"
    )
    assert pgbackrest.repository_check == "pgbackrest --stanza=main check"
    barman = read_archiving("barman-wal-archive backup pg %p", "", DIR)
    assert (barman.tool, barman.repository_check) == ("barman-wal-archive", "barman check pg")
    walg = read_archiving("WALG_PREVENT_WAL_OVERWRITE=true wal-g wal-push %p", "", DIR)
    assert walg.repository_check == "wal-g wal-verify integrity"
    probackup = read_archiving(
        "pg_probackup-16 archive-push -B /backup --instance main --wal-file-name=%f", "", DIR
    )
    assert probackup.tool == "pg_probackup"
    assert probackup.repository_check == "pg_probackup-16 validate -B /backup --instance main"
    assert read_archiving("pgbackrest archive-push %p", "", DIR).repository_check == (
        "pgbackrest --stanza=STANZA check"
    )


def test_every_tool_claim_cites_a_source() -> None:
    assert set(TOOLS) == {
        "pgbackrest",
        "wal-g",
        "barman-wal-archive",
        "barman-cloud-wal-archive",
        "pg_probackup",
        "basic_archive",
    }
    for tool in TOOLS.values():
        assert tool.sources and all(s.strip() for s in tool.sources), tool.name
        assert tool.existing_segment, tool.name
    assert TOOLS["pgbackrest"].refuses_overwrite and TOOLS["pgbackrest"].identical_only
    assert not TOOLS["wal-g"].refuses_overwrite  # only with WALG_PREVENT_WAL_OVERWRITE=true
    assert not TOOLS["barman-cloud-wal-archive"].refuses_overwrite


@pytest.mark.parametrize(
    ("command", "archive_dir"),
    [
        ("cp -n %p '/pg_archive/%f'", DIR),
        ('cp -n %p "/pg_archive"/%f', DIR),
        ("cp -n %p /pg_archive//%f", DIR),
        ("cp -n %p /pg_archive/./%f", DIR),
        ("cp -n %p /pg_archive/%f", "/pg_archive/"),
        ("cp -n %p /pg_archive/%f", "//pg_archive//"),
        ("cp -n %p /pg_archive/", DIR),
        ("cp -n -t /pg_archive %p", DIR),
        ("cp -n %p /pg_archive/%f  # 100%% safe", DIR),
        ("test ! -f /pg_archive//%f && cp %p '/pg_archive/%f'", DIR),
        ("test ! -f '/pg_archive/%f' && cp %p /pg_archive/%f", DIR),
        ("test ! -f /pg_archive/%f && \\\ncp %p /pg_archive/%f", DIR),
    ],
)
def test_quoting_and_paths_are_normalised(command: str, archive_dir: str) -> None:
    reading = read_archiving(command, "", archive_dir)
    assert reading.overwrite.ok, reading.overwrite.message
    assert reading.target_dir == DIR


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("cp -n %p /pg_archive/%%f", "writes /pg_archive/%%f, not a file named %f"),
        ("cp -n %%p /pg_archive/%f", "cp copies %%p, not the segment %p"),
        ("cp -n %p /pg_archive/%f; echo '100%'", "`echo 100%%`"),
    ],
)
def test_double_percent_is_a_literal_percent(command: str, reason: str) -> None:
    reading = read_archiving(command, "", DIR)
    assert not reading.overwrite.ok
    assert reason in reading.overwrite.message


def test_basic_archive_into_the_policy_directory_passes_both() -> None:
    for library in ("basic_archive", "$libdir/basic_archive", "basic_archive.so"):
        reading = read_archiving("", library, DIR, basic_archive_directory="/pg_archive/")
        assert reading.kind == "library" and reading.tool == "basic_archive"
        assert reading.target_dir == DIR
        assert reading.overwrite.ok and reading.identical.ok
        assert "identical contents" in reading.identical.message


@pytest.mark.parametrize(
    ("command", "library", "directory", "reason"),
    [
        ("", "basic_archive", "/tmp/arch", "basic_archive copies to /tmp/arch, not the policy's"),
        ("", "basic_archive", None, "basic_archive.archive_directory is not set"),
        ("", "basic_archive", "", "basic_archive.archive_directory is not set"),
        ("", "pg_walarchive", None, "cannot verify what archive library pg_walarchive does"),
        (
            "cp -n %p /pg_archive/%f",
            "basic_archive",
            DIR,
            "both archive_command and archive_library set",
        ),
    ],
)
def test_archive_library_failures(
    command: str, library: str, directory: str | None, reason: str
) -> None:
    reading = read_archiving(command, library, DIR, basic_archive_directory=directory)
    assert not reading.overwrite.ok and not reading.identical.ok
    assert reason in reading.overwrite.message


def test_both_settings_fail_even_when_approved() -> None:
    cmd = "/usr/local/bin/archive_wal.sh %p %f"
    reading = read_archiving(cmd, "pg_walarchive", DIR, approved=(cmd, "pg_walarchive"))
    assert not reading.overwrite.ok
    assert "Only one of archive_command, archive_library may be set" in reading.overwrite.message


def test_an_approved_command_passes_and_says_so() -> None:
    cmd = "/usr/local/bin/archive_wal.sh %p %f"
    reading = read_archiving(cmd, "", DIR, approved=(cmd,))
    assert reading.kind == "approved"
    assert reading.overwrite.ok and reading.identical.ok
    for finding in (reading.overwrite, reading.identical):
        assert "approved by policy (walguard_archive_command_approved)" in finding.message
        assert "cannot verify what /usr/local/bin/archive_wal.sh does" in finding.message


def test_approval_is_for_the_exact_command_only() -> None:
    approved = ("/usr/local/bin/archive_wal.sh %p",)
    reading = read_archiving("/usr/local/bin/archive_wal.sh %p %f", "", DIR, approved=approved)
    assert not reading.overwrite.ok


def test_approval_keeps_what_walguard_recognised() -> None:
    cmd = "envdir /etc/wal-g.d/env wal-g wal-push %p"
    reading = read_archiving(cmd, "", DIR, approved=(cmd,))
    assert reading.kind == "approved" and reading.tool == "wal-g"
    assert reading.repository_check == "wal-g wal-verify integrity"
    assert "WALG_PREVENT_WAL_OVERWRITE" in reading.overwrite.message
    guarded = "test ! -f /pg_archive/%f && cp %p /pg_archive/%f"
    reading = read_archiving(guarded, "", DIR, approved=(guarded,))
    assert reading.overwrite.ok and reading.identical.ok
    assert "fails even when" in reading.identical.message  # the report keeps walguard's reason


def test_an_approved_library_passes() -> None:
    reading = read_archiving("", "pg_walarchive", DIR, approved=("pg_walarchive",))
    assert reading.kind == "approved" and reading.overwrite.ok and reading.identical.ok
    assert "archive_library pg_walarchive is approved by policy" in reading.overwrite.message


def test_a_policy_without_archive_directory_accepts_no_copy() -> None:
    reading = read_archiving("cp -n %p /pg_archive/%f", "", "")
    assert not reading.overwrite.ok
    assert "(none set)" in reading.overwrite.message
