# control: WG-SYS-006
# changes: runs systemctl daemon-reload when the PostgreSQL unit's files changed on disk, after
#   systemd-analyze verify accepts the unit. A deleted (upgraded) server binary needs a restart:
#   refused, it is the operator's to plan.
# disruptive: no (daemon-reload restarts nothing)
exe=$(readlink "/proc/$(systemctl show -p MainPID --value -- "$WG_SERVICE")/exe" || true)
case $exe in
  *" (deleted)") die "the running server binary ${exe% (deleted)} was replaced: only a restart activates the new one (plan it)" ;;
esac
if [ "$(systemctl show -p NeedDaemonReload --value -- "$WG_SERVICE")" = yes ]; then
  if ! out=$(systemd-analyze verify -- "$WG_SERVICE" 2>&1); then
    die "systemd-analyze verify rejects $WG_SERVICE's changed files: $out"
  fi
  change "systemctl daemon-reload ($WG_SERVICE's unit files changed on disk)" systemctl daemon-reload
fi
finish
