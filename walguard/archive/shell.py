"""The shell side of reading an archive_command: PostgreSQL's placeholders, then POSIX sh tokens.

PostgreSQL replaces %p, %f and %% itself and hands the result to /bin/sh. We do the same
replacement with two private-use characters standing for %p and %f (they cannot occur in a
path), then split the text the way sh does: quotes, backslashes, operators (; && || | & ( )
newline, redirections), comments. Anything whose meaning depends on what runs at archive time
(command substitution) is refused with a reason; $-expansions are marked as `dynamic`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

P = "\ue000"  # %p once PostgreSQL has replaced it
F = "\ue001"  # %f

OPERATORS: tuple[str, ...] = ("&&", "||", ";;", "|&", ">>", ">|", "&>", ">&", "<&", "<<", "<>")
OPERATORS += (";", "&", "|", "(", ")", "<", ">", "\n")
REDIRECTIONS = frozenset({">>", ">|", "&>", ">&", "<&", "<<", "<>", "<", ">"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_UNTRUSTED_DIRS = ("/tmp/", "/var/tmp/", "/dev/shm/")


class Rejected(Exception):
    """walguard does not accept the command; `message` names the offending part."""

    def __init__(self, message: str, kind: str = "unknown", target_dir: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.target_dir = target_dir


@dataclass(frozen=True)
class Tok:
    text: str
    op: bool = False
    dynamic: bool = False  # holds a $ expansion that the shell resolves at archive time


@dataclass
class Simple:
    """One simple command: its words, leading VAR=value assignments and redirections."""

    argv: list[Tok]
    env: dict[str, str] = field(default_factory=dict)
    redirections: list[tuple[str, Tok]] = field(default_factory=list)


def substitute(command: str) -> str:
    """PostgreSQL's own pass: %p, %f and %% are replaced before the shell sees the command."""
    return re.sub(r"%[pf%]", lambda m: {"%p": P, "%f": F, "%%": "%"}[m.group()], command)


def plain(text: str) -> str:
    """%p and %f spelled out, for text that is not an archive_command (a repository check)."""
    return text.replace(P, "%p").replace(F, "%f")


def show(text: str) -> str:
    """Back to archive_command spelling: %p, %f, and %% for a literal percent sign."""
    return text.replace("%", "%%").replace(P, "%p").replace(F, "%f")


def render(toks: list[Tok]) -> str:
    words = (
        show(t.text) if t.op or (t.text and " " not in t.text) else repr(show(t.text)) for t in toks
    )
    return " ".join(w if w != "\n" else ";" for w in words)


def _substitution(command: str, i: int) -> str:
    if command[i] == "`":
        end = command.find("`", i + 1)
        return command[i : end + 1] if end >= 0 else command[i:]
    depth = 0
    for j in range(i + 1, len(command)):
        depth += {"(": 1, ")": -1}.get(command[j], 0)
        if depth == 0:
            return command[i : j + 1]
    return command[i:]


def _refuse_substitution(command: str, i: int) -> Rejected:
    return Rejected(
        f"cannot verify: it runs the command substitution {show(_substitution(command, i))}, "
        "whose output becomes part of the command at archive time"
    )


def _unbalanced(command: str, i: int) -> Rejected:
    return Rejected(
        f"cannot verify: unbalanced quotes (the {command[i]} opening `{show(command[i:])}` is "
        "never closed)"
    )


def _double_quoted(command: str, i: int, buf: list[str]) -> tuple[int, bool]:
    start, dynamic = i - 1, False
    while i < len(command):
        c = command[i]
        if c == '"':
            return i + 1, dynamic
        if c == "\\" and i + 1 < len(command) and command[i + 1] in '$`"\\\n':
            buf.append("" if command[i + 1] == "\n" else command[i + 1])
            i += 2
            continue
        if c == "`" or command.startswith("$(", i):
            raise _refuse_substitution(command, i)
        dynamic = dynamic or c == "$"
        buf.append(c)
        i += 1
    raise _unbalanced(command, start)


def tokenise(command: str) -> list[Tok]:
    """Split (already substituted) text into words and operators as sh does."""
    toks: list[Tok] = []
    buf: list[str] = []
    started = quoted = dynamic = False
    i, n = 0, len(command)

    def flush() -> None:
        nonlocal started, quoted, dynamic
        if started:
            toks.append(Tok("".join(buf), dynamic=dynamic))
        buf.clear()
        started = quoted = dynamic = False

    while i < n:
        c = command[i]
        if c == "'":
            end = command.find("'", i + 1)
            if end < 0:
                raise _unbalanced(command, i)
            buf.append(command[i + 1 : end])
            started = quoted = True
            i = end + 1
        elif c == '"':
            i, dyn = _double_quoted(command, i + 1, buf)
            started = quoted = True
            dynamic = dynamic or dyn
        elif c == "\\":
            if i + 1 >= n:
                raise Rejected("cannot verify: the command ends with a lone backslash")
            if command[i + 1] != "\n":
                buf.append(command[i + 1])
                started = quoted = True
            i += 2
        elif c == "`" or command.startswith("$(", i):
            raise _refuse_substitution(command, i)
        elif c == "#" and not started:
            end = command.find("\n", i)
            i = n if end < 0 else end
        elif c in " \t\r":
            flush()
            i += 1
        else:
            op = next((o for o in OPERATORS if command.startswith(o, i)), None)
            if op is None:
                buf.append(c)
                started = True
                dynamic = dynamic or c == "$"
                i += 1
                continue
            if op[0] in "<>" and started and not quoted and "".join(buf).isdigit():
                buf.clear()  # a file descriptor number, as in 2>/dev/null
                started = False
            flush()
            toks.append(Tok(op, op=True))
            i += len(op)
    flush()
    return toks


def _closing(toks: list[Tok]) -> int:
    """Index of the parenthesis that closes toks[0]."""
    depth = 0
    for j, t in enumerate(toks):
        depth += {"(": 1, ")": -1}.get(t.text, 0) if t.op else 0
        if depth == 0:
            return j
    return -1


def strip_group(toks: list[Tok]) -> list[Tok]:
    """Drop parentheses around the whole command; refuse any other subshell."""
    while toks and toks[0].op and toks[0].text == "(" and _closing(toks) == len(toks) - 1:
        toks = toks[1:-1]
    if any(t.op and t.text == ";;" for t in toks):
        raise Rejected(f"cannot verify: `;;` outside a case statement in `{render(toks)}`")
    if any(t.op and t.text in ("(", ")") for t in toks):
        raise Rejected(
            f"cannot verify: it runs a subshell ( … ) inside the command: {render(toks)}"
        )
    return toks


def split(toks: list[Tok], separators: frozenset[str]) -> list[tuple[str, list[Tok]]]:
    """Cut at top-level separators: [(separator before the part, part), ...]."""
    parts: list[tuple[str, list[Tok]]] = [("", [])]
    for t in toks:
        if t.op and t.text in separators:
            parts.append((t.text, []))
        else:
            parts[-1][1].append(t)
    return parts


def simple(toks: list[Tok]) -> Simple:
    cmd = Simple([])
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.op:
            if t.text not in REDIRECTIONS or i + 1 >= len(toks) or toks[i + 1].op:
                raise Rejected(f"cannot verify: unexpected {show(t.text)} in `{render(toks)}`")
            cmd.redirections.append((t.text, toks[i + 1]))
            i += 2
            continue
        if not cmd.argv and _ASSIGNMENT.match(t.text):
            name, _, value = t.text.partition("=")
            cmd.env[name] = value
        else:
            cmd.argv.append(t)
        i += 1
    return cmd


def executable(tok: Tok) -> str | None:
    """The program's name when we may trust it: a bare name or an absolute path outside /tmp."""
    text = tok.text
    if tok.dynamic or not text or P in text or F in text:
        return None
    if "/" not in text:
        return text
    if text.startswith("/") and not text.startswith(_UNTRUSTED_DIRS):
        return text.rsplit("/", 1)[1]
    return None


def unwrap(argv: list[Tok], env: dict[str, str]) -> tuple[list[Tok], list[str]]:
    """Strip `env`, `envdir DIR`, `timeout DURATION` and `exec` in front of the real program.

    Assignments made by `env` go into `env`; the returned list names the wrappers seen (an
    `envdir` hides settings from us)."""
    seen: list[str] = []
    while argv and executable(argv[0]) in ("env", "envdir", "timeout", "exec"):
        name = executable(argv[0]) or ""
        seen.append(f"{name} {argv[1].text}" if name == "envdir" and len(argv) > 1 else name)
        rest = argv[1:]
        if name == "envdir":
            rest = rest[1:]
        elif name in ("env", "timeout"):
            while rest and rest[0].text.startswith("-"):
                consumes = rest[0].text in ("-u", "-s", "-k", "-S", "--unset", "--signal")
                rest = rest[2 if consumes else 1 :]
            if name == "timeout":
                rest = rest[1:]  # the duration
            while name == "env" and rest and _ASSIGNMENT.match(rest[0].text):
                key, _, value = rest[0].text.partition("=")
                env[key] = value
                rest = rest[1:]
        argv = rest
    return argv, seen


def redirections(cmd: Simple) -> bool:
    """Refuse redirections that could write or read files; True when stdin is /dev/null."""
    stdin_null = False
    for op, target in cmd.redirections:
        text = target.text
        if op in (">&", "<&") and (text.isdigit() or text == "-"):
            continue
        if text == "/dev/null" and op != "<<":
            stdin_null = stdin_null or op == "<"
            continue
        raise Rejected(
            f"redirects with `{op} {show(text)}`; walguard cannot verify what that writes or reads"
        )
    return stdin_null


def noop(toks: list[Tok]) -> bool:
    """`true`, `:` or `exit 0`: a command that always succeeds."""
    words = [t.text for t in toks]
    return words in ([":"], ["exit", "0"]) or (len(toks) == 1 and executable(toks[0]) == "true")
