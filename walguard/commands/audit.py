"""`walguard audit`: `pytest checks` with walguard's plugin over an inventory. Any argument this
parser does not know goes to pytest (-k, -m, -n, and the plugin's --fail-on, --limit, ...), and
pytest's exit status is the gate's."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from walguard import __version__
from walguard.commands.parsing import SIGN_OPTIONS, Subparsers, add_sign_options, handled_by


def register(sub: Subparsers) -> None:
    audit = sub.add_parser(
        "audit",
        help="audit every host of an inventory (runs `pytest checks`); "
        "other arguments go to pytest (-k, -m, -n, --fail-on ...)",
        description="Audits the hosts of an inventory with walguard's controls (and yours, "
        "--checks): `pytest checks` with walguard's plugin. Any argument not listed here goes "
        "to pytest (-k, -m, -n, ...).",
        add_help=False,
        exit_codes=True,
    )
    audit.add_argument(
        "-h", "--help", action=_AuditHelp, nargs=0, help="show this help message and exit"
    )
    audit.add_argument(
        "--version", action="version", version=f"walguard {__version__}",
        help="show walguard's version and exit",
    )  # fmt: skip
    audit.add_argument(
        "-i",
        "--inventory",
        default=None,
        metavar="SOURCE",
        help="Ansible inventory: a YAML or INI file (read by walguard) or, with ansible-core "
        "installed (pip install 'walguard[ansible]'), any source ansible-inventory accepts: "
        "plugin configs, scripts, directories (required, except in a checkout of walguard, "
        "whose default is the lab's inventories/lab.yml)",
    )
    # Ansible's own spellings, as its users type them (pytest's -l, --showlocals, stays under
    # `pytest checks`); the values go to the plugin's --limit and --forks.
    audit.add_argument(
        "-l",
        "--limit",
        default=None,
        metavar="PATTERN",
        help="audit only these hosts: Ansible's host patterns, comma-separated (host and group "
        "names, globs such as db*, ~REGEX, @FILE; !PATTERN excludes, &PATTERN intersects)",
    )
    audit.add_argument(
        "-f",
        "--forks",
        default=None,
        metavar="N",
        help="how many hosts' facts are collected at once (as Ansible's forks)",
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
    add_sign_options(signing)
    signing.add_argument(
        "--tsa-url", default=None, metavar="URL", help="RFC 3161 time-stamping authority"
    )
    handled_by(audit, run, passes_on_unknown=True)


def run(args: argparse.Namespace) -> int:
    """`pytest checks` with the walguard plugin; pytest's exit status is the gate's."""
    import pytest

    from walguard.commands.pytest_usage import UsageErrors

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
        # An audit is an item per host and control, thousands of them: pytest's per-test log
        # capture, warnings capture and unraisable/thread exception hooks wrap every phase of
        # every item and serve none (no control logs, warns or starts threads; the facts are
        # read before the first item). Together they were a third of pytest's cost per item.
        "-p",
        "no:logging",
        "-p",
        "no:warnings",
        "-p",
        "no:unraisableexception",
        "-p",
        "no:threadexception",
        # Likewise pytest's unittest and subtests plugins: no control is a TestCase or has
        # subtests, yet their report hooks ran for every report of every item.
        "-p",
        "no:unittest",
        "-p",
        "no:subtests",
        # Plugins that may be installed beside walguard and serve no audit: pytest-html's report
        # (walguard writes its own; its wrapper ran for every item) with its metadata, and
        # testinfra's (an audit takes none of its options: refused, not quietly ignored).
        "-p",
        "no:html",
        "-p",
        "no:html_fixtures",
        "-p",
        "no:metadata",
        "-p",
        "no:pytest11.testinfra",
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
    if args.inventory:
        argv += ["--inventory", args.inventory]
    # `=` keeps a value that starts with a dash (a !PATTERN is fine too) the option's own.
    if args.limit is not None:
        argv.append(f"--limit={args.limit}")
    if args.forks is not None:
        argv.append(f"--forks={args.forks}")
    vault = [f"--vault-password-file={f}" for f in args.vault_password_file]
    vault += [f"--vault-id={i}" for i in args.vault_id]
    pytest_args = [*vault, *_signing_args(args), *args.unknown]
    return int(pytest.main([*argv, *pytest_args], plugins=[UsageErrors()]))


def _signing_args(args: argparse.Namespace) -> list[str]:
    """The signing options given to `walguard audit`, for pytest (the plugin reads them)."""
    flags = {f"sign_{n.replace('-', '_')}": f"--sign-{n}" for n in SIGN_OPTIONS}
    flags["tsa_url"] = "--tsa-url"
    return [
        f"{flag}={getattr(args, dest)}"
        for dest, flag in flags.items()
        if getattr(args, dest, None) is not None
    ]


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
