"""What each lab scenario visibly does to its host, checked from outside (SSH as the audit user,
sudo where the fact needs it, or a real connection from a probe zone): EFFECTS maps a scenario to
its check. A support module: the scenario tests and the break-and-fix tests use it.

A scenario without an entry here is proven by its break-and-fix case alone (the controls it
makes FAIL); an entry adds what an auditor can see without walguard.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from tests.lab.support import (
    PGBACKREST_CHECK,
    SEGMENT,
    SEGMENT_BYTES,
    SWITCH,
    Lab,
    archiver_failures,
    assert_pristine,
    observe,
    row_reaches_standby,
    settle_db1,
    switch_and_wait_archived,
)
from walguard.lab.hosts import Host


def _wait_for_failure(lab: Lab, host: Host) -> dict[str, str]:
    """Switch WAL, then wait (bounded) until the archiver has recorded a failure."""
    lab.ssh(host, SWITCH)
    deadline = time.monotonic() + 30
    facts = observe(lab, host)
    while archiver_failures(facts) == 0 and time.monotonic() < deadline:
        time.sleep(1)
        facts = observe(lab, host)
    return facts


def _odd(facts: dict[str, str]) -> list[tuple[str, str]]:
    """The odd archived segments as (name, what is odd about it)."""
    pairs = (item.partition(":") for item in facts["odd_segments"].split())
    return [(name, what) for name, _, what in pairs]


def _pending_restart(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_mode"] == "on/true"


def _mode_off(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_mode"] == "off/false"


def _unguarded(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_command"] == "cp %p /pg_archive/%f"
    assert archiver_failures(facts) == 0


def _permission_denied(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir"] == "postgres:postgres 750"  # the denial is not in the file modes
    facts = _wait_for_failure(lab, host)
    assert archiver_failures(facts) > 0
    assert int(facts["pg_log_denied"]) > 0


def _owner_root(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir"] == "root:root 750"
    assert archiver_failures(_wait_for_failure(lab, host)) > 0


def _mode_0777(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir"] == "postgres:postgres 777"
    assert archiver_failures(facts) == 0


def _not_a_mount(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["mount"] == "none"
    assert facts["dir"] == "postgres:postgres 750"


def _fs_full(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["avail"] == "0"
    facts = _wait_for_failure(lab, host)
    assert archiver_failures(facts) > 0
    assert int(facts["pg_log_nospace"]) > 0


def _gap(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    numbers = [int(s[16:], 16) for s in facts["segments"].split()]
    missing = set(range(numbers[0], numbers[-1] + 1)) - set(numbers)
    assert len(missing) == 1, facts["segments"]
    assert numbers[-1] - 1 in missing


def _backlog(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert int(facts["ready"]) >= 12
    assert archiver_failures(facts) == 0


def _stopped(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["pg_active"] == "inactive"
    assert facts["listen"].strip() == ""


def _failed_unit(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["failed_units"].split() == ["walguard-lab-broken.service"]


def _journal_error(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["journal_err"] == "1"


def _listen_any(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["listen"].split() == ["0.0.0.0:5432", "[::]:5432"]


def _zone_b(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["zone_b_connects"] == "True"
    assert facts["zone_a_connects"] == "True"


def _wal_level_minimal(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["wal_level"] == "minimal"
    assert facts["archive_mode"] == "off/false"


def _timeout_off(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_timeout"] == "0"
    assert facts["archive_mode"] == "on/false"


def _stats_reset(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archiver"] == "0/0"
    assert facts["last_archived"] == ""
    assert facts["segments"].strip() != ""


def _last_missing(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["last_archived"] != ""
    assert facts["last_archived"] not in facts["segments"].split()
    assert facts["segments"].strip() != ""


def _dir_missing(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dir_exists"] == "no"


def _df_hangs(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["avail"] == ""  # df gave nothing
    assert lab.ssh(host, "timeout 3 df /pg_archive", check=False).returncode == 124
    assert facts["pg_active"] == "active"


def _pgbackrest_archiving(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_command"] == "pgbackrest --stanza=main archive-push %p"
    assert archiver_failures(facts) == 0
    # After the scenario's backup, the last file archived is its history file
    # (SEGMENT.OFFSET.backup): the segment it names was archived before it.
    last = facts["last_archived"].split(".")[0]
    assert SEGMENT.fullmatch(last), facts["last_archived"]
    repo = "/pg_archive/pgbackrest/archive/main"
    found = lab.ssh(host, f"sudo -n find {repo} -name '{last}-*'").stdout.split()
    assert len(found) == 1 and found[0].startswith(f"{repo}/15-1/"), found
    assert lab.ssh(host, PGBACKREST_CHECK, check=False).returncode == 0
    assert archiver_failures(observe(lab, host)) == 0
    # The scenario's full backup, as pgBackRest reports it (WG-RST-001 reads the same JSON).
    info = lab.ssh(host, "sudo -n -u postgres pgbackrest --stanza=main --output=json info").stdout
    (stanza,) = json.loads(info)
    assert stanza["status"]["code"] == 0, info
    assert [b["type"] for b in stanza["backup"]] == ["full"], info


def _pgbackrest_broken(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_command"] == "pgbackrest --stanza=main archive-push %p"
    check = lab.ssh(host, PGBACKREST_CHECK, check=False)
    assert check.returncode != 0
    assert "archive.info" in check.stdout + check.stderr
    assert archiver_failures(_wait_for_failure(lab, host)) > 0


def _segment_truncated(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    newest = facts["segments"].split()[-1]
    assert _odd(facts) == [(newest, "size=8192")]
    assert archiver_failures(switch_and_wait_archived(lab, host)) == 0


def _segment_symlinked(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    newest = facts["segments"].split()[-1]
    assert _odd(facts) == [(newest, "symlink")]
    target = lab.ssh(host, f"sudo -n readlink /pg_archive/{newest}").stdout.strip()
    assert target == f"/var/tmp/walguard-lab-segments/{newest}"
    kind = lab.ssh(host, f"sudo -n stat -L -c '%s %F' /pg_archive/{newest}").stdout.strip()
    assert kind == f"{SEGMENT_BYTES} regular file"
    assert archiver_failures(switch_and_wait_archived(lab, host)) == 0


def _segment_foreign(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    newest = facts["segments"].split()[-1]
    odd = _odd(facts)
    # Only a regular file of the full size gets as far as the header comparison.
    assert [name for name, _ in odd] == [newest]
    what = odd[0][1]
    assert what.startswith("sysid=") and what not in ("sysid=", f"sysid={facts['sysid']}")
    assert archiver_failures(switch_and_wait_archived(lab, host)) == 0


def _bind_root(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["is_mountpoint"] == "yes"  # a path check alone sees a dedicated mount
    assert facts["same_dev_as_root"] == "yes"
    assert facts["mount"] != "ext4"
    assert facts["dir"] == "postgres:postgres 750"
    # The copy kept every segment; on a host reset moments ago the last archived file is still
    # the base backup's history file (NAME.XXXXXXXX.backup): its segment, then.
    assert facts["last_archived"][:24] in facts["segments"].split()
    assert facts["odd_segments"].strip() == ""
    facts = switch_and_wait_archived(lab, host)
    assert archiver_failures(facts) == 0
    assert facts["last_archived"] in facts["segments"].split()
    on_root = "sudo -n test -f /var/lib/pg_archive_on_root/" + facts["last_archived"]
    assert lab.ssh(host, on_root, check=False).returncode == 0


def _dir_symlink(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["archive_link"] == "/srv/pg_archive_vol"
    fstype = lab.ssh(host, "findmnt -n -o FSTYPE /srv/pg_archive_vol").stdout.strip()
    assert fstype == "ext4"
    assert facts["same_dev_as_root"] == "no"
    assert facts["odd_segments"].strip() == ""
    facts = switch_and_wait_archived(lab, host)
    assert archiver_failures(facts) == 0
    there = "sudo -n test -f /srv/pg_archive_vol/" + facts["last_archived"]
    assert lab.ssh(host, there, check=False).returncode == 0


SECOND = (
    "psql -p 5433 -XAt -d postgres"
    " -c \"SELECT setting FROM pg_settings WHERE name = 'archive_mode'\""
    " -c 'SHOW wal_level' -c 'SHOW archive_timeout' -c 'SHOW archive_command'"
    " -c \"SELECT archived_count || '/' || failed_count || '/' || coalesce(last_archived_wal, '')"
    ' FROM pg_stat_archiver"'
)
SECOND_COMMAND = "test -f /pg_archive/second/%f || cp %p /pg_archive/second/%f"


def _second_cluster(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert_pristine(facts, host)  # the main cluster on 5432 is untouched
    mode, level, timeout, command, archiver = lab.ssh(host, SECOND).stdout.splitlines()
    assert (mode, level, timeout, command) == ("on", "replica", "1min", SECOND_COMMAND)
    archived, failed, last = archiver.split("/")
    assert int(archived) >= 1 and failed == "0" and SEGMENT.fullmatch(last)
    assert lab.ssh(host, "sudo -n stat -c '%U:%G %a' /pg_archive/second").stdout.strip() == (
        "postgres:postgres 750"
    )
    assert lab.ssh(host, f"sudo -n test -f /pg_archive/second/{last}", check=False).returncode == 0


def _second_cluster_broken(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert_pristine(facts, host)  # the main cluster on 5432 is untouched
    mode, level, timeout, command, archiver = lab.ssh(host, SECOND).stdout.splitlines()
    # PostgreSQL shows archive_command as "(disabled)" while archive_mode is off.
    assert (mode, level, timeout, command) == ("off", "replica", "1min", "(disabled)")
    # Its base archived before the break; after it, a switch archives nothing more.
    archived, failed, _ = archiver.split("/")
    assert int(archived) >= 1 and failed == "0", archiver
    before = lab.ssh(host, "sudo -n ls -A /pg_archive/second").stdout.split()
    lab.ssh(host, SWITCH.replace("psql", "psql -p 5433"))
    time.sleep(2)
    assert lab.ssh(host, "sudo -n ls -A /pg_archive/second").stdout.split() == before
    assert lab.ssh(host, SECOND).stdout.splitlines()[-1] == archiver


def _standby(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    settle_db1(lab)
    assert facts["in_recovery"] == "t"
    receiver = "psql -XAt -d postgres -c 'SELECT status, sender_host FROM pg_stat_wal_receiver'"
    assert lab.ssh(host, receiver).stdout.strip() == f"streaming|{lab.hosts[0].address}"
    row_reaches_standby(lab, host)
    # The standby archives nothing of its own (archive_mode = on, not always).
    assert observe(lab, host)["archiver"] == facts["archiver"]


def _promoted(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    settle_db1(lab)
    assert facts["in_recovery"] == "f"
    assert facts["timeline"] == "00000002"
    archive = lab.ssh(host, "sudo -n ls /pg_archive").stdout.split()
    assert "00000002.history" in archive
    # The archiver may still be catching up on the old timeline's files, so what it archived
    # last is not fixed; a whole timeline-2 segment in the archive is.
    assert any(n.startswith("00000002") and len(n) == 24 for n in archive), archive
    assert archiver_failures(facts) == 0


def _disabled(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["unit_file_state"] == "disabled"
    assert facts["pg_active"] == "active"


def _segment_world_writable(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["newest_segment_perms"].endswith(" 666")


def _segment_root_owned(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["newest_segment_perms"] == "root:root 600"


def _parent_disabled(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["parent_unit_file_state"] == "disabled"
    assert facts["unit_file_state"] == "enabled-runtime"  # what the old check read as enabled
    assert facts["pg_active"] == "active"


def _enabled_runtime(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["parent_unit_file_state"] == "enabled-runtime"
    assert facts["pg_active"] == "active"


def _half_configured(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["dpkg_status"] == "iF"


def _config_not_reloaded(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["lab_change_conf"] == "yes"
    assert facts["log_min_duration"] == "-1"  # written, not applied


def _restart_will_fail(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    """The planted line is in the files PostgreSQL reads, and not in the running server."""
    planted = lab.ssh(
        host,
        "sudo -n -u postgres psql -XAtq -c \"SELECT setting FROM pg_file_settings "
        "WHERE name = 'shared_buffers' AND sourcefile LIKE '%/50-walguard-lab-planted.conf'\" "
        "-c 'SHOW shared_buffers'",
    ).stdout.split()
    assert planted == ["1TB", "128MB"], planted


def _unit_not_reloaded(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["need_daemon_reload"] == "yes"


def _stray(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["stray_listener"] == "perl"


def _flushed(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert int(facts["nft_lines"]) == 0
    assert facts["zone_b_connects"] == "True"


def _ntp_off(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["chrony"] == "inactive"


def _hosts_wrong(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["hosts_addr"] == "10.231.0.99"


def _cert_wrong_name(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["cert_subject"] == f"CN=not-{host.name}.invalid"


def _binary_replaced(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["postgres_exe"] == "/usr/lib/postgresql/15/bin/postgres (deleted)"
    assert facts["pg_active"] == "active"


def _cert_expiring(lab: Lab, host: Host, facts: dict[str, str]) -> None:
    assert facts["cert_subject"] == f"CN={host.name}"
    assert 3 <= int(facts["cert_days_left"]) <= 5


EFFECTS: dict[str, Callable[[Lab, Host, dict[str, str]], None]] = {
    "postgresql-disabled": _disabled,
    "postgresql-parent-disabled": _parent_disabled,
    "segment-world-writable": _segment_world_writable,
    "segment-root-owned": _segment_root_owned,
    "postgresql-enabled-runtime": _enabled_runtime,
    "package-half-configured": _half_configured,
    "config-changed-not-reloaded": _config_not_reloaded,
    "unit-changed-no-reload": _unit_not_reloaded,
    "restart-will-fail": _restart_will_fail,
    "listener-stray": _stray,
    "firewall-flushed": _flushed,
    "ntp-off": _ntp_off,
    "hosts-wrong-address": _hosts_wrong,
    "tls-cert-wrong-name": _cert_wrong_name,
    "tls-cert-expiring": _cert_expiring,
    "server-binary-replaced": _binary_replaced,
    "archive-mode-off-pending-restart": _pending_restart,
    "archive-mode-off": _mode_off,
    "archive-command-unguarded": _unguarded,
    "archive-command-permission-denied": _permission_denied,
    "archive-dir-owner-root": _owner_root,
    "archive-dir-mode-0777": _mode_0777,
    "archive-dir-not-a-mount": _not_a_mount,
    "archive-fs-full": _fs_full,
    "archive-gap": _gap,
    "ready-backlog": _backlog,
    "postgresql-stopped": _stopped,
    "failed-unit": _failed_unit,
    "journal-error": _journal_error,
    "listen-unexpected-address": _listen_any,
    "zone-b-allowed": _zone_b,
    "wal-level-minimal": _wal_level_minimal,
    "archive-timeout-off": _timeout_off,
    "archiver-stats-reset": _stats_reset,
    "last-segment-missing": _last_missing,
    "archive-dir-missing": _dir_missing,
    "df-hangs": _df_hangs,
    "pgbackrest-archiving": _pgbackrest_archiving,
    "pgbackrest-broken": _pgbackrest_broken,
    "segment-truncated": _segment_truncated,
    "segment-symlinked": _segment_symlinked,
    "segment-foreign": _segment_foreign,
    "archive-dir-bind-root": _bind_root,
    "archive-dir-symlink": _dir_symlink,
    "second-cluster": _second_cluster,
    "second-cluster-broken": _second_cluster_broken,
    "standby-of-db1": _standby,
    "standby-promoted": _promoted,
}
