"""`walguard verify` and `walguard sign`: the subcommands, above both the report writers (sign
writes the page and results.json again with the signer's name) and the signing package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walguard.exit_codes import Exit
from walguard.report import html, results_json
from walguard.signing import manifest, signer, verify
from walguard.signing.sign_run import manifest_metadata, sign_run
from walguard.signing.tsa import TimestampError

EXIT_SIGN_FAILED = int(Exit.NOT_SIGNED)  # signed, but without the timestamp asked for


def run(args: argparse.Namespace) -> int:
    if args.command == "verify":
        return _verify(args)
    return _sign(args)


def _verify(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    found = verify.verify(
        run_dir,
        Path(args.ca),
        args.tsa_ca and Path(args.tsa_ca),
        crls=tuple(Path(c) for c in args.crl),
        signer_ekus=args.signer_eku or None,
    )
    for line in found.lines:
        print(line)
    if found.code == verify.EXIT_OK:
        print(f"verified: {run_dir} is as signed")
    else:
        print(f"NOT VERIFIED: {run_dir} (exit status {found.code})", file=sys.stderr)
    return found.code


def _sign(args: argparse.Namespace) -> int:
    """Signs a run written without a signature: the page and results.json are written again
    with the signer's name, then the manifest is made and signed."""
    run_dir = Path(args.run_dir)
    if not (run_dir / "results.json").is_file():
        print(f"walguard: {run_dir} holds no results.json: not a walguard run", file=sys.stderr)
        return verify.EXIT_USAGE
    if (run_dir / manifest.SIGNATURE).exists():
        print(f"walguard: {run_dir} is already signed", file=sys.stderr)
        return verify.EXIT_USAGE
    opts = signer.SignOptions.resolve(
        key=args.sign_key, cert=args.sign_cert, chain=args.sign_chain, pkcs12=args.sign_pkcs12,
        password_file=args.sign_password_file, tsa_url=args.tsa_url,
        signer_eku=",".join(args.signer_eku) or None,
    )  # fmt: skip
    try:
        key = signer.load(opts)
    except signer.SignerError as exc:
        print(f"walguard: cannot sign: {exc}", file=sys.stderr)
        return verify.EXIT_USAGE
    doc = results_json.read(run_dir)
    doc["run"]["signing"] = key.describe(opts.tsa_url)
    results_json.write(doc, run_dir)
    html.write(doc, run_dir)
    try:
        sign_run(run_dir, key, manifest_metadata(doc), opts.tsa_url)
    except TimestampError as exc:
        print(f"walguard: signed, but without a timestamp: {exc}", file=sys.stderr)
        return EXIT_SIGN_FAILED
    except OSError as exc:
        print(f"walguard: cannot sign: {exc}", file=sys.stderr)
        return EXIT_SIGN_FAILED
    print(f"signed: {run_dir / manifest.SIGNATURE}")
    return int(Exit.OK)
