"""Each host's private copy of its variables, and the limit on how much is copied in all.

Internal to `walguard.inventory.load`: `walguard.inventory.build` counts every host's copy with a
`CopyBudget` before it makes any with `plain`.
"""

from __future__ import annotations

from typing import Any


def plain(value: Any, active: set[int]) -> Any:
    """A private copy, made of plain dicts and lists, so no host can change another's vars."""
    if isinstance(value, dict | list):
        if id(value) in active:
            raise RecursionError
        active = active | {id(value)}
        if isinstance(value, dict):
            return {key: plain(item, active) for key, item in value.items()}
        return [plain(item, active) for item in value]
    return value


# Every host gets its own copy of its variables (`plain`). A few hundred bytes of YAML aliases,
# or one large value shared by thousands of hosts, would make billions of copies: the values
# copied for the whole inventory are counted first, and more than this is an error.
MAX_VALUES = 2_000_000


class CopyBudget:
    """The values `plain` will copy, counted before copying (shared values measured once)."""

    def __init__(self, limit: int = MAX_VALUES) -> None:
        self.limit = limit
        self.spent = 0
        self._sizes: dict[int, int] = {}

    def spend(self, value: Any) -> None:
        """Count a copy of `value`; ValueError past the limit, RecursionError for a loop."""
        self.spent += self._size(value, set())
        if self.spent > self.limit:
            raise ValueError(
                f"the hosts' variables add up to more than {self.limit:,} values (YAML aliases "
                "repeated, or large values on many hosts); expected a smaller inventory"
            )

    def _size(self, value: Any, active: set[int]) -> int:
        if not isinstance(value, dict | list):
            return 1
        key = id(value)
        if key in self._sizes:
            return self._sizes[key]
        if key in active:
            raise RecursionError
        active.add(key)
        items = value.values() if isinstance(value, dict) else value
        size = 1
        for item in items:
            size += self._size(item, active)
            if size > self.limit:
                break  # enough to refuse; the rest need not be walked
        active.discard(key)
        self._sizes[key] = size
        return size
