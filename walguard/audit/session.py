"""One audit run's session: everything the run needs, built complete by `build` when pytest is
configured, and kept under `config.stash[SESSION]`, where every hook reads it.

Building it is where every input is checked before any host is touched (the inventory, the
user's controls, --limit, the signing key, waivers and --baseline, --forks, --change-window): a
bad one is a usage error. Only then is the run directory made. On an xdist worker the same
function builds the worker's session from what the controller sent (walguard.plugin's
pytest_configure_node).

The audit package does not write the report: the evidence writer is handed in by the caller
(walguard.report.evidence_files, through walguard.plugin), as an `EvidenceSink`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from walguard import paths
from walguard.audit import extra_checks, prefetch
from walguard.audit.items import EvidenceSink, FactsCache
from walguard.audit.run import AuditRun, Pair
from walguard.audit.runinfo import RunInfo, new_run_name
from walguard.controls import Control, ControlsError, load_all
from walguard.drill.run import restore_hosts
from walguard.facts.network import ZoneProbes
from walguard.history import previous as history_module
from walguard.history.run_inputs import RunHistory
from walguard.inventory.ansible import targets_from_listing
from walguard.inventory.limit import LimitError, select
from walguard.inventory.load import Inventory, InventoryError, VaultOptions, read_inventory
from walguard.policy.change_window import ChangeWindowError, ChangeWindows, parse_windows
from walguard.policy.model import PolicyError
from walguard.signing import signer as signing


@dataclass(frozen=True)
class Signing:
    """The key that signs the run's manifest, and the time-stamping authority, if any."""

    signer: signing.Signer
    tsa_url: str | None


@dataclass
class Ending:
    """What the run learns only as it ends: why it stopped early (if it did), and the drift,
    waivers and baseline sections written into results.json (the terminal summary shows them)."""

    stop_reason: str | None = None
    history_doc: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditSession:
    run: AuditRun  # the pairs to judge and the results (mutable: it fills as the run goes)
    cache: FactsCache  # each host's facts, collected once per process
    history: RunHistory  # waivers, --baseline, the previous run, retention
    check_dirs: tuple[Path, ...]  # the user's controls directories, beside checks/
    is_worker: bool  # an xdist worker: it judges, the controller records and writes
    distributed: bool  # the controller of an xdist run (judges nothing itself)
    active_probe: bool
    restore_drill: bool
    forks: int
    listing: str | None  # what ansible-inventory answered, for the workers
    inventory_key: str  # drift and retention keep to runs of this inventory and --limit
    signer: Signing | None  # the controller's, when signing
    info: RunInfo | None  # the run's metadata; only on a controller with a run directory
    ending: Ending = field(default_factory=Ending)
    # --change-window, replacing every host's walguard_change_window; None: not given.
    change_windows: ChangeWindows | None = None

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files (the controller of a run with a
        directory)."""
        return self.info is not None and self.run.run_dir is not None

    def universe(self) -> dict[Pair, Control]:
        """Every (host, control) pair there is, before -k/-m deselection."""
        every = load_all(paths.CHECKS_DIR, list(self.check_dirs))
        controls = [c for c in every.values() if self.asked_for(c)]
        return {(t.name, c.id): c for t in self.run.targets for c in controls}

    def asked_for(self, control: Control) -> bool:
        """Whether the run judges it: every control, and an opt-in one when its option is
        given (it changes state: a WAL switch, a restore)."""
        given = {"--active-probe": self.active_probe, "--restore-drill": self.restore_drill}
        return control.opt_in is None or given.get(control.opt_in, False)

    def why_missing(self) -> str:
        if self.ending.stop_reason:
            return self.ending.stop_reason
        if any(h.crashed for h in self.run.hosts.values()):
            return "not judged: the run lost a crashed worker before judging it"
        return "not judged: no result was recorded for it"


SESSION = pytest.StashKey[AuditSession]()


def signer_from(config: pytest.Config) -> Signing | None:
    """The run's signer, from options or the environment; None when not signing. Bad key
    material is a usage error before any host is touched."""
    opts = signing.SignOptions.resolve(
        key=config.getoption("sign_key"),
        cert=config.getoption("sign_cert"),
        chain=config.getoption("sign_chain"),
        pkcs12=config.getoption("sign_pkcs12"),
        password_file=config.getoption("sign_password_file"),
        tsa_url=config.getoption("tsa_url"),
    )
    if not opts.wanted():
        if opts.tsa_url and config.getoption("tsa_url"):
            raise pytest.UsageError("--tsa-url timestamps a signature: give a signing key too")
        return None
    try:
        return Signing(signing.load(opts), opts.tsa_url)
    except signing.SignerError as exc:
        raise pytest.UsageError(f"cannot sign the run: {exc}") from None


def change_windows_from(config: pytest.Config) -> ChangeWindows | None:
    """--change-window, each read now: a bad one is a usage error before any host is touched."""
    given: list[str] = config.getoption("change_window") or []
    if not given:
        return None
    try:
        return parse_windows(given)
    except ChangeWindowError as exc:
        raise pytest.UsageError(f"--change-window: {exc}") from None


def _distribute_by_host(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    explicit_dist = any(
        a == "--dist" or a.startswith("--dist=") or a == "-d" for a in config.invocation_params.args
    )
    if getattr(config.option, "numprocesses", None) and not explicit_dist:
        # One worker per host's controls, so each host's facts are collected once.
        config.option.dist = "loadgroup"
    if workerinput.get("walguard_loadgroup"):
        # Workers re-parse the original command line, which did not say --dist loadgroup.
        config.option.loadgroup = True


def _inventory(config: pytest.Config, workerinput: dict[str, Any]) -> tuple[str, Inventory]:
    if not config.getoption("inventory") and paths.default_inventory() is None:
        raise pytest.UsageError(
            "no inventory: pass --inventory SOURCE (an Ansible inventory); only a checkout of "
            "walguard has a default, the lab's inventories/lab.yml"
        )
    default = paths.default_inventory()
    source = str(config.getoption("inventory") or default)
    if source == str(default) and not Path(source).exists():
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
            return source, Inventory(targets_from_listing(listing, source), listing)
        return source, read_inventory(source, vault)
    except InventoryError as exc:
        raise pytest.UsageError(str(exc)) from None


def _only_lists(config: pytest.Config) -> bool:
    """--collect-only (--co) and --help judge nothing: they write no run, compare with none and
    prune none; pytest's own exit status stands."""
    return bool(
        getattr(config.option, "collectonly", False) or getattr(config.option, "help", False)
    )


def _new_run_dir(config: pytest.Config) -> Path:
    root = Path(config.getoption("report_root") or paths.default_report_root())
    run_dir = root / new_run_name(root)
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        # A root that cannot hold a run (read-only, not a directory, /proc) is the operator's
        # to correct: one line, before any host is touched.
        why = exc.strerror or type(exc).__name__
        raise pytest.UsageError(
            f"--report-root {root}: cannot make a run directory there: {why}"
        ) from None
    # report.html is walguard's own (walguard.report.html), written from results.json.
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(run_dir / "junit.xml")
    return run_dir


def build(config: pytest.Config, evidence: Callable[[Path], EvidenceSink]) -> AuditSession:
    """The run's session, every part of it checked and made; `evidence(run_dir)` is the writer
    of the run's evidence files. Raises pytest.UsageError for a bad input, before any host is
    touched and before the run directory is made."""
    workerinput: dict[str, Any] = getattr(config, "workerinput", {})
    is_worker = bool(workerinput)
    _distribute_by_host(config, workerinput)
    source, inventory = _inventory(config, workerinput)
    # Probe hosts (walguard_zone) are vantage points, not database hosts: they are not audited.
    databases = [t for t in inventory.targets if t.policy.zone is None]
    probes = [t for t in inventory.targets if t.policy.zone is not None]
    # The user's controls and --limit: usage errors too, before any host is touched (and
    # before waivers are read, which may name the user's controls).
    try:
        # Restore hosts among all hosts (--limit may leave a restore host out of the audit),
        # and only for a drill: an audit without one does not need them (a shard of an
        # inventory may leave them out).
        drilling = bool(config.getoption("restore_drill"))
        restorers = restore_hosts(inventory.targets) if drilling else {}
        extra_checks.prepare(config, databases, source)
        if config.getoption("limit"):
            databases = select(databases, config.getoption("limit"))
    except (ControlsError, LimitError, PolicyError) as exc:
        raise pytest.UsageError(str(exc)) from None
    # A signing key that cannot be used stops the run here, as a usage error.
    signer = signer_from(config) if not is_worker else None
    # Waivers, --baseline and the CA for earlier runs, also checked before any host is touched.
    history = RunHistory.from_config(
        config, set(load_all(paths.CHECKS_DIR)), controller=not is_worker
    )
    forks = prefetch.forks_option(config)
    change_windows = change_windows_from(config)
    batch = config.getoption("restart_batch")
    if batch < 1:  # a staged restart's batch: found here, not when a rollout is planned
        raise pytest.UsageError(f"--restart-batch must be at least 1, not {batch}")
    run_dir: Path | None = None
    if workerinput.get("walguard_run_dir"):
        run_dir = Path(workerinput["walguard_run_dir"])
    elif not is_worker and not _only_lists(config):
        run_dir = _new_run_dir(config)
    # Drift and retention keep to runs of the same hosts: the inventory and its --limit.
    inventory_key = history_module.selection_key(source, config.getoption("limit"))
    info = None
    if run_dir is not None and not is_worker:
        # The previous verified run, found once here: drift and WG-SYS-004 read the same one.
        history.look_back(run_dir, inventory_key)
        info = RunInfo.start(
            run_dir.name,
            targets=databases,
            inventory_source=source,
            listing=inventory.listing,
            pytest_args=[str(a) for a in config.invocation_params.args],
            fail_on=config.getoption("fail_on"),
            remediate=config.getoption("remediate"),
            change_ref=config.getoption("change_ref"),
            active_probe=bool(config.getoption("active_probe")),
            restore_drill=bool(config.getoption("restore_drill")),
            limit=config.getoption("limit"),
        )
    active_probe = bool(config.getoption("active_probe"))
    restore_drill = bool(config.getoption("restore_drill"))
    cache = FactsCache(
        evidence(run_dir) if run_dir is not None else None,
        active_probe=active_probe,
        restore_drill=restore_drill,
        restorers=restorers,
        probe_wait_s=config.getoption("probe_wait"),
        zones=ZoneProbes(probes, databases),
        journal_baselines=history.journal,
        process=str(workerinput.get("workerid", "main")),
    )
    return AuditSession(
        run=AuditRun(
            databases, run_dir, config.getoption("fail_on"), baseline=history.baseline_verdicts()
        ),
        cache=cache,
        history=history,
        check_dirs=tuple(extra_checks.dirs_of(config)),
        is_worker=is_worker,
        distributed=getattr(config.option, "dist", "no") != "no" and not is_worker,
        active_probe=active_probe,
        restore_drill=restore_drill,
        forks=forks,
        listing=inventory.listing,
        inventory_key=inventory_key,
        signer=signer,
        info=info,
        change_windows=change_windows,
    )
