"""The walguard pytest plugin: hooks only. Controls become items (walguard.audit.items), the run's
state
lives in one AuditRun (walguard.audit.run) held by one plugin object, verdicts come from the one
judge
(walguard.judge), and the writers of results.json, report.html and the terminal summary live in
walguard.report; signing lives in walguard.signing.

It is active only when controls from checks/ are collected, so the project's own tests run
without an inventory.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Generator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from walguard import paths
from walguard.audit import extra_checks, prefetch
from walguard.audit.items import ControlItem, FactsCache
from walguard.audit.run import AuditRun, Pair, pair_of_nodeid
from walguard.controls import SEVERITIES, Control, ControlsError, load_all
from walguard.facts.fanout import DEFAULT_FORKS, MAX_FORKS
from walguard.facts.network import ZoneProbes
from walguard.history import previous as history_module
from walguard.history.run_inputs import RunHistory
from walguard.history.run_inputs import add_options as add_history_options
from walguard.inventory.ansible import targets_from_listing
from walguard.inventory.limit import LimitError, select
from walguard.inventory.load import Inventory, InventoryError, Target, VaultOptions, read_inventory
from walguard.judge import unknown_parameters
from walguard.report import permissions, terminal, writer
from walguard.report.runinfo import RunInfo
from walguard.results import ERROR, WAIVED, Result

# In a checkout or in the installed package (walguard.paths); the lab's inventory is the
# default only in a checkout.
CHECKS_DIR = paths.CHECKS_DIR
DEFAULT_INVENTORY = paths.default_inventory()
PLUGIN_NAME = "walguard-audit"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("walguard", "walguard audit")
    group.addoption(
        "--inventory",
        default=None,
        metavar="SOURCE",
        help="Ansible inventory: a YAML or INI file (read by walguard) or, with ansible-core "
        "installed, any source ansible-inventory accepts (required, except in a checkout of "
        "walguard, whose default is the lab's inventories/lab.yml)",
    )
    group.addoption(
        "--limit",
        default=None,
        metavar="PATTERN",
        help="audit only these hosts: Ansible's host patterns, comma-separated (host and group "
        "names, globs such as db*, ~REGEX, @FILE; !PATTERN excludes, &PATTERN intersects); "
        "a pattern that matches no host is a usage error",
    )
    group.addoption(
        "--checks",
        action="append",
        default=[],
        metavar="DIR",
        help="also audit the controls in DIR (test_*.py files using walguard's @control; "
        "repeatable; the inventory's walguard_checks_dirs adds more); their remediation "
        "scripts are in the remediation/ directory beside DIR",
    )
    group.addoption(
        "--vault-password-file",
        action="append",
        default=[],
        metavar="FILE",
        help="Ansible Vault password file (repeatable); the inventory is then read through "
        "ansible-inventory (pip install 'walguard[ansible]')",
    )
    group.addoption(
        "--vault-id",
        action="append",
        default=[],
        metavar="ID",
        help="Ansible Vault identity such as prod@FILE (repeatable); as --vault-password-file",
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
        default=None,
        metavar="DIR",
        help="where each run writes its directory (default: $WALGUARD_REPORT_ROOT, else "
        "reports/ in a checkout of walguard, else reports/ under the current directory)",
    )
    group.addoption(
        "--forks",
        default=None,
        metavar="N",
        help="how many hosts' facts are collected at once, by threads of this process "
        f"(default {DEFAULT_FORKS}, or WALGUARD_FORKS; 1-{MAX_FORKS}: keep it within a bastion's "
        "or the hosts' sshd MaxStartups)",
    )
    writer.add_options(group)
    add_history_options(group)


def _auditing(config: pytest.Config) -> bool:
    if config.getoption("inventory") or config.getoption("checks"):
        return True
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == CHECKS_DIR or CHECKS_DIR in path.parents:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "walguard_control(id): a walguard control and its id")
    for sev in SEVERITIES:
        config.addinivalue_line("markers", f"severity_{sev}: a control of {sev} severity")
    if not _auditing(config):
        return
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    explicit_dist = any(
        a == "--dist" or a.startswith("--dist=") or a == "-d" for a in config.invocation_params.args
    )
    if getattr(config.option, "numprocesses", None) and not explicit_dist:
        # One worker per host's controls, so each host's facts are collected once.
        config.option.dist = "loadgroup"
    if workerinput.get("walguard_loadgroup"):
        # Workers re-parse the original command line, which did not say --dist loadgroup.
        config.option.loadgroup = True
    if not config.getoption("inventory") and DEFAULT_INVENTORY is None:
        raise pytest.UsageError(
            "no inventory: pass --inventory SOURCE (an Ansible inventory); only a checkout of "
            "walguard has a default, the lab's inventories/lab.yml"
        )
    source = str(config.getoption("inventory") or DEFAULT_INVENTORY)
    if source == str(DEFAULT_INVENTORY) and not Path(source).exists():
        raise pytest.UsageError(
            f"inventory {source} not found: bring the lab up with "
            "`walguard lab up` or pass --inventory SOURCE"
        )
    vault = VaultOptions(
        tuple(config.getoption("vault_password_file")), tuple(config.getoption("vault_id"))
    )
    try:
        if workerinput.get("walguard_inventory_listing"):
            # What ansible-inventory answered the controller: a dynamic inventory runs once.
            listing = workerinput["walguard_inventory_listing"]
            inventory = Inventory(targets_from_listing(listing, source), listing)
        else:
            inventory = read_inventory(source, vault)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None
    # Probe hosts (walguard_zone) are vantage points, not database hosts: they are not audited.
    databases = [t for t in inventory.targets if t.policy.zone is None]
    probes = [t for t in inventory.targets if t.policy.zone is not None]
    # The user's controls and --limit: usage errors too, before any host is touched (and
    # before waivers are read, which may name the user's controls).
    try:
        extra_checks.prepare(config, databases, source)
        if config.getoption("limit"):
            databases = select(databases, config.getoption("limit"))
    except (ControlsError, LimitError) as exc:
        raise pytest.UsageError(str(exc)) from None
    # Before any host is touched or any directory made: a signing key that cannot be used
    # stops the run here, as a usage error.
    signing = writer.signer_from(config) if not workerinput else None
    # Waivers, --baseline and the CA for earlier runs, also checked before any host is touched.
    history = RunHistory.from_config(config, set(load_all(CHECKS_DIR)), controller=not workerinput)
    prefetch.forks_option(config)
    try:
        permissions.restrict()  # before the run directory is made: 0750, its files 0640
    except permissions.UmaskError as exc:
        raise pytest.UsageError(str(exc)) from None
    run_dir: Path | None = None
    if workerinput.get("walguard_run_dir"):
        run_dir = Path(workerinput["walguard_run_dir"])
    elif not workerinput:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        root = Path(config.getoption("report_root") or paths.default_report_root())
        run_dir = root / f"{stamp}-{secrets.token_hex(3)}"
        run_dir.mkdir(parents=True, exist_ok=False)
        # report.html is walguard's own (walguard.report.html), written from results.json.
        if not getattr(config.option, "xmlpath", None):
            config.option.xmlpath = str(run_dir / "junit.xml")
    run = AuditRun(databases, run_dir, config.getoption("fail_on"))
    run.baseline = history.baseline_verdicts()
    plugin = AuditPlugin(config, run, bool(workerinput), inventory.listing, probes)
    plugin.history = history
    plugin.inventory_source = source
    # Drift and retention keep to runs of the same hosts: the inventory and its --limit.
    plugin.inventory_key = history_module.selection_key(source, config.getoption("limit"))
    if run_dir is not None and not workerinput:
        # The previous verified run, found once here: drift and WG-SYS-004 read the same one.
        history.look_back(run_dir, plugin.inventory_key)
    plugin.cache.journal_baselines = history.journal
    if run_dir is not None and not workerinput:
        plugin.signer = signing
        plugin.info = RunInfo.start(
            run_dir.name,
            targets=databases,
            inventory_source=source,
            listing=inventory.listing,
            pytest_args=[str(a) for a in config.invocation_params.args],
            fail_on=config.getoption("fail_on"),
            remediate=config.getoption("remediate"),
            change_ref=config.getoption("change_ref"),
            active_probe=bool(config.getoption("active_probe")),
            limit=config.getoption("limit"),
        )
    config.pluginmanager.register(plugin, PLUGIN_NAME)


class AuditPlugin:
    """The run's hooks, with its state in one place (the AuditRun)."""

    def __init__(
        self,
        config: pytest.Config,
        run: AuditRun,
        is_worker: bool,
        listing: str | None = None,
        probes: list[Target] | None = None,
    ) -> None:
        self.config = config
        self.listing = listing
        self.run = run
        self.is_worker = is_worker
        self.distributed = getattr(config.option, "dist", "no") != "no" and not is_worker
        self.active_probe = bool(config.getoption("active_probe"))
        self.cache = FactsCache(
            run.run_dir,
            active_probe=self.active_probe,
            probe_wait_s=config.getoption("probe_wait"),
            zones=ZoneProbes(probes or [], run.targets),
        )
        self.forks = prefetch.forks_option(config)
        self.stop_reason: str | None = None
        self.info: RunInfo | None = None
        self.signer: writer.Signing | None = None
        self.history = RunHistory()
        self.inventory_source = ""
        self.inventory_key = ""
        self.history_doc: dict[str, Any] = {}

    # -- what exists, what is selected --

    def _universe(self) -> dict[Pair, Control]:
        every = load_all(CHECKS_DIR, extra_checks.dirs_of(self.config))
        controls = [c for c in every.values() if self.active_probe or not c.opt_in]
        return {(t.name, c.id): c for t in self.run.targets for c in controls}

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makeitem(
        self, collector: pytest.Collector, name: str, obj: object
    ) -> list[ControlItem] | None:
        meta: Control | None = getattr(obj, "walguard_control", None)
        if meta is None or not callable(obj):
            return None
        unknown = unknown_parameters(obj)
        if unknown:
            raise pytest.UsageError(
                f"control {meta.id} ({name}) reads {', '.join(unknown)}, which no fact provides"
            )
        if meta.opt_in and not self.active_probe:
            return []  # changes server state: only when asked for
        return [ControlItem.make(collector, obj, meta, t, self.cache) for t in self.run.targets]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.is_worker or self.distributed:
            return
        pairs = {
            (i.target.name, i.meta.id): i.meta for i in session.items if isinstance(i, ControlItem)
        }
        self.run.expect(pairs, len(self._universe()))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """(xdist controller) every worker collects the same items: their ids are the set."""
        if self.run.expected:
            return
        universe = self._universe()
        pairs = {}
        for nodeid in ids:
            pair = pair_of_nodeid(nodeid)
            if pair is not None and pair in universe:
                pairs[pair] = universe[pair]
        self.run.expect(pairs, len(universe))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """(xdist) tell each worker to group by host, where the run's evidence goes, what
        ansible-inventory answered (never written to disk: it may hold decrypted values), and
        the previous run the controller found (WG-SYS-004's baselines)."""
        if node.config.getoption("dist") == "loadgroup":
            node.workerinput["walguard_loadgroup"] = True
        if self.run.run_dir is not None:
            node.workerinput["walguard_run_dir"] = str(self.run.run_dir)
        if self.listing is not None:
            node.workerinput["walguard_inventory_listing"] = self.listing
        node.workerinput.update(self.history.worker_input())

    # -- results --

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if not isinstance(item, ControlItem) or report.when == "teardown":
            return report
        if report.when == "setup" and report.passed:
            return report
        res = item.result()
        if report.when == "setup":  # setup failed: no verdict could be reached
            why = call.excinfo.value if call.excinfo else "?"
            res = replace(res, result=ERROR, message=f"could not run the control: {why}")
        elif self.history.waivers is not None:
            res = self.history.waivers.apply(res)
            if res.result == WAIVED and res.waiver is not None:
                # An accepted risk: junit and pytest's summary show it as skipped, with why.
                w = res.waiver
                why = (f"WAIVED ({w['ticket']}, approved by {w['approver']} until {w['expires']}):"
                       f" {w['reason']}; finding: {res.message}")  # fmt: skip
                report.outcome = "skipped"
                report.longrepr = (str(item.path), item.reportinfo()[1] or 0, why)
        if not self.is_worker:
            # Judged here: recorded here. pytest keeps every report (and junit every property)
            # until the run ends; at 35,000 items carrying this as JSON costs ~100 MB.
            self.run.record(res, item.host_info())
        else:
            report.user_properties.append(("walguard_result", json.dumps(res.as_dict())))
            report.user_properties.append(("walguard_host", json.dumps(item.host_info())))
        item.facts = None  # the cache holds them; pytest holds its items until the run ends
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        props = dict(report.user_properties)
        if "walguard_result" in props:
            res = Result(**json.loads(str(props["walguard_result"])))
            self.run.record(res, json.loads(str(props["walguard_host"])))
            return
        pair = pair_of_nodeid(report.nodeid)
        if pair in self.run.results:
            return  # recorded when its report was made (judged in this process)
        if pair is not None and report.failed and pair in self.run.expected:
            # No verdict travelled with it: xdist's report of a worker that died running it.
            reason = " ".join(str(report.longrepr).split())
            self.run.note_crash(pair[0], f"not judged: {reason}")
            meta = self.run.expected[pair]
            self.run.record(Result(pair[0], meta.id, meta.title, meta.severity, ERROR,
                                   f"not judged: {reason}", report.nodeid))  # fmt: skip

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        try:
            if not (self.is_worker or self.distributed) and prefetch.will_run(session):
                # Every selected host's facts first, many at once; pytest then judges them.
                tr = self.config.pluginmanager.get_plugin("terminalreporter")
                prefetch.prefetch(session.items, self.cache, self.forks, tr)
            return (yield)
        finally:
            self.cache.release()  # every item is judged: the facts' memory goes before writing
            self.stop_reason = _stop_reason(session)
            mode = self.config.getoption("remediate")
            if mode and not self.is_worker:
                from walguard.remediate.apply import remediate_run

                tr = self.config.pluginmanager.get_plugin("terminalreporter")
                remediate_run(
                    self.run,
                    mode,
                    allow_disruptive=self.config.getoption("allow_disruptive"),
                    change_ref=self.config.getoption("change_ref"),
                    say=tr.write_line if tr is not None else print,
                )

    def _why_missing(self) -> str:
        if self.stop_reason:
            return self.stop_reason
        if any(h.crashed for h in self.run.hosts.values()):
            return "not judged: the run lost a crashed worker before judging it"
        return "not judged: no result was recorded for it"

    # -- outputs --

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker or self.run.run_dir is None:
            return
        if self.stop_reason is None:
            self.stop_reason = _stop_reason(session)
        why = self._why_missing()
        code = self.run.gate(why)
        # pytest's own usage, interrupt and internal-error codes stay; otherwise the gate's,
        # which is never 0 while anything selected is missing.
        if session.exitstatus in (0, 1, 5):
            session.exitstatus = code
        if self.info is None:
            return
        results = self.run.complete(why)
        self.history.compare(results, self.run.run_dir)
        self.history_doc = self.history.record(results, self.run.run_dir)
        failed = writer.write_run(
            self.run,
            results,
            self.info,
            code=int(session.exitstatus),
            gate=code,
            signing=self.signer,
            extra=self.history_doc,
        )
        if failed is not None:
            # The run's verdicts are written, but its signature is not: never a quiet success.
            tr = self.config.pluginmanager.get_plugin("terminalreporter")
            (tr.write_line if tr is not None else print)(f"walguard: {failed}")
            session.exitstatus = writer.EXIT_NOT_SIGNED
        self.history.prune(self.run.run_dir, self.inventory_key)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.run.run_dir is None:
            return
        why = self._why_missing()
        terminalreporter.section("walguard")
        for line in terminal.lines(self.run, self.run.complete(why), self.run.gate(why)):
            terminalreporter.write_line(line)
        for line in self.history.lines(self.history_doc):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"report: {self.run.run_dir}")
        if self.signer is not None and (self.run.run_dir / "manifest.p7s").is_file():
            subject = self.signer.signer.cert.subject.rfc4514_string()
            terminalreporter.write_line(
                f"signed by {subject}: check with `walguard verify {self.run.run_dir} --ca CA.pem`"
            )


def _stop_reason(session: pytest.Session) -> str | None:
    """Why a run ended before judging everything, as pytest or xdist recorded it."""
    dsession = session.config.pluginmanager.get_plugin("dsession")
    for why in (session.shouldfail, session.shouldstop, getattr(dsession, "shouldstop", None)):
        if why:
            return f"not judged: the run stopped early ({why})"
    return None
