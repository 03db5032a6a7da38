"""Every exit status of every `walguard` subcommand, one meaning per code.

A CI gate, a systemd unit and an auditor's script read these numbers, so a code never means one
thing for one subcommand and another thing for the next. 2, 3, 4 and 5 are pytest's own (an
audit is a pytest run), and the other subcommands keep to them: a bad command line is 4 for
`walguard verify` as it is for `walguard audit`. The README's table is rendered from `TABLE` and a
test holds the two together; `walguard --help` and `walguard audit --help` end with the same
table as text (`help_text`).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    INTERRUPTED = 2
    INTERNAL = 3
    USAGE = 4
    NO_CONTROLS = 5
    ERRORS = 6
    NOT_SIGNED = 7
    LAB_FAILED = 8
    UNSIGNED = 9
    BAD_SIGNATURE = 10
    UNTRUSTED = 11
    EXPIRED = 12
    BAD_TIMESTAMP = 13
    CHANGED = 14
    MISSING = 15
    ADDED = 16


@dataclass(frozen=True)
class Meaning:
    code: Exit
    commands: str
    text: str


TABLE: tuple[Meaning, ...] = (
    Meaning(Exit.OK, "all", "success: for `audit` and `merge`, every selected control has a "
            "result and every one at or above `--fail-on` (default medium) passed, was "
            "remediated, was waived or is not applicable (with `--baseline`: nothing is worse "
            "than the baseline); for `verify`, signature, certificate, timestamp (if any) and "
            "every file verified; for `export`, the document was written"),
    Meaning(Exit.FAILED, "audit, merge", "at least one control at or above `--fail-on` FAILED "
            "(or its remediation failed or was refused) and no active waiver covers it (with "
            "`--baseline`: it did not fail there)"),
    Meaning(Exit.INTERRUPTED, "all", "interrupted (Ctrl-C, SIGINT): the run is incomplete"),
    Meaning(Exit.INTERNAL, "audit", "pytest's internal error: a defect in walguard or a plugin"),
    Meaning(Exit.USAGE, "all", "usage error: bad command line, inventory, policy, option, "
            "waivers file, approval, baseline, signing key, shard or input file; no host was "
            "touched and nothing was written"),
    Meaning(Exit.NO_CONTROLS, "audit, merge", "no control at or above `--fail-on` was selected "
            "(e.g. `-k` matched nothing): an audit of nothing is never green"),
    Meaning(Exit.ERRORS, "audit, merge", "nothing failed, but at least one control is ERROR "
            "(host unreachable, facts unavailable), or a selected control has no result of its "
            "own (a crashed worker, `-x`, an interrupt)"),
    Meaning(Exit.NOT_SIGNED, "audit, merge, sign", "results and report were written, but the "
            "signature or the timestamp asked for could not be made; the gate's own status is "
            "in `results.json`"),
    Meaning(Exit.LAB_FAILED, "lab", "the lab command failed (one sentence says why); "
            "`walguard lab ssh` exits with ssh's own status"),
    Meaning(Exit.UNSIGNED, "verify, export", "not a signed run: no `manifest` or `manifest.p7s`"),
    Meaning(Exit.BAD_SIGNATURE, "verify, merge, export", "bad signature: `manifest.p7s` does "
            "not sign this manifest (the manifest was changed, or another key signed)"),
    Meaning(Exit.UNTRUSTED, "verify, merge, export", "untrusted certificate: the signer's "
            "certificate does not chain to `--ca` alone, is revoked, or is not fit to sign"),
    Meaning(Exit.EXPIRED, "verify, merge, export", "expired certificate: the signer's "
            "certificate was not valid at the timestamp's time (without a timestamp: now)"),
    Meaning(Exit.BAD_TIMESTAMP, "verify, merge, export", "bad timestamp: `manifest.p7s.tsr` "
            "does not verify for `manifest.p7s` against `--tsa-ca` (default `--ca`), or it is "
            "missing though the manifest names a TSA"),
    Meaning(Exit.CHANGED, "verify, merge, export", "a file changed since signing"),
    Meaning(Exit.MISSING, "verify, merge, export", "a file listed in the manifest is missing"),
    Meaning(Exit.ADDED, "verify, merge, export", "something was added that the manifest does "
            "not list (a file, a symbolic link, a FIFO or device, an empty directory)"),
)  # fmt: skip


def markdown_table() -> str:
    """The README's exit-code table."""
    rows = ["| code | subcommands | meaning |", "| --- | --- | --- |"]
    rows += [f"| {m.code.value} | {m.commands} | {m.text} |" for m in TABLE]
    return "\n".join(rows) + "\n"


def help_text(width: int = 78) -> str:
    """The exit-code table as `walguard --help` and `walguard audit --help` end: every code, the
    subcommands it is for and its meaning, wrapped to `width` columns."""
    lines = ["exit status (one meaning in every subcommand):"]
    for m in TABLE:
        code = f"  {m.code.value:>2}  "
        lines += textwrap.wrap(
            f"{m.commands}: {m.text}".replace("`", ""),
            max(width, 40),
            initial_indent=code,
            subsequent_indent=" " * len(code),
            break_on_hyphens=False,
            break_long_words=False,
        )
    return "\n".join(lines) + "\n"
