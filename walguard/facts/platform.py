"""The validation matrix's facts, parsed from the collector's raw sections: the PostgreSQL unit,
its binary and package, failed units, the journal's errors, listeners, the firewall, the clock,
the host's name and the server's configuration state and certificate.

Each fact is its own `Part`: a section that is missing or unreadable makes only the controls that
read it ERROR, never PASS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from walguard.errors import FactUnavailable
from walguard.facts.boot import BootPath, parse_boot
from walguard.facts.sections import Section, need
from walguard.history.journal_baseline import Baseline
from walguard.part import Part

T = TypeVar("T")


@dataclass(frozen=True)
class Unit:
    id: str
    load_state: str
    active_state: str
    sub_state: str
    unit_file_state: str
    need_daemon_reload: bool
    main_pid: int
    fragment_path: str


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    status: str  # dpkg's db:Status-Abbrev ("ii " installed); rpm: always "ii"
    manager: str  # dpkg or rpm


@dataclass(frozen=True)
class Listener:
    netid: str  # tcp, udp
    address: str  # without brackets or %interface; "*" and "0.0.0.0" and "::" mean any
    port: int
    processes: tuple[str, ...]  # process names owning the socket (empty: not visible)


@dataclass(frozen=True)
class Firewall:
    units: dict[str, str]  # nftables.service / firewalld.service -> is-active
    tables: tuple[str, ...]  # "inet walguard", "inet firewalld", ...
    input_chains: tuple[str, ...]  # base chains hooked on input
    filters_input: bool  # some input base chain drops or rejects (rule or policy)


@dataclass(frozen=True)
class Clock:
    daemons: dict[str, str]  # time-sync unit -> is-active
    chrony: dict[str, str] | None  # `chronyc -n tracking` fields, None when it did not answer
    chrony_error: str
    ntp_synchronized: bool | None  # timedatectl's NTPSynchronized
    timesync_offset_ms: float | None  # systemd-timesyncd's last offset, if it runs

    def chrony_offset_ms(self) -> float | None:
        if not self.chrony:
            return None
        m = re.match(r"([\d.]+) seconds (fast|slow)", self.chrony.get("System time", ""))
        return float(m.group(1)) * 1000 if m else None


@dataclass(frozen=True)
class Identity:
    name: str
    fqdn: str
    forward: tuple[str, ...]  # what the name resolves to, on the host
    reverse: dict[str, tuple[str, ...]]  # address -> names it resolves back to
    addresses: tuple[str, ...]  # the host's own interface addresses


@dataclass(frozen=True)
class FileSetting:
    seqno: int
    sourcefile: str
    sourceline: int
    name: str
    applied: bool
    error: str


@dataclass(frozen=True)
class ConfigState:
    load_time: float  # pg_conf_load_time(), epoch seconds
    file_settings: tuple[FileSetting, ...]
    file_mtimes: dict[str, float]  # configuration file -> modification time


@dataclass(frozen=True)
class PlatformFacts:
    unit: Part[Unit] = field(default_factory=lambda: Part(error="not collected"))
    boot: Part[BootPath] = field(default_factory=lambda: Part(error="not collected"))
    exe: Part[str] = field(default_factory=lambda: Part(error="not collected"))
    package: Part[Package] = field(default_factory=lambda: Part(error="not collected"))
    failed_units: Part[tuple[str, ...]] = field(default_factory=lambda: Part(error="not collected"))
    journal: Part[tuple[str, ...]] = field(default_factory=lambda: Part(error="not collected"))
    listeners: Part[tuple[Listener, ...]] = field(
        default_factory=lambda: Part(error="not collected")
    )
    firewall: Part[Firewall] = field(default_factory=lambda: Part(error="not collected"))
    clock: Part[Clock] = field(default_factory=lambda: Part(error="not collected"))
    identity: Part[Identity] = field(default_factory=lambda: Part(error="not collected"))
    config: Part[ConfigState] = field(default_factory=lambda: Part(error="not collected"))
    tls_cert: Part[str] = field(default_factory=lambda: Part(error="not collected"))
    # This host's journal errors in the previous verified run (walguard.history.journal_baseline),
    # set by the run.
    journal_baseline: Part[Baseline] = field(
        default_factory=lambda: Part(error="the previous run was not looked up")
    )


def _part(parse: Callable[[dict[str, Section]], T], sections: dict[str, Section]) -> Part[T]:
    try:
        return Part(parse(sections))
    except FactUnavailable as exc:
        return Part(error=str(exc))
    except (ValueError, IndexError, KeyError) as exc:
        return Part(error=f"unparsable collector output: {type(exc).__name__}: {exc}")


def _ok(sections: dict[str, Section], name: str, what: str) -> str:
    sec = need(sections, name)
    if sec.rc != 0:
        raise FactUnavailable(f"{what} failed (exit {sec.rc}): {_first_line(sec.output)}")
    return sec.output


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "no output")


def _key_values(text: str, sep: str = "=") -> dict[str, str]:
    pairs = (line.split(sep, 1) for line in text.splitlines() if sep in line)
    return {k.strip(): v.strip() for k, v in pairs}


def parse_unit(sections: dict[str, Section]) -> Unit:
    kv = _key_values(_ok(sections, "unit", "systemctl show"))
    if "ActiveState" not in kv:
        raise FactUnavailable("systemctl show printed no ActiveState")
    return Unit(
        kv.get("Id", ""),
        kv.get("LoadState", ""),
        kv["ActiveState"],
        kv.get("SubState", ""),
        kv.get("UnitFileState", ""),
        kv.get("NeedDaemonReload", "no") == "yes",
        int(kv.get("MainPID", "0") or 0),
        kv.get("FragmentPath", ""),
    )


def parse_exe(sections: dict[str, Section]) -> str:
    return _ok(sections, "postgres_exe", "reading the server's binary").strip()


def parse_package(sections: dict[str, Section]) -> Package:
    out = _ok(sections, "postgres_package", "finding the server's package")
    fields = _first_line(out).split("|")
    if len(fields) != 4 or not fields[0]:
        raise FactUnavailable(f"unexpected package line: {_first_line(out)!r}")
    return Package(fields[0], fields[1], fields[2], fields[3])


def parse_failed_units(sections: dict[str, Section]) -> tuple[str, ...]:
    out = _ok(sections, "failed_units", "systemctl list-units --failed")
    # --plain --no-legend: "UNIT LOAD ACTIVE SUB DESCRIPTION" (a leading "●" on some versions).
    return tuple(line.split()[0].lstrip("●*").strip() or line.split()[1] for line in _lines(out))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def parse_journal(sections: dict[str, Section]) -> tuple[str, ...]:
    sec = need(sections, "journal_errors")
    # "-- No entries --" is journalctl's empty answer (without -q); -q prints nothing.
    if sec.rc != 0:
        raise FactUnavailable(f"journalctl failed (exit {sec.rc}): {_first_line(sec.output)}")
    return tuple(line for line in _lines(sec.output) if not line.startswith("-- "))


_USERS = re.compile(r'\("([^"]+)",pid=')


def split_address(local: str) -> tuple[str, int]:
    """ss's local address: 10.0.0.1:5432, [::]:22, *:323, 127.0.0.53%lo:53 -> (address, port)."""
    address, _, port = local.rpartition(":")
    address = address.strip("[]").split("%", 1)[0]
    return address, int(port)


def parse_listeners(sections: dict[str, Section]) -> tuple[Listener, ...]:
    out = _ok(sections, "listeners", "ss -tulpn")
    found = []
    for line in _lines(out):
        cols = line.split()
        if len(cols) < 5:
            raise ValueError(f"unexpected ss line {line!r}")
        netid, local = cols[0], cols[4]
        address, port = split_address(local)
        found.append(Listener(netid, address, port, tuple(dict.fromkeys(_USERS.findall(line)))))
    return tuple(found)


def parse_firewall(sections: dict[str, Section]) -> Firewall:
    units_sec = need(sections, "firewall_units")
    states = units_sec.output.split()
    names = ("nftables.service", "firewalld.service")
    units = {n: (states[i] if i < len(states) else "unknown") for i, n in enumerate(names)}
    nft = need(sections, "nft_ruleset")
    if nft.rc != 0 and "command not found" not in nft.output and nft.rc != 127:
        raise FactUnavailable(f"nft list ruleset failed (exit {nft.rc}): {_first_line(nft.output)}")
    tables: list[str] = []
    chains: list[str] = []
    filters = False
    table = chain = ""
    in_input = False
    for raw in nft.output.splitlines() if nft.rc == 0 else []:
        line = raw.strip()
        if m := re.match(r"table (\S+ \S+) \{", line):
            table = m.group(1)
            tables.append(table)
        elif m := re.match(r"chain (\S+) \{", line):
            chain, in_input = m.group(1), False
        elif "hook input" in line and line.startswith("type "):
            in_input = True
            chains.append(f"{table} {chain}")
            filters |= "policy drop" in line
        elif in_input and re.search(r"\b(drop|reject)\b", line):
            filters = True
        elif line == "}":
            in_input = in_input and bool(chain)
    return Firewall(units, tuple(tables), tuple(chains), filters)


def parse_clock(sections: dict[str, Section]) -> Clock:
    units = need(sections, "time_units").output.split()
    names = (
        "chrony.service",
        "chronyd.service",
        "systemd-timesyncd.service",
        "ntpsec.service",
        "ntp.service",
    )
    daemons = {n: (units[i] if i < len(units) else "unknown") for i, n in enumerate(names)}
    tracking = need(sections, "chrony_tracking")
    chrony = _key_values(tracking.output, ":") if tracking.rc == 0 else None
    if chrony is not None and "Leap status" not in chrony:
        raise FactUnavailable(f"unexpected chronyc tracking output: {_first_line(tracking.output)}")
    td = sections.get("timedatectl")
    synced = None
    if td is not None and td.rc == 0 and "NTPSynchronized=" in td.output:
        synced = _key_values(td.output).get("NTPSynchronized") == "yes"
    offset = None
    ts = sections.get("timesync_status")
    if ts is not None and ts.rc == 0:
        m = re.search(r"Offset:\s*([+-]?[\d.]+)(us|ms|s)\b", ts.output)
        if m:
            offset = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return Clock(
        daemons,
        chrony,
        "" if tracking.rc == 0 else _first_line(tracking.output),
        synced,
        offset,
    )


def parse_identity(sections: dict[str, Section]) -> Identity:
    out = _ok(sections, "identity", "resolving the host's name")
    name = fqdn = ""
    forward: list[str] = []
    reverse: dict[str, tuple[str, ...]] = {}
    for line in _lines(out):
        kind, _, rest = line.partition(" ")
        if kind == "name":
            name = rest.strip()
        elif kind == "fqdn":
            fqdn = rest.strip()
        elif kind == "forward":
            forward.append(rest.strip())
            reverse.setdefault(rest.strip(), ())
        elif kind == "reverse":
            address, *names = rest.split()
            reverse[address] = reverse.get(address, ()) + tuple(names)
    if not name:
        raise FactUnavailable("the host printed no name")
    addresses = []
    for line in _lines(_ok(sections, "host_addresses", "ip -o addr")):
        cols = line.split()
        if len(cols) >= 4 and cols[2] in ("inet", "inet6"):
            addresses.append(cols[3].split("/", 1)[0])
    return Identity(name, fqdn, tuple(forward), reverse, tuple(addresses))


def parse_config(sections: dict[str, Section]) -> ConfigState:
    load = _ok(sections, "pg_load_time", "reading pg_conf_load_time()")
    settings = []
    for line in _lines(_ok(sections, "pg_file_settings", "reading pg_file_settings")):
        seqno, sourcefile, sourceline, name, applied, error = line.split("|", 5)
        settings.append(
            FileSetting(int(seqno), sourcefile, int(sourceline or 0), name, applied == "t", error)
        )
    mtimes = {}
    for line in _lines(_ok(sections, "pg_config_files", "reading the configuration files")):
        mtime, _, path = line.partition("|")
        mtimes[path] = float(mtime)
    return ConfigState(float(_first_line(load)), tuple(settings), mtimes)


def parse_tls_cert(sections: dict[str, Section]) -> str:
    """The server certificate file's PEM; "" when the server has TLS off."""
    out = _ok(sections, "tls_cert", "reading the server certificate")
    if out.strip() == "ssl off":
        return ""
    if "-----BEGIN CERTIFICATE-----" not in out:
        raise FactUnavailable(f"the server certificate file holds no PEM: {_first_line(out)}")
    return out


def parse_platform(sections: dict[str, Section]) -> PlatformFacts:
    return PlatformFacts(
        unit=_part(parse_unit, sections),
        boot=_part(parse_boot, sections),
        exe=_part(parse_exe, sections),
        package=_part(parse_package, sections),
        failed_units=_part(parse_failed_units, sections),
        journal=_part(parse_journal, sections),
        listeners=_part(parse_listeners, sections),
        firewall=_part(parse_firewall, sections),
        clock=_part(parse_clock, sections),
        identity=_part(parse_identity, sections),
        config=_part(parse_config, sections),
        tls_cert=_part(parse_tls_cert, sections),
    )
