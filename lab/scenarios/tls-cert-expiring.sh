#!/bin/bash
# breaks: the server presents a lab-CA certificate for its name that expires in 5 days.
# observe: openssl x509 -enddate of the ssl_cert_file is 5 days away.
set -euo pipefail
sed -i 's#/etc/walguard-lab/tls/server\.#/etc/walguard-lab/tls/expiring.#' \
  /etc/postgresql/15/main/conf.d/30-walguard-tls.conf
runuser -u postgres -- psql -XAtq -c 'SELECT pg_reload_conf()' >/dev/null
