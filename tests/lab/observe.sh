#!/bin/bash
# Prints, as key=value lines, every fact the scenario tests look at: one SSH round trip.
# Runs as the audit user (sudo where the fact needs it).
q() { psql -XAt -d postgres -c "$1" 2>/dev/null || echo "?"; }
echo "archive_mode=$(q "SELECT setting || '/' || pending_restart FROM pg_settings WHERE name = 'archive_mode'")"
echo "archive_command=$(q 'SHOW archive_command')"
echo "archiver=$(q "SELECT archived_count || '/' || failed_count FROM pg_stat_archiver")"
echo "ready=$(q "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'")"
echo "dir=$(sudo -n stat -c '%U:%G %a' /pg_archive)"
echo "mount=$(findmnt -n -o FSTYPE /pg_archive || echo none)"
echo "avail=$(timeout 5 df --output=avail -B1 /pg_archive | tail -n 1 | tr -d ' ')"
echo "pg_active=$(systemctl is-active postgresql@15-main.service)"
echo "failed_units=$(systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
echo "journal_err=$(sudo -n journalctl -p err -b --no-pager -q | grep -c 'simulated I/O error')"
echo "listen=$(ss -tlnH 'sport = :5432' | awk '{print $4}' | sort | tr '\n' ' ')"
echo "pg_log_denied=$(sudo -n grep -c 'Permission denied' /var/log/postgresql/postgresql-15-main.log)"
echo "pg_log_nospace=$(sudo -n grep -c 'No space left on device' /var/log/postgresql/postgresql-15-main.log)"
echo "segments=$(sudo -n find /pg_archive -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | tr '\n' ' ')"
echo "wal_level=$(q 'SHOW wal_level')"
echo "archive_timeout=$(q 'SHOW archive_timeout')"
echo "last_archived=$(q 'SELECT last_archived_wal FROM pg_stat_archiver')"
echo "dir_exists=$(sudo -n test -d /pg_archive && echo yes || echo no)"
echo "sysid=$(q 'SELECT system_identifier FROM pg_control_system()')"
echo "timeline=$(q 'SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)')"
echo "in_recovery=$(q 'SELECT pg_is_in_recovery()')"
echo "archive_link=$(readlink /pg_archive)"
# The newest archived segment's owner and mode (WG-ACT-008's scenarios change them).
# shellcheck disable=SC2016
echo "newest_segment_perms=$(sudo -n sh -c 'f=$(find /pg_archive -maxdepth 1 -type f -regextype posix-extended -regex ".*/[0-9A-F]{24}" -printf "%f\n" | sort | tail -n 1); [ -n "$f" ] && stat -c "%U:%G %a" -- "/pg_archive/$f"')"
echo "is_mountpoint=$(mountpoint -q /pg_archive && echo yes || echo no)"
echo "same_dev_as_root=$([ "$(stat -L -c %d /pg_archive 2>/dev/null)" = "$(stat -c %d /)" ] && echo yes || echo no)"
# Archived segments (in the directory /pg_archive leads to) that are not whole segments of this
# cluster: NAME:symlink, NAME:notfile, NAME:size=BYTES or NAME:sysid=ID (the xlp_sysid at offset 24).
# shellcheck disable=SC2016
echo "odd_segments=$(sudo -n sh -c '
cd /pg_archive/ 2>/dev/null || exit 0
find . -maxdepth 1 -regextype posix-extended -regex "\./[0-9A-F]{24}" -printf "%f\n" | sort |
while read -r f; do
  if [ -L "$f" ]; then printf "%s:symlink " "$f"
  elif [ ! -f "$f" ]; then printf "%s:notfile " "$f"
  elif [ "$(stat -c %s "$f")" != "$1" ]; then printf "%s:size=%s " "$f" "$(stat -c %s "$f")"
  else
    id=$(od -An -t u8 -j 24 -N 8 "$f" | tr -d " ")
    [ "$id" = "$2" ] || printf "%s:sysid=%s " "$f" "$id"
  fi
done' sh "$(q "SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")" "$(q 'SELECT system_identifier FROM pg_control_system()')")"
echo "unit_file_state=$(systemctl show -p UnitFileState --value postgresql@15-main.service)"
echo "parent_unit_file_state=$(systemctl show -p UnitFileState --value postgresql.service)"
echo "dpkg_status=$(dpkg-query -W -f '${db:Status-Abbrev}' postgresql-15 | tr -d ' ')"
echo "lab_change_conf=$(test -f /etc/postgresql/15/main/conf.d/40-walguard-lab-change.conf && echo yes || echo no)"
echo "log_min_duration=$(q 'SHOW log_min_duration_statement')"
echo "need_daemon_reload=$(systemctl show -p NeedDaemonReload --value postgresql@15-main.service)"
echo "stray_listener=$(sudo -n ss -tlnpH 'sport = :6543' | grep -o '"[a-z]*"' | tr -d '"' | head -n 1)"
echo "nft_lines=$(sudo -n nft list ruleset | wc -l)"
echo "chrony=$(systemctl is-active chrony.service)"
echo "hosts_addr=$(getent hosts "$(hostname)" | awk '{print $1}')"
# shellcheck disable=SC2016
cert=$(sudo -n sh -c 'sed -n "s/^ssl_cert_file = .\(.*\).$/\1/p" /etc/postgresql/15/main/conf.d/30-walguard-tls.conf')
echo "cert_subject=$(sudo -n openssl x509 -noout -subject -nameopt RFC2253 -in "$cert" 2>/dev/null | sed 's/^subject=//')"
echo "cert_days_left=$(( ($(date -d "$(sudo -n openssl x509 -noout -enddate -in "$cert" | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))"
echo "postgres_exe=$(sudo -n readlink "/proc/$(systemctl show -p MainPID --value postgresql@15-main.service)/exe")"
