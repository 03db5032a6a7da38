# walguard fact collector: POSIX sh, read-only, one run per host per audit.
# Every section is raw command output framed by a per-run random token, so that nothing a file or
# command prints can forge a section boundary. The controller parses the sections; this script
# interprets nothing. Parameters arrive as environment variables (already shell-quoted by the
# controller): WG_TOKEN, WG_ARCHIVE_DIR, WG_SERVICE, WG_T (per-command timeout, seconds),
# WG_HEADERS (how many of the newest segments' headers to read), WG_ARCHIVE_CHECK (optional: the
# archiving tool's repository check from the policy), WG_PG_OWNER (who runs it), WG_RESTORE_USER
# (who restore_command runs as), WG_START_CONF (optional: Debian's start.conf of the cluster),
# WG_BACKUP_DIR (optional: where base backups are), WG_BACKUP_VERIFY (checksums or sizes) and
# WG_PGBACKREST_STANZA (optional: the stanza whose backups pgBackRest lists).
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C

section() {
  name=$1; shift
  printf '%s BEGIN %s\n' "$WG_TOKEN" "$name"
  timeout "$WG_T" "$@" 2>&1
  rc=$?
  printf '\n%s END %s %s\n' "$WG_TOKEN" "$name" "$rc"
}

section id id -u
section hostname hostname
section os_release cat /etc/os-release
section date date -u +%s
# The archive directory as configured (a symlink is reported) and as it really is: every other
# archive fact is read from the real directory, so a symlinked directory is judged, not skipped.
section archive_lstat stat -c '%F' -- "$WG_ARCHIVE_DIR"
R=$(readlink -f -- "$WG_ARCHIVE_DIR" 2>/dev/null) || R=
[ -n "$R" ] || R=$WG_ARCHIVE_DIR
section archive_realpath printf '%s' "$R"
section archive_stat stat -L -c '%U|%G|%a|%F|%u|%g' -- "$R"
section archive_mount findmnt -n -P -T "$R" -o TARGET,SOURCE,FSTYPE,OPTIONS,MAJ:MIN,FSROOT
section root_mount findmnt -n -P -T / -o TARGET,SOURCE,FSTYPE,OPTIONS,MAJ:MIN,FSROOT
section mounts findmnt -n -P -o TARGET,SOURCE,FSTYPE,OPTIONS,MAJ:MIN,FSROOT
section archive_df df -P -B1 -- "$R"
# The archiver's statistics, read before the archive is listed (a segment archived while the
# host is read is then newer than the listing, never missing from it); configuration as the
# server sees it (pg_file_settings is readable by superusers only: asked as the cluster's owner
# over its Unix socket), the files' modification times, and TLS. One psql run for all six
# queries (each psql start and server backend costs the host about 50 ms of CPU);
# its parts are framed by the token, and each becomes the section it always was.
# shellcheck disable=SC2016  # SQL dollar quotes, not shell expansions
PGOUT=$(timeout "$WG_T" runuser -u "$WG_PG_OWNER" -- psql -XAtq -v ON_ERROR_STOP=1 -F "|" \
  -h "$WG_PG_SOCKET_DIR" -p "$WG_PG_PORT" -d postgres \
  -c "\\echo $WG_TOKEN PART archiver" \
  -c "SELECT archived_count, coalesce(last_archived_wal, '') FROM pg_stat_archiver" \
  -c "\\echo $WG_TOKEN PART load" \
  -c "SELECT extract(epoch FROM pg_conf_load_time())" \
  -c "\\echo $WG_TOKEN PART settings" \
  -c "SELECT seqno, sourcefile, sourceline, name, applied, coalesce(error, '') FROM pg_file_settings ORDER BY seqno" \
  -c "\\echo $WG_TOKEN PART files" \
  -c 'SELECT DISTINCT sourcefile FROM pg_file_settings WHERE sourcefile IS NOT NULL
      UNION SELECT setting FROM pg_settings WHERE name IN ($$hba_file$$, $$ident_file$$)' \
  -c "\\echo $WG_TOKEN PART cert" \
  -c 'SELECT CASE WHEN current_setting($$ssl$$) = $$on$$ THEN
      CASE WHEN current_setting($$ssl_cert_file$$) LIKE $$/%$$ THEN current_setting($$ssl_cert_file$$)
      ELSE current_setting($$data_directory$$) || $$/$$ || current_setting($$ssl_cert_file$$) END END' \
  -c "\\echo $WG_TOKEN PART position" \
  -c 'SELECT CASE WHEN pg_is_in_recovery() THEN $$standby$$ ELSE concat_ws($$|$$,
      pg_walfile_name(pg_current_wal_lsn()), current_setting($$data_directory$$),
      extract(epoch FROM clock_timestamp()),
      (SELECT coalesce(last_archived_wal, $$$$) FROM pg_stat_archiver)) END' \
  -c "\\echo $WG_TOKEN PART end" 2>&1)
PGRC=$?
# One part of psql's output: the lines between its marker and the next.
pg_part() {
  printf '%s\n' "$PGOUT" | awk -v want="$WG_TOKEN PART $1" -v mark="$WG_TOKEN PART " \
    'index($0, mark) == 1 { on = ($0 == want); next } on'
}
# A section from a part: what the part's command printed, or psql's failure for every part.
pg_section() {
  name=$1; shift
  if [ "$PGRC" -ne 0 ]; then
    printf '%s BEGIN %s\n%s\n%s END %s %s\n' "$WG_TOKEN" "$name" "$PGOUT" "$WG_TOKEN" "$name" "$PGRC"
    return
  fi
  section "$name" "$@"
}
pg_section archiver_before printf '%s\n' "$(pg_part archiver)"
section archive_files find "$R" -mindepth 1 -maxdepth 1 -printf '%f|%y|%s|%T@\n'
# Who owns each archived file and its mode, and who the restore runs as (WG-ACT-008).
section archive_perms find "$R" -mindepth 1 -maxdepth 1 -printf '%f|%u|%g|%U|%G|%m\n'
section restore_user id -- "$WG_RESTORE_USER"
# The first 40 bytes of the newest segments (the WAL long page header: timeline, address,
# system identifier, segment size), as hex: a partial copy or another cluster's file shows here.
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
HEADERS='find "$1" -mindepth 1 -maxdepth 1 -type f -name "????????????????????????" -printf "%f\n" |
  grep -E "^[0-9A-F]{24}$" | sort | tail -n "$2" | while read -r f; do
    printf "%s|" "$f"; od -A n -v -t x1 -N 40 -- "$1/$f" | tr -d " \n"; printf "\n"
  done'
section segment_headers /bin/sh -c "$HEADERS" sh "$R" "${WG_HEADERS:-5}"
# Timeline history files are small: their contents give the chain the gap check follows.
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
HISTORIES='for f in "$1"/*.history; do
    [ -f "$f" ] || continue
    printf "== %s\n" "${f##*/}"; head -c 65536 -- "$f"; printf "\n"
  done'
section history_files /bin/sh -c "$HISTORIES" sh "$R"
if [ -n "${WG_ARCHIVE_CHECK:-}" ]; then
  # The archiving tool's own repository check, named by the policy (validated there: a known
  # tool, no shell syntax), run as the cluster's owner with its words as arguments.
  set -f
  # shellcheck disable=SC2086  # the words of a validated command line, split on purpose
  section archive_check runuser -u "$WG_PG_OWNER" -- $WG_ARCHIVE_CHECK
  set +f
fi
# The running server's own client programs (pg_verifybackup, pg_waldump): its binary's directory,
# so that they read its WAL and backup formats; PATH's as a fallback.
PGBIN=$(readlink "/proc/$(systemctl show -p MainPID --value -- "$WG_SERVICE")/exe" 2>/dev/null)
PGBIN=${PGBIN% (deleted)}; PGBIN=${PGBIN%/*}
pgbin() {
  if [ -n "$PGBIN" ] && [ -x "$PGBIN/$1" ]; then printf '%s' "$PGBIN/$1"
  else command -v "$1" || printf '%s' "$1"; fi
}
if [ -n "${WG_BACKUP_DIR:-}" ]; then
  # Base backups (WG-RST-001), read as the cluster's owner: each backup directory's name, its
  # format and backup_label (a tar backup's label is its base.tar's member), and its manifest.
  # shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
  BACKUPS='[ -d "$1" ] || { echo "no such directory: $1"; exit 2; }
    [ -r "$1" ] && [ -x "$1" ] || { echo "cannot read $1"; exit 2; }
    for d in "$1"/*; do
      [ -d "$d" ] || continue
      printf "== %s|%s\n" "${d##*/}" "$(stat -c %Y -- "$d")"
      if [ -f "$d/backup_label" ]; then echo "format plain"; head -c 4096 -- "$d/backup_label"
      elif [ -f "$d/base.tar" ]; then echo "format tar"
        tar -xOf "$d/base.tar" --occurrence=1 backup_label 2>&1 | head -c 4096
      elif [ -f "$d/base.tar.gz" ]; then echo "format tar"
        tar -xzOf "$d/base.tar.gz" --occurrence=1 backup_label 2>&1 | head -c 4096
      else echo "format unknown"; fi
      [ -f "$d/backup_manifest" ] && echo "manifest"
    done; exit 0'
  section base_backups runuser -u "$WG_PG_OWNER" -- /bin/sh -c "$BACKUPS" sh "$WG_BACKUP_DIR"
  # The newest plain-format backup (by its label's START TIME) checked by the server's own
  # pg_verifybackup against its manifest, with the WAL it needs parsed from the archive.
  # shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
  VERIFY='best=; at=
    for d in "$1"/*; do
      [ -f "$d/backup_label" ] || continue
      t=$(sed -n "s/^START TIME: //p" "$d/backup_label" | head -n 1)
      if [ -z "$best" ] || expr "$t" \> "$at" >/dev/null; then best=$d; at=$t; fi
    done
    [ -n "$best" ] || { echo "no plain-format backup to verify"; exit 0; }
    printf "== %s\n" "${best##*/}"
    [ -x "$4" ] || { echo "pg_verifybackup not found: $4"; exit 127; }
    if [ "$3" = sizes ]; then exec "$4" -s -w "$2" -- "$best"; fi
    exec "$4" -w "$2" -- "$best"'
  section base_backup_verify runuser -u "$WG_PG_OWNER" -- /bin/sh -c "$VERIFY" sh \
    "$WG_BACKUP_DIR" "$R" "${WG_BACKUP_VERIFY:-checksums}" "$(pgbin pg_verifybackup)"
fi
if [ -n "${WG_PGBACKREST_STANZA:-}" ]; then
  # Base backups taken by pgBackRest (WG-RST-001): its own account of the stanza, backups and
  # archive as JSON, run as the cluster's owner (who reads its configuration and repository).
  section pgbackrest_info runuser -u "$WG_PG_OWNER" -- pgbackrest \
    "--stanza=$WG_PGBACKREST_STANZA" --output=json info
fi
# The data-loss window (WG-RST-002), read from the WAL records with the server's pg_waldump as
# the cluster's owner: the commits in the newest archived segments, and the oldest and newest
# commits after the last archived segment (the older of what the server reports archived and the
# archive's newest whole segment) up to the server's current WAL file.
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
WINDOW='
  segs() {
    find "$1" -mindepth 1 -maxdepth 1 -type f -name "????????????????????????" -printf "%f\n" \
      2>/dev/null | grep -E "^[0-9A-F]{24}$" | sort
  }
  # A segment through pg_waldump ($1 directory, $2 segment, $3 first or last, $4 pg_waldump): its
  # first (or last) commit record, else the last line that is no record (an error); a
  # reader that stops at the first commit ends pg_waldump early.
  look() {
    TZ=UTC "$4" -r Transaction -p "$1" -- "$2" 2>&1 | awk -v mode="$3" "
      /desc: COMMIT/ { c = \$0; if (mode == \"first\") exit; next }
      !/^rmgr: / { e = \$0 }
      END { if (c != \"\") print \"commit \" substr(c, 1, 300); else if (e != \"\") print \"error \" e; else print \"none\" }"
  }
  last=$(printf "%s" "$4" | cut -c 1-24 | grep -E "^[0-9A-F]{24}$")
  newest=$(segs "$1" | tail -n 1)
  echo "server-archived $last"; echo "archive-newest $newest"
  b=$last
  if [ -n "$newest" ] && { [ -z "$b" ] || expr "$newest" \< "$b" >/dev/null; }; then b=$newest; fi
  echo "boundary $b"
  [ -n "$b" ] || exit 0
  [ -x "$5" ] || { echo "pg_waldump not found: $5"; exit 127; }
  # awk compares as strings only what is made one: 24 hex digits can read as a number.
  { segs "$1"; segs "$2"; } | sort -ru | awk -v b="$b" "(\$0 \"\") <= (b \"\")" | head -n 3 | while read -r s; do
    if [ -f "$1/$s" ]; then d=$1; else d=$2; fi
    printf "archived-commit %s|%s\n" "$s" "$(look "$d" "$s" last "$5")"
  done
  after=$(segs "$2" | awk -v b="$b" -v c="$3" "(\$0 \"\") > (b \"\") && (\$0 \"\") <= (c \"\")")
  echo "unarchived-count $(printf "%s" "$after" | grep -c .)"
  n=0
  for s in $after; do
    [ "$n" -lt "$6" ] || break
    n=$((n + 1)); r=$(look "$2" "$s" first "$5")
    printf "unarchived %s|%s\n" "$s" "$r"
    case $r in commit*) break ;; esac
  done
  for s in $(printf "%s\n" "$after" | sort -r | head -n 3); do
    r=$(look "$2" "$s" last "$5")
    printf "newest-commit %s|%s\n" "$s" "$r"
    case $r in commit*) break ;; esac
  done
  '
if [ "$PGRC" -ne 0 ]; then
  pg_section wal_window true
elif [ "$(pg_part position)" = standby ]; then
  section wal_window echo standby
else
  IFS='|' read -r P_CURRENT P_DATADIR P_NOW P_LAST <<EOF
$(pg_part position)
EOF
  printf '%s BEGIN wal_window\nnow %s\ncurrent %s\n' "$WG_TOKEN" "$P_NOW" "$P_CURRENT"
  timeout "$WG_T" runuser -u "$WG_PG_OWNER" -- /bin/sh -c "$WINDOW" sh "$R" "$P_DATADIR/pg_wal" \
    "$P_CURRENT" "$P_LAST" "$(pgbin pg_waldump)" "${WG_WINDOW_SEGMENTS:-16}" 2>&1
  printf '\n%s END wal_window %s\n' "$WG_TOKEN" "$?"
fi
section service_active systemctl is-active -- "$WG_SERVICE"
# SELinux: only where the kernel has it (nspawn hosts have no /sys/fs/selinux).
section selinux_enforce cat /sys/fs/selinux/enforce
if [ -r /sys/fs/selinux/enforce ]; then
  section getenforce getenforce
  section selinux_config cat /etc/selinux/config
  section sestatus sestatus
  section archive_context stat -L -c %C -- "$R"
  section archive_file_contexts find "$R" -mindepth 1 -maxdepth 1 -type f -printf '%Z|%f\n'
  section matchpathcon matchpathcon -- "$R"
  section fcontext_local semanage fcontext -l -C
  section restorecon_dryrun restorecon -n -v -R -- "$R"
  section ps_context ps -eZ
  # --input-logs: without it and without a terminal, ausearch reads stdin and finds nothing.
  section avc ausearch --input-logs -m avc -ts boot
fi

# The validation matrix: the service as systemd runs it, the platform (failed units, journal),
# the listeners and the firewall, the clock and the host's name. Raw outputs, judged elsewhere.
section unit systemctl show --no-pager -p Id -p LoadState -p ActiveState -p SubState \
  -p UnitFileState -p NeedDaemonReload -p MainPID -p FragmentPath -- "$WG_SERVICE"
# What starts it at boot: the default target, and every unit from the service up (their unit
# file states and the units that want or require them); Debian's start.conf for the cluster.
section boot_default systemctl get-default
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
BOOT='systemctl list-dependencies --reverse --all --plain --no-pager -- "$1" |
  sed "s/^[^A-Za-z0-9@_.\\-]*//" |
  xargs -r systemctl show --no-pager -p Id -p UnitFileState -p WantedBy -p RequiredBy --'
section boot_units /bin/sh -c "$BOOT" sh "$WG_SERVICE"
if [ -n "${WG_START_CONF:-}" ]; then
  section start_conf cat -- "$WG_START_CONF"
fi
# The running server binary (" (deleted)" once an upgrade replaced it) and the package owning it.
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
EXE='pid=$(systemctl show -p MainPID --value -- "$1")
  case $pid in ""|0|*[!0-9]*) echo "no main process"; exit 3;; esac
  readlink "/proc/$pid/exe"'
section postgres_exe /bin/sh -c "$EXE" sh "$WG_SERVICE"
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
PKG='exe=$(/bin/sh -c "$2" sh "$1"); exe=${exe% (deleted)}
  if command -v dpkg-query >/dev/null 2>&1; then
    pkg=$(dpkg -S "$exe" 2>/dev/null | grep -v "^diversion" | head -n 1 | cut -d: -f1)
    [ -n "$pkg" ] || { echo "no package owns $exe"; exit 4; }
    dpkg-query -W -f "\${Package}|\${Version}|\${db:Status-Abbrev}|dpkg\n" "$pkg"
  else
    rpm -qf --qf "%{NAME}|%{VERSION}-%{RELEASE}|ii|rpm\n" "$exe"
  fi'
section postgres_package /bin/sh -c "$PKG" sh "$WG_SERVICE" "$EXE"
section failed_units systemctl list-units --failed --plain --no-legend --no-pager
# What the operator looks at (the seed's command path), kept as evidence beside the results.
section service_status systemctl status --no-pager --full --lines=0 -- "$WG_SERVICE"
section service_journal journalctl -u "$WG_SERVICE" -n 200 -q --no-pager -o short-iso
section journal_errors journalctl -p err -b -q --no-pager -o short-iso -n 2000
section listeners ss -H -tulpn
section firewall_units systemctl is-active nftables.service firewalld.service
section nft_ruleset nft list ruleset
section time_units systemctl is-active chrony.service chronyd.service systemd-timesyncd.service \
  ntpsec.service ntp.service
section chrony_tracking chronyc -n tracking
# timedatectl starts systemd-timedated over D-Bus: only asked where timesyncd is the client (a
# read-only audit starts no services; in containers timedated can even fail to start).
if systemctl is-active -q systemd-timesyncd.service 2>/dev/null; then
  section timedatectl timedatectl show
  section timesync_status timedatectl timesync-status
fi
section host_addresses ip -o addr show
# The host's own name, forward and back, as the host itself resolves it.
# shellcheck disable=SC2016  # expanded by the inner sh
IDENT='n=$(hostname); printf "name %s\n" "$n"; printf "fqdn %s\n" "$(hostname -f 2>/dev/null)"
  getent ahosts "$n" | awk "{print \$1}" | sort -u | while read -r a; do
    printf "forward %s\n" "$a"; getent hosts "$a" | sed "s/^/reverse /"
  done'
section identity /bin/sh -c "$IDENT"
pg_section pg_load_time printf '%s\n' "$(pg_part load)"
pg_section pg_file_settings printf '%s\n' "$(pg_part settings)"
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
STATS='printf "%s\n" "$1" | while IFS= read -r f; do [ -z "$f" ] || stat -c "%Y|%n" -- "$f"; done'
pg_section pg_config_files /bin/sh -c "$STATS" sh "$(pg_part files)"
# shellcheck disable=SC2016  # expanded by the inner sh, from its arguments
CERT='[ -n "$1" ] || { echo "ssl off"; exit 0; }
  head -c 65536 -- "$1"'
pg_section tls_cert /bin/sh -c "$CERT" sh "$(pg_part cert)"
