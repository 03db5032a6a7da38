"""The order of a staged restart: which host goes first (the canary), which go together (batches of
--restart-batch), standbys before their primary, never two members of one replication group in the
same stage. Roles come from the hosts themselves (walguard.remediate.gates.read_roles); a host
whose role could not be read is a group of its own and goes last, after every host walguard
could place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from walguard.inventory.load import Target
from walguard.remediate.gates import Roles


@dataclass(frozen=True)
class Stage:
    number: int
    hosts: tuple[str, ...]
    canary: bool

    def as_dict(self) -> dict[str, object]:
        return {"stage": self.number, "hosts": list(self.hosts), "canary": self.canary}


def replication_groups(
    targets: Sequence[Target], roles: Mapping[str, Roles | None]
) -> dict[str, int]:
    """Each host's replication group (a number): a standby joins the host its sender_host names,
    a primary the hosts its standbys connect from, matched by inventory address or name."""
    by_address: dict[str, str] = {}
    for t in targets:
        by_address.setdefault(t.address, t.name)
        by_address.setdefault(t.name, t.name)
    parent = {t.name: t.name for t in targets}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def join(a: str, b: str) -> None:
        parent[root(a)] = root(b)

    for t in targets:
        found = roles.get(t.name)
        if found is None:
            continue
        if found.upstream and found.upstream in by_address:
            join(t.name, by_address[found.upstream])
        for address in found.standbys:
            if address in by_address:
                join(t.name, by_address[address])
    numbers: dict[str, int] = {}
    return {t.name: numbers.setdefault(root(t.name), len(numbers)) for t in targets}


def order(targets: Sequence[Target], roles: Mapping[str, Roles | None]) -> list[str]:
    """Standbys first, then primaries, then hosts whose role is unknown; by name within each."""

    def key(t: Target) -> tuple[int, str]:
        found = roles.get(t.name)
        rank = 2 if found is None else (0 if found.standby else 1)
        return rank, t.name

    return [t.name for t in sorted(targets, key=key)]


def stages(targets: Sequence[Target], roles: Mapping[str, Roles | None], batch: int) -> list[Stage]:
    """The canary alone, then batches of at most `batch` hosts in `order`, a host joining a
    batch only when no member of its replication group is in it (it waits for the next one,
    and so does every later host of its group: a primary never overtakes its standby)."""
    if batch < 1:
        raise ValueError(f"--restart-batch must be at least 1, not {batch}")
    names = order(targets, roles)
    if not names:
        return []
    groups = replication_groups(targets, roles)
    planned = [Stage(1, (names[0],), canary=True)]
    left = names[1:]
    while left:
        taken: list[str] = []
        used: set[int] = set()
        blocked: set[int] = set()
        for name in left:
            group = groups[name]
            if len(taken) < batch and group not in used and group not in blocked:
                taken.append(name)
                used.add(group)
            else:
                # Later hosts of this group wait too: standbys stay ahead of their primary.
                blocked.add(group)
        planned.append(Stage(len(planned) + 1, tuple(taken), canary=False))
        left = [n for n in left if n not in taken]
    return planned
