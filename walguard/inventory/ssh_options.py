"""The ssh options an inventory may give (``ansible_ssh_common_args``, ``ansible_ssh_extra_args``):
data for an allow-list, never options that can run a command or weaken what walguard trusts.

ssh reads its command line with getopt(3), so ``-A -X -o ProxyCommand=...`` in an inventory would
turn agent forwarding on, start a command on the controller and so on, whatever walguard's own
options say (a flag such as ``-A`` is not subject to ssh's "first value wins"). walguard accepts
only:

- ``-o KEY=VALUE`` (also ``-oKEY=VALUE`` and ``-o 'KEY VALUE'``, as ssh reads them) for the keys
  in `ALLOWED` below, keys case-insensitive as in ssh_config(5), each value one word of plain
  characters (numbers and yes/no where ssh expects them);
- ``-J JUMP`` (also ``-JJUMP``): jump hosts, ``[user@]host[:port]`` separated by commas, or none.

Anything else is an error naming the option. The operator's own ``~/.ssh/config`` is not an
inventory: walguard never passes ``-F``, and a ``Host`` block there still applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Characters of a value that ssh reads as one plain word: no whitespace, quotes, backslash or
# '#' (ssh splits -o values again, with quoting and comments), nothing a shell would act on.
_WORD = re.compile(r"[A-Za-z0-9@%~+^_.,:/=\[\]!*?-]+")
# ssh's own split of an -o line (readconf.c, strdelim): the keyword, then '=' or whitespace.
_KEY_VALUE = re.compile(r"([A-Za-z0-9]+)(?:[ \t]*=[ \t]*|[ \t]+)(.*)", re.DOTALL)
# One jump of ProxyJump / -J: [user@]host[:port], the host a name or a bracketed IPv6 address.
_JUMP = re.compile(
    r"(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@)?"
    r"(?P<host>[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def _expect(pattern: re.Pattern[str], expected: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if pattern.fullmatch(value) else f"expected {expected}, got {value!r}"

    return check


_word = _expect(_WORD, "one word of plain characters")
_number = _expect(re.compile(r"[0-9]{1,6}"), "a number")
_yes_no = _expect(re.compile(r"yes|no", re.IGNORECASE), "yes or no")
_family = _expect(re.compile(r"any|inet6?", re.IGNORECASE), "any, inet or inet6")


def jump_problem(value: str) -> str | None:
    """Why `value` is not a list of jump hosts, or None. ssh turns ProxyJump into a command
    line of its own (`ssh -W ... JUMP`, run by a shell), so a jump is checked as strictly as a
    host name: no leading '-', no shell syntax, a port from 1 to 65535."""
    if value.lower() == "none":
        return None
    for jump in value.split(","):
        match = _JUMP.fullmatch(jump)
        if match is None:
            return f"jump host {jump!r} is not [user@]host[:port]"
        port = match.group("port")
        if port is not None and not 1 <= int(port) <= 65535:
            return f"jump host {jump!r}: port {port} is not from 1 to 65535"
    return None


# Key (lowercase, as ssh matches them) -> its name as documented and the check of its value.
# Why each is safe, in ssh_config(5)'s words; none runs a command, forwards anything, or changes
# how the server's host key is checked (walguard's StrictHostKeyChecking=yes and known_hosts
# file stand, and come first on the command line, where ssh keeps the first value it gets).
ALLOWED: dict[str, tuple[str, Callable[[str], str | None]]] = {
    # "Specifies which address family to use when connecting."
    "addressfamily": ("AddressFamily", _family),
    # "Use the specified address on the local machine as the source address of the connection."
    "bindaddress": ("BindAddress", _word),
    # "Use the address of the specified interface on the local machine as the source address"
    "bindinterface": ("BindInterface", _word),
    # "Specifies a file from which the user's certificate is read." (read, never run)
    "certificatefile": ("CertificateFile", _word),
    # "Specifies the ciphers allowed and their order of preference."
    "ciphers": ("Ciphers", _word),
    # "Specifies whether to use compression."
    "compression": ("Compression", _yes_no),
    # "Specifies the number of tries (one per second) to make before exiting."
    "connectionattempts": ("ConnectionAttempts", _number),
    # "Specifies the timeout (in seconds) used when connecting to the SSH server" (walguard's
    # walguard_connect_timeout_s comes first and wins).
    "connecttimeout": ("ConnectTimeout", _number),
    # "Specifies the host key signature algorithms that the client wants to use in order of
    # preference." The key offered is still checked against known_hosts.
    "hostkeyalgorithms": ("HostKeyAlgorithms", _word),
    # "Specifies that ssh(1) should only use the configured authentication identity and
    # certificate files"
    "identitiesonly": ("IdentitiesOnly", _yes_no),
    # "Specifies a file from which the user's ... authentication identity is read." (read only)
    "identityfile": ("IdentityFile", _word),
    # "Specifies the available KEX (Key Exchange) algorithms."
    "kexalgorithms": ("KexAlgorithms", _word),
    # "Specifies the MAC (message authentication code) algorithms in order of preference."
    "macs": ("MACs", _word),
    # "Specifies one or more jump proxies as either [user@]host[:port] or an ssh URI." Checked
    # hop by hop: ssh builds a command line from them.
    "proxyjump": ("ProxyJump", jump_problem),
    # "Specifies the signature algorithms that will be used for public key authentication"
    "pubkeyacceptedalgorithms": ("PubkeyAcceptedAlgorithms", _word),
    "pubkeyacceptedkeytypes": ("PubkeyAcceptedKeyTypes", _word),  # its older name
    # "Sets the number of server alive messages ... which may be sent without ssh(1) receiving
    # any messages back from the server." (walguard's value comes first and wins)
    "serveralivecountmax": ("ServerAliveCountMax", _number),
    # "Sets a timeout interval in seconds after which if no data has been received from the
    # server, ssh(1) will send a message through the encrypted channel" (walguard's wins)
    "serveraliveinterval": ("ServerAliveInterval", _number),
    # "Specifies whether the system should send TCP keepalive messages to the other side."
    "tcpkeepalive": ("TCPKeepAlive", _yes_no),
}

# Keys people set for Ansible that walguard reads elsewhere, or decides itself: one place each,
# so that two settings cannot disagree about where walguard connects or what it trusts.
_INSTEAD = {
    "port": "set ansible_port instead",
    "user": "set ansible_user instead",
    "hostname": "set ansible_host instead",
    "userknownhostsfile": "set walguard_known_hosts_file instead",
    "stricthostkeychecking": "walguard always checks host keys strictly",
}
EXPECTED = "walguard accepts only -J JUMP and -o KEY=VALUE with KEY one of " + ", ".join(
    sorted(name for name, _ in ALLOWED.values())
)


class SshOptionError(ValueError):
    """An ssh argument from the inventory that walguard does not pass on: what and why."""


def check_ssh_args(args: list[str]) -> tuple[str, ...]:
    """`args` (already split into words) if every one is an allowed option; SshOptionError
    naming the first that is not."""
    index = 0
    while index < len(args):
        arg = args[index]
        flag, attached = arg[:2], arg[2:]
        if flag not in ("-o", "-J"):
            what = f"ssh option {arg}" if arg.startswith("-") else f"argument {arg!r}"
            raise SshOptionError(f"{what} is not allowed; {EXPECTED}")
        if attached:
            value = attached
        elif index + 1 < len(args):
            index += 1
            value = args[index]
        else:
            raise SshOptionError(f"ssh option {flag} needs a value; {EXPECTED}")
        if flag == "-J":
            if (why := jump_problem(value)) is not None:
                raise SshOptionError(f"ssh option -J {value!r}: {why}")
        else:
            _check_config_line(value)
        index += 1
    return tuple(args)


def _check_config_line(line: str) -> None:
    match = _KEY_VALUE.fullmatch(line)
    if match is None:
        raise SshOptionError(f"ssh option -o {line!r} is not KEY=VALUE; {EXPECTED}")
    key, value = match.groups()
    allowed = ALLOWED.get(key.lower())
    if allowed is None:
        instead = _INSTEAD.get(key.lower())
        hint = f" ({instead})" if instead else f"; {EXPECTED}"
        raise SshOptionError(f"ssh option -o {key} is not allowed{hint}")
    name, check = allowed
    if (problem := check(value)) is not None:
        raise SshOptionError(f"ssh option -o {name}: {problem}")
