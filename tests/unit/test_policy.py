"""walguard's policy: defaults, walguard_* overrides, strict types and typo detection."""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import pytest

import walguard.policy.model
from walguard.policy.model import KNOWN_KEYS, Connect, Policy, PolicyError, policy_for, settings_for

FIELDS = [f.name for f in dataclasses.fields(Policy)] + [
    f.name for f in dataclasses.fields(Connect)
]


def values(target_vars: dict[str, Any]) -> dict[str, Any]:
    """Every setting, expectations and connection alike, by field name."""
    connect, policy = settings_for(target_vars)
    return {**dataclasses.asdict(connect), **dataclasses.asdict(policy)}


DEFAULTS = {**dataclasses.asdict(Connect()), **dataclasses.asdict(Policy())}


def policy_error(target_vars: dict[str, Any], **kwargs: Any) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        policy_for(target_vars, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


def test_defaults_without_walguard_vars() -> None:
    policy = policy_for({"ansible_host": "192.0.2.1", "ansible_port": 22, "whatever": [1]})
    assert policy == Policy()
    assert policy.archive_dir == "/pg_archive"
    assert policy.archive_allowed_modes == ("0700", "0750")
    assert policy.rpo_minutes == 15
    assert policy.segment_size_bytes == 16 * 1024 * 1024
    assert settings_for({})[0] == Connect()
    assert Connect().pg_dsn is None and Connect().ssh_retries == 2


def test_known_keys_are_the_fields_plus_the_extras() -> None:
    # walguard_checks_dirs is read for the whole run (walguard.audit.extra_checks), not per host.
    assert {f"walguard_{name}" for name in FIELDS} | {"walguard_checks_dirs"} == KNOWN_KEYS


def test_module_docstring_documents_every_key() -> None:
    doc = walguard.policy.model.__doc__ or ""
    assert [key for key in sorted(KNOWN_KEYS) if key not in doc] == []


OVERRIDES: dict[str, Any] = {
    "archive_dir": "/srv/wal",
    "archive_owner": "pgarchive",
    "archive_group": "backup",
    "restore_user": "pgrestore",
    "archive_allowed_modes": ["0700"],
    "rpo_minutes": 5,
    "ready_backlog_max": 0,
    "archive_min_free_percent": 100,
    "archive_command_approved": ["/usr/local/bin/archive_wal.sh %p %f"],
    "archive_check_command": "pgbackrest --stanza=main check",
    "standby_archiving": True,
    "require_dedicated_mount": False,
    "postgres_service": "postgresql@15-main.service",
    "pg_socket_dir": "/run/postgresql",
    "pg_port": 5433,
    "pg_dsn": "host=db1.example.internal sslmode=verify-full",
    "known_hosts_file": "/etc/walguard/known_hosts",
    "connect_timeout_s": 3,
    "command_timeout_s": 600,
    "ssh_retries": 0,
    "remediation_timeout_s": 3600,
    "change_window": ["Sat 01:00-05:00 Europe/Berlin", "Mon-Fri  22:00-02:00 UTC"],
    "rollback_owner": "Jane Doe <jane.doe@bank.example>",
    "segment_size_bytes": 64 * 1024 * 1024,
    "selinux_required": False,
    "selinux_type": "default",
    "selinux_archive_type": "pg_archive_t",
    "selinux_postgres_domain": "postgres_t",
    "zones": {"app": {"expect_postgres": True}, "office": {"expect_postgres": False}},
    "zone": "app",
    "journal_noise": [r"sshd\[\d+\]: error: kex_exchange_identification"],
    "listen_addresses": ["127.0.0.1", "192.0.2.10"],
    "allowed_listeners": ["sshd:22", "node_exporter:9100"],
    "firewall_required": False,
    "clock_max_offset_ms": 20,
    "postgres_package_versions": ["15.1[0-9]*"],
    "tls_required": True,
    "tls_ca_file": "/etc/walguard/ca.pem",
    "tls_name": "db1.example.internal",
    "tls_min_days": 60,
    "base_backup_dir": "/srv/pg_backup",
    "base_backup_source": "barman",
    "pgbackrest_stanza": "main",
    "base_backup_max_age_hours": 170,
    "base_backup_verify": "sizes",
    "rto_minutes": 0.5,
    "restore_scratch_dir": "/srv/pg_scratch",
    "restart_timeout_s": 300,
    "restart_max_lag_s": 5.5,
    "restart_min_free_pct": 20,
    "restore_host": "restore1.bank.example",
    "restore_archive_dir": "/restore/db1/pg_archive",
    "restore_backup_dir": "/restore/db1/pg_backup",
    "restore_canary_db": "walguard",
    "restore_timeout_s": 600,
    "restore_memory_max": "512M",
    "restore_cpu_quota": "50%",
}
CONVERTED = {
    "zones": (("app", True), ("office", False)),
    # Kept as written, the spaces between its parts made one.
    "change_window": ("Sat 01:00-05:00 Europe/Berlin", "Mon-Fri 22:00-02:00 UTC"),
}
# The settings a field is only accepted with (walguard.policy.model._backup_source_complete).
WITH = {"pgbackrest_stanza": {"base_backup_source": "pgbackrest"}}


def test_every_field_has_an_override_case() -> None:
    assert sorted(OVERRIDES) == sorted(FIELDS)


@pytest.mark.parametrize("name", FIELDS)
def test_each_field_is_overridden_by_its_variable(name: str) -> None:
    companions = WITH.get(name, {})
    got = values(
        {f"walguard_{name}": OVERRIDES[name]}
        | {f"walguard_{key}": value for key, value in companions.items()}
    )
    expected = CONVERTED.get(name, OVERRIDES[name])
    if isinstance(expected, list):
        expected = tuple(expected)
    assert got[name] == expected
    assert got[name] != DEFAULTS[name]
    others = [f for f in FIELDS if f != name and f not in companions]
    assert all(got[f] == DEFAULTS[f] for f in others)


def test_optional_fields_accept_null() -> None:
    assert values({"walguard_pg_dsn": None, "walguard_known_hosts_file": None}) == DEFAULTS


def test_a_change_window_is_one_or_a_list_and_null_or_empty_is_none() -> None:
    one = policy_for({"walguard_change_window": " sat 01:00-05:00  Europe/Berlin"})
    assert one.change_window == ("sat 01:00-05:00 Europe/Berlin",)
    assert policy_for({"walguard_change_window": None}).change_window == ()
    assert policy_for({"walguard_change_window": []}).change_window == ()
    owner = policy_for({"walguard_rollback_owner": " Jürgen Weiß <jw@bank.example> "})
    assert owner.rollback_owner == "Jürgen Weiß <jw@bank.example>"


@pytest.mark.parametrize(
    ("modes", "expected"),
    [
        (["0750"], ("0750",)),
        (["750", "0o700"], ("0750", "0700")),
        ([0o750, 0o700], ("0750", "0700")),  # what YAML makes of unquoted 0750
        (["2750"], ("2750",)),  # setgid archive directories are a real choice
        (["0750", 0o750, "750"], ("0750",)),
        (("0700",), ("0700",)),
    ],
)
def test_modes_are_normalised_to_four_octal_digits(modes: Any, expected: tuple[str, ...]) -> None:
    assert policy_for({"walguard_archive_allowed_modes": modes}).archive_allowed_modes == expected


@pytest.mark.parametrize(
    ("modes", "fragment"),
    [
        ([750], 'decimal in YAML); write modes as quoted octal strings such as "0750"'),
        (["0758"], "got '0758' (str) in the list"),
        (["rwxr-x---"], "in the list"),
        ([True], "got True (bool) in the list"),
        ([], "empty list"),
        ("0750", "expected a list of octal modes"),
        (None, "got null"),
    ],
)
def test_bad_modes(modes: Any, fragment: str) -> None:
    error = policy_error({"walguard_archive_allowed_modes": modes}, host="db1")
    assert "walguard_archive_allowed_modes" in str(error)
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("walguard_restore_canary_db", "host=elsewhere", "expected a database name"),
        ("walguard_restore_canary_db", "-hx", "expected a database name"),
        ("walguard_restore_memory_max", "2G -p x", "expected a size such as 2G"),
        ("walguard_rpo_minutes", "15", "expected a number > 0, got '15' (str)"),
        ("walguard_rpo_minutes", True, "expected a number > 0, got True (bool)"),
        ("walguard_rpo_minutes", 0, "expected a number > 0, got 0 (int)"),
        ("walguard_rpo_minutes", -1.5, "got -1.5 (float)"),
        ("walguard_rpo_minutes", float("nan"), "expected a number > 0, got nan (float)"),
        ("walguard_ready_backlog_max", -1, "expected an integer >= 0"),
        ("walguard_archive_min_free_percent", 101, "expected an integer from 0 to 100"),
        ("walguard_archive_min_free_percent", -1, "expected an integer from 0 to 100"),
        (
            "walguard_require_dedicated_mount",
            "maybe",
            "expected true or false (or yes/no, on/off, 1/0), got 'maybe'",
        ),
        (
            "walguard_require_dedicated_mount",
            2,
            "expected true or false (or yes/no, on/off, 1/0), got 2 (int)",
        ),
        ("walguard_selinux_required", "", "expected true or false"),
        ("walguard_archive_dir", "pg_archive", "expected an absolute path"),
        ("walguard_archive_dir", None, "expected an absolute path such as /pg_archive, got null"),
        ("walguard_pg_socket_dir", "run/postgresql", "expected an absolute path"),
        ("walguard_pg_port", 70000, "expected an integer from 1 to 65535"),
        ("walguard_pg_port", "5432", "got '5432' (str)"),
        ("walguard_segment_size_bytes", 1000, "expected a power of two"),
        ("walguard_segment_size_bytes", 3 << 20, "expected a power of two"),
        ("walguard_segment_size_bytes", 2 << 30, "expected a power of two"),
        ("walguard_archive_owner", "", "expected a non-empty name"),
        ("walguard_archive_group", 26, "expected a non-empty name"),
        ("walguard_postgres_service", "postgresql 15", "without spaces"),
        ("walguard_pg_dsn", "", "expected a non-empty string"),
        ("walguard_known_hosts_file", ["/a"], "got a list"),
        ("walguard_connect_timeout_s", 0, "expected an integer >= 1"),
        ("walguard_command_timeout_s", "60s", "expected an integer >= 1"),
        ("walguard_zones", ["zone-a"], "expected a mapping such as {zone-a:"),
        ("walguard_zones", {"zone-a": "x"}, "expected {expect_postgres: true|false}"),
        ("walguard_change_window", "Sat 01:00-05:00 Berlin", "unknown time zone 'Berlin'"),
        ("walguard_change_window", "Sat 1:00-05:00 UTC", "time '1:00' is not HH:MM"),
        ("walguard_change_window", ["Sat 01:00-05:00 UTC", 3], "got a list"),
        ("walguard_change_window", {"Sat": "01:00"}, "or a list of them, got a mapping"),
        ("walguard_change_window", 5, "got 5 (int)"),
        ("walguard_rollback_owner", "ops\nrm -rf", "on one line of at most 120 characters"),
        ("walguard_rollback_owner", "x" * 121, "on one line of at most 120 characters"),
        ("walguard_rollback_owner", " ", "on one line"),
        ("walguard_rollback_owner", ["ops"], "got a list"),
    ],
)
def test_type_errors_name_host_key_and_expectation(key: str, value: Any, fragment: str) -> None:
    error = policy_error({key: value}, host="db7")
    message = str(error)
    assert message.startswith(f"host db7: {key}: ")
    assert fragment in message
    assert (error.host, error.key, error.source) == ("db7", key, None)


def test_error_names_the_source_when_known() -> None:
    error = policy_error(
        {"walguard_rpo_minutes": -5},
        host="db1",
        sources={"walguard_rpo_minutes": "group_vars/prod.yml:3"},
    )
    assert str(error) == (
        "host db1: walguard_rpo_minutes (set in group_vars/prod.yml:3): "
        "expected a number > 0, got -5 (int)"
    )
    assert error.source == "group_vars/prod.yml:3"


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("walguard_rpo_minute", "walguard_rpo_minutes"),
        ("walguard_rpo_mins", "walguard_rpo_minutes"),
        ("walguard_archive_allowed_mode", "walguard_archive_allowed_modes"),
        ("walguard_dsn", "walguard_pg_dsn"),
        ("walguard_known_host_file", "walguard_known_hosts_file"),
        ("walguard_selinux_require", "walguard_selinux_required"),
    ],
)
def test_unknown_key_suggests_the_closest(key: str, suggestion: str) -> None:
    message = str(policy_error({key: 5}, host="db1"))
    assert f"host db1: {key}: unknown walguard setting; did you mean {suggestion}?" == message


def test_unknown_key_without_a_close_match_lists_the_known_ones() -> None:
    message = str(policy_error({"walguard_xyzzy": 1}))
    assert "unknown walguard setting; known: walguard_allowed_listeners, " in message
    assert message.startswith("host ?: walguard_xyzzy")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("walgaurd_rpo_minutes", "walguard_rpo_minutes"),
        ("Walguard_rpo_minutes", "walguard_rpo_minutes"),
        ("WALGUARD_PG_PORT", "walguard_pg_port"),
        ("wal_guard_archive_dir", "walguard_archive_dir"),
    ],
)
def test_misspelt_prefix_is_caught(key: str, suggestion: str) -> None:
    message = str(policy_error({key: 5}))
    assert f"{key}: not a walguard setting; did you mean {suggestion}?" in message


@pytest.mark.parametrize(
    "key", ["ansible_port", "ansible_host", "pg_port", "archive_dir", "rpo", "zones"]
)
def test_unrelated_variables_are_left_alone(key: str) -> None:
    assert policy_for({key: "anything"}) == Policy()


def test_policy_error_survives_pickling() -> None:
    error = PolicyError("db1", "walguard_pg_port", "expected a port", "inv.yml:4")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert (copy.host, copy.key, copy.problem, copy.source) == (
        "db1",
        "walguard_pg_port",
        "expected a port",
        "inv.yml:4",
    )


def test_policy_is_frozen() -> None:
    policy = Policy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.rpo_minutes = 1  # type: ignore[misc]


# --remediate makes the archive directory the policy's owner and mode (WG-DIR-001/003/004 chown
# and chmod it, WG-SEL-00x relabel it): a system directory, or a path that only names one after
# resolving '..', must fail when the inventory is read.
@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/", "/ is a system directory"),
        ("/etc", "/etc is a system directory"),
        ("/var/lib", "/var/lib is a system directory"),
        ("/srv", "/srv is a system directory"),
        ("/home/alice", "/home/alice is a user's home directory"),
        ("/etc/ssh", "/etc/ssh is in the system tree /etc"),
        ("/usr/lib/postgresql", "is in the system tree /usr"),
        ("/tmp/archive", "is in the system tree /tmp"),
        ("/var/run/postgresql", "is in the system tree /var/run"),
        ("..", "expected an absolute path"),
        ("/pg_archive/../etc", "expected a normalised absolute path"),
        ("/srv/./archive", "expected a normalised absolute path"),
        ("//etc", "expected a normalised absolute path"),
        ("/pg_archive/", "expected a normalised absolute path"),
        ("/pg\narchive", "expected a path without control characters"),
    ],
)
def test_archive_dir_is_never_a_system_directory(path: str, fragment: str) -> None:
    message = str(policy_error({"walguard_archive_dir": path}, host="db1"))
    assert message.startswith("host db1: walguard_archive_dir: ")
    assert fragment in message


@pytest.mark.parametrize(
    "path", ["/pg_archive", "/srv/pg_archive", "/var/lib/pgsql/archive", "/mnt/wal", "/data/wal"]
)
def test_archive_dir_of_its_own_is_accepted(path: str) -> None:
    assert policy_for({"walguard_archive_dir": path}).archive_dir == path


SPELLINGS = [True, False, "true", "False", " YES ", "no", "On", "off", "1", "0", "y", "N", "t",
             "F", 1, 0, 1.0, 0.0, "maybe", "", 2, -1, 0.5, None, ["yes"], {"a": 1}]  # fmt: skip


@pytest.mark.parametrize("value", SPELLINGS)
def test_booleans_are_read_as_ansible_reads_them(value: Any) -> None:
    """An INI inventory's `walguard_selinux_required=false` is the string "false": walguard
    takes what Ansible's own boolean() takes, as it takes it, and refuses the rest."""
    convert_bool = pytest.importorskip("ansible.module_utils.parsing.convert_bool")
    try:
        expected: bool | None = convert_bool.boolean(value)
    except TypeError:
        expected = None
    try:
        got: bool | None = policy_for({"walguard_selinux_required": value}).selinux_required
    except PolicyError:
        got = None
    assert got == expected, value
