"""One usage error for every subcommand: exit status 4 and one line on stderr, naming the
subcommand, for an unknown option, a missing or unknown subcommand and a bad value; --help is
exit status 0 everywhere. The subcommands are found in the parser itself, so a new one is
covered without being listed here.

A subcommand that passes unknown arguments on (audit, to pytest) runs as `python -m walguard.cli`
in its own process; the others run in this one, through the same `main`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from walguard.cli import build_parser, main
from walguard.exit_codes import Exit

REPO = Path(__file__).resolve().parents[2]
UNKNOWN = "--no-such-option"


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def walguard(capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    def run(*args: str) -> Done:
        if _passes_on_unknown(args):
            done = subprocess.run(
                [sys.executable, "-m", "walguard.cli", *args],
                capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
            )  # fmt: skip
            return Done(done.returncode, done.stdout, done.stderr)
        try:
            code = main(list(args))
        except SystemExit as exc:  # --help
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Done(code, out, err)

    return run


def _passes_on_unknown(args: tuple[str, ...]) -> bool:
    """Whether the (sub)command `args` name hands unknown arguments on (to pytest)."""
    parser: argparse.ArgumentParser = build_parser()
    for word in args:
        if word not in _subcommands(parser):
            break
        parser = _subcommands(parser)[word]
    return bool(parser.get_default("passes_on_unknown"))


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser under `parser` (itself first), with the words that reach it."""
    found = [(path, parser)]
    for name, sub in _subcommands(parser).items():
        found += _parsers(sub, (*path, name))
    return found


PARSERS = _parsers(build_parser())
LEAVES = [(p, parser) for p, parser in PARSERS if not _subcommands(parser)]
GROUPS = [p for p, parser in PARSERS if _subcommands(parser)]


def _ids(path: tuple[str, ...]) -> str:
    return " ".join(path) or "walguard"


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """Just enough arguments for `parser` to want nothing more: its required options and
    positionals, each given the value "x" (the command never runs: the unknown option stops
    it first)."""
    args: list[str] = []
    for action in parser._actions:
        if action.option_strings:
            args += [action.option_strings[0], "x"] if action.required else []
        elif action.nargs not in ("?", "*", argparse.REMAINDER):
            args += ["x"] * (action.nargs if isinstance(action.nargs, int) else 1)
    return args


def _one_usage_line(done: Done, path: tuple[str, ...]) -> str:
    assert done.returncode == Exit.USAGE, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{' '.join(('walguard', *path))}: error: "), lines[0]
    return lines[0]


def test_the_parser_walk_finds_every_subcommand() -> None:
    # A floor, not the list: a new subcommand only adds to it.
    leaves = {" ".join(p) for p, _ in LEAVES}
    assert {"audit", "verify", "sign", "merge", "examples", "waivers approve"} <= leaves
    assert {"lab up", "lab ssh", "lab scenario apply", "lab scenario list"} <= leaves
    assert {(), ("lab",), ("lab", "scenario"), ("waivers",)} <= set(GROUPS)


@pytest.mark.parametrize("path", [p for p, _ in PARSERS], ids=_ids)
def test_help_exits_0(walguard: Callable[..., Done], path: tuple[str, ...]) -> None:
    done = walguard(*path, "--help")
    assert done.returncode == Exit.OK, done.stdout + done.stderr
    assert done.stdout.startswith(f"usage: {' '.join(('walguard', *path))} ")
    assert done.stderr == ""


@pytest.mark.parametrize(("path", "parser"), LEAVES, ids=[_ids(p) for p, _ in LEAVES])
def test_an_unknown_option_is_one_usage_line(
    walguard: Callable[..., Done], path: tuple[str, ...], parser: argparse.ArgumentParser
) -> None:
    done = walguard(*path, UNKNOWN, *_required(parser))
    line = _one_usage_line(done, path)
    assert f"unrecognized arguments: {UNKNOWN}" in line


@pytest.mark.parametrize("path", GROUPS, ids=_ids)
def test_a_missing_or_unknown_subcommand_is_one_usage_line(
    walguard: Callable[..., Done], path: tuple[str, ...]
) -> None:
    assert "required" in _one_usage_line(walguard(*path), path)
    assert "invalid choice" in _one_usage_line(walguard(*path, "no-such-command"), path)
    _one_usage_line(walguard(*path, UNKNOWN), path)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["lab", "up", "--hosts", "many"], "invalid int value: 'many'"),
        (["waivers", "approve", "--waiver-max-days", "many", "f"], "invalid int value"),
        (["audit", "--fail-on", "bogus"], "invalid choice: 'bogus'"),
        # Found after parsing, by the plugin, before any host is touched.
        (["audit", "--inventory", "/nonexistent/inventory.yml"], "inventory file not found"),
    ],
)
def test_a_bad_value_is_one_usage_line(
    walguard: Callable[..., Done], argv: list[str], said: str
) -> None:
    path = tuple(argv[:2]) if argv[0] in ("lab", "waivers") else (argv[0],)
    assert said in _one_usage_line(walguard(*argv), path)


def test_a_limit_matching_no_host_is_one_usage_line(
    walguard: Callable[..., Done], tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[databases]\ndb1 ansible_host=192.0.2.1\n")
    root = tmp_path / "reports"
    done = walguard(
        "audit", "--inventory", str(inventory), "--limit", "db9", "--report-root", str(root)
    )
    assert "db9 matches no host or group" in _one_usage_line(done, ("audit",))
    assert not root.exists()  # found before any host was touched or anything written


@pytest.mark.parametrize("batch", ["0", "-2"])
def test_a_restart_batch_below_one_is_one_usage_line(
    walguard: Callable[..., Done], tmp_path: Path, batch: str
) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[databases]\ndb1 ansible_host=192.0.2.1\n")
    root = tmp_path / "reports"
    done = walguard(
        "audit", "--inventory", str(inventory), "--report-root", str(root),
        "--remediate=apply", "--allow-restart", f"--restart-batch={batch}",
    )  # fmt: skip
    assert f"--restart-batch must be at least 1, not {batch}" in _one_usage_line(done, ("audit",))
    assert not root.exists()  # found before any host was touched or anything written


def test_a_drill_on_a_restore_host_the_inventory_lacks_is_one_usage_line(
    walguard: Callable[..., Done], tmp_path: Path
) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[databases]\ndb1 ansible_host=192.0.2.1 walguard_restore_host=db9\n")
    root = tmp_path / "reports"
    drill = walguard(
        "audit", "--inventory", str(inventory), "--report-root", str(root), "--restore-drill",
    )  # fmt: skip
    line = _one_usage_line(drill, ("audit",))
    assert "host db1: walguard_restore_host: no host 'db9' in the inventory" in line
    assert not root.exists()  # found before any host was touched or anything written
    # Without a drill the restore host is not looked for: the audit reads the inventory and
    # goes on to the host (no usage error, whatever the unreachable host then gives).
    plain = walguard("audit", "--inventory", str(inventory), "--report-root", str(root),
                     "--co")  # fmt: skip
    assert plain.returncode == 0, plain


@pytest.mark.parametrize(
    ("window", "said"),
    [
        ("Sat 01:00-05:00 Berlin", "unknown time zone 'Berlin'"),
        ("Sat 1:00-5:00 UTC", "time '1:00' is not HH:MM"),
        ("", "0 parts, not 3"),
    ],
)
def test_a_bad_change_window_is_one_usage_line(
    walguard: Callable[..., Done], tmp_path: Path, window: str, said: str
) -> None:
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[databases]\ndb1 ansible_host=192.0.2.1\n")
    root = tmp_path / "reports"
    done = walguard(
        "audit", "--inventory", str(inventory), "--report-root", str(root),
        "--remediate=apply", "--allow-restart", "--change-ref=CHG-1",
        "--change-window", "Sat 01:00-05:00 UTC", f"--change-window={window}",
    )  # fmt: skip
    line = _one_usage_line(done, ("audit",))
    assert f"--change-window: change window {window!r}: {said}" in line
    assert not root.exists()  # found before any host was touched or anything written


def test_allow_disruptive_is_allow_restart_by_its_older_name() -> None:
    from walguard.commands.audit import _plugin_options
    from walguard.plugin import pytest_addoption

    options = {names: kwargs for names, kwargs in _plugin_options(pytest_addoption)}
    permission = options[("--allow-restart", "--allow-disruptive")]
    assert permission["dest"] == "allow_restart" and permission["action"] == "store_true"
    assert "--allow-disruptive is its older spelling" in permission["help"]


@pytest.mark.parametrize(
    "option",
    [
        "--log-level=INFO",
        "--log-cli-level=DEBUG",
        # testinfra's and pytest-html's, when they are installed beside walguard: not an audit's.
        "--hosts=ssh://db1",
        "--ansible-inventory=inventory.ini",
        "--html=report.html",
    ],
)
def test_pytest_log_options_are_not_an_audits(
    walguard: Callable[..., Done], tmp_path: Path, option: str
) -> None:
    # `walguard audit` runs without pytest's logging plugin (it cost every item): its options
    # are a one-line usage error, with nothing written, not a traceback or an ignored option.
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("[databases]\ndb1 ansible_host=192.0.2.1\n")
    root = tmp_path / "reports"
    done = walguard("audit", "--inventory", str(inventory), "--report-root", str(root), option)
    assert "unrecognized arguments" in _one_usage_line(done, ("audit",))
    assert not root.exists()
