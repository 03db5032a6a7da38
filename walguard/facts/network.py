"""Reachability from the network zones: from each zone's probe host (an inventory host with
`walguard_zone`), over its own SSH connection, a real PostgreSQL connection attempt to every
database host, so that the TCP connection starts in the zone as a client's would.

A round trip per fifty database hosts (a few at once over each probe host's one connection)
tests them; the outcome of each attempt is classified from psql's own message. Where the policy
names a CA, the attempt verifies TLS as a client would (`sslmode=verify-full` against the name
clients use).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shlex
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from walguard.errors import FactUnavailable
from walguard.facts.sections import split_sections
from walguard.facts.transport import Cancel, Connection
from walguard.inventory.load import Target
from walguard.part import Part

ANSWERED = "answered"  # PostgreSQL answered (authentication refused the probe: expected)
ANSWERED_TLS = "answered over verified TLS"
TLS_FAILED = "TLS failed"
REFUSED = "refused"
TIMEOUT = "timed out"
UNREACHABLE = "unreachable"
UNKNOWN = "unknown"
REACHED = (ANSWERED, ANSWERED_TLS, TLS_FAILED)
BLOCKED = (REFUSED, TIMEOUT, UNREACHABLE)
PROBE_USER = "walguard_zone_probe"  # a role that need not exist: the server's answer suffices

# psql's message -> outcome; the first match wins (TLS problems before authentication).
_CLASSES = (
    (re.compile(r"certificate verify failed|does not match host name|server does not support "
                r"SSL|SSL error|SSL SYSCALL|root certificate file", re.I), TLS_FAILED),
    (re.compile(r"Connection refused", re.I), REFUSED),
    (re.compile(r"timeout expired|timed out", re.I), TIMEOUT),
    (re.compile(r"No route to host|Network is unreachable|could not translate host name", re.I),
     UNREACHABLE),
    (re.compile(r"password authentication failed|no password supplied|no pg_hba\.conf entry|"
                r"role .* does not exist|authentication failed|database .* does not exist",
                re.I), ANSWERED),
)  # fmt: skip

# POSIX sh, run on the probe host: one framed section per database host. The CA (public) comes
# in an environment variable and is written to a private temporary file for libpq.
_SCRIPT = r"""
set -u
ca=""
if [ -n "${WG_CA:-}" ]; then
  ca=$(mktemp) || exit 1
  trap 'rm -f "$ca"' EXIT
  printf '%s\n' "$WG_CA" > "$ca"
fi
while IFS='|' read -r name host hostaddr port; do
  [ -n "$name" ] || continue
  conn="host=$host port=$port dbname=postgres user=$WG_USER connect_timeout=$WG_T"
  [ -n "$hostaddr" ] && conn="$conn hostaddr=$hostaddr"
  if [ -n "$ca" ]; then conn="$conn sslmode=verify-full sslrootcert=$ca"
  else conn="$conn sslmode=prefer"; fi
  printf '%s BEGIN %s\n' "$WG_TOKEN" "$name"
  PGCONNECT_TIMEOUT=$WG_T timeout $((WG_T + 5)) psql -w -XAtq "$conn" -c 'SELECT 1' 2>&1
  rc=$?
  printf '\n%s END %s %s\n' "$WG_TOKEN" "$name" "$rc"
done <<EOF
$WG_TARGETS
EOF
"""


@dataclass(frozen=True)
class ZoneAttempt:
    zone: str
    probe: str
    outcome: str
    detail: str  # psql's message (or why the probe could not try)


def classify(rc: int, output: str) -> str:
    if rc == 0:
        return ANSWERED
    for pattern, outcome in _CLASSES:
        if pattern.search(output):
            return outcome
    return UNKNOWN


def tls_name(target: Target) -> str:
    return target.policy.tls_name or target.name


def _target_line(target: Target) -> str:
    try:
        ipaddress.ip_address(target.address)
        host, hostaddr = tls_name(target), target.address
    except ValueError:
        host, hostaddr = target.address, ""
    fields = (target.name, host, hostaddr, str(target.connect.pg_port))
    # The values become libpq keywords' values in a connection string: a space, quote, backslash
    # or '=' could add a keyword (sslmode=disable), and '|' or a newline a record of the list.
    if any(c.isspace() or c in "|'\\=" for f in fields for c in f):
        raise FactUnavailable(
            f"{target.name}: its name or address holds a space, quote, backslash, '=' or '|', "
            "which a connection string cannot carry safely"
        )
    return "|".join(fields)


def probe_ca(databases: list[Target]) -> str:
    """The CA the attempts verify against: the policy's, when every database host names the
    same one ("" otherwise: a plain attempt, and WG-IDN-003 judges each certificate)."""
    ca_files = {t.policy.tls_ca_file for t in databases}
    if len(ca_files) != 1 or not (path := next(iter(ca_files))):
        return ""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise FactUnavailable(f"cannot read the policy's CA file {path}: {exc.strerror}") from None


def probe_command(probe: Target, databases: list[Target], token: str, ca_pem: str) -> str:
    env = {
        "WG_TOKEN": token,
        "WG_USER": PROBE_USER,
        "WG_T": str(max(1, probe.connect.connect_timeout_s // 2)),
        "WG_CA": ca_pem,
        "WG_TARGETS": "\n".join(_target_line(t) for t in databases),
    }
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assignments} /bin/sh -c {shlex.quote(_SCRIPT)}"


# Database hosts per round trip, and round trips at once over a probe host's one connection
# (OpenSSH's MaxSessions is 10): a thousand hosts' attempts, one after another in one command,
# take longer than any command may run; fifty stay well within it.
CHUNK = 50
SESSIONS = 4


def run_probe(
    probe: Target, databases: list[Target], cancel: Cancel | None = None
) -> tuple[dict[str, ZoneAttempt], str]:
    """Every database host's outcome from this probe (a round trip per CHUNK hosts), and the
    raw output. A probe that cannot be reached gives every host an UNKNOWN attempt saying why;
    a round trip that fails, its hosts."""
    zone = probe.policy.zone or "?"
    token = f"@@WG-{secrets.token_hex(8)}@@"
    conn = Connection(probe, cancel)
    chunks = [databases[i : i + CHUNK] for i in range(0, len(databases), CHUNK)]
    try:
        ca_pem = probe_ca(databases)
        conn.open()
        with ThreadPoolExecutor(SESSIONS, thread_name_prefix="walguard-zone") as pool:
            replies = list(pool.map(lambda c: _attempt(conn, probe, c, token, ca_pem), chunks))
    except (FactUnavailable, OSError) as exc:
        why = f"probe host {probe.name} of {zone}: {exc}"
        return {t.name: ZoneAttempt(zone, probe.name, UNKNOWN, why) for t in databases}, why
    finally:
        conn.close()
    found = {}
    for chunk, (out, error) in zip(chunks, replies, strict=True):
        sections = split_sections(out, token)
        for target in chunk:
            sec = sections.get(target.name)
            if sec is None:
                why = f"probe host {probe.name} of {zone}: {error}" if error else ""
                found[target.name] = ZoneAttempt(zone, probe.name, UNKNOWN,
                                                 why or "no answer from the probe")  # fmt: skip
                continue
            message = " ".join(sec.output.split())
            outcome = classify(sec.rc, message)
            if outcome == ANSWERED and ca_pem:
                # verify-full: libpq checked the certificate before the server saw the login.
                outcome = ANSWERED_TLS
            found[target.name] = ZoneAttempt(zone, probe.name, outcome, message)
    return found, "".join(out for out, _ in replies)


def _attempt(
    conn: Connection, probe: Target, chunk: list[Target], token: str, ca_pem: str
) -> tuple[str, str | None]:
    """One round trip's output (and why it failed, if it did), bounded by its attempts' own
    timeouts (the script gives each WG_T + 5 seconds)."""
    each = max(1, probe.connect.connect_timeout_s // 2) + 5
    timeout = max(probe.connect.command_timeout_s, len(chunk) * each)
    try:
        reply = conn.run_raw(probe_command(probe, chunk, token, ca_pem), timeout_s=timeout)
    except FactUnavailable as exc:
        return "", str(exc)
    return reply.stdout, None


class ZoneProbes:
    """Each probe host run once per process, for every database host of the run."""

    def __init__(self, probes: list[Target], databases: list[Target]) -> None:
        self.probes = probes
        self.databases = databases
        self.results: dict[str, dict[str, ZoneAttempt]] | None = None
        self.evidence: dict[str, str] = {}
        self._lock = threading.Lock()

    def run(self, cancel: Cancel | None = None) -> None:
        """Every probe host's attempts at every database host, once per process."""
        with self._lock:
            if self.results is not None:
                return
            results: dict[str, dict[str, ZoneAttempt]] = {}
            # Each probe host is its own connection: all of them at once.
            with ThreadPoolExecutor(max(1, len(self.probes))) as pool:
                runs = list(pool.map(lambda p: run_probe(p, self.databases, cancel), self.probes))
            for probe, (found, raw) in zip(self.probes, runs, strict=True):
                self.evidence[probe.name] = raw
                for name, attempt in found.items():
                    results.setdefault(name, {})[attempt.zone] = attempt
            self.results = results

    def for_host(self, host: str) -> Part[dict[str, ZoneAttempt]]:
        """zone -> attempt, for one database host."""
        if not self.probes:
            return Part({})
        self.run()
        return Part((self.results or {}).get(host, {}))
