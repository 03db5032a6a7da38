"""What OpenSSH said when a connection failed: its own lines, and the one that tells why.

ssh's last line is often not the reason. Behind a ProxyJump bastion that does not resolve, the
jump's "ssh: Could not resolve hostname bastion: Name or service not known" comes first and the
outer client's "Connection closed by UNKNOWN port 65535" last; a server that drops the connection
after a host-key warning ends with "Host key verification failed." after a banner of asterisks.
The telling line is chosen by what it says (OpenSSH's own wording, sshconnect.c and ssh.c), the
last line only when none says more. Every line is kept for the evidence.
"""

from __future__ import annotations

import re

# From most to least telling: what the operator must fix. OpenSSH's own words.
_TELLING = (
    "Could not resolve hostname",
    "Name or service not known",
    "Temporary failure in name resolution",
    "has changed and you have requested strict checking",
    "host key is known for",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "Host key verification failed",
    "Permission denied",
    "Connection refused",
    "No route to host",
    "Network is unreachable",
    "Connection timed out",
    "timed out",
    "Connection closed",
    "Connection reset",
    "kex_exchange_identification",
    "Bad configuration option",
    "command-line line",
)
# ssh and its ProxyJump child both prefix their own errors with the program's name.
_PREFIX = re.compile(r"^(?:ssh: )+")
# Lines that never tell why: the warning banners' ornaments.
_ORNAMENT = re.compile(r"^[@*\s]*$")
_MAX_LINE = 300


def lines(text: str) -> list[str]:
    """ssh's non-empty lines, each stripped and bounded (remote banners can be long)."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not _ORNAMENT.match(line):
            out.append(line[:_MAX_LINE])
    return out


def telling(text: str) -> str:
    """The line that says why, without ssh's "ssh: " prefix (the caller says it once)."""
    found = lines(text)
    if not found:
        return "no output"
    for words in _TELLING:
        for line in found:
            if words in line:
                return _PREFIX.sub("", line)
    return _PREFIX.sub("", found[-1])


def account(reason: str, attempts: list[dict[str, object]]) -> str:
    """The evidence of a connection that failed: the reason, then each attempt's time and
    every line ssh wrote for it."""
    out = [reason]
    for a in attempts:
        if a.get("ok"):
            continue
        said = a.get("ssh_said")
        out += ["", f"attempt {a.get('attempt')} ({a.get('seconds')} s): {a.get('reason')}"]
        if isinstance(said, list) and said:
            out += ["ssh said:", *(f"  {line}" for line in said)]
        else:
            out.append("ssh said nothing")
    return "\n".join(out) + "\n"
