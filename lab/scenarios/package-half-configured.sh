#!/bin/bash
# breaks: the server's package is left half-configured, as an interrupted upgrade leaves it.
# observe: dpkg-query -W -f '${db:Status-Abbrev}' postgresql-15 says iF.
set -euo pipefail
sed -i '/^Package: postgresql-15$/,/^$/ s/^Status: install ok installed$/Status: install ok half-configured/' \
  /var/lib/dpkg/status
