#!/bin/bash
# breaks: a stray TCP listener on the host's PostgreSQL address (port 6543), outside the
#   allow-list.
# observe: ss -tlnp shows perl listening on the host's address, port 6543.
set -euo pipefail
addr=$(ip -4 -o addr show dev host0 | awk '{print $4}' | cut -d/ -f1)
# shellcheck disable=SC2016  # Perl's own variables, in Perl's quotes
systemd-run --quiet --unit=walguard-lab-stray perl -MIO::Socket::INET -e \
  'my $s = IO::Socket::INET->new(LocalAddr => $ARGV[0], Listen => 5, ReuseAddr => 1) or die "$!"; sleep' \
  "$addr:6543"
for _ in $(seq 50); do ss -tlnH 'sport = :6543' | grep -q . && exit 0; sleep 0.1; done
echo "the stray listener did not start" >&2; exit 1
