"""The metrics file as monitoring reads it: an audit of the lab writes `--metrics-file`, and
Debian's own node_exporter (prometheus-node-exporter, its textfile collector on that directory,
bound to loopback) serves it; the scrape parses with prometheus_client and carries each lab
host's results, the gate, and no textfile scrape error."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.support import Lab, audit

pytestmark = pytest.mark.lab

NODE_EXPORTER = Path("/usr/bin/prometheus-node-exporter")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def scrape(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A textfile directory, and the URL of a node_exporter serving it (only its textfile
    collector, only on loopback)."""
    if not NODE_EXPORTER.exists():
        pytest.fail(f"{NODE_EXPORTER} is missing: `make deps` installs prometheus-node-exporter")
    directory = tmp_path / "textfile"
    directory.mkdir()
    port = _free_port()
    proc = subprocess.Popen(
        [str(NODE_EXPORTER), f"--web.listen-address=127.0.0.1:{port}",
         "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={directory}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield directory, f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_node_exporter_serves_the_audits_metrics(
    lab: Lab, tmp_path: Path, scrape: tuple[Path, str]
) -> None:
    directory, url = scrape
    result = audit(tmp_path, "-k", "WG-ARC-001 or WG-DIR-004",
                   "--metrics-file", str(directory / "walguard-lab.prom"))  # fmt: skip
    assert result.exit_status in (0, 1), result.stdout + result.stderr
    assert [p.name for p in directory.iterdir()] == ["walguard-lab.prom"]  # no temp file left
    families = {f.name: f for f in text_string_to_metric_families(_get(url))}
    errors = [s.value for s in families["node_textfile_scrape_error"].samples]
    assert errors == [0.0]
    results = {
        (s.labels["host"], s.labels["control"]): s.labels["result"]
        for s in families["walguard_control_result"].samples
    }
    for host in lab.hosts:
        assert results[(host.name, "WG-ARC-001")] == "PASS"
        assert results[(host.name, "WG-DIR-004")] == "PASS"
    gate = families["walguard_audit_gate_passed"].samples
    assert [(s.labels["audit"], s.value) for s in gate] == [
        ("walguard-lab", 1.0 if result.exit_status == 0 else 0.0)
    ]
    reached = {s.labels["state"]: s.value for s in families["walguard_audit_hosts"].samples}
    assert reached["reached"] == len(lab.hosts) and reached["unreachable"] == 0
