"""ssh's own words: the telling line of a failed connection, chosen from OpenSSH's output as
captured from real ssh runs (tests/unit/data/ssh/*.txt: a closed port, names that do not
resolve, a ProxyJump bastion that does not resolve, a changed and an unknown host key, a key the
server refuses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from walguard.facts import ssh_words

DATA = Path(__file__).parent / "data" / "ssh"


@pytest.mark.parametrize(
    ("capture", "reason"),
    [
        ("refused.txt", "connect to host 127.0.0.1 port 1: Connection refused"),
        (
            "unresolved.txt",
            "Could not resolve hostname nosuchhost.invalid: Name or service not known",
        ),
        # The bastion's reason comes first; the outer client's "Connection closed by UNKNOWN
        # port 65535" last, and says nothing.
        (
            "proxyjump-unresolved.txt",
            "Could not resolve hostname nosuchbastion.invalid: Name or service not known",
        ),
        (
            "host-key-changed.txt",
            "Host key for 10.231.0.11 has changed and you have requested strict checking.",
        ),
        (
            "host-key-unknown.txt",
            "No ED25519 host key is known for 10.231.0.11 and you have requested strict checking.",
        ),
        ("permission-denied.txt", "walguard@10.231.0.11: Permission denied (publickey)."),
    ],
)
def test_the_telling_line_of_real_ssh_output(capture: str, reason: str) -> None:
    assert ssh_words.telling((DATA / capture).read_text()) == reason


def test_every_line_is_kept_but_the_banners_ornaments() -> None:
    said = ssh_words.lines((DATA / "host-key-changed.txt").read_text())
    assert said[0] == "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @"
    assert not any(set(line) <= {"@"} for line in said)
    assert said[-1] == "Host key verification failed."
    assert len(said) == 13


def test_nothing_said_and_unknown_words() -> None:
    assert ssh_words.telling("") == "no output"
    # None of the known reasons: the last line, without ssh's prefix (said once by the caller).
    assert ssh_words.telling("debug1: x\nssh: ssh: something new\n") == "something new"


def test_the_evidence_names_every_failed_attempt_and_what_ssh_said() -> None:
    proxy = ssh_words.lines((DATA / "proxyjump-unresolved.txt").read_text())
    text = ssh_words.account(
        "ssh: Could not resolve hostname nosuchbastion.invalid: Name or service not known",
        [
            {"attempt": 1, "ok": False, "seconds": 0.02, "reason": "x", "ssh_said": proxy},
            {"attempt": 2, "ok": False, "seconds": 0.01, "reason": "y", "ssh_said": []},
        ],
    )
    assert text.splitlines() == [
        "ssh: Could not resolve hostname nosuchbastion.invalid: Name or service not known",
        "",
        "attempt 1 (0.02 s): x",
        "ssh said:",
        "  ssh: Could not resolve hostname nosuchbastion.invalid: Name or service not known",
        "  kex_exchange_identification: Connection closed by remote host",
        "  Connection closed by UNKNOWN port 65535",
        "",
        "attempt 2 (0.01 s): y",
        "ssh said nothing",
    ]
