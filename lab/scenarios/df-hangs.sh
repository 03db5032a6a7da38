#!/bin/bash
# breaks: df hangs, as it does on a host with a stale NFS mount: any command that asks for
#   filesystem usage never returns.
# observe: `timeout 5 df /pg_archive` exits 124 (timed out); everything else answers normally.
set -euo pipefail
cat > /usr/local/sbin/walguard-lab-hang <<'SH'
#!/bin/sh
exec sleep 3600
SH
chmod 0755 /usr/local/sbin/walguard-lab-hang
mount --bind /usr/local/sbin/walguard-lab-hang /usr/bin/df
