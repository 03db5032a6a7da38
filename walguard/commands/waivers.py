"""`walguard waivers approve FILE`: the approver signs a waivers file (walguard.history.
waiver_approval does the checking and signing, imported when the command runs)."""

from __future__ import annotations

import argparse

from walguard.commands.parsing import Subparsers, add_sign_options, handled_by


def register(sub: Subparsers) -> None:
    waivers = sub.add_parser("waivers", help="approve a waivers file (accepted risks)")
    waivers_sub = waivers.add_subparsers(dest="waivers_command", required=True)
    approve = waivers_sub.add_parser(
        "approve",
        help="sign FILE as its approver: writes FILE.p7s, which `walguard audit --waivers FILE` "
        "requires",
        description="Checks FILE as the audit will (every key, control ids, the rules for "
        "critical controls) and that no waiver's author is the approver (the certificate's "
        "holder), then signs FILE's exact bytes with the approver's key: a detached CMS "
        "signature, FILE.p7s. Any later change to FILE voids the approval. Exit status: 0 "
        "approved, 4 refused (the reason on one line).",
    )
    approve.add_argument("file", metavar="FILE")
    add_sign_options(approve, what="approves the waivers")
    approve.add_argument(
        "--checks",
        action="append",
        default=[],
        metavar="DIR",
        help="a directory of your own controls that FILE waives (repeatable; as for audit)",
    )
    approve.add_argument(
        "--waiver-max-days",
        type=int,
        default=None,
        metavar="N",
        help="a critical control's waiver expires within N days (as for audit; default 90)",
    )
    approve.add_argument(
        "--approver-ca",
        default=None,
        metavar="CA.pem",
        help="also verify the new approval against this CA, as the audit will",
    )
    handled_by(approve, _approve)


def _approve(args: argparse.Namespace) -> int:
    from walguard.history import waiver_approval

    return waiver_approval.command(args)
