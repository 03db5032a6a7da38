"""The examples in examples/: CI pipelines that parse, keep the run whatever happens, fail by
walguard's exit status, use only options `walguard audit` has and never print a secret; and the
cron line, run with a stand-in for walguard."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GITLAB = yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())
GITHUB = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())


def _audit_help() -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--help"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The options, not the exit codes the help ends with (they name verify's --ca too).
    options = done.stdout.split("\nexit status (", 1)[0]
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", options))


def _gitlab_commands() -> list[str]:
    job = GITLAB["walguard-gate"]
    return [*job["before_script"], *job["script"], *job.get("after_script", [])]


def _github_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = GITHUB["jobs"]["audit"]["steps"]
    return steps


def _walguard_options(command: str) -> list[str]:
    """The options of every `walguard audit` in a shell command."""
    found = []
    for part in re.split(r"\bwalguard audit\b", command)[1:]:
        words = shlex.split(part.replace("\\\n", " ").split(";")[0].split(">>")[0])
        found += [w.split("=")[0] for w in words if w.startswith("--")]
    return found


def _cron_command() -> tuple[list[str], str]:
    lines = (EXAMPLES / "cron" / "walguard-audit").read_text().splitlines()
    (job,) = [
        line for line in lines if line.strip() and not line.startswith("#") and "=" not in line[:12]
    ]
    fields = job.split(None, 6)
    return fields[:6], fields[6]


def _every_audit_command() -> dict[str, str]:
    service = (EXAMPLES / "systemd" / "walguard-audit@.service").read_text()
    (exec_start,) = re.findall(r"^ExecStart=/usr/local/bin/(walguard audit .*)$", service, re.M)
    env = (EXAMPLES / "systemd" / "prod.env").read_text()
    (extra,) = re.findall(r'^WALGUARD_AUDIT_ARGS="(.*)"$', env, re.M)
    drill = (EXAMPLES / "systemd" / "prod-drill.env").read_text()
    (weekly,) = re.findall(r'^WALGUARD_AUDIT_ARGS="(.*)"$', drill, re.M)
    return {
        "drill": f"{exec_start} {weekly}",
        "gitlab": "\n".join(_gitlab_commands()),
        "github": "\n".join(s.get("run", "") for s in _github_steps()),
        "systemd": f"{exec_start} {extra}",
        "cron": _cron_command()[1],
    }


def test_the_pipelines_and_units_use_only_options_walguard_audit_has() -> None:
    known = _audit_help()
    used = {where: set(_walguard_options(cmd)) for where, cmd in _every_audit_command().items()}
    assert "--restore-drill" in used["drill"]
    # What a CI gate needs, in both pipelines.
    for where in ("gitlab", "github"):
        assert {"--inventory", "--limit", "--fail-on", "--baseline", "--waivers"} <= used[where]
    assert {where: sorted(opts - known) for where, opts in used.items()} == {
        "gitlab": [], "github": [], "systemd": [], "cron": [], "drill": [],
    }  # fmt: skip


def test_gitlab_keeps_the_run_and_publishes_junit_whatever_the_gate_says() -> None:
    job = GITLAB["walguard-gate"]
    # Each script line is a string (an unquoted `: ` would make YAML read a mapping).
    assert all(isinstance(c, str) for c in _gitlab_commands())
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "reports/*/junit.xml"
    assert "reports/" in job["artifacts"]["paths"]
    # The job fails by walguard's exit status: nothing swallows it.
    assert "allow_failure" not in job
    audit = [c for c in job["script"] if "walguard audit" in c]
    assert len(audit) == 1 and "||" not in audit[0] and "; true" not in audit[0]


def test_github_keeps_the_run_and_publishes_junit_whatever_the_gate_says() -> None:
    steps = _github_steps()
    (audit,) = [s for s in steps if "walguard audit" in s.get("run", "")]
    assert "continue-on-error" not in audit and "if" not in audit
    assert "||" not in audit["run"]
    after = steps[steps.index(audit) + 1 :]
    uses = {s["uses"].split("@")[0]: s for s in after if "uses" in s}
    assert uses["actions/upload-artifact"]["if"] == "always()"
    assert uses["actions/upload-artifact"]["with"]["path"] == "reports/"
    assert uses["mikepenz/action-junit-report"]["if"] == "always()"
    assert uses["mikepenz/action-junit-report"]["with"]["report_paths"] == "reports/*/junit.xml"


SECRET_NAMES = ("SSH_KEY", "KNOWN_HOSTS", "SIGN_KEY", "SIGN_CERT", "SIGN_PASSWORD", "VERIFY_CA")


def test_secrets_never_reach_a_command_line_or_the_log() -> None:
    # GitHub: secrets only through env:, never interpolated into a script.
    for step in _github_steps():
        assert "secrets." not in step.get("run", ""), step.get("name")
        assert "secrets." not in str(step.get("with", {})), step.get("name")
    # No tracing, and no command that prints a secret's value.
    printing = re.compile(r"\b(echo|cat)\b[^|;>]*\$\{?(WALGUARD_)?(" + "|".join(SECRET_NAMES) + ")")
    scripts = [*_gitlab_commands(), *(s.get("run", "") for s in _github_steps())]
    for text in scripts:
        assert "set -x" not in text
        assert not printing.search(text), text
    # GitHub writes them to files only after umask 077.
    (material,) = [s for s in _github_steps() if "SIGN_KEY" in s.get("run", "")]
    assert material["run"].startswith("umask 077\n")


def test_the_cron_line_runs_the_audit_with_the_env_file(tmp_path: Path) -> None:
    timing, command = _cron_command()
    assert re.fullmatch(r"[0-9*,/-]+", " ".join(timing[:5]).replace(" ", ","))
    assert timing[5] == "walguard"
    etc, state, bin_dir = tmp_path / "etc", tmp_path / "state", tmp_path / "bin"
    for d in (etc, state, bin_dir):
        d.mkdir()
    env = (EXAMPLES / "systemd" / "prod.env").read_text().replace("/etc/walguard/", f"{etc}/")
    (etc / "prod.env").write_text(env)
    record = tmp_path / "called"
    stub = bin_dir / "walguard"
    stub.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {record}\n'
        f'env | grep -E "^WALGUARD_(SIGN|TSA|OPERATOR)" | sort > {record}.env\n'
        'echo "walguard ran"\n'
        "exit 1\n"
    )
    (bin_dir / "shuf").write_text("#!/bin/sh\necho 0\n")  # no random wait in a test
    for tool in (stub, bin_dir / "shuf"):
        tool.chmod(0o755)
    local = (
        command.replace("/usr/local/bin/walguard", str(stub))
        .replace("/etc/walguard/", f"{etc}/")
        .replace("/var/lib/walguard/", f"{state}/")
    )
    path = f"{bin_dir}:/usr/bin:/bin"
    done = subprocess.run(["/bin/sh", "-c", local], env={"PATH": path}, check=False)
    assert done.returncode == 1  # the audit's status comes through (cron ignores it)
    assert record.read_text().splitlines() == [
        "audit", "--inventory", f"{etc}/prod/inventory.yml",
        "--report-root", f"{state}/reports/prod", "--fail-on", "high", "--keep-runs", "90",
        "--metrics-file", "/var/lib/prometheus/node-exporter/walguard-prod.prom",
    ]  # fmt: skip
    assert (record.parent / "called.env").read_text().splitlines() == [
        "WALGUARD_OPERATOR=cron walguard-audit",
        f"WALGUARD_SIGN_CERT={etc}/prod.sign.pem",
        f"WALGUARD_SIGN_KEY={etc}/prod.sign.key",
        "WALGUARD_TSA_URL=http://tsa.example.internal/tsr",
    ]
    assert (state / "audit-prod.log").read_text() == "walguard ran\n"
    # A night's run still going: the next one does not start beside it.
    record.unlink()
    holder = subprocess.Popen(["flock", str(state / "audit-prod.lock"), "sleep", "30"])
    try:
        _wait_locked(state / "audit-prod.lock")
        done = subprocess.run(["/bin/sh", "-c", local], env={"PATH": path}, check=False)
        assert done.returncode == 1  # flock -n: busy
        assert not record.exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_cron_line_is_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (make deps installs it)")
    # Warnings and errors; $WALGUARD_AUDIT_ARGS is split on purpose (an info-level note).
    done = subprocess.run(
        ["shellcheck", "-s", "sh", "--severity=warning", "-"],
        input=_cron_command()[1], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout


def _wait_locked(lock: Path) -> None:
    """Until the holder has the lock (flock -n fails on it)."""
    for _ in range(200):
        if lock.exists():
            busy = subprocess.run(["flock", "-n", str(lock), "true"], check=False)
            if busy.returncode != 0:
                return
        subprocess.run(["sleep", "0.05"], check=True)
    pytest.fail("the lock holder never took the lock")


def test_the_nightly_and_the_drill_write_their_own_metrics_file_where_the_unit_may() -> None:
    """Each instance's --metrics-file is a *.prom file of its own (node_exporter refuses a series
    two files both have) in Debian's textfile directory, which the sandboxed unit may write (the
    cron line reads prod.env too: test_the_cron_line_runs_the_audit_with_the_env_file)."""
    commands = _every_audit_command()
    files = {}
    for where in ("systemd", "drill"):
        words = shlex.split(commands[where])
        files[where] = Path(words[words.index("--metrics-file") + 1])
    assert files["systemd"] != files["drill"]
    service = (EXAMPLES / "systemd" / "walguard-audit@.service").read_text()
    (writable,) = re.findall(r"^ReadWritePaths=-(/\S+)$", service, re.M)
    assert writable == "/var/lib/prometheus/node-exporter"
    for path in files.values():
        assert path.suffix == ".prom" and str(path.parent) == writable


@pytest.mark.parametrize("name", ["prod.env", "prod-drill.env"])
def test_the_env_file_is_what_systemd_and_sh_both_read(name: str) -> None:
    """Plain KEY=VALUE lines (values with spaces double-quoted): the same values for systemd's
    EnvironmentFile= and for sh's `.`."""
    text = (EXAMPLES / "systemd" / name).read_text()
    pairs = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    for line in pairs:
        assert re.fullmatch(r'[A-Z_]+=("[^"$`\\]*"|[^\s"\'$`\\]*)', line), line
    shown = subprocess.run(
        ["/bin/sh", "-c", 'set -a; . "$0"; set +a; env', str(EXAMPLES / "systemd" / name)],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=True,
    ).stdout.splitlines()  # fmt: skip
    for line in pairs:
        key, value = line.split("=", 1)
        assert f"{key}={value.strip(chr(34))}" in shown


def test_walguard_prints_its_examples() -> None:
    """On a jump host with only the package, `walguard examples NAME > FILE` gives the units."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "walguard.cli", "examples", *args],
            capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip

    listed = run().stdout.split()
    shipped = sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*") if p.is_file())
    assert listed == shipped
    assert "systemd/walguard-audit@.service" in listed
    for name in listed:
        assert run(name).stdout == (EXAMPLES / name).read_text(), name
    missing = run("systemd/nothing.service")
    assert missing.returncode == 4  # walguard.exit_codes: usage
    assert "no example 'systemd/nothing.service'" in missing.stderr


CHANGED = """\
inventories/prod/host_vars/db01.bank.example.yml
inventories/prod/host_vars/db02.bank.example/policy.yml
inventories/prod/host_vars/db03.bank.example
inventories/prod/host_vars/db04.yaml
inventories/prod/group_vars/payments.json
"""


@pytest.mark.parametrize("where", ["gitlab", "github"])
def test_the_gate_limits_to_the_hosts_a_change_touches_fqdns_whole(where: str) -> None:
    """The pipelines' own sed, run on changed paths: host names with dots (FQDNs, as the README's
    inventory has them) are kept whole, whatever form the host_vars take."""
    text = (EXAMPLES / ("gitlab-ci.yml" if where == "gitlab" else "github-actions.yml")).read_text()
    (command,) = re.findall(r"(sed -n -E (?:-e '[^']*' ?)+)", text)
    done = subprocess.run(
        ["/bin/sh", "-c", f"{command} | sort -u | paste -sd, -"],
        input=CHANGED, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == (
        "db01.bank.example,db02.bank.example,db03.bank.example,db04,payments"
    )


def test_the_example_inventory_is_written_where_asked_and_reads(tmp_path: Path) -> None:
    from walguard.cli import main
    from walguard.inventory.load import load_inventory

    into = tmp_path / "estate"
    assert main(["examples", "inventory", "--write", str(into)]) == 0
    written = sorted(str(p.relative_to(into)) for p in into.rglob("*") if p.is_file())
    shipped = sorted(
        str(p.relative_to(EXAMPLES / "inventory"))
        for p in (EXAMPLES / "inventory").rglob("*")
        if p.is_file()
    )
    assert written == shipped and "inventory.yml" in written
    assert len(load_inventory(into / "inventory.yml")) == 7  # it reads as shipped
    # Never over what is there: one line, exit 4, nothing written.
    (into / "group_vars" / "all.yml").write_text("mine\n")
    assert main(["examples", "inventory", "--write", str(into)]) == 4
    assert (into / "group_vars" / "all.yml").read_text() == "mine\n"


def test_a_directory_of_examples_is_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from walguard.cli import main

    assert main(["examples", "inventory"]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--write DIR" in err
