"""Four eyes that hold: a waivers file counts only with its approval, a detached CMS signature
over its exact bytes by a certificate of the approvers' CA whose holder wrote none of its
waivers. Real certificates (tests/pki.py), real openssl, `walguard waivers approve` and
`walguard audit` as commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes

from tests import pki
from walguard.history.waiver_approval import approve, load, signature_path
from walguard.history.waivers import Rules, WaiverError
from walguard.report.results_json import SCHEMA_PATH
from walguard.results import FAIL, WAIVED, Result
from walguard.signing.signer import Signer

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SEVERITIES = {"WG-ARC-004": "low", "WG-ARC-001": "critical"}
SOON = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
WAIVERS = f"""\
waivers:
  - control: WG-ARC-004
    hosts: "db*"
    reason: the seed archive_command is replaced by pgBackRest in CHG-2211
    author: j.smith
    expires: 2099-12-31
    ticket: RISK-1042
  - control: WG-ARC-001
    hosts: [db1, db2]
    reason: archive_mode comes back with the restart in CHG-2301
    author: b.brown
    expires: {SOON}
    ticket: RISK-1043
"""


@dataclass(frozen=True)
class People:
    ca: pki.Issued
    other_ca: pki.Issued
    jones: pki.Issued  # the approver
    smith: pki.Issued  # an author, with a certificate of his own
    stranger: pki.Issued  # certified by the other CA
    lapsed: pki.Issued  # expired yesterday
    cyrillic: pki.Issued  # "j.smith" with a Cyrillic i


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> People:
    d = tmp_path_factory.mktemp("pki")
    ca, other = pki.make_ca(d), pki.make_ca(d, "another CA")
    return People(
        ca, other, pki.issue(d, ca, "a.jones"), pki.issue(d, ca, "J Smith"),
        pki.issue(d, other, "a.jones elsewhere"), pki.issue(d, ca, "c.lapsed", days=(-30, -1)),
        pki.issue(d, ca, "j.sm\u0456th"),
    )  # fmt: skip


def write(tmp_path: Path, text: str = WAIVERS) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(text)
    return path


def approved(tmp_path: Path, by: pki.Issued, text: str = WAIVERS) -> Path:
    path = write(tmp_path, text)
    approve(path, Signer(by.key, by.cert), Rules(SEVERITIES))
    return path


def signed_anyway(tmp_path: Path, by: pki.Issued, text: str = WAIVERS) -> Path:
    """Signed without `walguard waivers approve`'s checks: what a forger could write."""
    path = write(tmp_path, text)
    signature_path(path).write_bytes(Signer(by.key, by.cert).sign(path.read_bytes()))
    return path


def test_a_proper_approval_is_honoured_and_recorded(tmp_path: Path, people: People) -> None:
    w = load(approved(tmp_path, people.jones), SEVERITIES, people.ca.cert_path)
    res = w.apply(Result("db7", "WG-ARC-004", "t", "low", FAIL, "found it", "x"))
    assert res.result == WAIVED and res.waiver is not None
    assert (res.waiver["author"], res.waiver["approver"]) == ("j.smith", "a.jones")
    record = w.record([res])
    approval = record["approval"]
    assert approval["approver"] == "a.jones"
    assert approval["sha256_fingerprint"] == people.jones.cert.fingerprint(hashes.SHA256()).hex()
    assert approval["ca"] == str(people.ca.cert_path) and record["critical_max_days"] == 90
    schema = json.loads(SCHEMA_PATH.read_text())
    waivers_schema = {**schema["properties"]["waivers"], "$defs": schema["$defs"]}
    approval["copied_as"] = "waivers.yml.p7s"
    jsonschema.Draft202012Validator(waivers_schema).validate({**record, "copied_as": "w.yml"})


def _changed(path: Path) -> None:
    path.write_text(path.read_text().replace("2099-12-31", "2099-12-30"))


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("unapproved", "waivers.yml: not approved: there is no waivers.yml.p7s beside it (the "
         "approver signs the file with `walguard waivers approve"),
        ("changed after approval", "waivers.yml: waivers.yml.p7s is not an approval of this "
         "file: the file changed after it was approved"),
        ("another CA", "waivers.yml.p7s is signed by CN=a.jones elsewhere,O=walguard tests, "
         "whose certificate does not verify against the approver CA"),
        ("expired certificate", "whose certificate does not verify against the approver CA "
         "{ca} (certificate has expired)"),
        ("signed by the author", "waivers.yml:5: key 'author': 'j.smith' is the approver who "
         "signed the file (J Smith, CN=J Smith,O=walguard tests)"),
        ("cyrillic approver", "waivers.yml: the certificate CN=j.sm\u0456th,O=walguard tests "
         "names its holder as 'j.sm\u0456th' holds '\u0456' (U+0456 CYRILLIC SMALL LETTER"),
        ("the CA itself", "approved with the CA certificate CN=walguard test CA,O=walguard tests: "
         "an approval is signed with a person's own certificate"),
        ("garbage", "waivers.yml.p7s is not an approval of this file"),
        ("critical for ever", "waivers.yml:9: key 'hosts': WG-ARC-001 is a critical control: "
         "its waiver names each host"),
    ],
    ids=lambda v: v if len(v) < 30 else "-",
)  # fmt: skip
def test_an_approval_that_does_not_hold_is_refused(
    tmp_path: Path, people: People, case: str, said: str
) -> None:
    path = {
        "unapproved": lambda: write(tmp_path),
        "changed after approval": lambda: approved(tmp_path, people.jones),
        "another CA": lambda: approved(tmp_path, people.stranger),
        "expired certificate": lambda: signed_anyway(tmp_path, people.lapsed),
        "signed by the author": lambda: signed_anyway(tmp_path, people.smith),
        "cyrillic approver": lambda: signed_anyway(tmp_path, people.cyrillic),
        "the CA itself": lambda: signed_anyway(tmp_path, people.ca),
        "garbage": lambda: write(tmp_path),
        # Signed, but a rule the approval cannot lift: every host, for ever, on a critical one.
        "critical for ever": lambda: signed_anyway(
            tmp_path, people.jones, WAIVERS.replace("[db1, db2]", '"*"').replace(SOON, "9999-12-31")
        ),
    }[case]()
    if case == "changed after approval":
        _changed(path)
    if case == "garbage":
        signature_path(path).write_bytes(b"0\x03\x02\x01\x00")
    with pytest.raises(WaiverError) as caught:
        load(path, SEVERITIES, people.ca.cert_path)
    assert said.format(ca=people.ca.cert_path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_approver_cannot_approve_what_he_wrote(tmp_path: Path, people: People) -> None:
    """`J Smith`'s certificate against the author `j.smith`, and `jsmith`, `J_SMITH`, ...: and
    an author written in Cyrillic look-alikes is refused before anyone compares it."""
    for author in (
        "j.smith",
        "jsmith",
        "J_SMITH",
        "j.srnith",
        "\uff4a\uff53\uff4d\uff49\uff54\uff48",
    ):
        with pytest.raises(WaiverError, match=r"key 'author': .* is the approver who signed"):
            approved(
                tmp_path, people.smith, WAIVERS.replace("author: j.smith", f"author: {author}")
            )
    assert not signature_path(tmp_path / "waivers.yml").exists()
    with pytest.raises(WaiverError, match=r"key 'author': 'j\.sm\u0456th' holds"):
        approved(tmp_path, people.jones, WAIVERS.replace("j.smith", "j.sm\u0456th"))
    with pytest.raises(WaiverError, match=r"names its holder as 'j\.sm\u0456th'"):
        approved(tmp_path, people.cyrillic)


# -- as commands --


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # An audit of its own: not one of this test run's xdist workers (which it would say it is).
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "WALGUARD"))}
    return subprocess.run(
        [sys.executable, "-m", "walguard.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env={**base, **(env or {})},
    )  # fmt: skip


def sign_args(who: pki.Issued) -> list[str]:
    return ["--sign-key", str(who.key_path), "--sign-cert", str(who.cert_path)]


def readme_check() -> str:
    """The README's plain OpenSSL check of an approval, as printed there."""
    text = README.read_text()
    block = text[text.index("**Checking an approval without walguard**") :]
    block = block[block.index("```\n") + 4 :]
    return block[: block.index("```")]


def test_approve_writes_what_openssl_and_the_audit_accept(tmp_path: Path, people: People) -> None:
    path = write(tmp_path)
    done = cli("waivers", "approve", str(path), *sign_args(people.jones),
               "--approver-ca", str(people.ca.cert_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    fingerprint = people.jones.cert.fingerprint(hashes.SHA256()).hex()
    assert done.stdout == (
        f"approved: {path} by a.jones (certificate SHA-256 {fingerprint}); the approval is "
        f"{path}.p7s\n"
    )
    assert signature_path(path).read_bytes()[:1] == b"\x30"  # DER, not PEM
    script = readme_check().replace("bank-ca.pem", str(people.ca.cert_path))
    plain = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path,
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "subject=O = walguard tests, CN = a.jones" in plain.stdout
    # The same command refuses a file changed by one byte.
    _changed(path)
    plain = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, check=False)  # fmt: skip
    assert plain.returncode != 0


def test_approve_refuses_in_one_line(tmp_path: Path, people: People) -> None:
    path = write(tmp_path)
    by_author = cli("waivers", "approve", str(path), *sign_args(people.smith))
    assert by_author.returncode == 4 and not signature_path(path).exists()
    assert by_author.stderr.startswith(f"walguard: cannot approve: {path}:5: key 'author'")
    assert by_author.stderr.count("\n") == 1
    # The audit's key in the environment is never the approver's.
    robot = cli("waivers", "approve", str(path), env={
        "WALGUARD_SIGN_KEY": str(people.jones.key_path),
        "WALGUARD_SIGN_CERT": str(people.jones.cert_path)})  # fmt: skip
    assert robot.returncode == 4 and "no key (--sign-key) given" in robot.stderr
    forever = WAIVERS.replace(SOON, "9999-12-31")
    too_long = cli("waivers", "approve", str(write(tmp_path, forever)), *sign_args(people.jones))
    assert too_long.returncode == 4 and "WG-ARC-001 is a critical control" in too_long.stderr
    assert not signature_path(path).exists()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """Two hosts on a port of this machine nobody listens on: they refuse at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    path = tmp_path / "inventory.yml"
    path.write_text(
        "all:\n  vars:\n    ansible_user: nobody\n    ansible_host: 127.0.0.1\n"
        f"    ansible_port: {port}\n    walguard_known_hosts_file: {known_hosts}\n"
        "    walguard_ssh_retries: 0\n    walguard_connect_timeout_s: 2\n"
        "  hosts:\n    db1:\n    db2:\n"
    )
    return path


def audit(tmp_path: Path, inventory: Path, *args: str) -> tuple[Any, Any]:
    reports = tmp_path / "reports"
    done = cli("audit", "--inventory", str(inventory), "--report-root", str(reports), *args)
    runs = sorted(reports.glob("*/results.json"))
    return done, (runs[-1].parent if runs else None)


@pytest.mark.parametrize("case", ["unapproved", "changed", "another CA", "no CA", "max days"])
def test_the_audit_stops_before_any_host_on_a_waiver_file_that_does_not_hold(
    tmp_path: Path, people: People, inventory: Path, case: str
) -> None:
    path = write(tmp_path) if case == "unapproved" else approved(tmp_path, people.jones)
    if case == "changed":
        _changed(path)
    ca = people.other_ca if case == "another CA" else people.ca
    trust = [] if case == "no CA" else ["--approver-ca", str(ca.cert_path)]
    if case == "max days":
        trust += ["--waiver-max-days", "400"]
    done, run = audit(tmp_path, inventory, "--waivers", str(path), *trust)
    assert done.returncode == 4, done.stdout + done.stderr
    assert run is None and not (tmp_path / "reports").exists()  # nothing started
    (line,) = [x for x in done.stderr.splitlines() if "waivers:" in x]
    assert f"waivers: {path}" in line or case == "max days"
    if case == "no CA":
        assert "give the approvers' CA with --approver-ca CA.pem" in line
    if case == "max days":
        assert line.endswith("--waiver-max-days 400: a critical control's waiver expires within "
                             "1 to 365 days (a critical risk is accepted again at least once a "
                             "year)")  # fmt: skip


def test_the_run_keeps_the_file_and_its_approval_under_its_signature(
    tmp_path: Path, people: People, inventory: Path
) -> None:
    path = approved(tmp_path, people.jones)
    signer = pki.issue(tmp_path, people.ca, "walguard run signer")
    # --verify-ca stands for --approver-ca when that is not given.
    done, run = audit(tmp_path, inventory, "--waivers", str(path), "--verify-ca",
                      str(people.ca.cert_path), *sign_args(signer))  # fmt: skip
    assert done.returncode == 6, done.stdout + done.stderr  # unreachable hosts: ERROR, unwaived
    assert (run / "waivers.yml").read_bytes() == path.read_bytes()
    assert (run / "waivers.yml.p7s").read_bytes() == signature_path(path).read_bytes()
    doc = json.loads((run / "results.json").read_text())
    approval = doc["waivers"]["approval"]
    assert (approval["approver"], approval["copied_as"]) == ("a.jones", "waivers.yml.p7s")
    listed = (run / "manifest").read_text()
    assert "  waivers.yml\n" in listed and "  waivers.yml.p7s\n" in listed
    verified = cli("verify", str(run), "--ca", str(people.ca.cert_path))
    assert verified.returncode == 0, verified.stdout + verified.stderr
