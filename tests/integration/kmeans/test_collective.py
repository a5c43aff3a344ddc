"""The socket all-gather of the spark engine, between threads on 127.0.0.1: right answers, and no
stranger can stall it (silent, slow), get in (garbage, wrong HMAC, a replayed handshake), or slip a
message past it (forged, huge) -- each either ignored without waiting or a fast, clear error."""

import pathlib
import pickle
import socket
import struct
import threading
import time

import pytest

from segcore.kmeans.engines.collective import (
    MAC_BYTES,
    NONCE_BYTES,
    CollectiveError,
    StarCollective,
    executor_host,
)

SECRET = b"s" * 32
FIT_TIMEOUT = 120  # what the fit would wait for a missing peer; nothing here may come near it
FAST = 5  # seconds: "without waiting" -- normal runs take well under a second
HELLO_BYTES = NONCE_BYTES + 4 + MAC_BYTES


def _run_ranks(world, listener, work, ranks=None, address=None, handshake_timeout=10.0):
    """Start ranks (default: all) as threads; rank 0 serves on ``listener``, the others join
    ``address`` (default: the listener's)."""
    results, errors = {}, {}
    address = address or listener.getsockname()

    def rank(r):
        try:
            if r == 0:
                comm = StarCollective.serve(listener, world, SECRET, FIT_TIMEOUT, handshake_timeout)
            else:
                comm = StarCollective.join(address, r, world, SECRET, FIT_TIMEOUT)
            with comm:
                results[r] = work(comm)
        except Exception as exc:  # surfaced by the test
            errors[r] = exc

    threads = [threading.Thread(target=rank, args=(r,)) for r in (range(world) if ranks is None else ranks)]
    for t in threads:
        t.start()
    return threads, results, errors


def _join_all(threads, limit=FAST):
    for t in threads:
        t.join(limit)
    assert not any(t.is_alive() for t in threads), "a rank is still waiting"


def _gather_ranks(comm):
    return comm.allgather(comm.rank * 10)


def _read_until_closed(sock, limit=FAST) -> bytes:
    """Everything the other side sends until it closes the connection (a reset is a close: rank 0
    may drop a stranger before reading all it sent)."""
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _read_exactly(sock, size: int, limit=FAST) -> bytes:
    sock.settimeout(limit)
    received = b""
    while len(received) < size and (chunk := sock.recv(size - len(received))):
        received += chunk
    return received


def test_allgather_returns_every_payload_in_rank_order():
    listener = socket.create_server(("127.0.0.1", 0))
    threads, results, errors = _run_ranks(3, listener, _gather_ranks)
    _join_all(threads)
    assert not errors
    assert results == {r: [0, 10, 20] for r in range(3)}


def test_strangers_with_a_wrong_hmac_garbage_or_a_huge_length_prefix_are_dropped():
    listener = socket.create_server(("127.0.0.1", 0))
    strangers = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    started = time.monotonic()
    threads, results, errors = _run_ranks(3, listener, _gather_ranks)
    for stranger, sent in zip(
        strangers, [b"x", b"\x00garbage\xff" * 10, struct.pack("!Q", 2**63) * 9], strict=True
    ):
        assert len(_read_exactly(stranger, NONCE_BYTES)) == NONCE_BYTES  # rank 0 speaks first
        stranger.sendall((sent * HELLO_BYTES)[:HELLO_BYTES])
        assert _read_until_closed(stranger) == b""  # no proof, then closed
        stranger.close()
    _join_all(threads)
    assert not errors
    assert results == {r: [0, 10, 20] for r in range(3)}
    assert time.monotonic() - started < FAST


def test_a_silent_stranger_does_not_delay_the_fit():
    listener = socket.create_server(("127.0.0.1", 0))
    silent = socket.create_connection(listener.getsockname())  # first in line, never says a word
    started = time.monotonic()
    threads, results, errors = _run_ranks(3, listener, _gather_ranks)
    _join_all(threads)
    elapsed = time.monotonic() - started
    silent.close()
    assert not errors
    assert results == {r: [0, 10, 20] for r in range(3)}
    assert elapsed < FAST  # neither the fit's timeout (120 s) nor the handshake deadline (10 s)


def test_a_slow_stranger_is_cut_off_at_the_handshake_deadline_while_rank_0_keeps_waiting():
    listener = socket.create_server(("127.0.0.1", 0))
    slow = socket.create_connection(listener.getsockname())
    threads, results, errors = _run_ranks(2, listener, _gather_ranks, ranks=[0], handshake_timeout=1.0)
    started = time.monotonic()
    try:
        for _ in range(40):  # a byte every 0.1 s: a per-read timeout would never fire
            slow.sendall(b"x")
            time.sleep(0.1)
        pytest.fail("the slow stranger was never cut off")
    except OSError:
        cut_off = time.monotonic() - started
    assert 0.8 < cut_off < 3.0, cut_off  # the 1 s deadline for the whole handshake
    assert threads[0].is_alive()  # rank 0 still waits for rank 1, within the fit's timeout
    more, more_results, more_errors = _run_ranks(2, listener, _gather_ranks, ranks=[1])
    _join_all(threads + more)
    assert not errors and not more_errors
    assert results == {0: [0, 10]} and more_results == {1: [0, 10]}


class _Recorder:
    """A relay between a joining rank and rank 0 that records the bytes each side sent."""

    def __init__(self, upstream):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.sent = {"rank": b"", "rank 0": b""}
        self._upstream = upstream
        threading.Thread(target=self._relay, daemon=True).start()

    def _relay(self):
        client, _ = self.listener.accept()
        server = socket.create_connection(self._upstream)

        def pump(source, sink, who):
            while data := source.recv(4096):
                self.sent[who] += data
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)

        threading.Thread(target=pump, args=(server, client, "rank 0"), daemon=True).start()
        pump(client, server, "rank")


def test_a_replayed_handshake_gets_in_neither_way():
    listener = socket.create_server(("127.0.0.1", 0))
    recorder = _Recorder(listener.getsockname())
    threads, results, errors = _run_ranks(
        3, listener, _gather_ranks, ranks=[0, 1], address=recorder.listener.getsockname()
    )
    deadline = time.monotonic() + FAST
    while len(recorder.sent["rank 0"]) < NONCE_BYTES + MAC_BYTES and time.monotonic() < deadline:
        time.sleep(0.01)
    # A stranger replays rank 1's recorded hello to rank 0: rank 0's fresh nonce makes it worthless.
    with socket.create_connection(listener.getsockname()) as replay:
        replay.sendall(recorder.sent["rank"][:HELLO_BYTES])
        assert len(_read_until_closed(replay)) == NONCE_BYTES  # rank 0 never proves itself to it
    more, more_results, more_errors = _run_ranks(3, listener, _gather_ranks, ranks=[2])
    _join_all(threads + more)
    assert not errors and not more_errors
    assert {**results, **more_results} == {r: [0, 10, 20] for r in range(3)}

    # A stranger posing as rank 0 replays rank 0's recorded nonce and proof to a joining rank.
    with socket.create_server(("127.0.0.1", 0)) as fake:

        def pose():
            conn, _ = fake.accept()
            conn.sendall(recorder.sent["rank 0"][:NONCE_BYTES])
            conn.recv(HELLO_BYTES)
            conn.sendall(recorder.sent["rank 0"][NONCE_BYTES : NONCE_BYTES + MAC_BYTES])

        threading.Thread(target=pose, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(CollectiveError, match="did not prove it holds the fit's secret"):
            StarCollective.join(fake.getsockname(), 1, 2, SECRET, FIT_TIMEOUT)
        assert time.monotonic() - started < FAST


class _Planted:
    """Unpickling this creates a file: proof that a payload was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return pathlib.Path.touch, (self.path,)


@pytest.mark.parametrize("forgery", ["forged HMAC", "huge length"])
def test_a_forged_message_from_a_connected_peer_stops_the_fit_fast_without_unpickling_it(tmp_path, forgery):
    planted = tmp_path / "unpickled"
    listener = socket.create_server(("127.0.0.1", 0))
    threads, results, errors = _run_ranks(2, listener, _gather_ranks, ranks=[0])
    comm = StarCollective.join(listener.getsockname(), 1, 2, SECRET, FIT_TIMEOUT)
    data = pickle.dumps(_Planted(pathlib.Path(planted)))
    if forgery == "forged HMAC":
        frame = struct.pack("!Q", len(data)) + b"\x00" * MAC_BYTES + data
    else:
        frame = struct.pack("!Q", 2**62)
    started = time.monotonic()
    comm._peers[0].sock.sendall(frame)  # bytes on the authenticated connection, not from its channel
    _join_all(threads)
    comm.close()
    assert time.monotonic() - started < FAST
    assert not results
    message = "failed its HMAC check" if forgery == "forged HMAC" else "announced a 4611686018427387904-byte"
    assert isinstance(errors[0], CollectiveError) and message in str(errors[0])
    assert "k-means task 1" in str(errors[0])
    assert not planted.exists()


def test_missing_peers_time_out_with_a_clear_error():
    listener = socket.create_server(("127.0.0.1", 0))
    with pytest.raises(CollectiveError, match="only 1 of 2 k-means tasks connected"):
        StarCollective.serve(listener, 2, SECRET, timeout=0.5)


@pytest.mark.parametrize(("address", "host"), [("127.0.0.1:7077", "127.0.0.1"), ("[::1]:7077", "::1")])
def test_rank_0_listens_on_the_executor_address_spark_reports(address, host):
    assert executor_host(address) == host
