"""All-gather among the tasks of one Spark barrier stage, over their own sockets.

Spark's ``BarrierTaskContext.allGather`` costs about a second per call (the barrier is checked
once a second), so it is used once, to exchange rank 0's address; every later exchange goes over
TCP in a star: each rank sends its payload to rank 0, which answers every rank with the list of
all payloads.

No stranger can stall or fool it. Rank 0 listens on its executor's own address, not on every
interface. Each incoming connection is authenticated in a thread of its own within
``HANDSHAKE_TIMEOUT_S`` (a whole-handshake deadline, separate from the fit's timeout), so a
silent or slow connection delays nobody. Authentication is mutual: both sides send a fresh
nonce and prove they hold the fit's secret with an HMAC-SHA256 over both nonces and the rank, so
a recorded handshake cannot be replayed to either side. Every later message carries an HMAC,
under a key derived from that handshake, over its direction, sequence number and payload, and is
checked before the payload is unpickled.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pickle
import queue
import selectors
import socket
import struct
import threading
import time
from typing import Any

_LENGTH = struct.Struct("!Q")
_RANK = struct.Struct("!I")
_SEQUENCE = struct.Struct("!Q")
NONCE_BYTES = 32
MAC_BYTES = 32
HANDSHAKE_TIMEOUT_S = 10.0
# Payloads are O(k·d) partial results; a larger announced length is refused before any reading.
MAX_MESSAGE_BYTES = 1 << 30
# Handshakes in flight at once; connections beyond it are closed at once.
MAX_PENDING = 256
_TO_ROOT, _FROM_ROOT = b"to rank 0", b"from rank 0"


class CollectiveError(RuntimeError):
    """A peer did not connect, authenticate or answer in time, or sent a message that fails its HMAC."""


def _mac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def _recv_exact(sock: socket.socket, size: int, deadline: float | None = None) -> bytes:
    """``size`` bytes; with ``deadline`` (time.monotonic), all of them by then, however they trickle in."""
    chunks, remaining = [], size
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("handshake deadline passed")
            sock.settimeout(left)
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise CollectiveError("a peer closed its connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class Channel:
    """One authenticated connection: pickled payloads framed as length, HMAC, payload."""

    def __init__(self, sock: socket.socket, key: bytes, outgoing: bytes, incoming: bytes, peer: str):
        self.sock, self._key, self._peer = sock, key, peer
        self._labels = {"out": outgoing, "in": incoming}
        self._sequence = {"out": 0, "in": 0}

    def _tag(self, direction: str, data: bytes) -> bytes:
        sequence = _SEQUENCE.pack(self._sequence[direction])
        self._sequence[direction] += 1
        return _mac(self._key, self._labels[direction], sequence, data)

    def send(self, payload: Any) -> None:
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        if len(data) > MAX_MESSAGE_BYTES:
            raise CollectiveError(f"a {len(data)}-byte message exceeds the {MAX_MESSAGE_BYTES}-byte limit")
        self.sock.sendall(_LENGTH.pack(len(data)) + self._tag("out", data) + data)

    def recv(self) -> Any:
        (size,) = _LENGTH.unpack(_recv_exact(self.sock, _LENGTH.size))
        if size > MAX_MESSAGE_BYTES:
            raise CollectiveError(
                f"{self._peer} announced a {size}-byte message (limit {MAX_MESSAGE_BYTES}): refused"
            )
        tag = _recv_exact(self.sock, MAC_BYTES)
        data = _recv_exact(self.sock, size)
        if not hmac.compare_digest(tag, self._tag("in", data)):
            raise CollectiveError(
                f"a message from {self._peer} failed its HMAC check (forged, replayed or corrupted): "
                "the fit stops rather than trust it"
            )
        return pickle.loads(data)  # only after its HMAC checked out

    def close(self) -> None:
        self.sock.close()


def _session(secret: bytes, transcript: bytes, sock: socket.socket, outgoing: bytes, peer: str) -> Channel:
    incoming = _FROM_ROOT if outgoing == _TO_ROOT else _TO_ROOT
    return Channel(sock, _mac(secret, b"session", transcript), outgoing, incoming, peer)


def _answer(conn: socket.socket, secret: bytes, deadline: float) -> tuple[int, Channel]:
    """Rank 0's side of the handshake: nonce out; client nonce, rank and proof in; own proof out."""
    server_nonce = os.urandom(NONCE_BYTES)
    conn.settimeout(max(deadline - time.monotonic(), 0.001))
    conn.sendall(server_nonce)
    hello = _recv_exact(conn, NONCE_BYTES + _RANK.size + MAC_BYTES, deadline)
    transcript = server_nonce + hello[: NONCE_BYTES + _RANK.size]
    if not hmac.compare_digest(hello[-MAC_BYTES:], _mac(secret, b"client", transcript)):
        raise CollectiveError("a connection failed the handshake")
    conn.sendall(_mac(secret, b"server", transcript))
    (rank,) = _RANK.unpack(hello[NONCE_BYTES : NONCE_BYTES + _RANK.size])
    return rank, _session(secret, transcript, conn, _FROM_ROOT, f"k-means task {rank}")


def _greet(conn: socket.socket, rank: int, secret: bytes, deadline: float, address) -> Channel:
    """A rank's side of the handshake, which also checks that rank 0 holds the secret."""
    server_nonce = _recv_exact(conn, NONCE_BYTES, deadline)
    transcript = server_nonce + os.urandom(NONCE_BYTES) + _RANK.pack(rank)
    conn.sendall(transcript[NONCE_BYTES:] + _mac(secret, b"client", transcript))
    if not hmac.compare_digest(_recv_exact(conn, MAC_BYTES, deadline), _mac(secret, b"server", transcript)):
        raise CollectiveError(
            f"k-means task {rank}: the listener at {address} did not prove it holds the fit's secret "
            "(not rank 0 of this fit)"
        )
    return _session(secret, transcript, conn, _TO_ROOT, "k-means task 0")


def executor_host(address: str) -> str:
    """The host of an executor's "host:port" address as Spark reports it ("[::1]:7077" gives "::1")."""
    return address.rsplit(":", 1)[0].strip("[]")


class _Admissions:
    """Handshakes in flight, one thread each; authenticated ranks come out of ``admitted``."""

    def __init__(self, secret: bytes, handshake_timeout: float):
        self._secret, self._timeout = secret, handshake_timeout
        self.admitted: queue.Queue[tuple[int, Channel]] = queue.Queue()
        self._pending: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.wake_read, self._wake_write = socket.socketpair()

    def start(self, conn: socket.socket) -> None:
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                conn.close()
                return
            self._pending.add(conn)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._handshake, args=(conn,), daemon=True).start()

    def _handshake(self, conn: socket.socket) -> None:
        try:
            admitted = _answer(conn, self._secret, time.monotonic() + self._timeout)
        except (CollectiveError, OSError):
            conn.close()  # a stranger, a replayed handshake or one too slow: dropped, nobody waited
            return
        finally:
            with self._lock:
                self._pending.discard(conn)  # before it is handed over: close() must not close it
        self.admitted.put(admitted)
        with contextlib.suppress(OSError):  # rank 0 may have stopped serving already
            self._wake_write.send(b"!")

    def close(self) -> None:
        """Drop the handshakes still in flight (their threads then end at once)."""
        with self._lock:
            for conn in self._pending:
                conn.close()
        self.wake_read.close()
        self._wake_write.close()


class StarCollective:
    """Rank 0 serves; ranks 1..n-1 hold one authenticated channel each to it."""

    def __init__(self, rank: int, world: int, peers: dict[int, Channel]):
        self.rank, self.world, self._peers = rank, world, peers

    @classmethod
    def serve(
        cls,
        listener: socket.socket,
        world: int,
        secret: bytes,
        timeout: float,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
    ) -> StarCollective:
        """Rank 0: authenticate the other ranks as they connect, each within ``handshake_timeout``;
        all of them must be in within ``timeout``."""
        peers: dict[int, Channel] = {}
        admissions = _Admissions(secret, handshake_timeout)
        deadline = time.monotonic() + timeout
        listener.setblocking(False)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(listener, selectors.EVENT_READ)
                selector.register(admissions.wake_read, selectors.EVENT_READ)
                while len(peers) < world - 1:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise CollectiveError(
                            f"only {len(peers) + 1} of {world} k-means tasks connected within {timeout:.0f}s"
                        )
                    for key, _ in selector.select(left):
                        if key.fileobj is listener:
                            _accept(listener, admissions)
                        else:
                            admissions.wake_read.recv(1024)
                    while not admissions.admitted.empty():
                        rank, channel = admissions.admitted.get()
                        if not 0 < rank < world or rank in peers:
                            channel.close()
                            raise CollectiveError(f"a second connection authenticated as k-means task {rank}")
                        channel.sock.settimeout(timeout)
                        peers[rank] = channel
        except BaseException:
            for channel in peers.values():
                channel.close()
            raise
        finally:
            admissions.close()
            listener.close()
        return cls(0, world, peers)

    @classmethod
    def join(
        cls,
        address: tuple[str, int],
        rank: int,
        world: int,
        secret: bytes,
        timeout: float,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
    ) -> StarCollective:
        """Ranks 1..n-1: connect to rank 0, and both prove they hold the secret."""
        try:
            conn = socket.create_connection(address, timeout=timeout)
        except OSError as exc:
            raise CollectiveError(f"k-means task {rank} could not reach rank 0 at {address}: {exc}") from None
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            channel = _greet(conn, rank, secret, time.monotonic() + handshake_timeout, address)
        except OSError as exc:
            conn.close()
            raise CollectiveError(
                f"k-means task {rank}: handshake with rank 0 at {address} failed: {exc}"
            ) from None
        except CollectiveError:
            conn.close()
            raise
        conn.settimeout(timeout)
        return cls(rank, world, {0: channel})

    def allgather(self, payload: Any) -> list[Any]:
        """Every rank's payload, in rank order, on every rank."""
        try:
            if self.rank != 0:
                self._peers[0].send(payload)
                return self._peers[0].recv()
            gathered = [payload] + [self._peers[r].recv() for r in range(1, self.world)]
            for r in range(1, self.world):
                self._peers[r].send(gathered)
            return gathered
        except TimeoutError:
            raise CollectiveError("a k-means task did not answer in time") from None

    def close(self) -> None:
        for channel in self._peers.values():
            channel.close()

    def __enter__(self) -> StarCollective:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _accept(listener: socket.socket, admissions: _Admissions) -> None:
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, InterruptedError):
        return
    conn.setblocking(True)
    admissions.start(conn)
