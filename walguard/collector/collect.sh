# walguard fact collector: POSIX sh, read-only, one run per host per audit.
# Every section is raw command output framed by a per-run random token, so that nothing a file or
# command prints can forge a section boundary. The controller parses the sections; this script
# interprets nothing. Parameters arrive as environment variables (already shell-quoted by the
# controller): WG_TOKEN, WG_ARCHIVE_DIR, WG_SERVICE, WG_T (per-command timeout, seconds),
# WG_HEADERS (how many of the newest segments' headers to read), WG_ARCHIVE_CHECK (optional: the
# archiving tool's repository check from the policy) and WG_PG_OWNER (who runs it).
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
section archive_files find "$R" -mindepth 1 -maxdepth 1 -printf '%f|%y|%s|%T@\n'
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
