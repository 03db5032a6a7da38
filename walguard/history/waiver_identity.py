"""Who is who in a waivers file: the approver is the certificate that signed the file, and four
eyes means that no waiver's `author` names that same person.

Names are compared by a folded form, so that writing them differently cannot make one person two:
- NFKC (fullwidth and mathematical letters, ligatures become plain letters), then accents
  dropped (é is e) and casefolding (ß is ss);
- spaces and ASCII punctuation dropped: `j.smith`, `J Smith` and `j_smith` are `jsmith`;
- ASCII look-alikes merged, after Unicode TR39's confusables: 1, i and l read alike, as do 0 and
  o, rn and m, vv and w, cl and d.
A letter outside ASCII that is left after that (Cyrillic i U+0456, Greek omicron, a dotless
i, an invisible joiner) is refused, not compared: no library on PyPI gives a maintained TR39
skeleton without a compiled ICU, and a name in another script that looks like a Latin one is
exactly the forgery four eyes must not let through. The price: identities are written in Latin
letters.
"""

from __future__ import annotations

import hashlib
import string
import unicodedata
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

_KEEP = frozenset(string.ascii_lowercase + string.digits)
_DROP = frozenset(string.punctuation + " \t")
# TR39 confusables within ASCII, after casefolding (an uppercase I is an i by then).
_LOOK_ALIKE_CHARS = str.maketrans({"1": "l", "i": "l", "0": "o"})
_LOOK_ALIKE_RUNS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


class IdentityError(ValueError):
    """A name that cannot be compared safely, in one sentence."""


def fold(name: str) -> str:
    """The form two names are compared in; IdentityError when it cannot be made safely."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    kept = []
    for c in text:
        if c in _KEEP:
            kept.append(c)
        elif c not in _DROP:
            what = unicodedata.name(c, "a control or unassigned character")
            raise IdentityError(
                f"{name!r} holds {c!r} (U+{ord(c):04X} {what}): identities are compared in Latin "
                "letters, digits and punctuation only, so that a look-alike letter from another "
                "script cannot make one person two"
            )
    folded = "".join(kept).translate(_LOOK_ALIKE_CHARS)
    for run, same in _LOOK_ALIKE_RUNS:
        folded = folded.replace(run, same)
    if not folded:
        raise IdentityError(f"{name!r} holds no letter or digit")
    return folded


def keys(name: str) -> set[str]:
    """Every folded form a name stands for: an e-mail address also for its local part."""
    found = {fold(name)}
    local, at, _ = name.rpartition("@")
    if at and local.strip():
        found.add(fold(local))
    return found


@dataclass(frozen=True)
class Approver:
    """The person a certificate names: its subject common name, and its e-mail addresses."""

    name: str
    emails: tuple[str, ...]

    def keys(self) -> set[str]:
        return {k for n in (self.name, *self.emails) for k in keys(n)}

    def is_(self, author: str) -> bool:
        """Whether `author` names this person (under any of the certificate's names)."""
        return not keys(author).isdisjoint(self.keys())


def approver_of(cert: x509.Certificate) -> Approver:
    """The approver a certificate names; IdentityError when it names no one usable: exactly one
    subject CN is required (it is the name the run records), e-mail addresses are optional."""
    subject = cert.subject.rfc4514_string()
    cns = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(cns) != 1:
        raise IdentityError(
            f"the certificate {subject} has {len(cns)} common names (CN): the approver is named "
            "by exactly one"
        )
    emails = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails += san.get_values_for_type(x509.RFC822Name)
    except x509.ExtensionNotFound:
        pass
    found = Approver(cns[0], tuple(dict.fromkeys(emails)))
    try:
        found.keys()
    except IdentityError as exc:
        raise IdentityError(f"the certificate {subject} names its holder as {exc}") from None
    return found


@dataclass(frozen=True)
class Approval:
    """A verified approval: who signed the waivers file, with which certificate, under which CA."""

    approver: Approver
    cert: x509.Certificate
    signature: bytes  # the detached CMS signature (FILE.p7s) as verified
    ca: str

    def as_dict(self) -> dict[str, Any]:
        c = self.cert
        return {
            "approver": self.approver.name,
            "emails": list(self.approver.emails),
            "subject": c.subject.rfc4514_string(),
            "issuer": c.issuer.rfc4514_string(),
            "serial": format(c.serial_number, "x"),
            "sha256_fingerprint": c.fingerprint(hashes.SHA256()).hex(),
            "signature_sha256": hashlib.sha256(self.signature).hexdigest(),
            "ca": self.ca,
        }
