"""`walguard verify` and `walguard sign`: the subcommands, above both the report writers (sign
writes the page and results.json again with the signer's name) and the signing package, which
each handler imports when it runs (every `walguard` command line builds these parsers)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from walguard.commands.parsing import Subparsers, add_sign_options, handled_by
from walguard.exit_codes import Exit

EXIT_SIGN_FAILED = int(Exit.NOT_SIGNED)  # signed, but without the timestamp asked for
EKU_HELP = (
    "extended key usage (OID or name) a signing certificate may have; repeatable "
    "(env WALGUARD_SIGNER_EKU; default documentSigning, emailProtection)"
)


def register(sub: Subparsers) -> None:
    verify = sub.add_parser(
        "verify",
        help="check a signed run: signature, certificate chain, timestamp, every file",
        description="Checks RUN_DIR's manifest.p7s and its certificate chain against --ca "
        "(with the openssl tool), its timestamp if any, then every file against the manifest. "
        "Exit status: 0 verified, 4 usage, 9 not signed, 10 bad signature, 11 untrusted "
        "certificate, 12 expired certificate, 13 bad timestamp, 14 file changed, "
        "15 file missing, 16 file added.",
    )
    verify.add_argument("run_dir", metavar="RUN_DIR")
    verify.add_argument(
        "--ca", required=True, metavar="CA.pem", help="the only CA certificate(s) trusted"
    )
    verify.add_argument(
        "--tsa-ca", default=None, metavar="CA.pem", help="CA of the TSA (default: --ca)"
    )
    verify.add_argument(
        "--crl", action="append", default=[], metavar="CRL.pem",
        help="PEM CRL of the signer's CA: a revoked signer does not verify (repeatable)",
    )  # fmt: skip
    verify.add_argument("--signer-eku", action="append", default=[], metavar="OID", help=EKU_HELP)
    handled_by(verify, _verify)
    sign = sub.add_parser(
        "sign",
        help="sign a run written without a signature (key and certificate as for audit)",
    )
    sign.add_argument("run_dir", metavar="RUN_DIR")
    add_sign_options(sign)
    sign.add_argument("--tsa-url", default=None, metavar="URL")
    sign.add_argument("--signer-eku", action="append", default=[], metavar="OID", help=EKU_HELP)
    handled_by(sign, _sign)


def _verify(args: argparse.Namespace) -> int:
    from walguard.signing import verify

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
    from walguard.report import html, results_json
    from walguard.signing import manifest, signer, verify
    from walguard.signing.sign_run import manifest_metadata, sign_run
    from walguard.signing.tsa import TimestampError

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
