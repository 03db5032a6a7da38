"""The collector as the SSH master's own first session (walguard.facts.first_session): where the
command's output ends, read from both streams; what the remote shell is given."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from walguard.facts import first_session

M = "@@WG-END-0123456789abcdef@@"


def test_output_ends_at_both_markers_with_the_exit_status() -> None:
    out = b"@@WG-x@@ a\nline\n\n" + M.encode() + b" 3\n"
    err = b"warning\n" + M.encode() + b"\n"
    assert first_session.parse(out, err, M) == first_session.Marked(3, b"@@WG-x@@ a\nline\n",
                                                                     b"warning\n")  # fmt: skip


def test_output_without_a_final_newline_is_kept_as_it_was() -> None:
    done = first_session.parse(b"no newline\n" + M.encode() + b" 0\n", M.encode() + b"\n", M)
    assert done == first_session.Marked(0, b"no newline", b"")


@pytest.mark.parametrize(
    ("out", "err"),
    [
        (b"x\n" + M.encode() + b" 0\n", b""),  # stderr's marker has not arrived
        (b"x\n", M.encode() + b"\n"),  # stdout's has not
        (b"x\n" + M.encode() + b" 0\nmore\n", M.encode() + b"\n"),  # not at the end
        (b"x\n@@WG-END-ffffffffffffffff@@ 0\n", b"@@WG-END-ffffffffffffffff@@\n"),  # another
    ],
)
def test_anything_short_of_both_markers_is_not_the_end(out: bytes, err: bytes) -> None:
    assert first_session.parse(out, err, M) is None


def test_the_wrapped_command_runs_in_a_real_shell_and_waits_for_stdin() -> None:
    """The wrapper in /bin/sh here, as sshd would start it: the command's status and streams
    come back marked, its stdin is /dev/null, and the session holds until stdin closes."""
    command = "sh -c 'read x; echo out; echo err >&2; exit 7'"
    line = first_session.wrap(command, marker=M, become=False, timeout_s=10)
    argv = shlex.split(line)
    assert argv[:2] == ["/bin/sh", "-c"]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        done = first_session.read(proc, M, time.monotonic() + 10)
        assert done == first_session.Marked(7, b"out\n", b"err\n")
        assert proc.poll() is None  # held open
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0


def test_what_follows_the_command_adds_its_output_but_not_its_status() -> None:
    """`then` (PostgreSQL's query as the login user) runs after the command in the same
    session: its output follows the command's, its stdin is /dev/null too, and the exit status
    marked is still the command's."""
    then = "read x || echo then-stdin-empty; echo then-out; exit 9"
    line = first_session.wrap("sh -c 'echo first; exit 3'", marker=M, become=False, timeout_s=10,
                              then=then)  # fmt: skip
    proc = subprocess.Popen(
        shlex.split(line), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        done = first_session.read(proc, M, time.monotonic() + 10)
        assert done == first_session.Marked(3, b"first\nthen-stdin-empty\nthen-out\n", b"")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0


def test_a_process_that_ends_before_its_markers_is_no_answer() -> None:
    proc = subprocess.Popen(
        ["sh", "-c", "echo partial"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with pytest.raises(first_session.NoAnswer) as info:
        first_session.read(proc, M, time.monotonic() + 10)
    assert info.value.timed_out is False
    proc.wait()


def test_a_command_that_never_ends_is_no_answer_at_the_deadline() -> None:
    proc = subprocess.Popen(
        ["sleep", "30"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        with pytest.raises(first_session.NoAnswer) as info:
            first_session.read(proc, M, time.monotonic() + 0.3)
        assert info.value.timed_out is True
    finally:
        proc.kill()
        proc.wait()


def test_without_gnu_dd_the_output_comes_through_cat(tmp_path: Path) -> None:
    """A dd without iflag=fullblock (BusyBox built without it, a BSD dd): the output is passed
    on as it comes, by cat, and still ends at its markers."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dd").write_text("#!/bin/sh\necho 'dd: unknown operand iflag' >&2\nexit 1\n")
    (bin_dir / "dd").chmod(0o755)
    line = first_session.wrap("printf 'a\\nb'", marker=M, become=False, timeout_s=10)
    proc = subprocess.Popen(
        shlex.split(line),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    try:
        assert first_session.read(proc, M, time.monotonic() + 10) == first_session.Marked(
            0, b"a\nb", b""
        )
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def test_a_connection_never_seen_up_is_no_answer_at_its_own_deadline() -> None:
    """Until `connected()` says so (the master's control socket), no output and a passed
    `connect_by` is a connection that did not come, not a command that hung."""
    proc = subprocess.Popen(
        ["sleep", "30"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        now = time.monotonic()
        with pytest.raises(first_session.NoAnswer) as info:
            first_session.read(proc, M, now + 10, connected=lambda: False, connect_by=now + 0.3)
        assert info.value.timed_out is True and info.value.connected is False
        assert time.monotonic() - now < 5
    finally:
        proc.kill()
        proc.wait()


def test_a_master_that_ends_before_it_was_up_says_so() -> None:
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 0.2"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with pytest.raises(first_session.NoAnswer) as info:
        first_session.read(proc, M, time.monotonic() + 10, connected=lambda: False)
    assert info.value.timed_out is False and info.value.connected is False
    proc.wait()


def test_when_the_connection_came_up_is_kept() -> None:
    """The reader asks at its own wake-ups (no loop of its own): the moment it first heard yes
    is the attempt's, and the command's end is read as ever."""
    asked: list[float] = []

    def connected() -> bool:
        asked.append(time.monotonic())
        return len(asked) >= 3

    line = first_session.wrap("sh -c 'sleep 0.5; echo done'", marker=M, become=False,
                              timeout_s=10)  # fmt: skip
    proc = subprocess.Popen(
        shlex.split(line), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        done = first_session.read(proc, M, time.monotonic() + 10, connected=connected)
        assert done == first_session.Marked(0, b"done\n", b"")
        assert done.connected_at is not None and done.connected_at >= asked[2]
        assert len(asked) == 3  # not asked again once up
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
