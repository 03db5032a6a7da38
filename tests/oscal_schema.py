"""NIST's OSCAL Assessment Results JSON schema (tests/data/oscal/), as a jsonschema validator.

OSCAL's schemas are JSON Schema draft-07, whose `pattern`s are ECMA-262 regular expressions.
Python's `re` reads most of them, but not all alike: it rejects `\\p{L}` and `\\p{N}` (Unicode
letters and numbers: every OSCAL token, such as a control-id or a prop name, is checked with
them), and it reads some of what it accepts differently (`$` also matches before a final newline,
`.` matches a carriage return, `\\d`, `\\w` and `\\s` take in more of Unicode). Rather than
skipping the patterns Python cannot compile, each is translated into the Python expression that
matches exactly what the ECMA-262 one does (`\\p{L}` into the class of every code point whose
Unicode general category is a letter, per this Python's unicodedata), and any construct the
translation does not know is an error, never dropped: every pattern of the schema is checked.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft7Validator

SCHEMA_PATH = (
    Path(__file__).resolve().parent / "data" / "oscal" / "oscal_assessment-results_schema.json"
)
# What the README beside the file says it is: a test notices a different file.
SCHEMA_SHA256 = "d8faf5a7510d66c911c5f88e6875d52e7e8223fb58b2283f1f095366369296f9"
SCHEMA_ID = "http://csrc.nist.gov/ns/oscal/1.2.1/oscal-ar-schema.json"

# ECMA-262's character classes, as Python class contents (code points spelled as escapes).
ECMA_SPACE = r"\t\n\x0b\x0c\r\x20\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
ECMA_CLASSES = {"d": "0-9", "w": "A-Za-z0-9_", "s": ECMA_SPACE}
ECMA_DOT = r"[^\n\r\u2028\u2029]"  # `.` without the s flag


class Untranslatable(ValueError):
    """A pattern construct this translation does not know: the pattern is not checked
    silently wrong, the test fails."""


def _escape(code: int) -> str:
    return f"\\U{code:08x}" if code > 0xFFFF else f"\\u{code:04x}"


@functools.cache
def category_class(name: str) -> str:
    """The contents of a Python character class holding every code point whose general
    category is `name` (`L`, `N`, or a two-letter one such as `Lu`), as ranges."""
    if not re.fullmatch(r"[A-Z][a-z]?", name):
        raise Untranslatable(f"\\p{{{name}}}: only general categories are translated")
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)).startswith(name):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    if not ranges:
        raise Untranslatable(f"\\p{{{name}}}: no such general category")
    return "".join(_escape(a) if a == b else f"{_escape(a)}-{_escape(b)}" for a, b in ranges)


def python_pattern(ecma: str) -> str:
    """The Python regular expression matching exactly the strings `ecma` matches (ECMA-262,
    with the u flag: JSON Schema's dialect), or Untranslatable."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(ecma):
        c = ecma[i]
        if c == "\\":
            if i + 1 >= len(ecma):
                raise Untranslatable(f"{ecma!r}: ends in a backslash")
            nxt = ecma[i + 1]
            if nxt in "pP":
                m = re.match(r"\{([A-Za-z_]+)\}", ecma[i + 2 :])
                if m is None:
                    raise Untranslatable(f"{ecma!r}: \\{nxt} without {{NAME}}")
                inside = category_class(m.group(1))
                if nxt == "P" and in_class:
                    raise Untranslatable(f"{ecma!r}: \\P inside a class")
                out.append(inside if in_class else f"[{'^' if nxt == 'P' else ''}{inside}]")
                i += 2 + len(m.group(0))
                continue
            if nxt.lower() in ECMA_CLASSES:
                inside = ECMA_CLASSES[nxt.lower()]
                if nxt.isupper():
                    if in_class:
                        raise Untranslatable(f"{ecma!r}: \\{nxt} inside a class")
                    out.append(f"[^{inside}]")
                else:
                    out.append(inside if in_class else f"[{inside}]")
                i += 2
                continue
            if nxt.isalnum() and nxt not in "tnrfv0xu":
                raise Untranslatable(f"{ecma!r}: escape \\{nxt}")
            out.append(ecma[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
            out.append(c)
        elif c == "[":
            if ecma.startswith(("[]", "[^]"), i):
                raise Untranslatable(f"{ecma!r}: an empty class")
            in_class = True
            out.append(c)
        elif c == "$":
            out.append(r"\Z")  # ECMA-262's `$` is the end of the input, and only that
        elif c == ".":
            out.append(ECMA_DOT)
        else:
            out.append(c)
        i += 1
    if in_class:
        raise Untranslatable(f"{ecma!r}: an unclosed class")
    return "".join(out)


@functools.cache
def _compiled(ecma: str) -> re.Pattern[str]:
    return re.compile(python_pattern(ecma))


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


OscalValidator = jsonschema.validators.extend(Draft7Validator, {"pattern": _pattern})
# The schema's own check against draft-07's metaschema asks that every pattern be a `regex`:
# an ECMA-262 one, translated as above.
REGEX_FORMAT = jsonschema.FormatChecker(formats=())


@REGEX_FORMAT.checks("regex", raises=(Untranslatable, re.error))
def _is_regex(instance: object) -> bool:
    return not isinstance(instance, str) or bool(_compiled(instance))


def load_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def patterns(node: Any) -> Iterator[str]:
    """Every `pattern` keyword of the schema (not a property that happens to be named so)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from patterns(item)


@functools.cache
def validator() -> Any:
    schema = load_schema()
    Draft7Validator(Draft7Validator.META_SCHEMA, format_checker=REGEX_FORMAT).validate(schema)
    for ecma in set(patterns(schema)):
        _compiled(ecma)  # every pattern translates, or the test fails here
    return OscalValidator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)


def errors(doc: Any) -> list[str]:
    """Every way `doc` fails the schema, one line each (none: it is valid)."""
    return [
        f"{e.json_path}: {e.message[:300]}"
        for e in sorted(validator().iter_errors(doc), key=lambda e: e.json_path)
    ]
