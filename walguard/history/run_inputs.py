"""What a run takes from before and leaves for after: waivers, `--baseline`, the previous
verified run (which drift and WG-SYS-004's journal baseline both read), retention. The plugin
calls these; the rules live in walguard.history.waivers, walguard.history.previous,
walguard.history.drift,
walguard.history.journal_baseline and walguard.history.retention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from walguard.controls import REGISTRY
from walguard.history import drift, retention
from walguard.history import previous as history
from walguard.history.journal_baseline import Baselines, not_looked_up
from walguard.history.waiver_approval import check_max_days
from walguard.history.waiver_approval import load as load_waivers
from walguard.history.waivers import CRITICAL, MAX_DAYS, WaiverError, Waivers
from walguard.results import Result, badness

WAIVERS_COPY = "waivers.yml"  # the waivers file as this run used it, covered by the manifest
# How the controller's previous run reaches xdist workers (which judge WG-SYS-004).
PREVIOUS_RUN_KEY = "walguard_previous_run"
APPROVAL_COPY = "waivers.yml.p7s"  # and its approval, beside it


# The waivers' options, each also from the environment: (option, variable, metavar, help).
WAIVER_OPTIONS = (
    ("--waivers", "WALGUARD_WAIVERS", "FILE",
     "accepted risks (YAML: control, hosts, reason, author, expires, ticket), approved by "
     "FILE.p7s (`walguard waivers approve`); a waived failure is WAIVED and does not fail the "
     "gate"),
    ("--approver-ca", "WALGUARD_APPROVER_CA", "CA.pem",
     "CA that the waivers file's approval must verify against, and only it; when not "
     "given, --verify-ca"),
    ("--waiver-max-days", "WALGUARD_WAIVER_MAX_DAYS", "N",
     f"a waiver of a critical control expires within N days of today, 1 to 365, by "
     f"default {MAX_DAYS}"),
)  # fmt: skip


def add_options(group: Any) -> None:
    for flag, env, metavar, what in WAIVER_OPTIONS:
        days = flag == "--waiver-max-days"
        # argparse converts a string default with `type` too: a bad value is a usage error.
        default = os.environ.get(env) or (MAX_DAYS if days else None)
        kind = {"type": int} if days else {}
        group.addoption(flag, **kind, default=default, metavar=metavar, help=f"{what} (env {env})")
    group.addoption(
        "--baseline",
        default=None,
        metavar="RUN_DIR",
        help="fail only on what is worse than this earlier run (a pre-change gate for an estate "
        "that is not clean yet); with --verify-ca it must verify",
    )
    group.addoption(
        "--verify-ca",
        default=os.environ.get("WALGUARD_VERIFY_CA"),
        metavar="CA.pem",
        help="CA that earlier runs (the previous run of drift and WG-SYS-004, --baseline) must "
        "verify against; without it there is no previous run (env WALGUARD_VERIFY_CA)",
    )
    group.addoption(
        "--keep-runs",
        type=int,
        # argparse converts a string default with `type` too: a bad value is a usage error.
        default=os.environ.get("WALGUARD_KEEP_RUNS") or None,
        metavar="N",
        help="after the run, remove this inventory's runs in the reports directory beyond the "
        "newest N (never the newest signed one; env WALGUARD_KEEP_RUNS; default: keep all)",
    )


@dataclass
class RunHistory:
    waivers: Waivers | None = None
    baseline: history.EarlierRun | None = None
    verify_ca: Path | None = None
    keep_runs: int | None = None
    drift: dict[str, Any] | None = None
    removed: list[Path] = field(default_factory=list)
    # The one previous run of this audit (look_back, on the controller), and the journal
    # baselines taken from it (on a worker, as the controller sent them).
    previous: history.Previous | None = None
    journal: Baselines = field(
        default_factory=lambda: not_looked_up("the previous run was not looked up")
    )

    @classmethod
    def from_config(
        cls, config: pytest.Config, known_controls: set[str], *, controller: bool
    ) -> RunHistory:
        """Every input checked before any host is touched: a bad one is a usage error."""
        out = cls()
        ca = config.getoption("verify_ca")
        if ca:
            out.verify_ca = Path(ca)
            if not out.verify_ca.is_file():
                raise pytest.UsageError(f"--verify-ca {ca}: no such file")
        waivers = config.getoption("waivers")
        if waivers:
            out.waivers = _approved_waivers(config, Path(waivers), known_controls, ca)
        keep = config.getoption("keep_runs")
        if keep is not None and keep < 1:
            raise pytest.UsageError(f"--keep-runs {keep}: keep at least 1 run (this one)")
        out.keep_runs = keep
        if not controller:
            wire = getattr(config, "workerinput", {}).get(PREVIOUS_RUN_KEY)
            if wire is not None:
                out.journal = Baselines.from_wire(wire)
            else:
                out.journal = not_looked_up("the controller sent no previous run to this worker")
        baseline = config.getoption("baseline")
        if baseline and controller:
            try:
                out.baseline = history.load_baseline(Path(baseline), out.verify_ca)
            except history.BaselineError as exc:
                raise pytest.UsageError(str(exc)) from None
        return out

    def baseline_verdicts(self) -> dict[tuple[str, str], str] | None:
        return self.baseline.verdicts() if self.baseline is not None else None

    def look_back(self, run_dir: Path, inventory: str) -> None:
        """(controller) The previous verified run of this inventory and --limit, once, before
        any control is judged: drift and WG-SYS-004 read the same one."""
        self.previous = history.find_previous(run_dir.parent, run_dir, inventory, self.verify_ca)
        self.journal = Baselines.of(self.previous)

    def worker_input(self) -> dict[str, Any]:
        return {PREVIOUS_RUN_KEY: self.journal.to_wire()}

    def compare(self, results: list[Result], run_dir: Path) -> None:
        """Drift against the previous run look_back found (and the runs it passed over)."""
        previous = self.previous or history.Previous(None, "the previous run was not looked up")
        self.drift = drift.section(previous, results, run_dir)

    def record(self, results: list[Result], run_dir: Path) -> dict[str, Any]:
        """The drift, waivers and baseline sections of results.json; the waivers file is
        copied into the run so that the signed manifest covers what was waived, and by what."""
        doc: dict[str, Any] = {"drift": self.drift}
        if self.waivers is not None:
            # The bytes that were verified and read, not the file again: it may have changed.
            (run_dir / WAIVERS_COPY).write_bytes(self.waivers.data)
            record = self.waivers.record(results)
            if self.waivers.approval is not None:
                (run_dir / APPROVAL_COPY).write_bytes(self.waivers.approval.signature)
                record["approval"]["copied_as"] = APPROVAL_COPY
            doc["waivers"] = {**record, "copied_as": WAIVERS_COPY}
        if self.baseline is not None:
            before = self.baseline.verdicts()
            worse = [
                {"host": r.host, "control": r.control, "before": before.get((r.host, r.control)),
                 "now": r.result}
                for r in results
                if badness(r.result) > badness(before.get((r.host, r.control), "PASS"))
            ]  # fmt: skip
            doc["baseline"] = {**self.baseline.as_dict(), "worse": worse}
        return doc

    def prune(self, run_dir: Path, inventory: str) -> None:
        if self.keep_runs is not None:
            self.removed = retention.prune(run_dir.parent, run_dir, inventory, self.keep_runs)

    def lines(self, doc: dict[str, Any]) -> list[str]:
        """For the terminal summary."""
        out = drift.lines(doc.get("drift"))
        for w in doc.get("waivers", {}).get("entries", []):
            if w["status"] == "expired":
                still = ", ".join(w["no_longer_waived"]) or "nothing failing now"
                out.append(
                    f"EXPIRED WAIVER line {w['line']} ({w['control']}, {w['ticket']}, expired "
                    f"{w['expires']}): no longer waives; {still}"
                )
            elif not w["waived"]:
                out.append(
                    f"waiver line {w['line']} ({w['control']}, {w['ticket']}) waived nothing "
                    "in this run"
                )
        base = doc.get("baseline")
        if base:
            trust = "verified" if base["verified"] else f"not verified: {base['verification']}"
            out.append(
                f"baseline run {base['run']} ({trust}): {len(base['worse'])} result(s) worse "
                "than it"
            )
            out += [
                f"  worse: {w['host']} {w['control']} ({w['before'] or 'not judged'} -> {w['now']})"
                for w in base["worse"]
            ]
        out += [f"retention: removed {p}" for p in self.removed]
        return out


def _approved_waivers(
    config: pytest.Config, path: Path, known_controls: set[str], verify_ca: str | None
) -> Waivers:
    """The waivers file, its approval verified against --approver-ca (else --verify-ca): with
    neither, nothing could tell who approved it, so that is a usage error too."""
    ca = config.getoption("approver_ca") or verify_ca
    if not ca:
        raise pytest.UsageError(
            f"waivers: {path}: its approval cannot be checked: give the approvers' CA with "
            "--approver-ca CA.pem (or WALGUARD_APPROVER_CA, or --verify-ca)"
        )
    # Severity decides the rules for critical controls; a control of unknown severity is held
    # to them too. load_all has put every known control in the registry.
    severities = {c: REGISTRY[c].severity if c in REGISTRY else CRITICAL for c in known_controls}
    try:
        days = check_max_days(config.getoption("waiver_max_days"), "--waiver-max-days")
        return load_waivers(path, severities, Path(ca), max_days=days)
    except WaiverError as exc:
        raise pytest.UsageError(f"waivers: {exc}") from None
