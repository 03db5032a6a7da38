"""Report benchmark: a synthetic audit-shaped run (default 1,000 hosts x 40 controls) through
walguard's real writers, beside stock pytest-html on a pytest run of the same shape.

Prints, for each: the time writing the report adds to the run, the report's size, and the time
headless Chromium takes to render it (wall time of `chromium --screenshot`, and the same less a
blank page's, which is Chromium's own start-up), and walguard's size and render time as ratios of
stock pytest-html's. Targets for walguard's report: at most 10 s, 10 MB and 3 s.

    .venv/bin/python bench/report.py [--hosts 1000] [--controls 40] [--no-stock] [--no-render]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from walguard.report import synthetic, writer  # noqa: E402
from walguard.signing.signer import Signer  # noqa: E402

CHROMIUM = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-dev-shm-usage", "--window-size=1280,2000"]  # fmt: skip


def render_seconds(page: str, shot: Path) -> float:
    exe = shutil.which("chromium")
    if exe is None:
        raise SystemExit("bench: chromium is not installed (make deps)")
    started = time.monotonic()
    subprocess.run([exe, *CHROMIUM, f"--screenshot={shot}", page],
                   capture_output=True, timeout=1200, check=True)  # fmt: skip
    return time.monotonic() - started


def throwaway_signer() -> Signer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench signer")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return Signer(key, cert)


def maybe_render(page: Path, shot: Path, render: bool) -> float | None:
    return render_seconds(page.as_uri(), shot) if render else None


def walguard_figures(tmp: Path, hosts: int, controls: int, render: bool) -> dict[str, Any]:
    run_dir = synthetic.new_run_dir(tmp / "walguard")
    run, _, info = synthetic.make_run(run_dir, hosts, controls)
    signing = writer.Signing(throwaway_signer(), None)
    started = time.monotonic()
    failed = writer.write_run(run, run.complete("x"), info, code=1, gate=1, signing=signing)
    write_s = time.monotonic() - started
    if failed:
        raise SystemExit(f"bench: {failed}")
    page = run_dir / "report.html"
    return {
        "write_s": write_s,
        "html_mb": page.stat().st_size / 1e6,
        "json_mb": (run_dir / "results.json").stat().st_size / 1e6,
        "render_s": maybe_render(page, tmp / "walguard.png", render),
    }


STOCK_TEST = '''
import hashlib
import pytest

HOSTS = [f"db{i:04d}" for i in range(N_HOSTS)]
CONTROLS = [f"WG-BEN-{i:03d}" for i in range(N_CONTROLS)]


@pytest.mark.parametrize("control", CONTROLS)
@pytest.mark.parametrize("host", HOSTS)
def test_control(host, control):
    roll = int.from_bytes(hashlib.sha256(f"{host}/{control}".encode()).digest()[:2], "big")
    mode = "0777" if roll % 1000 < 50 else "0750"
    assert mode in ("0700", "0750"), f"archive directory /pg_archive is mode {mode}"
'''


def stock_figures(tmp: Path, hosts: int, controls: int, repeat: int, render: bool
                  ) -> dict[str, Any]:  # fmt: skip
    """The same shape as plain pytest tests, with and without pytest-html's page (each the
    fastest of `repeat` runs, alternating, so that a busy moment does not pick the winner)."""
    tests = tmp / "stock"
    tests.mkdir()
    (tests / "test_stock.py").write_text(
        textwrap.dedent(STOCK_TEST)
        .replace("N_HOSTS", str(hosts))
        .replace("N_CONTROLS", str(controls))
    )
    base = [sys.executable, "-m", "pytest", str(tests), "-q", "--tb=short", "-p",
            "no:cacheprovider", "--rootdir", str(tests), "-c", "/dev/null"]  # fmt: skip
    times: dict[str, float] = {}
    for _ in range(repeat):
        for label, extra in (("plain", []),
                             ("html", ["--html", str(tests / "report.html"),
                                       "--self-contained-html"])):  # fmt: skip
            started = time.monotonic()
            subprocess.run([*base, *extra], capture_output=True, timeout=3600, check=False)
            took = time.monotonic() - started
            times[label] = min(times.get(label, took), took)
    page = tests / "report.html"
    return {
        "write_s": times["html"] - times["plain"],
        "html_mb": page.stat().st_size / 1e6,
        "render_s": maybe_render(page, tmp / "stock.png", render),
    }


def rendered(figures: dict[str, Any], blank: float) -> str:
    if figures["render_s"] is None:
        return f"{'-':>11} {'-':>15}"
    return f"{figures['render_s']:11.1f} {figures['render_s'] - blank:15.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--controls", type=int, default=40)
    parser.add_argument("--no-stock", action="store_true", help="skip stock pytest-html (slow)")
    parser.add_argument("--repeat", type=int, default=2, help="stock pytest runs of each kind")
    parser.add_argument("--no-render", action="store_true", help="skip Chromium (its start-up "
                        "is seconds: the test suite's smoke run leaves it out)")  # fmt: skip
    args = parser.parse_args()
    if min(args.hosts, args.controls, args.repeat) < 1:
        parser.error("--hosts, --controls and --repeat take a whole number of at least 1")
    render = not args.no_render
    with tempfile.TemporaryDirectory(prefix="walguard-bench-") as name:
        tmp = Path(name)
        blank = render_seconds("about:blank", tmp / "blank.png") if render else 0.0
        ours = walguard_figures(tmp, args.hosts, args.controls, render)
        start_up = f"Chromium start-up (blank page) {blank:.1f} s" if render else "not rendered"
        print(f"{args.hosts} hosts x {args.controls} controls = {args.hosts * args.controls} "
              f"results; {start_up}")  # fmt: skip
        print(f"{'':22} {'write (s)':>10} {'report.html (MB)':>17} {'render (s)':>11} "
              f"{'render - blank':>15}")  # fmt: skip
        print(f"{'walguard':22} {ours['write_s']:10.1f} {ours['html_mb']:17.1f} "
              f"{rendered(ours, blank)}   (results.json {ours['json_mb']:.1f} MB; write includes "
              "signing)")  # fmt: skip
        if not args.no_stock:
            stock = stock_figures(tmp, args.hosts, args.controls, args.repeat, render)
            print(f"{'stock pytest-html':22} {stock['write_s']:10.1f} {stock['html_mb']:17.1f} "
                  f"{rendered(stock, blank)}")  # fmt: skip
            # Write time is a difference of two runs (noise at a small size): sizes and render
            # times are the ratios that always mean something.
            times = (f", render {ours['render_s'] / stock['render_s']:.2f}x" if render else "")
            print(f"walguard / stock pytest-html: report.html size "
                  f"{ours['html_mb'] / stock['html_mb']:.2f}x{times}")  # fmt: skip
        ok = ours["write_s"] <= 10 and ours["html_mb"] <= 10
        ok = ok and (not render or ours["render_s"] - blank <= 3)
        print(f"walguard within the targets (10 s, 10 MB, 3 s): {'yes' if ok else 'NO'}"
              f"{'' if render else ' (render not measured)'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
