"""The SELinux guest's fixed facts: its name, where it sits on the lab network, the machine QEMU
emulates for it, its recipe, and where this lab keeps its state.

The guest is a lab host like the nspawn ones on the network: one virtual network card, a tap on
the lab bridge, with its own lab address (outside the dbN range), so the audit reaches it over
SSH like any host and the zones' probe hosts reach its PostgreSQL through this machine. The
address is also written in the recipe (lab/selinux/files: networkd, /etc/hosts, listen_addresses);
a unit test keeps the two the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

from walguard.lab import settings

NAME = "selinux1"
RECIPE_DIR = settings.PROJECT_ROOT / "lab" / "selinux"
# Files of the nspawn hosts' recipe that the guest uses as they are, so that the two cannot drift:
# the archive settings the audit expects, the key-only sshd settings, the audit login, the host
# firewall (zone-a and the lab hosts may reach 5432, everyone else is reset), the NTP client
# (probe-a) and PostgreSQL waiting for its lab address.
SHARED_FILES = (
    "etc/postgresql/15/main/conf.d/10-walguard-archive.conf",
    "etc/ssh/sshd_config.d/10-walguard-lab.conf",
    "usr/local/lib/walguard-lab/audit-host.sh",
    "etc/nftables.conf",
    "etc/chrony/chrony.conf",
    "etc/systemd/system/postgresql@.service.d/10-walguard-network-online.conf",
)
# Bumped when the build steps (selinux_image) change in a way that changes the image.
BUILD_REVISION = "1"

# On the lab bridge, beside db1..db40 (10.231.0.11-50).
ADDRESS = "10.231.0.100"
SSH_PORT = 22
TAP = "vm-selinux1"  # the guest's tap on the bridge (at most 15 characters)
MAC = "52:54:00:57:47:64"  # QEMU's locally administered prefix; fixed, so the guest's ARP is too
POSTGRES_SERVICE = "postgresql@15-main.service"
MEMORY_MIB = 2048
CPUS = 2
ROOT_SIZE_MIB = 4096
BOOT_TIMEOUT_S = 240
KERNEL_ARGS = (
    "root=/dev/vda rw console=ttyS0 security=selinux selinux=1 enforcing=1 audit=1 "
    "net.ifnames=0 quiet"
)
FW_CFG = "opt/walguard"
POLICY = "default"


def state_dir() -> Path:
    return settings.STATE_DIR / NAME


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
