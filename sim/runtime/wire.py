"""Length-prefixed frames over TCP: the data path between the Ray runtime's driver and partitions.

A window of the Ray runtime is a barrier: the driver sends each partition its horizon and
inbound batches and waits for every report. As Ray remote calls that costs about 2 ms on this
machine; a frame on a connected socket costs tens of microseconds, and a blocked ``recv``
uses no CPU (Ray's compiled graphs are fast too, but their readers spin a core each while
waiting, which a 2-core machine cannot spare). Ray still creates, places and monitors the
partition processes; only the window traffic goes over these sockets.

Each frame is an 8-byte big-endian length and the payload. A connection opens with a random
token (so a stray client cannot join) and the partition's index.
"""

from __future__ import annotations

import secrets
import socket
import struct

HEADER = struct.Struct("!Q")
TOKEN_BYTES = 16


class WireError(ConnectionError):
    """The peer closed the connection, sent garbage or did not answer in time."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        try:
            k = sock.recv_into(view[got:], n - got)
        except TimeoutError as exc:
            raise WireError("no answer in time") from exc
        except OSError as exc:
            raise WireError(f"connection broken ({exc})") from exc
        if k == 0:
            raise WireError("connection closed by the peer")
        got += k
    return bytes(buf)


def send_frame(sock: socket.socket, payload: bytes) -> None:
    try:
        sock.sendall(HEADER.pack(len(payload)))
        sock.sendall(payload)
    except OSError as exc:
        raise WireError(f"connection broken ({exc})") from exc


def recv_frame(sock: socket.socket) -> bytes:
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    return _recv_exact(sock, size)


def _tune(sock: socket.socket, timeout_s: float | None) -> socket.socket:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout_s)
    return sock


class Hub:
    """The driver's end: listens, then holds one connection per partition, by index."""

    def __init__(self, host: str, count: int, timeout_s: float) -> None:
        self.token = secrets.token_bytes(TOKEN_BYTES)
        self.count, self.timeout_s = count, timeout_s
        self.listener = socket.create_server((host, 0))
        self.listener.settimeout(timeout_s)
        self.address: tuple[str, int] = (host, self.listener.getsockname()[1])
        self.peers: list[socket.socket | None] = [None] * count

    def accept_all(self) -> None:
        """Wait for every partition to connect (``WireError`` after the timeout)."""
        while any(p is None for p in self.peers):
            try:
                conn, _ = self.listener.accept()
            except TimeoutError as exc:
                missing = [i for i, p in enumerate(self.peers) if p is None]
                raise WireError(f"partitions {missing} did not connect in time") from exc
            _tune(conn, self.timeout_s)
            try:
                hello = recv_frame(conn)
            except WireError:
                conn.close()
                continue
            index = int.from_bytes(hello[TOKEN_BYTES:], "big")
            if hello[:TOKEN_BYTES] != self.token or not 0 <= index < self.count or self.peers[index] is not None:
                conn.close()
                continue
            self.peers[index] = conn
        self.listener.close()

    def send(self, index: int, payload: bytes) -> None:
        peer = self.peers[index]
        assert peer is not None
        send_frame(peer, payload)

    def recv(self, index: int) -> bytes:
        peer = self.peers[index]
        assert peer is not None
        return recv_frame(peer)

    def close(self) -> None:
        self.listener.close()
        for i, peer in enumerate(self.peers):
            if peer is not None:
                peer.close()
                self.peers[i] = None


def dial(address: tuple[str, int], token: bytes, index: int, timeout_s: float | None = None) -> socket.socket:
    """A partition's end: connect to the hub and introduce itself."""
    sock = _tune(socket.create_connection(address, timeout=timeout_s), None)
    send_frame(sock, token + index.to_bytes(4, "big"))
    return sock
