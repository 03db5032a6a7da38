# control: WG-NET-003
# changes: loads the host's persisted firewall ruleset (/etc/nftables.conf) when nftables is the
#   firewall and its ruleset is gone. Refuses when firewalld manages the host, when the file is
#   missing or empty, or when nft -c rejects it (loading it could lock the host out).
# disruptive: no (restores the configured rules)
conf=/etc/nftables.conf
if systemctl is-active -q firewalld.service; then
  die "firewalld manages this host's firewall: reload it with firewall-cmd --reload after review"
fi
[ -s "$conf" ] || die "$conf is missing or empty: there is no persisted ruleset to restore"
nft -c -f "$conf" >/dev/null 2>&1 || die "nft -c rejects $conf: loading it could break access"
grep -q 'hook input' "$conf" || die "$conf has no input chain: loading it would not filter"
if ! nft list ruleset 2>/dev/null | grep -q 'hook input'; then
  change "load the persisted ruleset from $conf (nft -f)" nft -f "$conf"
fi
finish
