"""The socket all-gather of the spark engine, between threads on 127.0.0.1."""

import socket
import threading

import pytest

from segcore.kmeans.collective import NONCE_BYTES, CollectiveError, StarCollective

SECRET = b"s" * 32


def _run_ranks(world, listener, work):
    results, errors = {}, []

    def rank(r):
        try:
            if r == 0:
                comm = StarCollective.serve(listener, world, SECRET, timeout=10)
            else:
                comm = StarCollective.join(listener.getsockname(), r, world, SECRET, timeout=10)
            with comm:
                results[r] = work(comm)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    return threads, results, errors


def test_allgather_returns_every_payload_in_rank_order():
    listener = socket.create_server(("127.0.0.1", 0))
    threads, results, errors = _run_ranks(3, listener, lambda comm: comm.allgather(comm.rank * 10))
    for t in threads:
        t.join(20)
    assert not errors
    assert results == {r: [0, 10, 20] for r in range(3)}


def test_a_peer_without_the_secret_is_ignored():
    listener = socket.create_server(("127.0.0.1", 0))
    intruder = socket.create_connection(listener.getsockname())
    threads, results, errors = _run_ranks(2, listener, lambda comm: comm.allgather(comm.rank))
    intruder.recv(NONCE_BYTES)
    intruder.sendall(b"x" * 36)
    for t in threads:
        t.join(20)
    intruder.close()
    assert not errors
    assert results == {0: [0, 1], 1: [0, 1]}


def test_missing_peers_time_out_with_a_clear_error():
    listener = socket.create_server(("127.0.0.1", 0))
    with pytest.raises(CollectiveError, match="only 1 of 2 k-means tasks connected"):
        StarCollective.serve(listener, 2, SECRET, timeout=0.5)
