"""SELinux: on RHEL, PostgreSQL is confined as postgresql_t and may only write where files carry
postgresql_db_t. A freshly mounted /pg_archive carries unlabeled_t or default_t, and chown is not
enough: the label must be set, and set persistently (semanage fcontext + restorecon)."""

from __future__ import annotations

from walguard.controls import NotApplicable, control, fail
from walguard.facts.archive_dir import ArchiveDir
from walguard.facts.selinux import SelinuxFacts, rule_covers
from walguard.policy.model import Policy

REFS = ("BSI SYS.1.3.A10", "CIS RHEL 1.6", "DORA Art. 9")


def require_selinux(sel: SelinuxFacts, policy: Policy) -> None:
    """SELinux off is a failure, unless the policy explicitly says it is not required here."""
    if policy.selinux_required and not sel.enabled:
        fail("SELinux is disabled")
    if not sel.enabled:
        raise NotApplicable(
            "SELinux is not required on this host (walguard_selinux_required: false)"
        )


@control(
    "WG-SEL-001",
    "SELinux is enforcing now and at boot, with the expected policy",
    severity="high",
    refs=REFS,
    reads=("selinux_enforce", "getenforce", "selinux_config"),
    rationale="Permissive or disabled SELinux confines nothing; a config file that says "
    "otherwise turns it off at the next boot.",
    detail="SELinux enforcing now (getenforce) and at boot (/etc/selinux/config), expected policy "
    "type",
)
def test_selinux_enforcing(selinux: SelinuxFacts, policy: Policy) -> None:
    require_selinux(selinux, policy)
    if not selinux.enforcing:
        fail("SELinux is permissive now (getenforce: Permissive)")
    if selinux.config_mode != "enforcing":
        fail(
            f"SELinux will not enforce after a reboot: /etc/selinux/config has "
            f"SELINUX={selinux.config_mode}"
        )
    if selinux.config_type != policy.selinux_type:
        fail(
            f"/etc/selinux/config has SELINUXTYPE={selinux.config_type}, "
            f"expected {policy.selinux_type}"
        )
    if selinux.loaded_policy != policy.selinux_type:
        fail(f"the loaded policy is {selinux.loaded_policy!r}, expected {policy.selinux_type!r}")


@control(
    "WG-SEL-002",
    "PostgreSQL runs confined in its SELinux domain",
    severity="high",
    refs=REFS,
    reads=("ps_context",),
    rationale="An unconfined PostgreSQL (e.g. started by hand) escapes the policy that "
    "protects the archive and the data directory.",
    detail="PostgreSQL runs confined (`ps -eZ` shows postgresql_t)",
)
def test_postgres_confined(selinux: SelinuxFacts, policy: Policy) -> None:
    require_selinux(selinux, policy)
    domains = sorted(selinux.postgres_domains)
    if not domains:
        fail("no postgres process is running (ps -eZ), so its domain cannot be checked")
    if domains != [policy.selinux_postgres_domain]:
        fail(
            f"postgres runs as {', '.join(domains)}, "
            f"not confined as {policy.selinux_postgres_domain}"
        )


@control(
    "WG-SEL-003",
    "a persistent local file-context rule covers the archive directory",
    severity="high",
    refs=REFS,
    remediation="WG-SEL-003.sh",
    reads=("fcontext_local",),
    rationale="Without a `semanage fcontext` rule the label is not part of the policy: the "
    "next relabel (restorecon, autorelabel) puts the wrong type back.",
    detail="a persistent local file-context rule covers the archive dir (`semanage fcontext -l "
    "-C`)",
)
def test_fcontext_rule(selinux: SelinuxFacts, policy: Policy, archive: ArchiveDir) -> None:
    require_selinux(selinux, policy)
    covering = [r for r in selinux.local_rules if rule_covers(r, archive.real_path or archive.path)]
    if not covering:
        fail(
            f"no local file-context rule (semanage fcontext -l -C) covers {archive.path}(/.*)?: "
            f"its label is not persistent"
        )
    if covering[-1].type != policy.selinux_archive_type:
        fail(
            f"the local rule {covering[-1].regex} gives {covering[-1].type}, expected "
            f"{policy.selinux_archive_type}"
        )


@control(
    "WG-SEL-004",
    "the archive directory and archived files carry the archive label",
    severity="critical",
    refs=REFS,
    remediation="WG-SEL-004.sh",
    reads=("archive_context", "archive_file_contexts"),
    rationale="postgresql_t may only write postgresql_db_t: any other label makes every "
    "archive attempt fail with Permission denied, whatever the file modes say.",
    detail="the archive dir and archived files carry postgresql_db_t",
)
def test_archive_labelled(selinux: SelinuxFacts, policy: Policy, archive: ArchiveDir) -> None:
    require_selinux(selinux, policy)
    want = policy.selinux_archive_type
    if selinux.archive_type != want:
        fail(
            f"{archive.path} is labelled {selinux.archive_type}, PostgreSQL "
            f"({policy.selinux_postgres_domain}) can only write {want} there"
        )
    wrong = sorted(n for n, t in (selinux.archive_file_types or {}).items() if t != want)
    if wrong:
        fail(f"{len(wrong)} archived files are not labelled {want}, e.g. {wrong[0]}")


@control(
    "WG-SEL-005",
    "the archive label survives a relabel (no drift from the policy)",
    severity="high",
    refs=REFS,
    remediation="WG-SEL-005.sh",
    reads=("matchpathcon", "restorecon_dryrun"),
    rationale="A label set with chcon looks right until the next relabel resets it; only "
    "a label the policy itself assigns is persistent.",
    detail="the label survives a relabel (`matchpathcon`, `restorecon -n -v`): chcon alone fails",
)
def test_label_persistent(selinux: SelinuxFacts, policy: Policy, archive: ArchiveDir) -> None:
    require_selinux(selinux, policy)
    if selinux.expected_archive_type != policy.selinux_archive_type:
        fail(
            f"the label of {archive.path} is not persistent: the policy would relabel it "
            f"{selinux.expected_archive_type} (matchpathcon), so a relabel undoes a chcon-only fix"
        )
    if selinux.relabel_drift:
        fail(
            f"restorecon would relabel {len(selinux.relabel_drift)} paths: "
            f"{selinux.relabel_drift[0]}"
        )


@control(
    "WG-SEL-006",
    "no unresolved AVC denials for PostgreSQL since boot",
    severity="high",
    refs=REFS,
    reads=("avc",),
    rationale="A denial for postgresql_t is PostgreSQL failing at something right now; "
    "boot-time noise of other domains is ignored.",
    detail="no unresolved AVC denials for postgresql_t since boot (`ausearch --input-logs`)",
)
def test_no_avc_denials(selinux: SelinuxFacts, policy: Policy, archive: ArchiveDir) -> None:
    require_selinux(selinux, policy)
    dev = archive.mount_source.rsplit("/", 1)[-1]
    archive_fixed = (
        selinux.archive_type == policy.selinux_archive_type and not selinux.relabel_drift
    )
    unresolved = [
        a
        for a in selinux.avcs
        if a.source_type == policy.selinux_postgres_domain
        and not a.permissive
        # Denials on the archive volume end once it carries the right, persistent label.
        and not (archive_fixed and dev and a.dev == dev)
    ]
    if unresolved:
        fail(
            f"{len(unresolved)} AVC denials for {policy.selinux_postgres_domain} since boot, e.g. "
            f"{{{' '.join(unresolved[0].denied)}}} on {unresolved[0].name or '?'} "
            f"({unresolved[0].tclass}, labelled {unresolved[0].target_type}) "
            f"by {unresolved[0].comm}"
        )
