"""The options of `walguard audit` (pytest's, as the plugin registers them; `walguard audit
--help` lists them from here too)."""

from __future__ import annotations

from typing import Any

import pytest

from walguard.controls import SEVERITIES
from walguard.facts.fanout import DEFAULT_FORKS, MAX_FORKS
from walguard.history.run_inputs import add_options as add_history_options


def add_options(parser: pytest.Parser) -> None:
    """Every option of `walguard audit` (and of `pytest checks` with the plugin)."""
    group = parser.getgroup("walguard", "walguard audit")
    group.addoption(
        "--inventory",
        default=None,
        metavar="SOURCE",
        help="Ansible inventory: a YAML or INI file (read by walguard) or, with ansible-core "
        "installed, any source ansible-inventory accepts (required, except in a checkout of "
        "walguard, whose default is the lab's inventories/lab.yml)",
    )
    group.addoption(
        "--limit",
        default=None,
        metavar="PATTERN",
        help="audit only these hosts: Ansible's host patterns, comma-separated (host and group "
        "names, globs such as db*, ~REGEX, @FILE; !PATTERN excludes, &PATTERN intersects); "
        "a pattern that matches no host is a usage error",
    )
    group.addoption(
        "--checks",
        action="append",
        default=[],
        metavar="DIR",
        help="also audit the controls in DIR (test_*.py files using walguard's @control; "
        "repeatable; the inventory's walguard_checks_dirs adds more); their remediation "
        "scripts are in the remediation/ directory beside DIR",
    )
    group.addoption(
        "--vault-password-file",
        action="append",
        default=[],
        metavar="FILE",
        help="Ansible Vault password file (repeatable); the inventory is then read through "
        "ansible-inventory (pip install 'walguard[ansible]')",
    )
    group.addoption(
        "--vault-id",
        action="append",
        default=[],
        metavar="ID",
        help="Ansible Vault identity such as prod@FILE (repeatable); as --vault-password-file",
    )
    group.addoption(
        "--fail-on",
        default="medium",
        choices=SEVERITIES,
        metavar="SEVERITY",
        help="exit non-zero when a control of this severity or higher fails "
        "(critical, high, medium, low; default medium)",
    )
    group.addoption(
        "--active-probe",
        action="store_true",
        help="also switch WAL on each host (pg_switch_wal) and wait until the segment is "
        "archived (control WG-ACT-006; changes server state, so opt-in)",
    )
    group.addoption(
        "--probe-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long --active-probe waits for the segment to be archived (default 60)",
    )
    group.addoption(
        "--restore-drill",
        action="store_true",
        help="also restore each host's newest base backup into a scratch cluster and replay the "
        "archive to a point in time between two canary rows (controls WG-RST-003/004; writes "
        "the canaries and uses the policy's walguard_restore_scratch_dir, so opt-in)",
    )
    group.addoption(
        "--remediate",
        choices=("plan", "apply"),
        default=None,
        help="for failed controls with a paired script: plan (show what would change) or "
        "apply (change, then re-check); default: no remediation at all",
    )
    group.addoption(
        "--allow-restart",
        "--allow-disruptive",
        action="store_true",
        dest="allow_restart",
        help="let --remediate=apply run scripts that restart PostgreSQL, with --change-ref and "
        "inside a change window (--allow-disruptive is its older spelling)",
    )
    group.addoption(
        "--restart-batch",
        type=int,
        default=1,
        metavar="N",
        help="a staged restart's batch size after its canary host (default 1: one host at a "
        "time); never two hosts of one replication group at once",
    )
    group.addoption(
        "--change-ref",
        default=None,
        metavar="REF",
        help="change ticket recorded with every change remediation makes (required for a restart)",
    )
    group.addoption(
        "--change-window",
        action="append",
        default=[],
        metavar="SPEC",
        help="when a restart may happen, for this run instead of each host's "
        "walguard_change_window: DAYS HH:MM-HH:MM ZONE, e.g. 'Sat 01:00-05:00 Europe/Berlin' "
        "(repeatable: any one will do)",
    )
    group.addoption(
        "--report-root",
        default=None,
        metavar="DIR",
        help="where each run writes its directory (default: $WALGUARD_REPORT_ROOT, else "
        "reports/ in a checkout of walguard, else reports/ under the current directory)",
    )
    group.addoption(
        "--metrics-file",
        default=None,
        metavar="PATH",
        help="also write the run's results for Prometheus, as node_exporter's textfile "
        "collector reads them, to PATH (a *.prom file in the collector's directory; Debian's "
        "is /var/lib/prometheus/node-exporter), replaced atomically at the end of every run "
        "that writes a report, also when the gate fails",
    )
    group.addoption(
        "--forks",
        default=None,
        metavar="N",
        help="how many hosts' facts are collected at once, by threads of this process "
        f"(default {DEFAULT_FORKS}, or WALGUARD_FORKS; 1-{MAX_FORKS}: keep it within a bastion's "
        "or the hosts' sshd MaxStartups)",
    )
    add_signing_options(group)
    add_history_options(group)


def add_signing_options(group: Any) -> None:
    """Signing options of `walguard audit` (and of `pytest checks`)."""
    for name, what in (
        ("key", "PEM private key that signs the run's manifest (env WALGUARD_SIGN_KEY)"),
        ("cert", "PEM certificate of that key, then any chain (env WALGUARD_SIGN_CERT)"),
        ("chain", "PEM intermediate certificates to include (env WALGUARD_SIGN_CHAIN)"),
        ("pkcs12", "PKCS#12 file with key, certificate and chain (env WALGUARD_SIGN_PKCS12)"),
        ("password-file", "file holding the key's password (env WALGUARD_SIGN_PASSWORD_FILE; "
                          "or the password itself in WALGUARD_SIGN_PASSWORD)"),
    ):  # fmt: skip
        group.addoption(f"--sign-{name}", default=None, metavar="FILE", help=what)
    group.addoption(
        "--tsa-url",
        default=None,
        metavar="URL",
        help="RFC 3161 time-stamping authority for the signature (env WALGUARD_TSA_URL)",
    )
