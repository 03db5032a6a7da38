"""The walguard pytest plugin: hooks only. What a run needs is built once, complete, when pytest
is configured (walguard.audit.session) and kept under `config.stash[SESSION]`; controls become
items (walguard.audit.items), verdicts come from the one judge (walguard.judge), and the
writers of the evidence files, results.json, report.html and the terminal summary live in
walguard.report. Its options are walguard.options; the hooks a bank's own plugin may implement
are walguard.hookspecs.

It is active only when controls from checks/ are collected, so the project's own tests run
without an inventory.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from walguard import hookspecs, options, paths
from walguard.audit import prefetch, protocol
from walguard.audit.items import ControlItem
from walguard.audit.run import pair_of_nodeid
from walguard.audit.session import SESSION, AuditSession, build
from walguard.controls import SEVERITIES, Control
from walguard.judge import unknown_parameters
from walguard.report import metrics, permissions, terminal, writer
from walguard.report.evidence_files import EvidenceFiles
from walguard.results import ERROR, WAIVED, Result

# In a checkout or in the installed package (walguard.paths).
CHECKS_DIR = paths.CHECKS_DIR
PLUGIN_NAME = "walguard-audit"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


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
    try:
        permissions.restrict()  # before anything of the run is written: 0750, its files 0640
    except permissions.UmaskError as exc:
        raise pytest.UsageError(str(exc)) from None
    # An audit makes tens of thousands of long-lived objects (an item, reports, a result per
    # host and control) and few cycles: Python's cyclic collector, at its default thresholds,
    # traversed them again and again (a fifth of an audit's CPU at 300 hosts). Rarer young
    # collections, and what collection made is frozen out of them (pytest_collection_finish).
    gc.set_threshold(50_000, 20, 100)
    metrics_file = _metrics_file(config)  # a bad one stops the run before anything is written
    hook = config.hook.pytest_walguard_host_evidence
    try:
        config.stash[SESSION] = build(config, evidence=lambda run_dir: EvidenceFiles(run_dir, hook))
    except OSError as exc:
        # Nothing is touched yet: every path read here is one the operator gave (inventory,
        # --checks, --waivers, CA files, --baseline), and the ones a check above cannot name
        # (a name too long, a loop of links) are their input's error too, said in one line.
        raise pytest.UsageError(path_error(exc)) from None
    config.pluginmanager.register(AuditHooks(config, metrics_file), PLUGIN_NAME)


def _metrics_file(config: pytest.Config) -> Path | None:
    """--metrics-file, checked (the controller's; --co and --help write nothing)."""
    value = config.getoption("metrics_file")
    listing = getattr(config.option, "collectonly", False) or getattr(config.option, "help", False)
    if value is None or listing or hasattr(config, "workerinput"):
        return None
    try:
        return metrics.check_path(value)
    except metrics.MetricsPathError as exc:
        raise pytest.UsageError(str(exc)) from None


def path_error(exc: OSError) -> str:
    """One line for an OSError about a path the operator gave: the path (shortened), why."""
    name = str(exc.filename) if exc.filename is not None else "a path given"
    if len(name) > 120:
        name = f"{name[:60]}…{name[-40:]} ({len(name)} characters)"
    return f"{name}: {exc.strerror or exc}"


class AuditHooks:
    """The run's hooks. They hold nothing but pytest's config and where --metrics-file goes: the
    run is `config.stash[SESSION]` (pytest_runtest_logreport is given no config, hence an object
    rather than functions)."""

    def __init__(self, config: pytest.Config, metrics_file: Path | None = None) -> None:
        self.config = config
        self.metrics_file = metrics_file

    @property
    def session(self) -> AuditSession:
        return self.config.stash[SESSION]

    # -- what exists, what is selected --

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
        s = self.session
        if not s.asked_for(meta):
            return []  # changes server state: only when asked for
        return [ControlItem.make(collector, obj, meta, t, s.cache) for t in s.run.targets]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        gc.freeze()  # the items live until the run ends: no collection need look at them again
        s = self.session
        items = [i for i in session.items if isinstance(i, ControlItem)]
        s.cache.want_zones(i.target.name for i in items if i.reads_zones)
        if s.is_worker or s.distributed:
            return
        s.run.expect({(i.target.name, i.meta.id): i.meta for i in items}, len(s.universe()))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """(xdist controller) every worker collects the same items: their ids are the set."""
        s = self.session
        if s.run.expected:
            return
        universe = s.universe()
        pairs = {}
        for nodeid in ids:
            pair = pair_of_nodeid(nodeid)
            if pair is not None and pair in universe:
                pairs[pair] = universe[pair]
        s.run.expect(pairs, len(universe))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """(xdist) tell each worker to group by host, where the run's evidence goes, what
        ansible-inventory answered (never written to disk: it may hold decrypted values), and
        the previous run the controller found (WG-SYS-004's baselines)."""
        s = self.session
        if node.config.getoption("dist") == "loadgroup":
            node.workerinput["walguard_loadgroup"] = True
        if s.run.run_dir is not None:
            node.workerinput["walguard_run_dir"] = str(s.run.run_dir)
        if s.listing is not None:
            node.workerinput["walguard_inventory_listing"] = s.listing
        node.workerinput.update(s.history.worker_input())

    # -- judging --

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        if not isinstance(item, ControlItem) or not protocol.lean(self.config):
            return None
        protocol.run(item, nextitem)
        return True

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
        s = self.session
        res = item.result()
        if report.when == "setup":  # setup failed: no verdict could be reached
            why = call.excinfo.value if call.excinfo else "?"
            res = replace(res, result=ERROR, message=f"could not run the control: {why}")
        elif s.history.waivers is not None:
            res = s.history.waivers.apply(res)
            if res.result == WAIVED and res.waiver is not None:
                # An accepted risk: junit and pytest's summary show it as skipped, with why.
                w = res.waiver
                why = (f"WAIVED ({w['ticket']}, approved by {w['approver']} until {w['expires']}):"
                       f" {w['reason']}; finding: {res.message}")  # fmt: skip
                report.outcome = "skipped"
                report.longrepr = (str(item.path), item.reportinfo()[1] or 0, why)
        if res.result == ERROR and report.when == "call" and report.failed:
            # Could not look is not "failed the control": junit's <error>, pytest's "E" and its
            # "errors" count, as a test whose setup failed (junit writes <error> for a failed
            # report of any phase but the call).
            report.when = "setup"
        # The host's info travels once per version of its facts, not with every control.
        host = s.cache.host_info(item.target, item.facts)
        if not s.is_worker:
            # Judged here: recorded here. pytest keeps every report (and junit every property)
            # until the run ends; at 35,000 items carrying this as JSON costs ~100 MB.
            s.run.record(res)
            if host is not None:
                s.run.record_host(res.host, host)
        else:
            report.user_properties.append(("walguard_result", json.dumps(res.as_dict())))
            if host is not None:
                report.user_properties.append(("walguard_host", json.dumps(host)))
        item.facts = None  # the cache holds them; pytest holds its items until the run ends
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        s = self.session
        if s.is_worker or (report.passed and report.when in ("setup", "teardown")):
            return  # a phase that carries no verdict (three reports per item, one with it)
        props = dict(report.user_properties)
        if "walguard_result" in props:
            res = Result(**json.loads(str(props["walguard_result"])))
            s.run.record(res)
            if "walguard_host" in props:
                s.run.record_host(res.host, json.loads(str(props["walguard_host"])))
            return
        pair = pair_of_nodeid(report.nodeid)
        if pair in s.run.results:
            return  # recorded when its report was made (judged in this process)
        if pair is not None and report.failed and pair in s.run.expected:
            # No verdict travelled with it: xdist's report of a worker that died running it.
            reason = " ".join(str(report.longrepr).split())
            s.run.note_crash(pair[0], f"not judged: {reason}")
            meta = s.run.expected[pair]
            s.run.record(Result(pair[0], meta.id, meta.title, meta.severity, ERROR,
                                f"not judged: {reason}", report.nodeid))  # fmt: skip

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        s = self.session
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        try:
            if not (s.is_worker or s.distributed) and prefetch.will_run(session):
                # Every selected host's facts first, many at once; pytest then judges them.
                prefetch.prefetch(session.items, s.cache, s.forks, tr)
            return (yield)
        finally:
            s.cache.release()  # every item is judged: the facts' memory goes before writing
            s.ending.stop_reason = _stop_reason(session)
            mode = self.config.getoption("remediate")
            if mode and not s.is_worker:
                from walguard.remediate.authority import Authority
                from walguard.remediate.estate import remediate_run

                authority = Authority(
                    allow_restart=bool(self.config.getoption("allow_restart")),
                    change_ref=self.config.getoption("change_ref"),
                    windows=s.change_windows,
                )
                remediate_run(
                    s.run, mode, authority=authority,
                    say=tr.write_line if tr is not None else print,
                    batch=self.config.getoption("restart_batch"),
                    archive_wait_s=self.config.getoption("probe_wait"),
                )  # fmt: skip

    # -- outputs --

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        s = self.session
        if s.is_worker or s.run.run_dir is None:
            return
        if s.ending.stop_reason is None:
            s.ending.stop_reason = _stop_reason(session)
        why = s.why_missing()
        code = s.run.gate(why)
        # pytest's own usage, interrupt and internal-error codes stay; otherwise the gate's,
        # which is never 0 while anything selected is missing.
        if session.exitstatus in (0, 1, 5):
            session.exitstatus = code
        if s.info is None:
            return
        results = s.run.complete(why)
        s.history.compare(results, s.run.run_dir)
        s.ending.history_doc = s.history.record(results, s.run.run_dir)
        doc = writer.document(
            s.run,
            results,
            s.info,
            run_dir=s.run.run_dir,
            code=int(session.exitstatus),
            gate=code,
            signing=s.signer,
            extra=s.ending.history_doc,
            sections=lambda doc: self.config.hook.pytest_walguard_report_sections(run=doc),
        )
        failed = writer.write_document(doc, s.run.run_dir, s.signer)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        say = tr.write_line if tr is not None else print
        if failed is not None:
            # The run's verdicts are written, but its signature is not: never a quiet success.
            say(f"walguard: {failed}")
            session.exitstatus = writer.EXIT_NOT_SIGNED
        if self.metrics_file is not None:
            # Whatever the gate said, with the final exit status: what monitoring must see.
            signed = (s.run.run_dir / "manifest.p7s").is_file()
            try:
                metrics.write(doc, self.metrics_file, exit_status=int(session.exitstatus),
                              signed=signed)  # fmt: skip
            except OSError as exc:
                # The run itself is written: its status stands, and the file's last-run time
                # goes stale (README: Monitoring).
                why = exc.strerror or str(exc)
                say(f"walguard: --metrics-file {self.metrics_file} not written: {why}")
        s.history.prune(s.run.run_dir, s.inventory_key)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        s = self.session
        if s.is_worker or s.run.run_dir is None:
            return
        why = s.why_missing()
        terminalreporter.section("walguard")
        for line in terminal.lines(s.run, s.run.complete(why), s.run.gate(why)):
            terminalreporter.write_line(line)
        for line in s.history.lines(s.ending.history_doc):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"report: {s.run.run_dir}")
        if s.signer is not None and (s.run.run_dir / "manifest.p7s").is_file():
            subject = s.signer.signer.cert.subject.rfc4514_string()
            terminalreporter.write_line(
                f"signed by {subject}: check with `walguard verify {s.run.run_dir} --ca CA.pem`"
            )


def _stop_reason(session: pytest.Session) -> str | None:
    """Why a run ended before judging everything, as pytest or xdist recorded it."""
    dsession = session.config.pluginmanager.get_plugin("dsession")
    for why in (session.shouldfail, session.shouldstop, getattr(dsession, "shouldstop", None)):
        if why:
            return f"not judged: the run stopped early ({why})"
    return None
