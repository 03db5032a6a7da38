"""`walguard lab ...`: the local lab of PostgreSQL hosts (root only). The lab itself is
walguard.lab.manage, imported when a lab command runs; a LabError is one sentence on stderr and
exit status 8."""

from __future__ import annotations

import argparse
import sys

from walguard.commands.parsing import Handler, Subparsers, handled_by
from walguard.exit_codes import Exit
from walguard.lab.errors import LabError


def register(sub: Subparsers) -> None:
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
    _handles(up, _up)
    _handles(lab_sub.add_parser("down", help="stop every host and remove all lab resources"), _down)
    _handles(lab_sub.add_parser("status", help="show hosts and zones"), _status)
    ssh = lab_sub.add_parser("ssh", help="log in to a host as the audit user (strict host keys)")
    ssh.add_argument("host")
    ssh.add_argument(
        "remote", nargs=argparse.REMAINDER, help="-- COMMAND to run instead of a shell"
    )
    _handles(ssh, _ssh)

    scen = lab_sub.add_parser("scenario", help="break a host in one named way, or reset it")
    scen_sub = scen.add_subparsers(dest="scenario_command", required=True)
    apply = scen_sub.add_parser("apply", help="apply scenario NAME to HOST")
    apply.add_argument("host")
    apply.add_argument("name")
    _handles(apply, _apply)
    reset = scen_sub.add_parser("reset", help="return each HOST to its pristine state, together")
    reset.add_argument("host", nargs="+")
    _handles(reset, _reset)
    _handles(scen_sub.add_parser("list", help="list the scenarios and what each breaks"), _list)


# Each imports walguard.lab.manage when it runs, after the checkout is checked: the lab's
# recipe and scenarios are not installed with the package.


def _up(args: argparse.Namespace) -> int:
    from walguard.lab import manage

    manage.up(args.hosts, selinux=args.selinux)
    return int(Exit.OK)


def _down(args: argparse.Namespace) -> int:
    from walguard.lab import manage

    manage.down()
    return int(Exit.OK)


def _status(args: argparse.Namespace) -> int:
    from walguard.lab import manage

    return manage.status()


def _ssh(args: argparse.Namespace) -> int:
    from walguard.lab import manage

    remote = args.remote[1:] if args.remote[:1] == ["--"] else args.remote
    return manage.ssh(args.host, remote)


def _apply(args: argparse.Namespace) -> int:
    from walguard.lab import manage

    manage.scenario_apply(args.host, args.name)
    return int(Exit.OK)


def _reset(args: argparse.Namespace) -> int:
    from walguard.lab import manage

    manage.scenario_reset(args.host)
    return int(Exit.OK)


def _list(args: argparse.Namespace) -> int:
    from walguard.lab import manage

    manage.scenario_list()
    return int(Exit.OK)


def _handles(parser: argparse.ArgumentParser, action: Handler) -> None:
    """`action` runs `parser`'s lab command, in a checkout only; a LabError is one sentence on
    stderr and exit status 8, Ctrl-C exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            _need_checkout()
            return action(args)
        except LabError as exc:
            print(f"walguard: {exc}", file=sys.stderr)
            return int(Exit.LAB_FAILED)
        except KeyboardInterrupt:
            return int(Exit.INTERRUPTED)

    handled_by(parser, run)


def _need_checkout() -> None:
    from walguard.paths import LAYOUT

    if not LAYOUT.checkout:
        raise LabError(
            "the lab needs a checkout of the walguard repository (its image recipe and "
            "scenarios are not installed with the package)"
        )
