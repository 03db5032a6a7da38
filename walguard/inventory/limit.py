"""`--limit PATTERN`: audit only some of an inventory's hosts, with Ansible's host patterns, so
that a CI gate audits the hosts a change touches.

PATTERN is a comma-separated list of terms, each a host name, a group name (its hosts, with
those of its child groups), an fnmatch glob over host and group names (``db*``, ``site_?``),
``~REGEX`` (a regular expression matched at the start of the name), ``all`` or ``*``, or
``@FILE`` (the file's lines are more terms: a list a CI job wrote). A term may be prefixed with
``!`` (leave these hosts out) or ``&`` (keep only hosts that are also in these). As in Ansible,
the plain terms are unioned first, then the ``&`` terms intersect and the ``!`` terms exclude,
whatever their order; a pattern of exclusions only starts from every host. Hosts keep the
inventory's order. Unlike Ansible, ``:`` does not separate terms (IPv6 addresses hold it) and
a group's ``[0:2]`` subscript is not read (``[...]`` is a glob's character class).

A limit never quietly audits less than asked for: a plain or ``&`` term that matches no host
(a typo, a host removed from the inventory) and a limit that leaves no host are errors, raised
before any host is touched. An exclusion that matches nothing excludes nothing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar


class LimitError(ValueError):
    """A --limit that cannot be used, in one line."""


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def groups(self) -> tuple[str, ...]: ...


T = TypeVar("T", bound=_Named)

_GLOB = frozenset("*?[")


def terms(pattern: str) -> list[str]:
    """The pattern's terms, with each @FILE replaced by its lines."""
    found: list[str] = []
    for term in (t.strip() for t in pattern.split(",")):
        if not term:
            continue
        if term.startswith("@"):
            path = Path(term[1:])
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise LimitError(f"--limit {term}: cannot read {path}: {exc.strerror}") from None
            found += [line.strip() for line in lines if line.strip()]
        else:
            found.append(term)
    return found


def _matcher(term: str) -> Callable[[str], bool]:
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise LimitError(f"--limit {term}: not a regular expression: {exc}") from None
        return lambda name: regex.match(name) is not None
    return lambda name: fnmatch.fnmatchcase(name, term)


def matching(hosts: Sequence[T], term: str) -> list[T]:
    """The hosts one term (without its ! or &) names, as Ansible enumerates them: the hosts of
    every group it matches, and the hosts it matches by name when it matched no group or is a
    glob or regular expression."""
    if term in ("all", "*"):
        return list(hosts)
    match = _matcher(term)
    groups = {g for h in hosts for g in h.groups if match(g)}
    by_name = not groups or term.startswith("~") or bool(_GLOB & set(term)) or "." in term
    return [h for h in hosts if groups.intersection(h.groups) or (by_name and match(h.name))]


def select(hosts: Sequence[T], pattern: str) -> list[T]:
    """The hosts `pattern` selects, in inventory order; LimitError if it names nothing."""
    found = terms(pattern)
    if not found:
        raise LimitError(f"--limit {pattern!r}: no host pattern in it")
    plain = [t for t in found if t[0] not in "!&"]
    both = [t[1:] for t in found if t[0] == "&"]
    without = [t[1:] for t in found if t[0] == "!"]
    unmatched = [t for t in plain + both if not matching(hosts, t)]
    if unmatched:
        raise LimitError(
            f"--limit {pattern!r}: {', '.join(unmatched)} matches no host or group of the "
            "inventory (an audit never covers less than it was asked to)"
        )
    chosen = {id(h) for t in plain for h in matching(hosts, t)} if plain else {id(h) for h in hosts}
    for t in both:
        chosen &= {id(h) for h in matching(hosts, t)}
    for t in without:
        chosen -= {id(h) for h in matching(hosts, t)}
    selected = [h for h in hosts if id(h) in chosen]
    if not selected:
        raise LimitError(f"--limit {pattern!r} leaves no host to audit")
    return selected
