#!/bin/bash
# breaks: the host firewall's ruleset is flushed (nftables.service still says active).
# observe: nft list ruleset prints nothing; zone-b connects to 5432.
set -euo pipefail
nft flush ruleset
