"""SELinux parsers on output captured from the lab's SELinux-enforcing guest (tests/unit/data/
selinux), before (-broken) and after (-fixed) the seed's fix, and on broken variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from walguard.errors import FactUnavailable
from walguard.facts.selinux import (
    LocalRule,
    context_type,
    parse_avcs,
    parse_fcontext_local,
    parse_getenforce,
    parse_ls_z,
    parse_matchpathcon,
    parse_ps_ez,
    parse_restorecon_dryrun,
    parse_selinux_config,
    parse_sestatus,
    rule_covers,
)

DATA = Path(__file__).parent / "data" / "selinux"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_getenforce_and_config_and_sestatus() -> None:
    assert parse_getenforce(read("getenforce.txt")) is True
    assert parse_getenforce("Permissive\n") is False
    assert parse_selinux_config(read("selinux-config.txt")) == ("enforcing", "default")
    status = parse_sestatus(read("sestatus.txt"))
    assert status["SELinux status"] == "enabled"
    assert status["Current mode"] == "enforcing"
    assert status["Loaded policy name"] == "default"
    with pytest.raises(FactUnavailable):
        parse_getenforce("getenforce: command not found")
    with pytest.raises(FactUnavailable):
        parse_selinux_config("# nothing here\n")
    with pytest.raises(FactUnavailable):
        parse_sestatus("garbage")


def test_labels_before_and_after_the_fix() -> None:
    assert parse_ls_z(read("ls-Z-pg_archive-broken.txt")) == ("unlabeled_t", "/pg_archive")
    assert parse_ls_z(read("ls-Z-pg_archive-fixed.txt")) == ("postgresql_db_t", "/pg_archive")
    assert context_type(read("stat-C-broken.txt")) == "unlabeled_t"
    assert context_type(read("stat-C-fixed.txt")) == "postgresql_db_t"
    assert parse_matchpathcon(read("matchpathcon-broken.txt")) == "default_t"
    assert parse_matchpathcon(read("matchpathcon-fixed.txt")) == "postgresql_db_t"
    with pytest.raises(FactUnavailable):
        context_type("?")
    with pytest.raises(FactUnavailable):
        parse_matchpathcon("matchpathcon(/pg_archive) failed: No such file or directory")


def test_local_fcontext_rules() -> None:
    assert parse_fcontext_local(read("semanage-fcontext-l-C-broken.txt")) == ()
    (rule,) = parse_fcontext_local(read("semanage-fcontext-l-C-fixed.txt"))
    assert rule == LocalRule(
        "/pg_archive(/.*)?", "all files", "system_u:object_r:postgresql_db_t:s0"
    )
    assert rule.type == "postgresql_db_t"
    assert rule_covers(rule, "/pg_archive")
    # The rule for another path never counts, even where a grep would match it.
    cleanup = LocalRule(
        "/usr/lib/postgresql/15/bin/pg_archivecleanup",
        "regular file",
        "system_u:object_r:postgresql_exec_t:s0",
    )
    assert not rule_covers(cleanup, "/pg_archive")
    assert not rule_covers(LocalRule("/pg_archive", "all files", rule.context), "/pg_archive")
    with pytest.raises(FactUnavailable):
        parse_fcontext_local("SELinux fcontext  type  Context\nthis is not a rule\n")


def test_restorecon_dry_run_shows_drift() -> None:
    drift = parse_restorecon_dryrun(read("restorecon-n-v.txt"))
    assert len(drift) == 2 and drift[0].startswith("Would relabel /pg_archive from")
    assert parse_restorecon_dryrun("") == ()
    with pytest.raises(FactUnavailable):
        parse_restorecon_dryrun("restorecon: lstat(/pg_archive) failed: No such file")


def test_postgres_runs_confined() -> None:
    assert parse_ps_ez(read("ps-eZ.txt")) == frozenset({"postgresql_t"})
    with pytest.raises(FactUnavailable):
        parse_ps_ez("  PID TTY          TIME CMD\n 1 ? 00:00:01 systemd\n")


def test_avc_denials_for_postgresql_on_the_unlabelled_archive() -> None:
    avcs = parse_avcs(read("ausearch-avc.txt"))
    pg = [a for a in avcs if a.source_type == "postgresql_t"]
    assert pg, "the capture holds the archiver's denial"
    assert pg[0].target_type == "unlabeled_t" and pg[0].tclass == "dir"
    assert pg[0].denied == ("search",) and pg[0].comm == "sh"
    # Boot-time noise of other domains is parsed too, and told apart by its domain.
    assert {a.source_type for a in avcs} >= {"udev_t", "postgresql_t"}
    assert parse_avcs("<no matches>\n") == ()


def test_raw_avc_records_with_quoted_fields() -> None:
    raw = (
        "type=AVC msg=audit(1795597572.832:41): avc:  denied  { write } for  pid=394 "
        'comm="cp" name="pg_archive" dev="vdb" ino=2 '
        "scontext=system_u:system_r:postgresql_t:s0 "
        "tcontext=system_u:object_r:default_t:s0 tclass=dir permissive=0"
    )
    (avc,) = parse_avcs(raw)
    assert (avc.comm, avc.name, avc.target_type, avc.permissive) == (
        "cp",
        "pg_archive",
        "default_t",
        False,
    )
    with pytest.raises(FactUnavailable):
        parse_avcs("type=AVC msg=audit(1:2): avc:  denied  { write } for pid=1 truncated")
