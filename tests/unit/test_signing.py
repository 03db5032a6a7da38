"""Signed runs: walguard verify and the README's plain OpenSSL commands reach the same verdict,
and each tampering is named with its own exit status."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests import pki, signed_runs
from tests.signed_runs import TAMPERING
from walguard.report import synthetic, writer
from walguard.signing import manifest, signer, verify


@dataclass(frozen=True)
class Pki:
    dir: Path
    ca: pki.Issued
    signer: pki.Issued
    other_ca: pki.Issued
    stranger: pki.Issued  # a signer certified by the other CA
    expired: pki.Issued
    server: pki.Issued  # a TLS server certificate of the same CA: may not sign


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca(d)
    other = pki.make_ca(d, "another CA")
    return Pki(
        d,
        ca,
        pki.issue(d, ca, "walguard run signer"),
        other,
        pki.issue(d, other, "someone else"),
        pki.issue(d, ca, "expired signer", days=(-30, -1)),
        pki.issue(d, ca, "db1.bank.internal", profile="server"),
    )


@pytest.fixture(scope="module")
def template_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return signed_runs.template_run(tmp_path_factory.mktemp("runs"))


_signed = signed_runs.signed
_signer = signed_runs.signer_of
openssl_verdict = signed_runs.openssl_verdict
walguard_verify = signed_runs.walguard_verify


def test_a_signed_run_verifies_with_walguard_and_openssl(
    keys: Pki, template_run: Path, tmp_path: Path
) -> None:
    run_dir = _signed(template_run, tmp_path, _signer(keys.signer))
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified" in done.stdout
    assert openssl_verdict(run_dir, keys.ca.cert_path)
    text = (run_dir / "manifest").read_text()
    assert "# run: " in text and "# operator: " in text and "# inventory_sha256: " in text
    assert "report.html" in text and "evidence/db0000/collector.txt" in text
    assert "manifest.p7s" not in text.split("# tsa_url")[1]


@pytest.mark.parametrize(("change", "code", "named"), [t[1:] for t in TAMPERING],
                         ids=[t[0] for t in TAMPERING])  # fmt: skip
def test_each_tampering_is_named_and_openssl_agrees(
    keys: Pki,
    template_run: Path,
    tmp_path: Path,
    change: Callable[[Path], None],
    code: int,
    named: str,
) -> None:
    run_dir = _signed(template_run, tmp_path, _signer(keys.signer))
    change(run_dir)
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == code, done.stdout + done.stderr
    assert f"FAIL  {named}" in done.stdout
    assert not openssl_verdict(run_dir, keys.ca.cert_path)


def test_a_signature_by_another_key_is_a_bad_signature(
    keys: Pki, template_run: Path, tmp_path: Path
) -> None:
    """The signer's certificate, but the signature made with some other key."""
    forged = signer.Signer(keys.stranger.key, keys.signer.cert)
    run_dir = _signed(template_run, tmp_path, forged)
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_BAD_SIGNATURE, done.stdout
    assert not openssl_verdict(run_dir, keys.ca.cert_path)


def test_a_signer_from_another_ca_is_untrusted(
    keys: Pki, template_run: Path, tmp_path: Path
) -> None:
    run_dir = _signed(template_run, tmp_path, _signer(keys.stranger))
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_UNTRUSTED, done.stdout
    assert "untrusted certificate" in done.stdout
    assert not openssl_verdict(run_dir, keys.ca.cert_path)
    # ... and the same run verifies against its own CA: the verdict is about trust, not bytes.
    assert walguard_verify(run_dir, keys.other_ca.cert_path).returncode == 0


def test_an_expired_signer_certificate_is_named(
    keys: Pki, template_run: Path, tmp_path: Path
) -> None:
    run_dir = _signed(template_run, tmp_path, _signer(keys.expired))
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_EXPIRED, done.stdout
    assert "expired certificate" in done.stdout and "expired" in done.stdout.split("(")[-1]
    assert not openssl_verdict(run_dir, keys.ca.cert_path)


def test_an_unsigned_run_is_not_verified(template_run: Path, keys: Pki) -> None:
    done = walguard_verify(template_run, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_UNSIGNED
    assert "manifest" in done.stdout


@pytest.fixture(scope="module")
def tsa_url(keys: Pki) -> Iterator[str]:
    with pki.local_tsa(keys.dir / "tsa", keys.ca) as url:
        yield url


def test_a_timestamp_from_a_local_tsa_verifies(
    keys: Pki, template_run: Path, tmp_path: Path, tsa_url: str
) -> None:
    run_dir = _signed(template_run, tmp_path, _signer(keys.signer), tsa_url)
    assert (run_dir / manifest.TIMESTAMP).is_file()
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK    timestamp: manifest.p7s existed at" in done.stdout
    ts = subprocess.run(
        ["openssl", "ts", "-verify", "-data", "manifest.p7s", "-in", "manifest.p7s.tsr",
         "-CAfile", str(keys.ca.cert_path)],
        cwd=run_dir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ts.returncode == 0, ts.stderr


def test_a_bad_or_missing_timestamp_is_named(
    keys: Pki, template_run: Path, tmp_path: Path, tsa_url: str
) -> None:
    run_dir = _signed(template_run, tmp_path, _signer(keys.signer), tsa_url)
    token = run_dir / manifest.TIMESTAMP
    # A timestamp of some other data: valid token, wrong imprint.
    other = tmp_path / "other.tsr"
    (tmp_path / "x").write_bytes(b"something else")
    from walguard.signing import tsa

    other.write_bytes(tsa.request(tsa_url, tmp_path / "x"))
    shutil.copy(other, token)
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_BAD_TIMESTAMP, done.stdout
    token.unlink()
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_BAD_TIMESTAMP, done.stdout
    assert "is missing" in done.stdout


# -- key material: clear errors, never a traceback, never the key in the run --


def _load(**given: str | None) -> signer.Signer:
    return signer.load(signer.SignOptions(**given))


def test_missing_key_file(keys: Pki, tmp_path: Path) -> None:
    with pytest.raises(signer.SignerError, match="no such file"):
        _load(key=str(tmp_path / "nope.key"), cert=str(keys.signer.cert_path))


def test_key_of_another_certificate(keys: Pki) -> None:
    with pytest.raises(signer.SignerError, match="does not belong to the certificate"):
        _load(key=str(keys.stranger.key_path), cert=str(keys.signer.cert_path))


def test_expired_certificate_is_refused_before_signing(keys: Pki) -> None:
    with pytest.raises(signer.SignerError, match="expired on"):
        _load(key=str(keys.expired.key_path), cert=str(keys.expired.cert_path))


def test_encrypted_key_needs_the_right_password(keys: Pki, tmp_path: Path) -> None:
    enc = tmp_path / "enc.key"
    enc.write_bytes(keys.signer.key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"right horse"),
    ))  # fmt: skip
    cert = str(keys.signer.cert_path)
    with pytest.raises(signer.SignerError, match="is encrypted"):
        _load(key=str(enc), cert=cert)
    wrong = tmp_path / "wrong"
    wrong.write_text("battery staple\n")
    with pytest.raises(signer.SignerError, match="wrong password"):
        _load(key=str(enc), cert=cert, password_file=str(wrong))
    right = tmp_path / "right"
    right.write_text("right horse\n")
    assert _load(key=str(enc), cert=cert, password_file=str(right)).cert == keys.signer.cert


def test_pkcs12_signs_and_verifies(keys: Pki, template_run: Path, tmp_path: Path) -> None:
    p12 = tmp_path / "signer.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"signer", keys.signer.key, keys.signer.cert, None,
        serialization.BestAvailableEncryption(b"p12 secret"),
    ))  # fmt: skip
    with pytest.raises(signer.SignerError, match="wrong password"):
        _load(pkcs12=str(p12), password_file=str(_secret(tmp_path, "nope")))
    loaded = _load(pkcs12=str(p12), password_file=str(_secret(tmp_path, "p12 secret")))
    run_dir = _signed(template_run, tmp_path, loaded)
    assert walguard_verify(run_dir, keys.ca.cert_path).returncode == 0
    key_pem = keys.signer.key_path.read_bytes()
    for path in run_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"PRIVATE KEY" not in data and key_pem not in data, path


def _secret(tmp_path: Path, value: str) -> Path:
    path = tmp_path / f"pw-{abs(hash(value))}"
    path.write_text(value + "\n")
    return path


def test_sign_command_signs_a_written_run(keys: Pki, template_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(template_run, run_dir)
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "sign", str(run_dir),
         "--sign-key", str(keys.signer.key_path), "--sign-cert", str(keys.signer.cert_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "walguard run signer" in (run_dir / "report.html").read_text()
    assert walguard_verify(run_dir, keys.ca.cert_path).returncode == 0
    bad = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "sign", str(tmp_path / "run"),
         "--sign-key", str(tmp_path / "missing.key"), "--sign-cert", str(keys.signer.cert_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == verify.EXIT_USAGE
    assert "Traceback" not in bad.stderr


def test_manifest_paths_with_odd_characters_agree_with_sha256sum(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "evidence").mkdir(parents=True)
    for name in ("plain.txt", "back\\slash.txt", "new\nline.txt", "sp ace.txt"):
        (run_dir / "evidence" / name).write_text(name)
    manifest.write(run_dir, {"run": "x"})
    done = subprocess.run(["sha256sum", "-c", "--strict", "manifest"], cwd=run_dir,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    parsed = manifest.parse((run_dir / "manifest").read_bytes())
    assert set(parsed.files) == set(manifest.run_files(run_dir))
    assert manifest.check(run_dir, parsed).ok()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--sign-key", "/nonexistent/signer.key", "--sign-cert", "CERT"], "no such file"),
        (["--sign-key", "OTHER_KEY", "--sign-cert", "CERT"], "does not belong"),
        (["--sign-key", "EXPIRED_KEY", "--sign-cert", "EXPIRED_CERT"], "expired on"),
        (["--sign-key", "SERVER_KEY", "--sign-cert", "SERVER_CERT"], "key usage serverAuth"),
        (["--tsa-url", "http://127.0.0.1:9/tsa"], "give a signing key too"),
    ],
)
def test_audit_with_unusable_key_stops_before_any_host(
    keys: Pki, tmp_path: Path, args: list[str], said: str
) -> None:
    """Exit 4 with one line, no traceback, no run directory: no host was contacted (the
    inventory's only host is in TEST-NET-1, where nothing answers)."""
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    far:\n      ansible_host: 192.0.2.1\n")
    paths = {
        "CERT": keys.signer.cert_path,
        "OTHER_KEY": keys.stranger.key_path,
        "EXPIRED_KEY": keys.expired.key_path,
        "EXPIRED_CERT": keys.expired.cert_path,
        "SERVER_KEY": keys.server.key_path,
        "SERVER_CERT": keys.server.cert_path,
    }
    argv = [str(paths.get(a, a)) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inventory),
         "--report-root", str(tmp_path / "reports"), *argv],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "reports").exists()


def test_manifest_lines_outside_the_run_directory_are_refused() -> None:
    data = (
        "# walguard-manifest/1\n"
        f"{'0' * 64}  ../../etc/passwd\n{'1' * 64}  /etc/shadow\n{'2' * 64}  report.html\n"
    ).encode()
    parsed = manifest.parse(data)
    assert list(parsed.files) == ["report.html"]
    assert len(parsed.malformed) == 2


def test_a_tsa_that_does_not_answer_leaves_a_signed_run_without_its_promised_timestamp(
    keys: Pki, tmp_path: Path
) -> None:
    """The writer says why (the plugin then exits 7); verify names the missing timestamp."""
    run_dir = synthetic.new_run_dir(tmp_path)
    run, _, info = synthetic.make_run(run_dir, 3, 25)
    dead = "http://127.0.0.1:9/tsa"  # the discard port: nothing listens
    signing = writer.Signing(_signer(keys.signer), dead)
    failed = writer.write_run(run, run.complete("x"), info, code=0, gate=0, signing=signing)
    assert failed is not None and "no timestamp" in failed and dead in failed
    assert (run_dir / manifest.SIGNATURE).is_file()
    assert not (run_dir / manifest.TIMESTAMP).exists()
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == verify.EXIT_BAD_TIMESTAMP, done.stdout
    page = (run_dir / "report.html").read_text()
    assert f"An RFC 3161 timestamp of the signature was requested from {dead}" in page


def test_a_timestamp_keeps_a_run_verifiable_after_its_signer_certificate_expired(
    keys: Pki, template_run: Path, tmp_path: Path
) -> None:
    """Signed two days ago by a certificate that expired yesterday: walguard judges the chain at
    the timestamp's time (verified); plain openssl at now refuses until given -attime."""
    lapsed = pki.issue(tmp_path, keys.ca, "lapsed signer", days=(-3, -1))
    with pki.local_tsa(tmp_path / "old-tsa", keys.ca, ago="2 days ago") as url:
        run_dir = _signed(template_run, tmp_path, _signer(lapsed), url)
    done = walguard_verify(run_dir, keys.ca.cert_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid at the timestamp's time" in done.stdout
    assert not openssl_verdict(run_dir, keys.ca.cert_path)  # at now: expired
    from walguard.signing import tsa

    when = tsa.token_time(tsa.token((run_dir / manifest.TIMESTAMP).read_bytes(), "reply"))
    attime = subprocess.run(
        ["openssl", *verify.cms_command(run_dir, keys.ca.cert_path, int(when.timestamp()))],
        capture_output=True, check=False,
    )  # fmt: skip
    assert attime.returncode == 0
    # The same run without its timestamp: judged now, the certificate has expired.
    (run_dir / manifest.TIMESTAMP).unlink()
    assert walguard_verify(run_dir, keys.ca.cert_path).returncode == verify.EXIT_BAD_TIMESTAMP
