"""Bad input anywhere ends in one line, never a traceback: every option of `walguard audit`
(read from its --help, so an option added later is tried too), every inventory key walguard
reads and every field of a waivers file, each given values a hurried operator or a broken
script could give (empty, a path that does not exist, a negative number, an impossible date, a
word too long for a file name, YAML's odd types). An audit with such an option either runs or
stops with one usage line and exit status 4, having written nothing; an inventory or waivers
file is either read or refused with its own one-line error."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path

import pytest

from walguard.history.waivers import KEYS, Rules, WaiverError, parse
from walguard.inventory.load import load_inventory
from walguard.inventory.model import InventoryError
from walguard.policy.model import KNOWN_KEYS

REPO = Path(__file__).resolve().parents[2]
# One host at a refused port: a run that does happen ends at once (every control ERROR).
INVENTORY = (
    "all:\n  hosts:\n    db1: {ansible_host: 127.0.0.1, ansible_port: 1, walguard_ssh_retries: 0}\n"
)
LONG = "x" * 5000
BAD_ARGS = {
    "empty": "",
    # Relative: the audit runs in the test's own directory, so a run that does happen (a
    # report root is made where it is missing) writes there, not at the machine's root.
    "missing-path": "nonexistent/walguard/x",
    "negative": "-3",
    "bad-date": "2027-31-03",
    "long": LONG,
}
# What an audit may end in: the gate's statuses (README, exit codes); 4 is a usage error.
RUN_STATUSES = {0, 1, 6, 7}
USAGE = 4


def _walguard(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "walguard.cli", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


@cache
def _value_options() -> tuple[str, ...]:
    """The long options of `walguard audit --help` that take a value."""
    done = _walguard("audit", "--help")
    assert done.returncode == 0, done.stderr
    option = r"^\s+(?:-\w [A-Z.]+, )?(--[a-z][a-z0-9-]*)[ =]([A-Z{][\w.,{}-]*)"
    options = done.stdout.split("\nexit status (", 1)[0]  # not the exit codes it ends with
    return tuple(sorted({name for name, _ in re.findall(option, options, re.M)}))


def test_the_help_lists_the_options_tried() -> None:
    options = _value_options()
    assert {"--inventory", "--limit", "--forks", "--waivers", "--report-root"} <= set(options)
    assert len(options) >= 20


def _unhandled(done: subprocess.CompletedProcess[str], root: Path) -> str:
    """Why an audit's end is not one of the two allowed ("" when it is)."""
    said = done.stdout + done.stderr
    if "Traceback" in said or "INTERNALERROR" in said:
        return "a traceback"
    if done.returncode == USAGE:
        if len(done.stderr.strip().splitlines()) != 1:
            return "a usage error of more than one line"
        if root.exists() and any(root.iterdir()):
            return "a usage error that wrote a run"
        return ""
    return "" if done.returncode in RUN_STATUSES else f"exit status {done.returncode}"


@pytest.mark.parametrize("value", BAD_ARGS.values(), ids=BAD_ARGS.keys())
def test_every_option_with_a_bad_value_is_a_run_or_one_usage_line(
    tmp_path: Path, value: str
) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    unhandled = []
    for option in _value_options():
        root = tmp_path / f"runs{option}"
        given = {"--inventory": str(inventory), "--report-root": str(root), option: value}
        args = [f"{name}={v}" for name, v in given.items()]
        done = _walguard("audit", *args, "-k", "WG-ARC-001", cwd=tmp_path)
        why = _unhandled(done, root)
        if why:
            said = (done.stdout + done.stderr).strip()[-300:]
            unhandled.append(f"{option}={value[:40]!r}: {why}: {said}")
    assert not unhandled, "\n".join(unhandled)


# YAML values of every kind, as an inventory or a waivers file could hold them.
BAD_YAML = {
    "list": "[1, 2]",
    "mapping": "{a: 1}",
    "impossible-date": "2027-31-03",
    "date": "2027-03-31",
    "negative": "-1",
    "huge": "1e999",
    "nan": ".nan",
    "null": "null",
    "bool": "yes",
    "binary": "!!binary aGVsbG8=",
    "long": LONG,
    "control-chars": '"a\\tb\\nc\\x00"',
}
# The ansible_* keys walguard reads (README, Inventories), beside every walguard_* key.
ANSIBLE_KEYS = (
    "ansible_host", "ansible_user", "ansible_port", "ansible_ssh_private_key_file",
    "ansible_become", "ansible_ssh_common_args", "ansible_ssh_extra_args",
)  # fmt: skip


def _read_or_one_line(read: Callable[[Path], object], error: type[Exception], path: Path) -> str:
    """ "" when the file is read or refused with its own one-line error naming it; else why not."""
    try:
        read(path)
    except error as exc:
        if "\n" in str(exc) or str(path) not in str(exc):
            return f"not one line naming the file: {exc}"
    except Exception as exc:  # the defect this test is for
        return f"{type(exc).__name__}: {exc}"
    return ""


@pytest.mark.parametrize("value", BAD_YAML.values(), ids=BAD_YAML.keys())
def test_every_inventory_key_with_a_bad_value_is_read_or_one_line(
    tmp_path: Path, value: str
) -> None:
    unhandled = []
    for key in (*ANSIBLE_KEYS, *sorted(KNOWN_KEYS)):
        path = tmp_path / f"{key}.yml"
        path.write_text(f"all:\n  hosts:\n    db1:\n      {key}: {value}\n")
        why = _read_or_one_line(load_inventory, InventoryError, path)
        unhandled += [f"{key}: {value[:40]}: {why}"] if why else []
    assert not unhandled, "\n".join(unhandled)


WAIVER = {
    "control": "WG-ARC-004",
    "hosts": "[db1]",
    "reason": "the seed archive_command is replaced by pgBackRest in CHG-2211",
    "author": "j.smith",
    "expires": "2027-01-31",
    "ticket": "RISK-1042",
}


@pytest.mark.parametrize("value", BAD_YAML.values(), ids=BAD_YAML.keys())
def test_every_waiver_field_with_a_bad_value_is_read_or_one_line(
    tmp_path: Path, value: str
) -> None:
    assert set(WAIVER) == set(KEYS)
    rules = Rules({"WG-ARC-004": "low"}, date(2026, 12, 1))
    unhandled = []
    for key in KEYS:
        fields = {**WAIVER, key: value}
        text = "waivers:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in fields.items()) + "\n"
        path = tmp_path / "waivers.yml"
        path.write_text(text)
        why = _read_or_one_line(lambda p: parse(p, p.read_bytes(), rules), WaiverError, path)
        unhandled += [f"{key}: {value[:40]}: {why}"] if why else []
    assert not unhandled, "\n".join(unhandled)
