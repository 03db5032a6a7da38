"""SELinux facts: parsers for what the collector captures on a host (getenforce, sestatus,
/etc/selinux/config, ls -Z / stat -c %C, matchpathcon, semanage fcontext -l -C, restorecon -n -v,
ps -eZ and audit AVC records). Every parser raises FactUnavailable on output it cannot read."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from walguard.errors import FactUnavailable
from walguard.facts.sections import Section


@dataclass(frozen=True)
class Avc:
    denied: tuple[str, ...]
    comm: str
    name: str
    dev: str
    source_type: str
    target_type: str
    tclass: str
    permissive: bool


@dataclass(frozen=True)
class LocalRule:
    regex: str
    file_type: str
    context: str

    @property
    def type(self) -> str:
        return context_type(self.context)


@dataclass(frozen=True)
class SelinuxFacts:
    enabled: bool
    enforcing: bool = False
    config_mode: str = ""
    config_type: str = ""
    loaded_policy: str = ""
    archive_type: str = ""
    archive_file_types: Mapping[str, str] | None = None  # file name -> type
    expected_archive_type: str = ""  # matchpathcon: what a relabel would set
    local_rules: tuple[LocalRule, ...] = ()
    relabel_drift: tuple[str, ...] = ()  # restorecon -n -v lines
    postgres_domains: frozenset[str] = frozenset()
    avcs: tuple[Avc, ...] = ()


def context_type(context: str) -> str:
    """system_u:object_r:postgresql_db_t:s0 -> postgresql_db_t."""
    parts = context.strip().split(":")
    if len(parts) < 3 or not parts[2]:
        raise FactUnavailable(f"not an SELinux context: {context.strip()[:100]!r}")
    return parts[2]


def parse_getenforce(text: str) -> bool:
    word = text.strip()
    if word not in ("Enforcing", "Permissive", "Disabled"):
        raise FactUnavailable(f"unexpected getenforce output: {word[:100]!r}")
    return word == "Enforcing"


def parse_sestatus(text: str) -> dict[str, str]:
    """`SELinux status:   enabled` lines -> {'SELinux status': 'enabled', ...}."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields[key.strip()] = value.strip()
    if "SELinux status" not in fields:
        raise FactUnavailable("sestatus output has no 'SELinux status' line")
    return fields


def parse_selinux_config(text: str) -> tuple[str, str]:
    """/etc/selinux/config -> (SELINUX, SELINUXTYPE)."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    if "SELINUX" not in values:
        raise FactUnavailable("/etc/selinux/config sets no SELINUX=")
    return values["SELINUX"], values.get("SELINUXTYPE", "")


def parse_ls_z(text: str) -> tuple[str, str]:
    """`ls -dZ /pg_archive` -> (type, path)."""
    context, _, path = text.strip().partition(" ")
    return context_type(context), path.strip()


def parse_matchpathcon(text: str) -> str:
    """`/pg_archive\\tsystem_u:object_r:default_t:s0` -> default_t."""
    parts = text.strip().split()
    if len(parts) != 2:
        raise FactUnavailable(f"unexpected matchpathcon output: {text.strip()[:100]!r}")
    return context_type(parts[1])


def parse_fcontext_local(text: str) -> tuple[LocalRule, ...]:
    """`semanage fcontext -l -C`: a header, then `regex  file type words  context` lines."""
    rules = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("SELinux fcontext"):
            continue
        m = re.match(r"^(\S+)\s+(.+?)\s+(\S+:\S+:\S+(?::\S+)?|<<None>>)\s*$", line)
        if not m:
            raise FactUnavailable(f"unparsable semanage fcontext line: {line.strip()[:120]!r}")
        rules.append(LocalRule(m.group(1), m.group(2).strip(), m.group(3)))
    return tuple(rules)


def rule_covers(rule: LocalRule, path: str) -> bool:
    """Does a local rule's regex match the directory and everything below it?"""
    base = path.rstrip("/")
    try:
        pattern = re.compile(rf"^(?:{rule.regex})$")
    except re.error:
        return False
    return bool(pattern.match(base)) and bool(pattern.match(f"{base}/000000010000000000000001"))


def parse_restorecon_dryrun(text: str) -> tuple[str, ...]:
    """`restorecon -n -v -R DIR`: one `Would relabel X from A to B` line per drifted file."""
    lines = tuple(ln.strip() for ln in text.splitlines() if ln.strip())
    for line in lines:
        if not line.startswith("Would relabel "):
            raise FactUnavailable(f"unexpected restorecon output: {line[:120]!r}")
    return lines


def parse_ps_ez(text: str, command: str = "postgres") -> frozenset[str]:
    """`ps -eZ`: LABEL PID TTY TIME CMD -> the domains `command` runs in."""
    lines = text.splitlines()
    if not lines or not lines[0].split() or lines[0].split()[0] != "LABEL":
        raise FactUnavailable("ps -eZ output has no LABEL header")
    domains = set()
    for line in lines[1:]:
        cols = line.split()
        if len(cols) >= 5 and cols[4] == command:
            domains.add(context_type(cols[0]))
    return frozenset(domains)


_PERMS = re.compile(r"avc:\s+denied\s+\{([^}]*)\}")
_FIELD = re.compile(r"(\w+)=(\"[^\"]*\"|\S+)")


def parse_avcs(text: str) -> tuple[Avc, ...]:
    """AVC denials from `ausearch --input-logs -m avc` (raw or -i); `<no matches>` gives ()."""
    found = []
    for line in text.splitlines():
        if "type=AVC" not in line or "denied" not in line:
            continue
        perms = _PERMS.search(line)
        fields = {k: v.strip('"') for k, v in _FIELD.findall(line.split("denied", 1)[1])}
        if not perms or "scontext" not in fields or "tcontext" not in fields:
            raise FactUnavailable(f"unparsable AVC record: {line.strip()[:160]!r}")
        found.append(
            Avc(
                denied=tuple(perms.group(1).split()),
                comm=fields.get("comm", ""),
                name=fields.get("name", ""),
                dev=fields.get("dev", ""),
                source_type=context_type(fields["scontext"]),
                target_type=context_type(fields["tcontext"]),
                tclass=fields.get("tclass", ""),
                permissive=fields.get("permissive") == "1",
            )
        )
    return tuple(found)


def parse_selinux(sections: Mapping[str, Section]) -> SelinuxFacts:
    """All SELinux facts of a host. A host without SELinux (no /sys/fs/selinux/enforce) is a
    fact (enabled=False), not an error; a host with SELinux but unreadable output is an error."""
    enforce = sections.get("selinux_enforce")
    if enforce is None:
        raise FactUnavailable("collector output has no complete 'selinux_enforce' section")
    if enforce.rc != 0 or enforce.output.strip() not in ("0", "1"):
        return SelinuxFacts(enabled=False)

    def out(name: str, ok_rcs: tuple[int, ...] = (0,)) -> str:
        sec = sections.get(name)
        if sec is None:
            raise FactUnavailable(f"collector output has no complete '{name}' section")
        if sec.rc not in ok_rcs:
            what = "timed out" if sec.rc == 124 else f"failed (rc {sec.rc})"
            raise FactUnavailable(f"{name} {what}: {sec.output.strip()[:160]}")
        return sec.output

    config_mode, config_type = parse_selinux_config(out("selinux_config"))
    status = parse_sestatus(out("sestatus"))
    file_types = {}
    for line in out("archive_file_contexts").splitlines():
        if line.strip():
            context, _, name = line.partition("|")
            file_types[name] = context_type(context)
    # ausearch exits 1 when nothing matches ("<no matches>").
    return SelinuxFacts(
        enabled=True,
        enforcing=parse_getenforce(out("getenforce")),
        config_mode=config_mode,
        config_type=config_type,
        loaded_policy=status.get("Loaded policy name", ""),
        archive_type=context_type(out("archive_context")),
        archive_file_types=file_types,
        expected_archive_type=parse_matchpathcon(out("matchpathcon")),
        local_rules=parse_fcontext_local(out("fcontext_local")),
        relabel_drift=parse_restorecon_dryrun(out("restorecon_dryrun")),
        postgres_domains=parse_ps_ez(out("ps_context")),
        avcs=parse_avcs(out("avc", (0, 1))),
    )
