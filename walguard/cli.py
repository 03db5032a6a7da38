"""The `walguard` command: `walguard audit` audits, `walguard verify` checks a signed run,
`walguard sign` signs a written run, `walguard waivers approve` approves a waivers file,
`walguard lab ...` manages the local lab."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from walguard.exit_codes import Exit
from walguard.lab.errors import LabError

# Exit codes: walguard.exit_codes holds the one table every subcommand keeps to.
EXIT_OK = int(Exit.OK)
EXIT_LAB_ERROR = int(Exit.LAB_FAILED)
EXIT_USAGE = int(Exit.USAGE)


SIGN_OPTIONS = {
    "key": "PEM private key that signs the run's manifest",
    "cert": "PEM certificate of that key (then any chain)",
    "chain": "PEM intermediate certificates to include",
    "pkcs12": "PKCS#12 file with key, certificate and chain",
    "password-file": "file whose first line is the key's password",
}


def _signing_args(args: argparse.Namespace) -> list[str]:
    """The signing options given to `walguard audit`, for pytest (the plugin reads them)."""
    flags = {f"sign_{n.replace('-', '_')}": f"--sign-{n}" for n in SIGN_OPTIONS}
    flags["tsa_url"] = "--tsa-url"
    return [
        f"{flag}={getattr(args, dest)}"
        for dest, flag in flags.items()
        if getattr(args, dest, None) is not None
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="walguard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="the local lab of PostgreSQL hosts (root only)")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    up = lab_sub.add_parser("up", help="build (once) and boot the lab hosts and probe zones")
    up.add_argument("--hosts", type=int, default=3, help="number of hosts db1..dbN (default 3)")
    up.add_argument(
        "--selinux",
        action="store_true",
        help="also boot selinux1, a SELinux-enforcing Debian VM under QEMU (its image is built "
        "once, a few minutes); without it a running selinux1 is stopped. --hosts 0 --selinux "
        "boots selinux1 alone",
    )
    lab_sub.add_parser("down", help="stop every host and remove all lab resources")
    lab_sub.add_parser("status", help="show hosts and zones")
    ssh = lab_sub.add_parser("ssh", help="log in to a host as the audit user (strict host keys)")
    ssh.add_argument("host")
    ssh.add_argument(
        "remote", nargs=argparse.REMAINDER, help="-- COMMAND to run instead of a shell"
    )

    scen = lab_sub.add_parser("scenario", help="break a host in one named way, or reset it")
    scen_sub = scen.add_subparsers(dest="scenario_command", required=True)
    apply = scen_sub.add_parser("apply", help="apply scenario NAME to HOST")
    apply.add_argument("host")
    apply.add_argument("name")
    reset = scen_sub.add_parser("reset", help="return each HOST to its pristine state, together")
    reset.add_argument("host", nargs="+")
    scen_sub.add_parser("list", help="list the scenarios and what each breaks")

    audit = sub.add_parser(
        "audit",
        help="audit every host of an inventory (runs `pytest checks`); "
        "other arguments go to pytest (-k, -m, -n, --fail-on ...)",
        description="Audits the hosts of an inventory with walguard's controls (and yours, "
        "--checks): `pytest checks` with walguard's plugin. Any argument not listed here goes "
        "to pytest (-k, -m, -n, ...).",
        add_help=False,
    )
    audit.add_argument(
        "-h", "--help", action=_AuditHelp, nargs=0, help="show this help message and exit"
    )
    audit.add_argument(
        "--inventory",
        default=None,
        metavar="SOURCE",
        help="Ansible inventory: a YAML or INI file (read by walguard) or, with ansible-core "
        "installed (pip install 'walguard[ansible]'), any source ansible-inventory accepts: "
        "plugin configs, scripts, directories (required, except in a checkout of walguard, "
        "whose default is the lab's inventories/lab.yml)",
    )
    audit.add_argument(
        "--vault-password-file",
        action="append",
        default=[],
        metavar="FILE",
        help="Ansible Vault password file (repeatable); the inventory is then read through "
        "ansible-inventory",
    )
    audit.add_argument(
        "--vault-id",
        action="append",
        default=[],
        metavar="ID",
        help="Ansible Vault identity such as prod@FILE (repeatable); as --vault-password-file",
    )
    signing = audit.add_argument_group(
        "signing the run (each also from the environment: WALGUARD_SIGN_KEY, ..._CERT, ..._CHAIN, "
        "..._PKCS12, ..._PASSWORD_FILE or the password in WALGUARD_SIGN_PASSWORD, "
        "WALGUARD_TSA_URL)"
    )
    for name, what in SIGN_OPTIONS.items():
        signing.add_argument(f"--sign-{name}", default=None, metavar="FILE", help=what)
    signing.add_argument(
        "--tsa-url", default=None, metavar="URL", help="RFC 3161 time-stamping authority"
    )
    _signing_commands(sub)
    examples = sub.add_parser(
        "examples",
        help="print a shipped example: the nightly audit's systemd units and env file, the cron "
        "line, the CI pipelines (without NAME: list them)",
    )
    examples.add_argument(
        "name", nargs="?", metavar="NAME", help="e.g. systemd/walguard-audit@.service"
    )
    _merge_command(sub)
    _waivers_command(sub)
    return parser


class _AuditHelp(argparse.Action):
    """`walguard audit --help`: this parser's options, then those of walguard's pytest plugin
    (--fail-on, --limit, --checks, --report-root, ...), which pytest parses."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        # Imported only here: importing the plugin before pytest does would keep pytest from
        # rewriting its asserts in a real run.
        from walguard import plugin
        group = parser.add_argument_group(
            "audit options (walguard's pytest plugin: also for `pytest checks`)"
        )
        known = set(parser._option_string_actions)
        for names, kwargs in _plugin_options(plugin.pytest_addoption):
            if known.isdisjoint(names):
                keep = ("action", "default", "metavar", "help", "choices")
                group.add_argument(*names, **{k: v for k, v in kwargs.items() if k in keep})
        parser.print_help()
        parser.exit()


def _plugin_options(
    addoption: Callable[[Any], None],
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The options a pytest plugin's pytest_addoption adds, as (names, keyword arguments)."""
    found: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    class Recorder:
        def getgroup(self, *args: Any, **kwargs: Any) -> Recorder:
            return self

        def addoption(self, *names: str, **kwargs: Any) -> None:
            found.append((names, kwargs))

    addoption(Recorder())
    return found


def _signing_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    eku_help = (
        "extended key usage (OID or name) a signing certificate may have; repeatable "
        "(env WALGUARD_SIGNER_EKU; default documentSigning, emailProtection)"
    )
    verify.add_argument("--signer-eku", action="append", default=[], metavar="OID", help=eku_help)
    sign = sub.add_parser(
        "sign",
        help="sign a run written without a signature (key and certificate as for audit)",
    )
    sign.add_argument("run_dir", metavar="RUN_DIR")
    for name, what in SIGN_OPTIONS.items():
        sign.add_argument(f"--sign-{name}", default=None, metavar="FILE", help=what)
    sign.add_argument("--tsa-url", default=None, metavar="URL")
    sign.add_argument("--signer-eku", action="append", default=[], metavar="OID", help=eku_help)


def _merge_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    for name, what in SIGN_OPTIONS.items():
        merge.add_argument(f"--sign-{name}", default=None, metavar="FILE", help=what)
    merge.add_argument("--tsa-url", default=None, metavar="URL")


def _waivers_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
        "approved, 2 refused (the reason on one line).",
    )
    approve.add_argument("file", metavar="FILE")
    for name, what in SIGN_OPTIONS.items():
        what = what.replace("signs the run's manifest", "approves the waivers")
        approve.add_argument(f"--sign-{name}", default=None, metavar="FILE", help=what)
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


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except SystemExit as exc:
        # argparse's own status for a bad command line is 2, which is pytest's and walguard's
        # "interrupted": walguard's usage error is 4 in every subcommand.
        if exc.code == 2:
            return EXIT_USAGE
        raise


def _main(argv: list[str] | None) -> int:
    args, extra = _parser().parse_known_args(argv)
    if args.command == "audit":
        vault = [f"--vault-password-file={f}" for f in args.vault_password_file]
        vault += [f"--vault-id={i}" for i in args.vault_id]
        return _audit(args.inventory, [*vault, *_signing_args(args), *extra])
    if extra:
        _parser().error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in ("verify", "sign"):
        from walguard.commands import signing as commands
        return commands.run(args)
    if args.command == "examples":
        return _examples(args.name)
    if args.command == "merge":
        from walguard.commands.merge import command

        return command(args)
    if args.command == "waivers":
        from walguard.history import waiver_approval
        return waiver_approval.command(args)
    try:
        return _dispatch(args)
    except LabError as exc:
        print(f"walguard: {exc}", file=sys.stderr)
        return EXIT_LAB_ERROR
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)


def _audit(inventory: str | None, pytest_args: list[str]) -> int:
    """`pytest checks` with the walguard plugin; pytest's exit status is the gate's."""
    import pytest

    # Paths only: importing the plugin here would keep pytest from rewriting its asserts.
    # In a checkout: checks/ and pyproject.toml at its top; installed: walguard/checks/ and
    # the packaged ini. Either way node ids read checks/test_*.py::WG-ID[host].
    from walguard.paths import LAYOUT

    argv = [
        str(LAYOUT.checks),
        "-p",
        "walguard.plugin",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(LAYOUT.root),
        "-c",
        str(LAYOUT.pytest_config),
        # The walguard summary names every failure with its reason: no tracebacks by default,
        # and no short test summary repeating each failed item (a line per host and control).
        "--tb=no",
        "-rN",
        "-q",
    ]
    if inventory:
        argv += ["--inventory", inventory]
    return int(pytest.main([*argv, *pytest_args]))


def _examples(name: str | None) -> int:
    """The examples shipped with walguard (examples/ in a checkout), so that a jump host with
    only the package installed has its nightly units: `walguard examples NAME > FILE`."""
    from walguard.paths import LAYOUT

    base = LAYOUT.examples
    shipped = sorted(
        str(p.relative_to(base))
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    if name is None:
        print("\n".join(shipped))
        return EXIT_OK
    if name not in shipped:
        print(f"walguard: no example {name!r}; there are: {', '.join(shipped)}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write((base / name).read_text())
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    from walguard.paths import LAYOUT

    if args.command == "lab" and not LAYOUT.checkout:
        raise LabError(
            "the lab needs a checkout of the walguard repository (its image recipe and "
            "scenarios are not installed with the package)"
        )
    from walguard.lab import manage

    if args.command == "lab":
        match args.lab_command:
            case "up":
                manage.up(args.hosts, selinux=args.selinux)
            case "down":
                manage.down()
            case "status":
                return manage.status()
            case "ssh":
                remote = args.remote[1:] if args.remote[:1] == ["--"] else args.remote
                return manage.ssh(args.host, remote)
            case "scenario":
                match args.scenario_command:
                    case "apply":
                        manage.scenario_apply(args.host, args.name)
                    case "reset":
                        manage.scenario_reset(args.host)
                    case "list":
                        manage.scenario_list()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
