"""Whom a signed run trusts (#19): only the CAs the operator names, only signing certificates,
the time the TSA signed, and exactly the run's regular files. Each test fails on a walguard that
trusts the machine's store, lets any certificate sign, reads the reply's text, or follows links;
and the README's plain OpenSSL block reaches the same verdict."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import tsp

from tests import pki
from tests.signed_runs import (
    README,
    openssl_verdict,
    run_readme,
    signed,
    signer_of,
    template_run,
    walguard_verify,
)
from walguard.history import previous as history
from walguard.signing import manifest, signer, tsa, verify


@dataclass(frozen=True)
class Keys:
    dir: Path
    ca: pki.Issued  # the bank's CA: the only one the operator names
    signer: pki.Issued
    foreign: pki.Issued  # a root the machine trusts, the bank does not
    foreign_signer: pki.Issued
    store: Path  # SSL_CERT_DIR holding the foreign root, hashed as OpenSSL looks it up


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("pki")
    ca, foreign = pki.make_ca(d, "bank CA"), pki.make_ca(d, "some public root")
    store = d / "store"
    store.mkdir()
    (store / "public-root.pem").write_bytes(foreign.cert_path.read_bytes())
    subprocess.run(["openssl", "rehash", str(store)], check=True, capture_output=True)
    return Keys(d, ca, pki.issue(d, ca, "report signer"), foreign,
                pki.issue(d, foreign, "anybody's signer"), store)  # fmt: skip


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template_run(tmp_path_factory.mktemp("runs"))


def _store_envs(keys: Keys) -> list[dict[str, str]]:
    """The machine's store as OpenSSL 3.0 reads it beside -CAfile: its default certificate
    directory (SSL_CERT_DIR overrides it). The default store is off with -no-CAstore too."""
    return [{"SSL_CERT_DIR": str(keys.store)}]


# -- 1. only the CAs named are trusted, never the machine's store --


def test_a_root_in_the_machines_store_is_not_trusted(
    keys: Keys, template: Path, tmp_path: Path
) -> None:
    run_dir = signed(template, tmp_path, signer_of(keys.foreign_signer))
    for env in _store_envs(keys):
        # The store really is read by OpenSSL's defaults: the old command trusted it.
        old = ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "manifest.p7s",
               "-content", "manifest", "-CAfile", str(keys.ca.cert_path), "-purpose", "any",
               "-out", "/dev/null"]  # fmt: skip
        assert subprocess.run(old, cwd=run_dir, env={**os.environ, **env},
                              capture_output=True, check=False).returncode == 0  # fmt: skip
        done = walguard_verify(run_dir, keys.ca.cert_path, env=env)
        assert done.returncode == verify.EXIT_UNTRUSTED, done.stdout + done.stderr
        assert "untrusted certificate" in done.stdout and "chains to" not in done.stdout
        assert not openssl_verdict(run_dir, keys.ca.cert_path, env=env)


def test_drift_and_baseline_checks_do_not_trust_the_machines_store(
    keys: Keys, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = signed(template, tmp_path, signer_of(keys.foreign_signer))
    monkeypatch.setenv("SSL_CERT_DIR", str(keys.store))
    found = history.load_verified(run_dir, keys.ca.cert_path)
    assert isinstance(found, str) and "exit 11" in found


def test_a_tsa_under_a_root_in_the_machines_store_is_not_trusted(
    keys: Keys, template: Path, tmp_path: Path
) -> None:
    with pki.local_tsa(tmp_path / "tsa", keys.foreign) as url:
        run_dir = signed(template, tmp_path, signer_of(keys.signer), url)
    for env in _store_envs(keys):
        done = walguard_verify(run_dir, keys.ca.cert_path, env=env)
        assert done.returncode == verify.EXIT_BAD_TIMESTAMP, done.stdout + done.stderr
        step6 = run_readme(run_dir, (6,), {"tsa-ca.pem": keys.ca.cert_path}, env)
        assert step6.returncode != 0
    assert walguard_verify(run_dir, keys.ca.cert_path, "--tsa-ca", str(keys.foreign.cert_path))\
        .returncode == 0  # fmt: skip


# -- 2. only a signing certificate signs; a revoked one does not verify --

NOT_SIGNERS = [
    ("server", "extended key usage serverAuth: only documentSigning, emailProtection may sign"),
    ("client", "extended key usage clientAuth"),
    ("tsa", "extended key usage timeStamping"),
    ("sub-ca", "is a CA certificate (CA:TRUE)"),
]


@pytest.mark.parametrize(("profile", "said"), NOT_SIGNERS, ids=[p for p, _ in NOT_SIGNERS])
def test_only_a_signing_certificate_signs(
    keys: Keys, template: Path, tmp_path: Path, profile: str, said: str
) -> None:
    other = pki.issue(tmp_path, keys.ca, f"a {profile} certificate", profile=profile)
    with pytest.raises(signer.SignerError, match=said.replace("(", r"\(").replace(")", r"\)")):
        signer.load(signer.SignOptions(key=str(other.key_path), cert=str(other.cert_path)))
    run_dir = signed(template, tmp_path, signer_of(other))  # as if signed by another tool
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_UNTRUSTED, done.stdout + done.stderr
    assert f"FAIL  untrusted certificate: the signing certificate CN=a {profile}" in done.stdout
    assert said in done.stdout
    assert not openssl_verdict(run_dir, keys.ca.cert_path)
    step2 = run_readme(run_dir, (2,), {})
    assert step2.returncode == 0 and step2.stdout.strip(), "step 2 names the problem"


def test_the_allowed_purposes_are_the_operators_to_set(
    keys: Keys, template: Path, tmp_path: Path
) -> None:
    client = pki.issue(tmp_path, keys.ca, "client signer", profile="client")
    opts = signer.SignOptions(key=str(client.key_path), cert=str(client.cert_path),
                              signer_eku="clientAuth")  # fmt: skip
    run_dir = signed(template, tmp_path, signer.load(opts))
    eku = ("--signer-eku", "1.3.6.1.5.5.7.3.2")
    assert walguard_verify(run_dir, keys.ca.cert_path, *eku).returncode == 0
    env = {"WALGUARD_SIGNER_EKU": "clientAuth,emailProtection"}
    assert walguard_verify(run_dir, keys.ca.cert_path, env=env).returncode == 0
    bad = walguard_verify(run_dir, keys.ca.cert_path, "--signer-eku", "no such purpose")
    assert bad.returncode == verify.EXIT_USAGE and "not a dotted OID" in bad.stdout


def test_a_revoked_signer_does_not_verify(keys: Keys, template: Path, tmp_path: Path) -> None:
    run_dir = signed(template, tmp_path, signer_of(keys.signer))
    clean = pki.crl(tmp_path, keys.ca, [], name="clean.crl")
    revoked = pki.crl(tmp_path, keys.ca, [keys.signer], name="revoked.crl")
    stale = pki.crl(tmp_path, keys.ca, [], days=(-9, -2), name="stale.crl")
    ok = walguard_verify(run_dir, keys.ca.cert_path, "--crl", str(clean))
    assert ok.returncode == 0 and "not revoked" in ok.stdout, ok.stdout
    assert openssl_verdict(run_dir, keys.ca.cert_path, clean)
    for crl, why in ((revoked, "certificate revoked"), (stale, "CRL has expired")):
        done = walguard_verify(run_dir, keys.ca.cert_path, "--crl", str(crl))
        assert done.returncode == verify.EXIT_UNTRUSTED, done.stdout
        assert why in done.stdout
        assert not openssl_verdict(run_dir, keys.ca.cert_path, crl)
    missing = walguard_verify(run_dir, keys.ca.cert_path, "--crl", str(tmp_path / "none.crl"))
    assert missing.returncode == verify.EXIT_USAGE


def test_the_makefiles_demo_signer_may_sign_and_an_old_one_is_issued_anew(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    pki_dir = tmp_path / "signing"
    target, key = pki_dir / "signer.pem", pki_dir / "signer.key"

    def make() -> None:
        done = subprocess.run(["make", "-s", "-C", str(root), f"DEMO_PKI={pki_dir}", str(target)],
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    make()
    opts = signer.SignOptions(key=str(key), cert=str(target))
    assert "report signer" in signer.load(opts).cert.subject.rfc4514_string()
    # A demo directory from before: its signer has no extended key usage, under the same CA.
    ca = (pki_dir / "ca.pem").read_bytes()
    (pki_dir / "old.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
    )
    subprocess.run(["openssl", "x509", "-req", "-in", str(pki_dir / "signer.csr"),
                    "-CA", str(pki_dir / "ca.pem"), "-CAkey", str(pki_dir / "ca.key"),
                    "-CAcreateserial", "-days", "30", "-extfile", str(pki_dir / "old.ext"),
                    "-out", str(target)], check=True, capture_output=True)  # fmt: skip
    with pytest.raises(signer.SignerError, match="has no extended key usage"):
        signer.load(opts)
    make()
    assert "CN=walguard lab CA" in signer.load(opts).cert.issuer.rfc4514_string()
    assert (pki_dir / "ca.pem").read_bytes() == ca


def test_the_readmes_way_to_issue_a_signer_makes_one_that_may_sign(
    keys: Keys, tmp_path: Path
) -> None:
    text = README.read_text()
    block = text[text.index("The bank's CA issues one like this:") :]
    block = block[block.index("```\n") + 4 :]
    script = block[: block.index("```")]
    script = script.replace("bank-ca.pem", str(keys.ca.cert_path))
    script = script.replace("bank-ca.key", str(keys.ca.key_path))
    subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, check=True, capture_output=True)
    opts = signer.SignOptions(key=str(tmp_path / "signer.key"), cert=str(tmp_path / "signer.pem"))
    assert "walguard report signer" in signer.load(opts).cert.subject.rfc4514_string()


# -- 3. the timestamp's time is the one the TSA signed --


def _rewrite_status(reply: Path, text: str) -> None:
    """The reply's status string (outside the TSA's signature) says `text`; the token stays."""
    token = tsp.TimeStampResp.load(reply.read_bytes())["time_stamp_token"]
    original = token.dump()
    forged = tsp.TimeStampResp({"status": {"status": "granted", "status_string": [text]},
                                "time_stamp_token": token})  # fmt: skip
    reply.write_bytes(forged.dump())
    assert original in reply.read_bytes()


def test_a_rewritten_time_in_the_replys_text_is_not_believed(
    keys: Keys, template: Path, tmp_path: Path
) -> None:
    """Signed now by a certificate that expired yesterday; the reply's status text claims a time
    ten days ago, when it was valid. The token says now: expired."""
    lapsed = pki.issue(tmp_path, keys.ca, "lapsed signer", days=(-30, -1))
    with pki.local_tsa(tmp_path / "tsa", keys.ca) as url:
        run_dir = signed(template, tmp_path, signer_of(lapsed), url)
    reply = run_dir / manifest.TIMESTAMP
    then = (datetime.now(UTC) - timedelta(days=10)).strftime("%b %d %H:%M:%S %Y GMT")
    _rewrite_status(reply, f"ok\nTime stamp: {then}")
    text = subprocess.run(["openssl", "ts", "-reply", "-in", str(reply), "-text"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert text.index(f"Time stamp: {then}") < text.index("TST info"), "the forgery is real"
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_EXPIRED, done.stdout + done.stderr
    signed_time = tsa.token_time(tsa.token(reply.read_bytes(), "reply"))
    assert abs(signed_time - datetime.now(UTC)) < timedelta(minutes=5)
    assert f"existed at {signed_time.isoformat()}" in done.stdout
    step6 = run_readme(run_dir, (6,), {"tsa-ca.pem": keys.ca.cert_path})
    assert step6.returncode == 0 and then not in step6.stdout
    assert step6.stdout.count("Time stamp:") == 1


def test_a_reply_that_was_not_granted_is_a_bad_timestamp(
    keys: Keys, template: Path, tmp_path: Path
) -> None:
    run_dir = signed(template, tmp_path, signer_of(keys.signer))
    # TimeStampResp { status PKIStatusInfo { status rejection (2) } }, and no token.
    (run_dir / manifest.TIMESTAMP).write_bytes(bytes.fromhex("30053003020102"))
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_BAD_TIMESTAMP, done.stdout
    assert "did not grant: status rejection" in done.stdout


# -- 4. a signed run is exactly its regular files --


def _link(target: str, name: str) -> Callable[[Path], None]:
    return lambda run_dir: (run_dir / "evidence" / name).symlink_to(target)


def _fifo(run_dir: Path) -> None:
    os.mkfifo(run_dir / "evidence" / "pipe")


def _dir_with_link(run_dir: Path) -> None:
    (run_dir / "extra").mkdir()
    (run_dir / "extra" / "link").symlink_to("../results.json")


def _changed(run_dir: Path) -> None:
    with (run_dir / "results.json").open("a") as f:
        f.write(" ")


CASES = [
    ("symlink to file", _link("../results.json", "copy.json"), verify.EXIT_ADDED,
     "evidence/copy.json is a symlink"),
    ("symlink to dir", _link("/etc", "etc"), verify.EXIT_ADDED, "evidence/etc is a symlink"),
    ("dangling symlink", _link("/nonexistent", "gone"), verify.EXIT_ADDED,
     "evidence/gone is a symlink"),
    ("fifo", _fifo, verify.EXIT_ADDED, "evidence/pipe is a FIFO"),
    ("empty dir", lambda d: (d / "evidence" / "empty" / "deeper").mkdir(parents=True),
     verify.EXIT_ADDED, "evidence/empty/ is a directory holding no file"),
    ("dir holding only a symlink", _dir_with_link, verify.EXIT_ADDED, "extra/link is a symlink"),
    ("added file", lambda d: (d / "planted.txt").write_text("x"), verify.EXIT_ADDED,
     "added: planted.txt is not listed"),
    ("changed file", _changed, verify.EXIT_CHANGED, "changed: results.json"),
    ("missing file", lambda d: (d / "report.html").unlink(), verify.EXIT_MISSING,
     "missing: report.html"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "code", "said"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_walguard_and_the_readme_agree_on_what_a_run_holds(
    keys: Keys, template: Path, tmp_path: Path,
    change: Callable[[Path], None], code: int, said: str,
) -> None:  # fmt: skip
    run_dir = signed(template, tmp_path, signer_of(keys.signer))
    assert openssl_verdict(run_dir, keys.ca.cert_path)
    change(run_dir)
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == code, done.stdout + done.stderr
    assert said in done.stdout
    assert not openssl_verdict(run_dir, keys.ca.cert_path)


def test_a_directory_holding_anything_but_regular_files_is_not_signed(
    keys: Keys, template: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    subprocess.run(["cp", "-a", str(template), str(run_dir)], check=True)
    (run_dir / "evidence" / "link").symlink_to("/etc/passwd")
    with pytest.raises(manifest.StrayEntry, match="evidence/link is a symlink"):
        manifest.render(run_dir, {})
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "sign", str(run_dir),
         "--sign-key", str(keys.signer.key_path), "--sign-cert", str(keys.signer.cert_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 7 and "evidence/link is a symlink" in done.stderr  # not signed
    assert "Traceback" not in done.stderr and not (run_dir / manifest.SIGNATURE).exists()
