"""The walguard pytest plugin: inventory targets as parameters, one fact collection per host,
results with our vocabulary, report directory, HTML columns and the gate's exit status.

It is active only when controls from checks/ are collected, so the project's own tests run
without an inventory.
"""

from __future__ import annotations

import html
import json
import os
import secrets
from collections.abc import Generator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from walguard import __version__
from walguard.collect import collect
from walguard.controls import SEVERITIES, Control, NotApplicable
from walguard.errors import FactUnavailable
from walguard.facts import ArchiveDir, HostFacts, Postgres, ProbeResult
from walguard.inventory import InventoryError, Target, load_inventory
from walguard.policy import Policy, policy_for
from walguard.results import (
    ERROR,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    REMEDIATED,
    REMEDIATION_FAILED,
    Result,
    exit_status,
)
from walguard.selinux import SelinuxFacts

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHECKS_DIR = PROJECT_ROOT / "checks"
DEFAULT_INVENTORY = PROJECT_ROOT / "inventories" / "lab.yml"

_targets_key = pytest.StashKey[list[Target]]()
_facts_key = pytest.StashKey[dict[str, HostFacts]]()
_results_key = pytest.StashKey[dict[str, Result]]()
_hosts_key = pytest.StashKey[dict[str, dict[str, Any]]]()
_run_dir_key = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("walguard", "walguard audit")
    group.addoption(
        "--inventory",
        default=None,
        metavar="FILE",
        help="Ansible-style YAML inventory (default: inventories/lab.yml)",
    )
    group.addoption(
        "--fail-on",
        default="medium",
        choices=SEVERITIES,
        metavar="SEVERITY",
        help="exit non-zero when a control of this severity or higher fails "
        "(critical, high, medium, low; default medium)",
    )
    group.addoption(
        "--active-probe",
        action="store_true",
        help="also switch WAL on each host (pg_switch_wal) and wait until the segment is "
        "archived (control WG-ACT-006; changes server state, so opt-in)",
    )
    group.addoption(
        "--probe-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long --active-probe waits for the segment to be archived (default 60)",
    )
    group.addoption(
        "--remediate",
        choices=("plan", "apply"),
        default=None,
        help="for failed controls with a paired script: plan (show what would change) or "
        "apply (change, then re-check); default: no remediation at all",
    )
    group.addoption(
        "--allow-disruptive",
        action="store_true",
        help="let --remediate=apply run scripts that restart PostgreSQL",
    )
    group.addoption(
        "--change-ref",
        default=None,
        metavar="REF",
        help="change ticket recorded with every change remediation makes",
    )
    group.addoption(
        "--report-root",
        default=str(PROJECT_ROOT / "reports"),
        metavar="DIR",
        help="where each run writes its directory (default: reports/)",
    )


def _auditing(config: pytest.Config) -> bool:
    if config.getoption("inventory"):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == CHECKS_DIR or CHECKS_DIR in path.parents:
            return True
    return False


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "walguard_control(id): a walguard control and its id")
    for sev in SEVERITIES:
        config.addinivalue_line("markers", f"severity_{sev}: a control of {sev} severity")
    if not _auditing(config):
        return
    explicit_dist = any(
        a == "--dist" or a.startswith("--dist=") or a == "-d" for a in config.invocation_params.args
    )
    if getattr(config.option, "numprocesses", None) and not explicit_dist:
        # One worker per host's controls, so each host's facts are collected once.
        config.option.dist = "loadgroup"
    workerinput = getattr(config, "workerinput", {})
    if workerinput.get("walguard_loadgroup"):
        # Workers re-parse the original command line, which did not say --dist loadgroup.
        config.option.loadgroup = True
    if workerinput.get("walguard_run_dir"):
        config.stash[_run_dir_key] = Path(workerinput["walguard_run_dir"])
    path = Path(config.getoption("inventory") or DEFAULT_INVENTORY)
    if not path.exists() and path == DEFAULT_INVENTORY:
        raise pytest.UsageError(
            f"inventory {path} not found: bring the lab up with "
            "`walguard lab up` or pass --inventory FILE"
        )
    try:
        config.stash[_targets_key] = load_inventory(path)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_facts_key] = {}
    config.stash[_results_key] = {}
    config.stash[_hosts_key] = {}
    if _is_worker(config):
        return
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = Path(config.getoption("report_root")) / f"{stamp}-{secrets.token_hex(3)}"
    run_dir.mkdir(parents=True, exist_ok=False)
    config.stash[_run_dir_key] = run_dir
    if not getattr(config.option, "htmlpath", None):
        config.option.htmlpath = str(run_dir / "report.html")
        config.option.self_contained_html = True
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(run_dir / "junit.xml")


def pytest_metadata(metadata: dict[str, Any], config: pytest.Config) -> None:
    """Run facts at the top of the HTML report (pytest-metadata's hook)."""
    if _run_dir_key in config.stash:
        metadata["walguard"] = __version__
        metadata["Inventory"] = str(config.getoption("inventory") or DEFAULT_INVENTORY)
        metadata["Run"] = config.stash[_run_dir_key].name
        metadata["Fail on"] = config.getoption("fail_on")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(pytest-xdist) tell each worker to group by host when the controller does."""
    if node.config.getoption("dist") == "loadgroup":
        node.workerinput["walguard_loadgroup"] = True
    if _run_dir_key in node.config.stash:
        node.workerinput["walguard_run_dir"] = str(node.config.stash[_run_dir_key])


def _control_of(item: pytest.Item) -> Control | None:
    fn = getattr(item, "function", None)
    return getattr(fn, "walguard_control", None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not hasattr(metafunc.function, "walguard_control"):
        return
    if _targets_key not in metafunc.config.stash:
        raise pytest.UsageError("walguard controls need an inventory: pass --inventory FILE")
    targets = metafunc.config.stash[_targets_key]
    metafunc.parametrize(
        "target",
        [pytest.param(t, id=t.name, marks=pytest.mark.xdist_group(t.name)) for t in targets],
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("active_probe", False):
        # Controls that change server state run only when asked for.
        skipped = [i for i in items if getattr(_control_of(i), "opt_in", False)]
        if skipped:
            config.hook.pytest_deselected(items=skipped)
            items[:] = [i for i in items if i not in skipped]
    for item in items:
        meta = _control_of(item)
        if meta is not None:
            # `-k WG-ARC-001` selects a control by id.
            item.extra_keyword_matches.add(meta.id)


@pytest.fixture
def policy(target: Target) -> Policy:
    return policy_for(target.vars, target.name)


@pytest.fixture
def facts(request: pytest.FixtureRequest, target: Target, policy: Policy) -> HostFacts:
    """This host's facts, collected once per process (one SSH round trip for the OS)."""
    cache = request.config.stash[_facts_key]
    if target.name not in cache:
        cache[target.name] = collect(
            target,
            policy,
            active_probe=request.config.getoption("active_probe"),
            probe_wait_s=request.config.getoption("probe_wait"),
        )
        if _run_dir_key in request.config.stash:
            _write_evidence(request.config.stash[_run_dir_key], cache[target.name])
    found = cache[target.name]
    found.require_reachable()
    return found


def _write_evidence(run_dir: Path, found: HostFacts) -> None:
    """The raw outputs the results were read from, one file each, beside the report."""
    directory = run_dir / "evidence" / found.host
    directory.mkdir(parents=True, exist_ok=True)
    suffix = {"postgresql": ".json", "collector": ".txt"}
    for name, text in found.evidence.items():
        (directory / f"{name}{suffix.get(name, '.txt')}").write_text(text)


@pytest.fixture
def pg(facts: HostFacts) -> Postgres:
    return facts.pg.get()


@pytest.fixture
def archive(facts: HostFacts) -> ArchiveDir:
    return facts.archive.get()


@pytest.fixture
def probe(facts: HostFacts) -> ProbeResult:
    return facts.probe.get()


@pytest.fixture
def selinux(facts: HostFacts) -> SelinuxFacts:
    return facts.selinux.get()


def _message(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(excinfo.value)
    if isinstance(excinfo.value, AssertionError):
        # pytest's assertion rewriting appends the failing expression; the message is ours.
        text = text.split("\nassert ")[0]
    text = " ".join(text.split())
    return text or type(excinfo.value).__name__


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    meta = _control_of(item)
    if meta is None or report.when == "teardown":
        return report
    target = item.callspec.params["target"]  # type: ignore[attr-defined]
    result: str | None = None
    message = ""
    if call.excinfo is None:
        if report.when == "call":
            result = PASS
    elif isinstance(call.excinfo.value, NotApplicable):
        result, message = NOT_APPLICABLE, _message(call.excinfo)
    elif isinstance(call.excinfo.value, FactUnavailable):
        result, message = ERROR, _message(call.excinfo)
    elif isinstance(call.excinfo.value, AssertionError) and report.when == "call":
        result, message = FAIL, _message(call.excinfo)
    else:
        result = ERROR
        message = (
            f"internal error in the control: {type(call.excinfo.value).__name__}: "
            f"{_message(call.excinfo)}"
        )
    if result is None:
        return report
    if result == NOT_APPLICABLE:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), 0, f"NOT APPLICABLE: {message}")
    res = Result(target.name, meta.id, meta.title, meta.severity, result, message, item.nodeid)
    host = item.config.stash[_facts_key].get(target.name)
    host_info = {
        "address": target.address,
        "reachable": bool(host and host.reachable),
        "round_trips": host.round_trips if host else 0,
        "error": host.error if host else message,
        # Which process collected the facts: more than one per host means repeated collection.
        "collected_by": os.environ.get("PYTEST_XDIST_WORKER", "main"),
    }
    report.user_properties.append(("walguard_result", json.dumps(res.as_dict())))
    report.user_properties.append(("walguard_host", json.dumps(host_info)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    props = dict(report.user_properties)
    if "walguard_result" not in props:
        return
    res = Result(**json.loads(str(props["walguard_result"])))
    config = _session_config
    if config is None:
        return
    config.stash[_results_key][res.nodeid] = res
    info = json.loads(str(props["walguard_host"]))
    seen = config.stash[_hosts_key].get(res.host, {}).get("fact_collections", [])
    collector = info.pop("collected_by")
    info["fact_collections"] = sorted({*seen, collector})
    config.stash[_hosts_key][res.host] = info


_session_config: pytest.Config | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _session_config
    _session_config = session.config


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    outcome = yield
    config = session.config
    mode = config.getoption("remediate", None) if _run_dir_key in config.stash else None
    if mode and not _is_worker(config):
        _remediate(config, mode)
    return outcome


def _remediate(config: pytest.Config, mode: str) -> None:
    from walguard.remediate import remediate_host

    results = config.stash[_results_key]
    hosts = config.stash[_hosts_key]
    tr = config.pluginmanager.get_plugin("terminalreporter")
    for target in config.stash[_targets_key]:
        failing = sorted(
            {r.control for r in results.values() if r.host == target.name and r.result == FAIL}
        )
        if not failing:
            continue
        if tr is not None:
            tr.write_line(f"walguard: remediation ({mode}) on {target.name}: {', '.join(failing)}")
        outcomes = remediate_host(
            target,
            policy_for(target.vars, target.name),
            failing,
            mode=mode,
            allow_disruptive=config.getoption("allow_disruptive"),
            change_ref=config.getoption("change_ref"),
            reachable=bool(hosts.get(target.name, {}).get("reachable")),
        )
        by_control = {o.control: o for o in outcomes}
        for nodeid, res in list(results.items()):
            o = by_control.get(res.control) if res.host == target.name else None
            if o is None:
                continue
            new_result = res.result
            if o.status in (REMEDIATED, REMEDIATION_FAILED):
                new_result = o.status
            results[nodeid] = replace(res, result=new_result, remediation=o.as_dict())


def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    config = session.config
    if _run_dir_key not in config.stash:
        return
    rows = [r for r in config.stash[_results_key].values() if r.remediation]
    if not rows:
        return
    cells = "".join(
        f"<tr><td>{html.escape(r.host)}</td><td>{html.escape(r.control)}</td>"
        f"<td>{html.escape(r.remediation['script'])}</td><td>{html.escape(r.remediation['mode'])}</td>"
        f"<td>{html.escape(r.result)} / {html.escape(r.remediation['status'])}</td>"
        f"<td><pre>{html.escape(r.remediation['output'])}</pre></td></tr>"
        for r in sorted(rows, key=lambda r: (r.host, r.control))
        if r.remediation
    )
    postfix.append(
        "<h2>Remediation</h2><table><tr><th>Host</th><th>Control</th><th>Script</th>"
        f"<th>Mode</th><th>Result / status</th><th>Output</th></tr>{cells}</table>"
    )


def pytest_html_results_table_header(cells: list[str]) -> None:
    cells.insert(1, "<th>Host</th>")
    cells.insert(2, "<th>Control</th>")
    cells.insert(3, "<th>Severity</th>")
    cells.insert(4, "<th>Result</th>")
    cells.insert(5, "<th>Message</th>")


def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    props = dict(report.user_properties)
    res = json.loads(str(props["walguard_result"])) if "walguard_result" in props else {}
    for i, key in enumerate(("host", "control", "severity", "result", "message"), start=1):
        cells.insert(i, f"<td>{html.escape(str(res.get(key, '')))}</td>")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _is_worker(config) or _run_dir_key not in config.stash:
        return
    results = sorted(config.stash[_results_key].values(), key=lambda r: (r.host, r.control))
    run_dir = config.stash[_run_dir_key]
    hosts: dict[str, dict[str, Any]] = {}
    for target in config.stash[_targets_key]:
        info = dict(config.stash[_hosts_key].get(target.name, {"address": target.address}))
        info["controls"] = [r.as_dict() for r in results if r.host == target.name]
        hosts[target.name] = info
    fail_on = config.getoption("fail_on")
    code = exit_status(results, fail_on)
    doc = {
        "walguard": __version__,
        "run": run_dir.name,
        "finished": datetime.now(UTC).isoformat(),
        "fail_on": fail_on,
        "exit_status": code,
        "hosts": hosts,
    }
    (run_dir / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    if session.exitstatus in (0, 1):  # keep pytest's own usage/interrupt/internal codes
        session.exitstatus = code


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _is_worker(config) or _run_dir_key not in config.stash:
        return
    results = list(config.stash[_results_key].values())
    tr = terminalreporter
    tr.section("walguard")
    for name, info in sorted(config.stash[_hosts_key].items()):
        mine = [r for r in results if r.host == name]
        counts = {
            k: sum(1 for r in mine if r.result == k)
            for k in (PASS, FAIL, ERROR, NOT_APPLICABLE, REMEDIATED, REMEDIATION_FAILED)
        }
        state = "reachable" if info.get("reachable") else f"UNREACHABLE ({info.get('error')})"
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        tr.write_line(f"{name}: {state}, {info.get('round_trips')} round trips; {summary}")
    for r in sorted(results, key=lambda r: (r.host, r.control)):
        if r.result in (FAIL, ERROR, REMEDIATED, REMEDIATION_FAILED):
            tr.write_line(f"{r.result:5} {r.host} {r.control} ({r.severity}): {r.message}")
        if r.remediation:
            rem = r.remediation
            detail = " | ".join(rem["output"].splitlines()) or "-"
            tr.write_line(
                f"      remediation {rem['script']} ({rem['mode']}): {rem['status']}: {detail}"
            )
    gate = exit_status(results, config.getoption("fail_on"))
    tr.write_line(f"gate (--fail-on {config.getoption('fail_on')}): exit status {gate}")
    tr.write_line(f"report: {config.stash[_run_dir_key]}")
