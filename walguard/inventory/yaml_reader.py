"""Reading YAML the way walguard's inventory readers need it: duplicate keys and Vault values
refused, line numbers kept for every key, errors in one line naming the file and line.

Used for YAML inventory files and for the group_vars/ and host_vars/ files beside any inventory
walguard reads itself (YAML or INI). Internal to `walguard.inventory.load`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import yaml

from walguard.inventory.model import InventoryError, Layer, Origin, fail, kind
from walguard.yaml_limit import BoundedSafeLoader

MERGE_TAG = "tag:yaml.org,2002:merge"
VAULT_TAG = "!vault"
VAULT_FILE_HEADER = "$ANSIBLE_VAULT;"
VAULT_UNSUPPORTED = (
    "Ansible Vault values are not supported by walguard's own reader (it never decrypts "
    "secrets); install ansible-core (pip install 'walguard[ansible]') and pass "
    "--vault-password-file FILE or --vault-id to have ansible-inventory read this inventory"
)


class Problem(Exception):
    """A problem found while constructing YAML, before the file name is known to be attached."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class YamlMap(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys are, for error messages."""

    line: int
    key_lines: dict[Any, int]


class _Loader(BoundedSafeLoader):
    """SafeLoader that refuses duplicate keys, Vault values and documents whose aliases expand
    past `walguard.yaml_limit.MAX_NODES`, and records line numbers."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue  # keys from a `<<` merge may be overridden; that is what merges are for
            line = key_node.start_mark.line + 1
            key = self.construct_object(key_node, deep=True)
            if value_node.tag == VAULT_TAG:
                raise Problem(line, f"{key}: {VAULT_UNSUPPORTED}")
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable: the base class reports it with its own message
            if first is not None:
                # PyYAML would keep the last value silently; Ansible only warns. Either way the
                # first definition is lost, e.g. a host listed twice in one group's hosts.
                raise Problem(
                    line,
                    f"duplicate key {key!r} in this mapping (first at line {first}); "
                    "expected each key once",
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[YamlMap]:
    data = YamlMap()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data  # yielded first, as SafeLoader does, so that recursive aliases resolve
    data.update(loader.construct_mapping(node))
    # After construct_mapping the node is flattened: merged keys first, then its own, so a key
    # set here wins over a merged one, as its value does.
    for key_node, _ in node.value:
        # Unhashable keys never get here: construct_mapping has refused them.
        data.key_lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1


def _construct_vault(loader: _Loader, node: yaml.Node) -> NoReturn:
    raise Problem(node.start_mark.line + 1, VAULT_UNSUPPORTED)


def _construct_unsafe(loader: _Loader, node: yaml.Node) -> str:
    # Ansible's !unsafe only stops templating, and walguard never templates: a plain string.
    if not isinstance(node, yaml.ScalarNode):
        raise Problem(node.start_mark.line + 1, "!unsafe applies to strings only")
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor(VAULT_TAG, _construct_vault)
_Loader.add_constructor("!unsafe", _construct_unsafe)


def one_line(text: str) -> str:
    return " ".join(text.split())


def read_text(file: Path, what: str, expected: str) -> str:
    """The file's text, or InventoryError naming the file and what was wrong."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{file}: {what} not found") from None
    except IsADirectoryError:
        raise InventoryError(f"{file}: {what} is a directory, expected {expected}") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(
            f"{file}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise InventoryError(f"{file}: cannot read {what}: {exc.strerror or exc}") from None


def read_yaml(file: Path, what: str) -> Any:
    text = read_text(file, what, "a YAML file")
    if text.lstrip().startswith(VAULT_FILE_HEADER):
        raise InventoryError(f"{file}:1: the whole file is Vault-encrypted; {VAULT_UNSUPPORTED}")
    loader = None
    try:
        loader = _Loader(text)
        return loader.get_single_data()
    except Problem as exc:
        raise InventoryError(f"{file}:{exc.line}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        problem = exc.problem or "a syntax error"
        context = f" ({exc.context})" if exc.context else ""
        # PyYAML's block errors are how a misindented line shows up, and read like anything but.
        hint = "; check the indentation" if "block" in problem else ""
        raise InventoryError(
            f"{where}: invalid YAML in {what}: {one_line(problem + context)}{hint}"
        ) from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{file}: invalid YAML in {what}: {one_line(str(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def layer(value: Any, where: str, origin: Origin) -> Layer:
    """A YAML mapping of variables with where each was set."""
    if value is None:
        return {}
    if not isinstance(value, YamlMap):
        fail(origin, where, f"expected a mapping of variable names to values, got {kind(value)}")
    found: Layer = {}
    for key, item in value.items():
        key_origin = Origin(origin.file, value.key_lines.get(key, origin.line))
        if not isinstance(key, str) or not key:
            fail(key_origin, where, f"variable name {key!r}: expected a non-empty string")
        found[key] = (item, key_origin)
    return found
