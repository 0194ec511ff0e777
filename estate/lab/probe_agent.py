"""The isolation test's agent: runs inside a lab host (python3 of the base image) or a probe namespace.

Standard library only: its source is passed to `python3 -c`. Two modes:

    listen ADDRESS SPEC[,SPEC...] MAX_SECONDS
        binds a TCP listener or a UDP echo responder per SPEC (`tcp/443`, `udp/53`) on ADDRESS, prints
        one JSON line {"bound": [...], "busy": [...]} (busy: something already holds the port), then
        serves until its standard input closes or MAX_SECONDS pass.
    probe TIMEOUT TARGET [TARGET...]
        TARGET is `tcp/ADDRESS/PORT` or `udp/ADDRESS/PORT`; probes them all at once and prints one JSON
        object {target: outcome}: "open" (TCP connected, or UDP answered), "refused" (RST, or ICMP port
        unreachable: the packet got there), "dropped" (nothing came back within TIMEOUT), or
        "error: ..." (no route, for example).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time


def _serve_tcp(sock: socket.socket) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.close()


def _serve_udp(sock: socket.socket) -> None:
    while True:
        try:
            data, peer = sock.recvfrom(2048)
            sock.sendto(data, peer)
        except OSError:
            return


def listen(address: str, specs: list[str], max_seconds: float) -> None:
    bound: list[str] = []
    busy: list[str] = []
    for spec in specs:
        proto, port = spec.split("/")
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, int(port)))
        except OSError:
            sock.close()
            busy.append(spec)
            continue
        if proto == "tcp":
            sock.listen(256)
        target = _serve_tcp if proto == "tcp" else _serve_udp
        threading.Thread(target=target, args=(sock,), daemon=True).start()
        bound.append(spec)
    print(json.dumps({"bound": bound, "busy": busy}), flush=True)
    done = threading.Event()

    def wait_stdin() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=wait_stdin, daemon=True).start()
    done.wait(max_seconds)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, result: asyncio.Future[str]) -> None:
        self.result = result

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if not self.result.done():
            self.result.set_result("open")

    def error_received(self, exc: Exception) -> None:
        if not self.result.done():
            self.result.set_result("refused" if isinstance(exc, ConnectionRefusedError) else f"error: {exc}")


async def _probe_one(target: str, timeout: float) -> str:
    proto, address, port = target.split("/")
    loop = asyncio.get_running_loop()
    if proto == "tcp":
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(address, int(port)), timeout)
        except TimeoutError:
            return "dropped"
        except ConnectionRefusedError:
            return "refused"
        except OSError as exc:
            return f"error: {exc.strerror or exc}"
        writer.close()
        return "open"
    result: asyncio.Future[str] = loop.create_future()
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(result), remote_addr=(address, int(port)))
    except OSError as exc:
        return f"error: {exc.strerror or exc}"
    try:
        transport.sendto(b"se-probe " + target.encode())
        return await asyncio.wait_for(result, timeout)
    except TimeoutError:
        return "dropped"
    finally:
        transport.close()


async def _probe_all(targets: list[str], timeout: float) -> dict[str, str]:
    outcomes = await asyncio.gather(*(_probe_one(t, timeout) for t in targets))
    return dict(zip(targets, outcomes, strict=True))


def probe(timeout: float, targets: list[str]) -> None:
    started = time.monotonic()
    results = asyncio.run(_probe_all(targets, timeout))
    print(json.dumps({"results": results, "seconds": round(time.monotonic() - started, 3)}), flush=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "listen":
        listen(argv[1], [s for s in argv[2].split(",") if s], float(argv[3]))
        return 0
    if len(argv) >= 2 and argv[0] == "probe":
        probe(float(argv[1]), argv[2:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
