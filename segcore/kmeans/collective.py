"""All-gather among the tasks of one Spark barrier stage, over their own sockets.

Spark's ``BarrierTaskContext.allGather`` costs about a second per call (the barrier is checked
once a second), so it is used once, to exchange rank 0's address; every later exchange goes over
TCP in a star: each rank sends its payload to rank 0, which answers every rank with the list of
all payloads. Peers prove they hold the job's secret by an HMAC challenge before anything else is
read, and every socket operation has a timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import socket
import struct
import time
from typing import Any

_LENGTH = struct.Struct("!Q")
_RANK = struct.Struct("!I")
NONCE_BYTES = 32


class CollectiveError(RuntimeError):
    """A peer did not connect, authenticate or answer in time."""


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise CollectiveError("a peer closed its connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _send(sock: socket.socket, payload: Any) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LENGTH.pack(len(data)) + data)


def _recv(sock: socket.socket) -> Any:
    (size,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size))
    return pickle.loads(_recv_exact(sock, size))  # only after the peer authenticated


def _proof(secret: bytes, nonce: bytes) -> bytes:
    return hmac.new(secret, nonce, hashlib.sha256).digest()


class StarCollective:
    """Rank 0 serves; ranks 1..n-1 hold one connection each to it."""

    def __init__(self, rank: int, world: int, peers: dict[int, socket.socket]):
        self.rank, self.world, self._peers = rank, world, peers

    @classmethod
    def serve(cls, listener: socket.socket, world: int, secret: bytes, timeout: float) -> StarCollective:
        """Rank 0: accept and authenticate the other ranks."""
        peers: dict[int, socket.socket] = {}
        deadline = time.monotonic() + timeout
        while len(peers) < world - 1:
            listener.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                raise CollectiveError(
                    f"only {len(peers) + 1} of {world} k-means tasks connected within {timeout:.0f}s"
                ) from None
            conn.settimeout(timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nonce = os.urandom(NONCE_BYTES)
            conn.sendall(nonce)
            try:
                answer = _recv_exact(conn, 32 + _RANK.size)
            except (CollectiveError, OSError):
                conn.close()
                continue
            if not hmac.compare_digest(answer[:32], _proof(secret, nonce)):
                conn.close()  # not one of ours: ignore it
                continue
            (rank,) = _RANK.unpack(answer[32:])
            peers[rank] = conn
        listener.close()
        return cls(0, world, peers)

    @classmethod
    def join(
        cls, address: tuple[str, int], rank: int, world: int, secret: bytes, timeout: float
    ) -> StarCollective:
        """Ranks 1..n-1: connect to rank 0 and authenticate."""
        try:
            conn = socket.create_connection(address, timeout=timeout)
        except OSError as exc:
            raise CollectiveError(f"k-means task {rank} could not reach rank 0 at {address}: {exc}") from None
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        nonce = _recv_exact(conn, NONCE_BYTES)
        conn.sendall(_proof(secret, nonce) + _RANK.pack(rank))
        return cls(rank, world, {0: conn})

    def allgather(self, payload: Any) -> list[Any]:
        """Every rank's payload, in rank order, on every rank."""
        try:
            if self.rank != 0:
                _send(self._peers[0], payload)
                return _recv(self._peers[0])
            gathered = [payload] + [_recv(self._peers[r]) for r in range(1, self.world)]
            for r in range(1, self.world):
                _send(self._peers[r], gathered)
            return gathered
        except TimeoutError:
            raise CollectiveError("a k-means task did not answer in time") from None

    def close(self) -> None:
        for conn in self._peers.values():
            conn.close()

    def __enter__(self) -> StarCollective:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
