"""`Part`: one parsed fact, or why there is none. Its own module so that every fact family
(archive, PostgreSQL, platform, journal baseline) can hold its facts in Parts without importing
the others."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from walguard.errors import FactUnavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Part(Generic[T]):
    """Parsed facts, or why there are none."""

    value: T | None = None
    error: str | None = None

    def get(self) -> T:
        if self.value is None:
            raise FactUnavailable(self.error or "fact not collected")
        return self.value
