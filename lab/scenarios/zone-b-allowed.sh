#!/bin/bash
# breaks: the host firewall lets zone-b (10.231.2.0/24) through to PostgreSQL.
# observe: nft list ruleset shows an accept rule for 10.231.2.0/24; zone-b connects to 5432.
set -euo pipefail
nft insert rule inet walguard input ip saddr 10.231.2.0/24 tcp dport 5432 accept
