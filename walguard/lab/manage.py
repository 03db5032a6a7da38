"""`walguard lab ...`: bring the lab up and down, show it, log in, and apply scenarios."""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from walguard.exit_codes import Exit
from walguard.lab import hosts, image, inventory, network, restore_exports, selinux_guest, settings
from walguard.lab.errors import LabError
from walguard.lab.hosts import Host
from walguard.lab.labhost import LabHost, known_hosts_path
from walguard.lab.proc import require_tools
from walguard.lab.scenarios import all_scenarios, chain

TOOLS = [
    "debootstrap",
    "systemd-nspawn",
    "nsenter",
    "ip",
    "nft",
    "mkfs.ext4",
    "losetup",
    "mount",
    "umount",
    "mountpoint",
    "ssh",
    "ssh-keygen",
    "chroot",
]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _preflight() -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (it creates containers, mounts and network namespaces): "
            "run it with sudo or as root"
        )
    require_tools(TOOLS)


@contextmanager
def _locked(name: str = "lock") -> Iterator[None]:
    """One lab command at a time: two `up`s racing would mount things twice."""
    settings.STATE_DIR.mkdir(parents=True, exist_ok=True)
    with (settings.STATE_DIR / name).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def _all_locked() -> Iterator[None]:
    """The lab's lock, then the SELinux guest's: what starts or stops the guest holds both."""
    with _locked(), _locked("guest.lock"):
        yield


def boot_guest() -> float | None:
    """Boot the SELinux guest and wait until it is ready (None if it was running already),
    holding the guest's lock only: the database hosts' commands (scenarios, resets) go on
    meanwhile, where a boot under `up` would hold them up for the minute a boot takes under
    TCG. Its key joins the lab's known_hosts at once (a line more changes nothing for the other
    hosts); it joins the lab's inventory at the next `up --selinux`, and until then every audit
    of the lab is as without it (any `up` without --selinux stops it)."""
    _preflight()
    require_tools(["qemu-system-x86_64", "debugfs"])
    with _locked("guest.lock"):
        if selinux_guest.running():
            return None
        selinux_guest.start(selinux_guest.ensure_image())
        took = selinux_guest.wait_ready()
        inventory.write_known_hosts(keyed_hosts())
        return took


def stop_guest() -> None:
    """Stop the SELinux guest (under the guest's lock only, as it was booted), leaving the
    database hosts alone; its image stays for the next boot."""
    _preflight()
    with _locked("guest.lock"):
        if selinux_guest.running():
            selinux_guest.stop()


def boot_beside(names: Sequence[str], inventory_path: Path) -> None:
    """Boot database hosts beside the lab's (`names`: beyond what `up` brought up), each pristine,
    and write an inventory of them and the zones' probe hosts alone at `inventory_path`: a second
    set of database hosts, which a second stream of tests breaks and audits while the first
    stream has the lab's own. Their keys join the lab's known_hosts. `up` stops them as hosts
    beyond its count; `remove_beside` removes them."""
    _beside_names(names)
    _preflight()
    with _locked():
        started = time.monotonic()
        img = image.ensure_image()
        targets = [Host(name) for name in names]
        # One after another: two systemds booting side by side fail each other's units (see
        # _wait_booted). A reset is a fresh boot, also of a host a killed run left behind.
        for host in targets:
            hosts.reset(host, img)
        inventory.write_known_hosts(keyed_hosts())
        probes = [Host(name) for name in settings.probe_names()]
        inventory.write_inventory(probes + targets, inventory_path, guest=False)
        _say(f"{', '.join(names)}: booted beside the lab in {time.monotonic() - started:.1f} s")


def _beside_names(names: Sequence[str]) -> None:
    """Hosts beside the lab are database hosts the lab's inventory does not list: a reset of one
    of the lab's own, which its tests are using, must never happen by a wrong name."""
    valid = set(settings.host_names(settings.MAX_HOSTS))
    own = inventory.listed_hosts(settings.INVENTORY_PATH)
    wrong = [name for name in names if name not in valid or name in own]
    if not names:
        raise LabError("hosts beside the lab: none named")
    if wrong:
        raise LabError(
            "hosts beside the lab are database hosts the lab's inventory does not list, "
            f"not {', '.join(wrong)}"
        )


def remove_beside(names: Sequence[str]) -> None:
    """Remove hosts that `boot_beside` booted: stopped, their files gone, their keys out of the
    lab's known_hosts (so `status` speaks of the lab's own hosts again)."""
    _preflight()
    with _locked():
        for name in names:
            hosts.destroy(Host(name))
        inventory.write_known_hosts(keyed_hosts())


def known_hosts() -> list[Host]:
    base = settings.STATE_DIR / "hosts"
    if not base.is_dir():
        return []
    names = [p.name for p in base.iterdir() if p.is_dir()]

    # Probe hosts first (by name), then database hosts by number: db2 before db10.
    def order(name: str) -> tuple[int, int, str]:
        return (1, int(name[2:]), "") if name[2:].isdigit() else (0, 0, name)

    return [Host(n) for n in sorted(names, key=order)]


def keyed_hosts() -> list[Host]:
    """Every host the lab has a key for, running or not. A boot of the guest holds only the
    guest's lock, so a database host may be between the two halves of a reset when it writes
    known_hosts: listing only running hosts there dropped that host's key, and every later SSH
    to it failed strict checking for the rest of the run."""
    return [h for h in known_hosts() if (h.dir / "host_key.pub").is_file()]


def running_hosts() -> list[Host]:
    return [h for h in known_hosts() if h.running()]


def lab_hosts() -> list[LabHost]:
    """Every running lab host, whatever its kind."""
    found: list[LabHost] = list(running_hosts())
    if selinux_guest.running():
        found.append(selinux_guest.GUEST)
    return found


def host_by_name(name: str) -> LabHost:
    running = lab_hosts()
    for host in running:
        if host.name == name:
            return host
    valid = ", ".join(h.name for h in running) or "none: run `walguard lab up`"
    raise LabError(f"unknown or stopped lab host {name!r}; running hosts: {valid}")


def up(count: int, selinux: bool = False) -> None:
    """Bring the lab to exactly `count` nspawn hosts, plus the SELinux guest with `selinux`
    (without it a running guest is stopped, as hosts beyond `count` are)."""
    least = 0 if selinux else 1  # --hosts 0 --selinux: the SELinux guest alone
    if not least <= count <= settings.MAX_HOSTS:
        raise LabError(f"--hosts must be between {least} and {settings.MAX_HOSTS}, not {count}")
    _preflight()
    if selinux:
        require_tools(["qemu-system-x86_64", "debugfs"])
    with _all_locked():
        started = time.monotonic()
        # --hosts 0 (with --selinux) leaves the nspawn image, bridge and zones alone.
        img = image.ensure_image() if count else image.image_dir()
        if count:
            network.up()
        # The zones' probe hosts first: probe-a is also the database hosts' time source.
        probes = [Host(n) for n in settings.probe_names()] if count else []
        wanted = probes + [Host(n) for n in settings.host_names(count)]
        for extra in (h for h in running_hosts() if h not in wanted):
            _say(f"{extra.name}: stopping (not in --hosts {count})")
            hosts.stop(extra)
        booting = [h for h in wanted if not h.running()]
        for host in booting:
            _say(f"{host.name}: booting at {host.address}")
            hosts.start(host, img)
        guest_booting = selinux and not selinux_guest.running()
        if guest_booting:
            guest_img = selinux_guest.ensure_image()
            _say(f"{selinux_guest.NAME}: booting (QEMU, TCG) at {selinux_guest.ADDRESS}")
            selinux_guest.start(guest_img)
        elif not selinux and selinux_guest.state_dir().exists():
            _say(f"{selinux_guest.NAME}: stopping (no --selinux)")
            selinux_guest.destroy()
        for host in booting:
            hosts.ready_or_boot_again(host, img)
            _say(f"{host.name}: ready")
        if guest_booting:
            took = selinux_guest.wait_ready()
            _say(f"{selinux_guest.NAME}: ready ({took:.0f} s after QEMU started)")
        inventory.write_known_hosts(wanted)
        inv = inventory.write_inventory(wanted)
        if booting or guest_booting:
            _say(
                f"lab up: {len(wanted)} hosts{' and selinux1' if selinux else ''} in "
                f"{time.monotonic() - started:.1f} s; "
                f"inventory {inv.relative_to(settings.PROJECT_ROOT)}"
            )
        else:
            _say(
                f"lab up: already up ({len(wanted)} hosts{' and selinux1' if selinux else ''}); "
                "nothing to do"
            )


def down() -> None:
    _preflight()
    with _all_locked():
        for host in known_hosts():
            if host.running() or hosts.leftovers(host):
                _say(f"{host.name}: stopping")
            hosts.destroy(host)
        if selinux_guest.running():
            _say(f"{selinux_guest.NAME}: stopping")
        selinux_guest.destroy()
        restore_exports.exports_down()
        network.down()
        settings.INVENTORY_PATH.unlink(missing_ok=True)
        known_hosts_path().unlink(missing_ok=True)
        _say("lab down: no hosts, mounts, loop devices, bridge or namespaces left")


def status() -> int:
    """Print one line per host; exit 0 only when every known host is running."""
    all_hosts = known_hosts()
    guest = selinux_guest.state_dir().is_dir()
    if not all_hosts and not guest:
        print("lab: no hosts (run `walguard lab up`)")
        return int(Exit.LAB_FAILED)
    ok = True
    if guest:
        where = selinux_guest.ADDRESS
        print(f"{selinux_guest.NAME} {where} {'running' if selinux_guest.running() else 'stopped'}")
        ok &= selinux_guest.running()
    for host in all_hosts:
        state = "running" if host.running() else "stopped"
        ok &= host.running()
        applied = host.applied_scenarios()
        extra = f"  scenarios: {', '.join(applied)}" if applied else ""
        print(f"{host.name:6} {host.address:13} {state}{extra}")
    for zone in settings.ZONES if all_hosts else ():
        present = Path("/run/netns", zone.netns).exists()
        print(f"{zone.name:6} {zone.inner_addr:13} {'present' if present else 'missing'}")
        ok &= present
    return int(Exit.OK if ok else Exit.LAB_FAILED)


def ssh_argv(host: LabHost, command: list[str]) -> list[str]:
    """Log in as the audit user with strict host-key checking against the lab's known_hosts."""
    return host.ssh_argv(command)


def ssh(name: str, command: list[str]) -> int:
    argv = host_by_name(name).ssh_argv(command)
    if shutil.which("ssh") is None:
        raise LabError("ssh is not installed (apt-get install openssh-client)")
    os.execvp(argv[0], argv)
    return 1  # not reached


def scenario_env() -> list[str]:
    """What a scenario may need to know about the rest of the lab, as VAR=value for env(1):
    WALGUARD_LAB_DB1 is db1's lab address (the primary that standby-of-db1 streams from)."""
    return [f"WALGUARD_LAB_DB1={settings.host_address('db1')}"]


def scenario_apply(name: str, scenario: str) -> None:
    _preflight()
    scenarios = all_scenarios()
    if scenario not in scenarios:
        raise LabError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(scenarios)}")
    host = host_by_name(name)
    with _locked():
        # A scenario's bases first, each unless the host has it already (a base applied twice
        # would set up what exists: pg_createcluster of an existing cluster fails).
        for step in chain(scenarios, scenario):
            if step != scenario and step in host.applied_scenarios():
                continue
            started = time.monotonic()
            done = host.run_as_root(
                ["env", *scenario_env(), "/bin/bash", "-s"], scenarios[step].path.read_text()
            )
            if done.returncode != 0:
                raise LabError(
                    f"scenario {step} failed on {name} (exit {done.returncode}): "
                    f"{(done.stderr or done.stdout).strip()[-300:]}"
                )
            host.record_scenario(step)
            _say(
                f"{name}: applied {step} in {time.monotonic() - started:.1f} s "
                f"({scenarios[step].observe})"
            )


def scenario_reset(names: Sequence[str]) -> None:
    """Reset each named host to pristine, side by side: a reset is mostly waiting (for a boot,
    an archived segment, the clock's first sync), so several take little longer than one."""
    _preflight()
    # Every name is checked before any host is touched.
    targets = list({name: host_by_name(name) for name in names}.values())
    with _locked():
        started = time.monotonic()
        if any(isinstance(h, Host) for h in targets):
            image.ensure_image()  # built once here, never by two resets racing
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            resets = []
            for host in targets:
                before = host.nspawn_pid() if isinstance(host, Host) else None
                resets.append(pool.submit(_reset_one, host))
                if isinstance(host, Host):
                    _wait_booted(host, before, resets[-1])
            outcomes = [(h.name, r.result()) for h, r in zip(targets, resets, strict=True)]
        errors = [f"{name}: {error}" for name, error in outcomes if error]
        if errors:
            raise LabError("; ".join(errors))
        if len(targets) > 1:
            _say(
                f"{', '.join(h.name for h in targets)}: reset to pristine in "
                f"{time.monotonic() - started:.1f} s"
            )


def _reset_one(host: LabHost) -> str:
    """Reset one host; the error, if any, as one line ("" when the host is pristine again)."""
    started = time.monotonic()
    try:
        host.reset()
    except (LabError, OSError) as exc:  # named with the host by the caller
        return str(exc) or type(exc).__name__
    _say(f"{host.name}: reset to pristine in {time.monotonic() - started:.1f} s")
    return ""


def _wait_booted(host: Host, before: int | None, reset: Future[str]) -> None:
    """Wait until the container that replaced `before` has finished booting (systemd has no
    start job left), or its reset has ended.

    The lab's containers, started by one process, share its cgroup: two systemds booting side
    by side create and remove the same units' cgroups under each other, and a unit then fails
    to start (status 219/CGROUP). So containers boot one after another; what follows the boot
    (the first archived segment, the clock's first sync) overlaps with the next host's boot.
    """
    deadline = time.monotonic() + hosts.BOOT_TIMEOUT_S
    while not reset.done() and time.monotonic() < deadline:
        pid = host.nspawn_pid()
        if pid is not None and pid != before and host.leader_pid() is not None:
            try:
                state = hosts.exec_in(host, ["systemctl", "is-system-running"], check=False)
            except LabError:  # gone again: the reset itself says why
                continue
            # Before its manager answers, systemctl says "offline".
            if state.stdout.strip() in ("running", "degraded"):
                return
        time.sleep(0.1)


def scenario_list() -> None:
    for sc in all_scenarios().values():
        base = f"\n    base:    {sc.base} (applied first)" if sc.base else ""
        print(f"{sc.name}\n    breaks:  {sc.breaks}\n    observe: {sc.observe}{base}")
