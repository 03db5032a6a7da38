"""The names of the facts walguard collects, which a control declares it reads
(`@control(..., reads=...)`): collector sections by name (COLLECTOR_SECTIONS, every section
collect.sh prints) and PostgreSQL's facts as `postgresql.KEY` (POSTGRES_KEYS, the keys of the one
JSON document the query returns) or `postgresql.settings.NAME` (one row of pg_settings).

At the ground floor so that walguard.controls can check a declaration against them without
importing the facts package (which sits above the controls)."""

from __future__ import annotations

import re

# Every section collect.sh prints (`section NAME` and `pg_section NAME`); a unit test keeps the
# two the same.
COLLECTOR_SECTIONS = frozenset({
    "id", "hostname", "os_release", "date",
    "archive_lstat", "archive_realpath", "archive_stat", "archive_mount", "root_mount", "mounts",
    "archive_df", "archiver_before", "archive_files", "archive_perms", "restore_user",
    "segment_headers", "history_files", "archive_check", "base_backups", "base_backup_verify",
    "pgbackrest_info", "wal_window", "service_active",
    "selinux_enforce", "getenforce", "selinux_config", "sestatus", "archive_context",
    "archive_file_contexts", "matchpathcon", "fcontext_local", "restorecon_dryrun", "ps_context",
    "avc",
    "unit", "boot_default", "boot_units", "start_conf", "postgres_exe", "postgres_package",
    "failed_units", "service_status", "service_journal", "journal_errors",
    "listeners", "firewall_units", "nft_ruleset",
    "time_units", "chrony_tracking", "timedatectl", "timesync_status",
    "host_addresses", "identity",
    "pg_load_time", "pg_file_settings", "pg_config_files", "tls_cert",
})  # fmt: skip
# The keys of PostgreSQL's facts (walguard.facts.postgres's query, postgresql.json in evidence/);
# a unit test reads them from captured real output.
POSTGRES_KEYS = frozenset({
    "version", "in_recovery", "settings", "archiver", "status_files", "current_walfile",
    "timeline", "system_identifier",
})  # fmt: skip
POSTGRES_PREFIX = "postgresql."
_SETTING = re.compile(r"postgresql\.settings\.[a-z][a-z0-9_.]*")


# The sections the restore drill prints (walguard/drill/drill.sh, restore_drill.txt in evidence).
DRILL_SECTIONS = frozenset(
    {"drill_prepare", "drill_canary", "drill_restore", "drill_log", "drill_cleanup"}
)


def known_read(name: str) -> bool:
    """Whether a control's `reads` entry names a fact walguard collects."""
    if name.startswith(POSTGRES_PREFIX):
        return name[len(POSTGRES_PREFIX) :] in POSTGRES_KEYS or bool(_SETTING.fullmatch(name))
    return name in COLLECTOR_SECTIONS or name in DRILL_SECTIONS
