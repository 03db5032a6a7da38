"""What makes the shared guest image this lab's selinux1: its SSH host key, the audit user's key
and a server certificate from the lab CA, handed to the guest through QEMU's fw_cfg (the image's
walguard-fw-cfg-keys.service installs them before sshd and PostgreSQL start).

Under STATE_DIR/selinux1/:
  ssh_host_ed25519_key(.pub)   made once per lab (a reset keeps it: known_hosts stays valid)
  authorized_keys              the lab's audit key
  tls_server.crt, tls_server.key   issued by the lab CA at every boot, for the guest's name and
                               address, as the nspawn hosts' certificates are
"""

from __future__ import annotations

import os
import shutil

from walguard.lab import tls
from walguard.lab.labhost import keygen, lab_key
from walguard.lab.selinux_settings import ADDRESS, FW_CFG, NAME, state_dir

# Files of the state directory, handed over under FW_CFG/NAME (the guest reads them by name).
FW_CFG_FILES = ("ssh_host_ed25519_key", "authorized_keys", "tls_server.crt", "tls_server.key")


def prepare() -> None:
    """Everything the guest is handed at boot, in the state directory."""
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    key = state / "ssh_host_ed25519_key"
    if not key.exists():
        keygen(key, f"root@{NAME}")
    shutil.copy(f"{lab_key()}.pub", state / "authorized_keys")
    # From the lab CA as it is now (the inventory names it as the policy's CA).
    issued = tls.issue_server(NAME, ADDRESS)
    (state / "tls_server.crt").write_bytes(issued.cert_pem)
    key_file = state / "tls_server.key"
    key_file.unlink(missing_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(issued.key_pem)


def fw_cfg_args() -> list[str]:
    """QEMU's -fw_cfg options for the files `prepare` wrote."""
    state = state_dir()
    args = []
    for name in FW_CFG_FILES:
        args += ["-fw_cfg", f"name={FW_CFG}/{name},file={state / name}"]
    return args


def host_key_pub() -> str:
    return (state_dir() / "ssh_host_ed25519_key.pub").read_text()


def known_hosts_lines() -> list[str]:
    """The guest's host key under its name and its lab address, as for every lab host."""
    key_type, key_b64 = host_key_pub().split()[:2]
    return [f"{NAME},{ADDRESS} {key_type} {key_b64}\n"]
