#!/bin/bash
# breaks: the server presents a lab-CA certificate for another name (not-HOST.invalid).
# observe: openssl x509 -subject of the ssl_cert_file says CN = not-HOST.invalid.
set -euo pipefail
sed -i 's#/etc/walguard-lab/tls/server\.#/etc/walguard-lab/tls/wrong-name.#' \
  /etc/postgresql/15/main/conf.d/30-walguard-tls.conf
runuser -u postgres -- psql -XAtq -c 'SELECT pg_reload_conf()' >/dev/null
