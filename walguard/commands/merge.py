"""`walguard merge`: the subcommand, its options and what it prints. The merging itself is
walguard.merge.merged_run, imported when the command runs (every `walguard` command line
builds this parser)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walguard.commands.parsing import Subparsers, add_sign_options, handled_by


def register(sub: Subparsers) -> None:
    merge = sub.add_parser(
        "merge",
        help="combine the run directories of one audit's shards into one run directory",
        description="Combines RUN_DIRs (shards of one audit: the inventory split across CI jobs "
        "or controllers) into one run directory: results.json, junit.xml, report.html, evidence, "
        "and with signing options one signed manifest listing the shards. Shards that overlap in "
        "hosts or differ in selected controls, --fail-on, remediation mode or walguard are "
        "refused, as is a shard holding a symbolic link, FIFO or device. With --ca every "
        "shard's signature is verified first; without it, --no-verify must say to merge them "
        "unverified, and the merged run says so. Exit status: the merged gate's (as audit's), "
        "4 when the shards cannot be merged, 7 signed without the timestamp asked for, or "
        "walguard verify's status for a shard that does not verify.",
    )
    merge.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    merge.add_argument(
        "--out", default=None, metavar="DIR", help="the merged run (default: beside the first)"
    )
    merge.add_argument(
        "--ca", default=None, metavar="CA.pem", help="verify each shard's signature against it"
    )
    merge.add_argument(
        "--tsa-ca", default=None, metavar="CA.pem", help="CA of the TSA (default: --ca)"
    )
    merge.add_argument(
        "--no-verify",
        action="store_true",
        help="merge shards without verifying their signatures (the merged run says so)",
    )
    add_sign_options(merge)
    merge.add_argument("--tsa-url", default=None, metavar="URL")
    handled_by(merge, command)


def command(args: argparse.Namespace) -> int:
    """`walguard merge`: prints what it merged and the merged gate; exits with the merged run's
    exit status (README: Exit codes), 4 when the shards cannot be merged (or neither --ca nor
    --no-verify was given), or `walguard verify`'s status when a shard does not verify."""
    from walguard.merge.merged_run import EXIT_NOT_SIGNED, EXIT_USAGE, MergeError, merge
    from walguard.signing import signer as signing

    opts = signing.SignOptions.resolve(
        key=args.sign_key, cert=args.sign_cert, chain=args.sign_chain, pkcs12=args.sign_pkcs12,
        password_file=args.sign_password_file, tsa_url=args.tsa_url,
    )  # fmt: skip
    key: signing.Signer | None = None
    try:
        if opts.wanted():
            key = signing.load(opts)
        elif args.tsa_url:
            raise MergeError("--tsa-url timestamps a signature: give a signing key too")
        out, doc, unsigned = merge(
            [Path(d) for d in args.run_dirs],
            Path(args.out) if args.out else None,
            ca=Path(args.ca) if args.ca else None,
            tsa_ca=Path(args.tsa_ca) if args.tsa_ca else None,
            no_verify=args.no_verify,
            signer=key,
            tsa_url=opts.tsa_url,
        )
    except signing.SignerError as exc:
        print(f"walguard: cannot sign the merged run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MergeError as exc:
        print(f"walguard: {exc}", file=sys.stderr)
        return exc.code
    for shard in doc["run"]["shards"]:
        verified = ", signature verified" if shard["verified"] else ", NOT verified (--no-verify)"
        print(f"shard {shard['id']}: {shard['hosts']} hosts, exit status {shard['exit_status']}"
              f"{verified}")  # fmt: skip
    if not doc["run"]["merged"]["shards_verified"]:
        print(f"walguard: warning: {doc['run']['merged']['why']}", file=sys.stderr)
    counts = ", ".join(f"{v} {k}" for k, v in sorted(doc["summary"]["by_result"].items()))
    print(f"merged {len(doc['hosts'])} hosts: {counts}")
    print(f"gate (--fail-on {doc['fail_on']}): exit status {doc['exit_status']}")
    print(f"report: {out}")
    if unsigned is not None:
        print(f"walguard: {unsigned}", file=sys.stderr)
        return EXIT_NOT_SIGNED
    return int(doc["exit_status"])
