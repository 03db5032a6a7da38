"""An SSH ProxyCommand that adds latency: relays stdin/stdout to HOST:PORT and holds every chunk
for DELAY_MS in each direction (so the round trip grows by twice that).

The benchmark uses it because this machine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is
not set), so `tc qdisc ... netem delay` cannot add latency on the lab bridge.

    ProxyCommand python3 bench/delay_relay.py %h %p 10
"""

from __future__ import annotations

import os
import queue
import socket
import sys
import threading
import time


def _pump(read: callable, write: callable, delay_s: float) -> None:  # type: ignore[valid-type]
    pending: queue.Queue[tuple[float, bytes]] = queue.Queue()

    def reader() -> None:
        while True:
            data = read()
            pending.put((time.monotonic() + delay_s, data))
            if not data:
                return

    threading.Thread(target=reader, daemon=True).start()
    while True:
        due, data = pending.get()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if not data:
            write(b"")
            return
        write(data)


def main() -> int:
    host, port, delay_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    delay_s = delay_ms / 1000
    sock = socket.create_connection((host, port), timeout=10)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def to_remote(data: bytes) -> None:
        if data:
            sock.sendall(data)
        else:
            sock.shutdown(socket.SHUT_WR)

    def to_local(data: bytes) -> None:
        if data:
            os.write(1, data)
        else:
            os.close(1)

    up = threading.Thread(
        target=_pump, args=(lambda: os.read(0, 65536), to_remote, delay_s), daemon=True
    )
    up.start()
    _pump(lambda: sock.recv(65536), to_local, delay_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
