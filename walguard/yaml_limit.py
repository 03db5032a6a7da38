"""A YAML loader for operators' files with a size limit that counts what aliases expand to.

An alias (``*a``) stands for the whole node anchored as ``&a``; PyYAML shares that node, so a
few hundred bytes of nested aliases (the "billion laughs": ten aliases of ten aliases of ...)
load at once, and whatever walks or copies the result then faces billions of values. This
loader counts every node as it would be if each alias were written out, while it composes the
document, and stops with a `yaml.MarkedYAMLError` at the alias that passes the limit, before
anything is built from it.

Use it as the Loader of `yaml.compose` / `yaml.load`, or as the base class of a loader of one's
own (`walguard.inventory.yaml_reader` does).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

# Far above any real inventory or waivers file (ten thousand hosts with a dozen variables each,
# merge keys written out, stay below 500,000), far below what takes seconds to walk.
MAX_NODES = 1_000_000


class BoundedSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses a document of more than `max_nodes` nodes, aliases expanded."""

    max_nodes = MAX_NODES

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.expanded_nodes = 0
        self._sizes: dict[int, int] = {}  # complete nodes only: id -> size, aliases expanded
        self._complete: set[int] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:
        is_alias = self.check_event(yaml.AliasEvent)
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in stubs
        node = super().compose_node(parent, index)
        if node is None:
            return node
        if is_alias:
            self._count(self._size(node, set()), mark)
        else:
            # A new node counts once; its children were counted as they were composed.
            self._complete.add(id(node))
            self._count(1, mark)
        return node

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # A date-shaped value that is no date (2027-31-03) is the file's error, at its line:
        # PyYAML's own ValueError would carry neither.
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise ConstructorError(
                None, None, f"{node.value!r} is not a date ({exc})", node.start_mark
            ) from None

    def _count(self, nodes: int, mark: yaml.Mark) -> None:
        self.expanded_nodes += nodes
        if self.expanded_nodes > self.max_nodes:
            raise ComposerError(
                None,
                None,
                f"the document has more than {self.max_nodes:,} nodes once its aliases are "
                "expanded (aliases of aliases, a 'billion laughs'?); expected a smaller document",
                mark,
            )

    def _size(self, node: yaml.Node, active: set[int]) -> int:
        """How many nodes `node` stands for, each alias in it written out."""
        key = id(node)
        if key in self._sizes:
            return self._sizes[key]
        if key in active:
            return 1  # an alias inside its own anchor: a loop, which the reader refuses itself
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            return 1
        active.add(key)
        size = 1
        for child in children:
            size += self._size(child, active)
            if size > self.max_nodes:
                break  # enough to refuse
        active.discard(key)
        if key in self._complete:  # a node still being composed may grow: not kept
            self._sizes[key] = size
        return size


# The constructor is looked up by tag in a table filled when the class is made: the override
# above only takes effect once it is registered for the timestamp tag.
BoundedSafeLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", BoundedSafeLoader.construct_yaml_timestamp
)
