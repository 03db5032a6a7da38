"""`walguard audit --metrics-file PATH`: the run's results in Prometheus' text format, for
node_exporter's textfile collector, built from the results document (the dict written as
results.json) and written atomically at the end of every run that writes a report, also when
the gate fails or hosts are unreachable.

Every family is a gauge; the file is a snapshot of the newest run, replaced whole. Each series
carries `audit`, the file's name without `.prom`: the nightly audit and the weekly drill write
two files into one textfile directory, and node_exporter refuses a series that two files both
have (same name and labels).

- `walguard_control_result{host,control,severity,result}` 1: one series per host and control,
  its result (as results.json spells it: PASS, FAIL, ERROR, NOT APPLICABLE, REMEDIATED,
  REMEDIATION FAILED, REMEDIATION REFUSED, ROLLED BACK, WAIVED) a label. Only the result a pair
  has is present, never a 0 for the others: when a pair's result changes, the old series leaves the
  file (Prometheus marks it stale) and the new one appears.
- `walguard_control_failed{host,control,severity}` 1 when the result is a failure (FAIL,
  REMEDIATION FAILED, REMEDIATION REFUSED, ROLLED BACK), else 0: WAIVED, ERROR and the rest are 0.
- `walguard_audit_gate_passed` 1 when the gate's status is 0; `walguard_audit_exit_status` the
  process's exit status (README: Exit codes); `walguard_audit_signed` 1 when the run's manifest
  was signed.
- `walguard_audit_hosts{state}`: hosts `reached`, `unreachable`, `not_contacted` (no control of
  theirs ran); `walguard_host_reachable{host}` 1/0 for each contacted host.
- `walguard_audit_results{result}`: how many host-and-control results each result has (every
  result is present, 0 when none).
- `walguard_audit_last_run_timestamp_seconds` the run's end (Unix time),
  `walguard_audit_duration_seconds` its start to its end (whole seconds, as results.json keeps
  them), `walguard_audit_info{run,fail_on,version}` 1 (run: the run directory's name).
- With `--restore-drill`, for each host the drill was tried on: `walguard_restore_drill_restored`
  1/0, `walguard_restore_drill_rto_seconds` the measured restore time (the drill's achieved
  RTO; absent when it did not restore) and `walguard_restore_drill_rto_objective_seconds` the
  host's `walguard_rto_minutes`, in seconds.
- For each primary whose data-loss window was measured (WG-RST-002):
  `walguard_data_loss_window_seconds` how long its oldest commit not yet archived had waited (0
  when none), and `walguard_data_loss_window_objective_seconds` its `walguard_rpo_minutes`, in
  seconds.

Label values come from the inventory (host names) and the user's controls: prometheus_client
escapes backslash, double quote and newline in them, and what UTF-8 cannot carry (a lone
surrogate) is written as a backslash escape rather than failing the write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from walguard.report.results_json import RESULTS
from walguard.results import badness

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily, Metric

SUFFIX = ".prom"
# node_exporter runs as another user (Debian: prometheus), and an audit's umask (027) would
# keep the file from it: the metrics file is world-readable whatever the umask. It holds host
# names, control ids and results: what node_exporter serves to its scrapers anyway.
FILE_MODE = 0o644
HOST_STATES = ("reached", "unreachable", "not_contacted")


class MetricsPathError(ValueError):
    """--metrics-file names a file that cannot be written (or that node_exporter ignores)."""


def check_path(value: str) -> Path:
    """The metrics file, absolute; MetricsPathError (one line) when node_exporter would ignore
    it or its directory cannot take it. Checked before the audit touches a host: a temporary
    file is made in the directory and removed."""
    shown = value if len(value) <= 120 else f"{value[:60]}…{value[-40:]} ({len(value)} characters)"
    name = f"--metrics-file {shown}"
    try:
        return _checked(Path(os.path.abspath(value)), name)
    except OSError as exc:  # a name too long, a loop of links: the operator's input
        raise MetricsPathError(f"{name}: {exc.strerror or type(exc).__name__}") from None


def _checked(path: Path, name: str) -> Path:
    if path.is_dir():
        raise MetricsPathError(f"{name}: a directory; name a file in it, such as walguard.prom")
    if not path.name.endswith(SUFFIX) or path.name == SUFFIX:
        raise MetricsPathError(
            f"{name}: node_exporter's textfile collector reads only files named *.prom; "
            "name it so (e.g. walguard.prom)"
        )
    parent = path.parent
    if not parent.exists():
        raise MetricsPathError(f"{name}: no such directory {parent}")
    if not parent.is_dir():
        raise MetricsPathError(f"{name}: {parent} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise MetricsPathError(f"{name}: cannot write in {parent}: {why}") from None
    os.close(fd)
    os.unlink(probe)
    return path


def audit_label(path: Path) -> str:
    """The `audit` label of every series in the file at `path`: its name without .prom."""
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name


# Each family's HELP: the same in every file (node_exporter refuses a family whose HELP differs
# between two files).
HELP = {
    "walguard_audit_info": "The newest walguard audit: its run directory's name, its --fail-on "
    "and walguard's version.",
    "walguard_audit_last_run_timestamp_seconds": "When the newest walguard audit ended (Unix "
    "time), whatever its gate said.",
    "walguard_audit_duration_seconds": "How long the newest walguard audit ran, start to end.",
    "walguard_audit_gate_passed": "1 when the newest audit's gate passed (status 0: nothing at "
    "or above --fail-on failed, no ERROR, nothing missing), else 0.",
    "walguard_audit_exit_status": "The newest audit's exit status (walguard's README: Exit codes).",
    "walguard_audit_signed": "1 when the newest audit's manifest was signed, else 0.",
    "walguard_audit_hosts": "Hosts of the newest audit: reached, unreachable, or not contacted "
    "(no control of theirs ran).",
    "walguard_host_reachable": "1 when the newest audit reached the host, 0 when it could not "
    "(a host it did not contact is absent).",
    "walguard_control_result": "1 for each host and control of the newest audit, with its "
    "result as a label.",
    "walguard_control_failed": "1 when the control FAILED on the host in the newest audit (or "
    "its remediation failed or was refused), else 0.",
    "walguard_audit_results": "Results of the newest audit (one per host and control), by result.",
    "walguard_restore_drill_restored": "1 when the restore drill restored the host's newest "
    "base backup to its target time (--restore-drill), 0 when it did not or could not be "
    "carried out.",
    "walguard_restore_drill_rto_seconds": "The restore drill's measured restore time (its "
    "achieved RTO): from the start of the copy of the backup to the restored cluster answering "
    "at the target.",
    "walguard_restore_drill_rto_objective_seconds": "The host's recovery time objective "
    "(walguard_rto_minutes), in seconds.",
    "walguard_data_loss_window_seconds": "How long the oldest commit not yet archived had "
    "waited on the primary when the newest audit read its WAL (WG-RST-002): what losing the "
    "primary then would have lost; 0 when none waited. Absent when it was not measured.",
    "walguard_data_loss_window_objective_seconds": "The host's recovery point objective "
    "(walguard_rpo_minutes), in seconds.",
}


def families(
    doc: dict[str, Any],
    *,
    audit: str,
    exit_status: int | None = None,
    signed: bool | None = None,
) -> list[Metric]:
    """The metric families of the results document `doc`. `exit_status` is the process's final
    one (default: the document's); `signed` whether the manifest was signed (default: whether
    the run asked for a signature)."""
    a = _label(audit)
    run = doc.get("run") or {}
    hosts: dict[str, dict[str, Any]] = doc.get("hosts") or {}
    if exit_status is None:
        exit_status = int(doc["exit_status"])
    if signed is None:
        signed = run.get("signing") is not None
    out: list[Metric] = []

    info = _gauge(out, "walguard_audit_info", "run", "fail_on", "version")
    version = (run.get("walguard") or {}).get("version", "")
    info.add_metric([a, _label(run.get("id", "")), _label(doc.get("fail_on", "")),
                     _label(version)], 1)  # fmt: skip
    started, finished = _unix(run.get("started")), _unix(run.get("finished"))
    if finished is not None:
        _gauge(out, "walguard_audit_last_run_timestamp_seconds").add_metric([a], finished)
        if started is not None:
            duration = max(finished - started, 0.0)
            _gauge(out, "walguard_audit_duration_seconds").add_metric([a], duration)
    _gauge(out, "walguard_audit_gate_passed").add_metric([a], float(int(doc["gate"]) == 0))
    _gauge(out, "walguard_audit_exit_status").add_metric([a], float(exit_status))
    _gauge(out, "walguard_audit_signed").add_metric([a], float(bool(signed)))

    states: Counter[str] = Counter(_state(h.get("reachable")) for h in hosts.values())
    by_state = _gauge(out, "walguard_audit_hosts", "state")
    for state in HOST_STATES:
        by_state.add_metric([a, state], states[state])
    reachable = _gauge(out, "walguard_host_reachable", "host")
    for host, h in hosts.items():
        if h.get("reachable") is not None:
            reachable.add_metric([a, _label(host)], float(bool(h["reachable"])))

    counts: Counter[str] = Counter()
    result = _gauge(out, "walguard_control_result", "host", "control", "severity", "result")
    failed = _gauge(out, "walguard_control_failed", "host", "control", "severity")
    for host, control, severity, res in _results(hosts):
        counts[res] += 1
        labels = [a, _label(host), _label(control), _label(severity)]
        result.add_metric([*labels, _label(res)], 1)
        failed.add_metric(labels, float(badness(res) == 2))
    by_result = _gauge(out, "walguard_audit_results", "result")
    for res in dict.fromkeys([*RESULTS, *sorted(counts)]):
        by_result.add_metric([a, _label(res)], counts[res])

    restored = _gauge(out, "walguard_restore_drill_restored", "host")
    took = _gauge(out, "walguard_restore_drill_rto_seconds", "host")
    objective = _gauge(out, "walguard_restore_drill_rto_objective_seconds", "host")
    for host, h in hosts.items():
        drill = h.get("restore_drill")
        if not isinstance(drill, dict):
            continue  # no drill asked for, or the host was not reached
        labels = [a, _label(host)]
        restored.add_metric(labels, float(drill.get("restored") is True))
        if isinstance(drill.get("restore_s"), int | float):
            took.add_metric(labels, float(drill["restore_s"]))
        rto = (h.get("policy") or {}).get("rto_minutes")
        if isinstance(rto, int | float):
            objective.add_metric(labels, float(rto) * 60)
    window = _gauge(out, "walguard_data_loss_window_seconds", "host")
    rpo_objective = _gauge(out, "walguard_data_loss_window_objective_seconds", "host")
    for host, h in hosts.items():
        measured = h.get("data_loss_window")
        # Only a measured window: a standby, an unread segment or nothing archived has none
        # (WG-RST-002 says why), and a 0 there would read as "nothing at risk".
        if not isinstance(measured, dict) or not isinstance(measured.get("waited_s"), int | float):
            continue
        labels = [a, _label(host)]
        window.add_metric(labels, float(measured["waited_s"]))
        rpo = (h.get("policy") or {}).get("rpo_minutes")
        if isinstance(rpo, int | float):
            rpo_objective.add_metric(labels, float(rpo) * 60)
    # A family without a series (no drill, no host contacted) is left out, HELP and TYPE too.
    return [family for family in out if family.samples]


def _gauge(out: list[Metric], name: str, *labels: str) -> GaugeMetricFamily:
    """A new family `name` (with the `audit` label first), appended to `out`."""
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, HELP[name], labels=["audit", *labels])
    out.append(family)
    return family


def _results(hosts: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, str, str]]:
    for host, h in hosts.items():
        for r in h.get("controls") or ():
            yield host, str(r["control"]), str(r["severity"]), str(r["result"])


def _state(reachable: object) -> str:
    if reachable is None:
        return "not_contacted"
    return "reached" if reachable else "unreachable"


def _label(value: object) -> str:
    """A label value UTF-8 can carry: a lone surrogate (from a JSON escape) as \\udcXX."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _unix(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def exposition(
    doc: dict[str, Any],
    *,
    audit: str,
    exit_status: int | None = None,
    signed: bool | None = None,
) -> bytes:
    """The text node_exporter reads, from a registry of this run's own (never the process's
    global one)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(doc, audit=audit, exit_status=exit_status, signed=signed)))
    return generate_latest(registry)


class _Snapshot:
    """A collector of families made once (the registry asks describe() for their names, which
    also refuses a name given twice)."""

    def __init__(self, built: list[Metric]) -> None:
        self.built = built

    def describe(self) -> list[Metric]:
        return self.built

    def collect(self) -> list[Metric]:
        return self.built


def write(
    doc: dict[str, Any],
    path: Path,
    *,
    exit_status: int | None = None,
    signed: bool | None = None,
) -> None:
    """Replaces `path` with the metrics of `doc` (OSError when it cannot)."""
    data = exposition(doc, audit=audit_label(path), exit_status=exit_status, signed=signed)
    replace_atomically(path, data)


def replace_atomically(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """`data` into `path` as node_exporter needs it: written whole into a temporary file in the
    same directory (named .NAME.XXXX.tmp, which the collector's *.prom ignores), flushed to
    disk, then renamed over `path`, so that a reader sees the old file or the new one, never a
    part. The temporary file is removed when anything fails (or the run is interrupted).

    prometheus_client's write_to_textfile renames too, but its file takes the process's umask
    (an audit's is 027: node_exporter's user could not read it) and is not synced first."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
