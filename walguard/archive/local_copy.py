"""Local copies in an archive_command: cp and rsync, their no-clobber options, their guards.

Recognised: `cp -n`/`--no-clobber`/`--update=none` (and `rsync --ignore-existing`) into the
policy's archive directory; `test ! -f T && cp %p T`, `test -f T || cp %p T` and `[ ... ]`
variants; `if [ -f T ]; then cmp -s %p T; else cp %p T; fi`. The tested path must be the file
the copy writes, and that file must be %f in the policy's archive directory.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from walguard.archive.shell import (
    F,
    P,
    Rejected,
    Tok,
    executable,
    noop,
    redirections,
    render,
    show,
    simple,
    unwrap,
)

_NO_CLOBBER = frozenset(
    {"--no-clobber", "--ignore-existing", "--update=none", "--update=none-fail"}
)
_VALUES = {
    "cp": frozenset({"-t", "--target-directory", "-S", "--suffix"}),
    "rsync": frozenset({"-e", "--rsh"}),
}


@dataclass(frozen=True)
class CopyUse:
    directory: str  # the local directory written into (the policy's)
    overwrite: tuple[bool, str]  # WG-ARC-003
    identical: tuple[bool, str]  # WG-ARC-004


@dataclass(frozen=True)
class _Copy:
    program: str  # as written, e.g. "cp --no-clobber"
    target: str  # normalised path of the archived file, ending in %f
    directory: str
    no_clobber: bool


def read_copy(argv: list[Tok], stdin_null: bool, policy_dir: str) -> CopyUse | None:
    """A lone cp/rsync/scp; None when argv is another program."""
    copy = _copy(argv, stdin_null, policy_dir)
    if copy is None:
        return None
    target = show(copy.target)
    if not copy.no_clobber:
        raise Rejected(
            f"a plain {copy.program} overwrites an archived segment at {target}: "
            "it has neither a no-clobber option nor a guard",
            "copy",
            copy.directory,
        )
    return CopyUse(
        copy.directory,
        (True, f"{copy.program} never overwrites an existing {target}"),
        (
            False,
            f"{copy.program} skips an existing {target} without comparing it with "
            "the segment: depending on the program and version it reports success for a "
            "different file (hiding a conflict) or fails for an identical one; "
            f"safer: {_safer(target)}",
        ),
    )


def read_guarded(
    guard_toks: list[Tok], separator: str, copy_toks: list[Tok], policy_dir: str
) -> CopyUse:
    copy = _copy_statement(copy_toks, policy_dir)
    negated, path = guard(guard_toks) or (False, Tok(""))
    _same_path(path, copy)
    target, test = show(copy.target), render(guard_toks)
    if (separator == "&&") != negated:
        raise Rejected(
            f"`{test} {separator} {copy.program}` copies only when {target} already "
            "exists, overwriting it",
            "copy",
            copy.directory,
        )
    if separator == "&&":
        identical = (
            f"`{test} && {copy.program}` fails even when the archived {target} is "
            "identical to the segment (PostgreSQL docs 26.3.1 ask for success then), so "
            "a retry after a crash stalls archiving"
        )
    else:
        identical = (
            f"`{test} || {copy.program}` reports success when {target} already exists "
            "even if it differs from the segment, hiding a conflict"
        )
    return CopyUse(
        copy.directory,
        (
            True,
            f"guarded copy: `{test} {separator} {copy.program}` never overwrites an "
            f"existing {target}",
        ),
        (False, f"{identical}; safer: {_safer(target)}"),
    )


def read_if(statements: list[list[Tok]], policy_dir: str) -> CopyUse:
    heads = [s[0].text for s in statements[:4]]
    if heads != ["if", "then", "else", "fi"] or len(statements[3]) != 1:
        text = "; ".join(render(s) for s in statements)
        raise Rejected(f"cannot verify: an if … fi form walguard does not recognise: `{text}`")
    if len(statements) > 4:
        raise Rejected(
            f"runs `{render(statements[4])}` after the if … fi; only the last "
            "command's exit status reaches PostgreSQL"
        )
    found = guard(statements[0][1:])
    if found is None:
        raise Rejected(
            f"cannot verify: the if condition `{render(statements[0][1:])}` is not a file test"
        )
    then, otherwise = statements[1][1:], statements[2][1:]
    exists, missing = (otherwise, then) if found[0] else (then, otherwise)
    copy = _copy_statement(missing, policy_dir)
    _same_path(found[1], copy)
    target = show(copy.target)
    never = (
        True,
        f"guarded copy: an existing {target} is never overwritten (if … fi "
        "copies only when it is missing)",
    )
    if noop(exists):
        why = "reports success even if it differs from the segment, hiding a conflict"
    elif exists and executable(exists[0]) in ("false", "exit"):
        why = "fails even when it is identical to the segment (PostgreSQL docs 26.3.1)"
    elif _compares(exists, copy.target):
        same = "success only when it is identical to the segment, failure when it differs"
        return CopyUse(
            copy.directory, never, (True, f"an existing {target} is compared with cmp: {same}")
        )
    else:
        raise Rejected(
            f"cannot verify: when {target} exists it runs `{render(exists)}`",
            "copy",
            copy.directory,
        )
    return CopyUse(
        copy.directory,
        never,
        (False, f"when {target} already exists, `{render(exists)}` {why}; safer: {_safer(target)}"),
    )


def _copy_statement(toks: list[Tok], policy_dir: str) -> _Copy:
    cmd = simple(toks)
    stdin_null = redirections(cmd)
    argv, _ = unwrap(cmd.argv, cmd.env)
    copy = _copy(argv, stdin_null, policy_dir) if argv else None
    if copy is None:
        raise Rejected(
            f"cannot verify: the guarded command `{render(toks)}` is not a copy "
            "walguard knows (cp, rsync)"
        )
    return copy


def _copy(argv: list[Tok], stdin_null: bool, policy_dir: str) -> _Copy | None:
    program = executable(argv[0])
    if program == "scp":
        raise Rejected(
            f"scp replaces an existing file at {show(argv[-1].text)} (it has no "
            "no-clobber option) and walguard cannot see that directory",
            "copy",
        )
    if program not in ("cp", "rsync"):
        return None
    operands: list[Tok] = []
    flags: list[str] = []
    into: Tok | None = None
    args, i = argv[1:], 0
    while i < len(args):
        text = args[i].text
        if not text.startswith("-") or text == "-" or "--" in flags:
            operands.append(args[i])
        elif text in _VALUES[program] and i + 1 < len(args):
            i += 1
            into = args[i] if text in ("-t", "--target-directory") else into
        elif text.startswith("--target-directory="):
            into = Tok(text.partition("=")[2], dynamic=args[i].dynamic)
        else:
            flags.append(text)
        i += 1
    short = "".join(f[1:] for f in flags if not f.startswith("--"))
    if program == "rsync" and ("n" in short or "--dry-run" in flags):
        raise Rejected("rsync --dry-run copies nothing", "copy")
    chosen = [f for f in flags if f in _NO_CLOBBER or (program == "cp" and f == "-n")]
    if not chosen and program == "cp" and "n" in short:
        chosen = ["-n"]
    if not chosen and program == "cp" and "i" in short and stdin_null:
        chosen = ["-i </dev/null"]
    if into is not None:
        operands.append(Tok(into.text.rstrip("/") + "/" + F, dynamic=into.dynamic))
    if len(operands) != 2:
        raise Rejected(
            f"cannot verify the copy `{render(argv)}`: expected {program} %p DIR/%f", "copy"
        )
    if operands[0].text != P:
        raise Rejected(f"{program} copies {show(operands[0].text)}, not the segment %p", "copy")
    target, directory = _target(operands[1], policy_dir, program)
    return _Copy(" ".join([program, *chosen[:1]]), target, directory, bool(chosen))


def _target(dst: Tok, policy_dir: str, program: str) -> tuple[str, str]:
    text = dst.text
    if dst.dynamic:
        raise Rejected(
            f"the copy target {show(text)} depends on a shell expansion walguard cannot resolve",
            "copy",
        )
    if program != "cp" and re.match(r"[^/]*:", text):
        raise Rejected(
            f"copies to the remote target {show(text)}, not the policy's archive "
            f"directory {policy_dir}; walguard cannot see that directory",
            "copy",
        )
    if F not in text and (text.endswith("/") or norm(text) == policy_dir):
        text = text.rstrip("/") + "/" + F  # a directory: the copy keeps the name, %f
    head, sep, name = text.rpartition("/")
    if name != F or P in head or F in head:
        raise Rejected(f"{program} writes {show(text)}, not a file named %f", "copy")
    directory = norm(head or sep or ".")
    if directory != policy_dir:
        raise Rejected(
            f"copies to {directory}, not the policy's archive directory "
            f"{policy_dir or '(none set)'}",
            "copy",
            directory,
        )
    return posixpath.join(directory, F), directory


def guard(toks: list[Tok]) -> tuple[bool, Tok] | None:
    """`test [!] -f PATH`, `[ [!] -e PATH ]` or `! test ...` -> (negated, PATH)."""
    words = [t for t in toks if not t.op]
    if len(words) != len(toks):
        return None
    negated = bool(words) and words[0].text == "!"
    words = words[1:] if negated else words
    if words and words[0].text == "[" and words[-1].text == "]":
        body = words[1:-1]
    elif words and executable(words[0]) == "test":
        body = words[1:]
    else:
        return None
    if body and body[0].text == "!":
        negated, body = not negated, body[1:]
    if len(body) == 2 and body[0].text in ("-f", "-e"):
        return negated, body[1]
    return None


def _same_path(path: Tok, copy: _Copy) -> None:
    tested = norm(path.text)
    if path.dynamic or tested != copy.target:
        raise Rejected(
            f"the guard tests {show(path.text)} but the copy writes {show(copy.target)}",
            "copy",
            copy.directory,
        )


def _compares(toks: list[Tok], target: str) -> bool:
    """`cmp [-s] %p TARGET` (either order)."""
    cmd = simple(toks)
    redirections(cmd)
    words = [t for t in cmd.argv if t.text not in ("-s", "--silent", "--quiet")]
    if len(words) != 3 or executable(words[0]) != "cmp" or any(t.dynamic for t in words):
        return False
    return sorted(norm(t.text) for t in words[1:]) == sorted([P, target])


def _safer(target: str) -> str:
    return f"if [ -f {target} ]; then cmp -s %p {target}; else cp %p {target}; fi"


def norm(path: str) -> str:
    return posixpath.normpath(re.sub(r"/+", "/", path)) if path else "."
