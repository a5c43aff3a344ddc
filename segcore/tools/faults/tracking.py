"""The campaign's cases for MLflow state after faults and for the spark engine's collective: trains
killed (SIGKILL) or stopped (SIGTERM) at chosen moments, two first trains at once on a new store,
and strangers at the collective's door. Proven by tests/cluster/train/test_run_faults.py and
tests/integration/kmeans/test_collective.py."""

from __future__ import annotations

import signal
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from segcore.kmeans.engines.collective import MAC_BYTES, CollectiveError, StarCollective
from segcore.runtime.crash_points import PAUSE_ENV
from segcore.tools.faults.campaign import Campaign, Case, Outcome
from segcore.tracking.lifecycle import FAILURE_TAG
from segcore.tracking.store import store_client

MODEL = "customer_segments"
ONE_K = ("--force", "--set", "kmeans.k=3")
FIT_TIMEOUT = 120.0


def _signal_at(
    campaign: Campaign, marker: str, signum: int, pause: str | None = None
) -> tuple[int, str, int]:
    """A `segcore train` sent ``signum`` once its stderr shows ``marker``: exit code, stderr, pid."""
    process = campaign.spawn("train", *ONE_K, env={PAUSE_ENV: pause} if pause else None)
    seen = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            process.send_signal(signum)
            break
    seen.append(process.stderr.read())
    return process.wait(), "".join(seen), process.pid


def _last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return ("Traceback: " if "Traceback" in stderr else "") + (lines[-1] if lines else "")


class Store:
    """The campaign's MLflow store as a user reads it."""

    def __init__(self, campaign: Campaign):
        self.client = store_client(campaign.tracking_uri)
        self.experiment = self.client.get_experiment_by_name("segcore").experiment_id

    def last_run(self):
        runs = self.client.search_runs([self.experiment], order_by=["attributes.start_time DESC"])
        return next(run for run in runs if "mlflow.parentRunId" not in run.data.tags)

    def aliases(self) -> dict[str, str]:
        return {a: str(v) for a, v in self.client.get_registered_model(MODEL).aliases.items()}

    def tidy(self) -> bool:
        """No run RUNNING, and every version registered by a run that finished."""
        running = self.client.search_runs([self.experiment], "attributes.status = 'RUNNING'")
        versions = self.client.search_model_versions(f"name = '{MODEL}'")
        return not running and all(self.client.get_run(v.run_id).info.status == "FINISHED" for v in versions)

    def versions_of(self, run_id: str) -> list:
        return self.client.search_model_versions(f"name = '{MODEL}' and run_id = '{run_id}'")


def _stopped(campaign: Campaign, marker: str, pause: str | None) -> Outcome:
    store = Store(campaign)
    before = store.aliases()
    code, stderr, _ = _signal_at(campaign, marker, signal.SIGTERM, pause)
    run = store.last_run()
    intact = (
        code == 128 + signal.SIGTERM
        and run.info.status == "KILLED"
        and not store.versions_of(run.info.run_id)
        and store.aliases() == before
        and store.tidy()
        and campaign.intact()
    )
    note = (
        f"run {run.info.status}, {FAILURE_TAG}: {run.data.tags.get(FAILURE_TAG, '')[:40]}…; aliases unchanged"
    )
    return Outcome(code, _last_line(stderr), intact, note)


def _killed_after_registering(campaign: Campaign) -> Outcome:
    store = Store(campaign)
    before = store.aliases()
    _, _, pid = _signal_at(campaign, "segcore: paused at register", signal.SIGKILL, pause="register")
    run = store.last_run()
    left = [v.version for v in store.versions_of(run.info.run_id)]
    following = campaign.segcore("train", *ONE_K)
    reports = [line for line in following.stderr.splitlines() if f"by process {pid}" in line]
    ended = store.client.get_run(run.info.run_id).info.status
    intact = (
        following.returncode == 0
        and bool(reports)
        and ended == "KILLED"
        and not store.versions_of(run.info.run_id)
        and store.aliases()["champion"] == before["champion"]
        and store.tidy()
        and campaign.intact()
    )
    note = f"left RUNNING + version {left} without alias; the next train (exit {following.returncode}) "
    note += f"ended the run {ended} and deleted the version"
    return Outcome(None, reports[0].split(" segcore: ", 1)[-1] if reports else "no report", intact, note)


def _first_trains_at_once(campaign: Campaign) -> Outcome:
    store = f"sqlite:///{campaign.workdir / 'new-store' / 'mlflow.db'}"
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda _: campaign.segcore("train", *ONE_K, "--set", f"mlflow.tracking_uri={store}"), range(2)
            )
        )
    versions = store_client(store).search_model_versions(f"name = '{MODEL}'")
    codes = [result.returncode for result in results]
    intact = codes == [0, 0] and len(versions) == 2 and campaign.intact()
    message = (
        "; ".join(Campaign.last_line(result) for result in results if result.returncode) or "both trained"
    )
    return Outcome(max(codes), message, intact, f"exit codes {codes}, {len(versions)} versions registered")


def _strangers_at_the_collective(_: Campaign) -> Outcome:
    """A 3-task all-gather with a silent stranger at the door, then a forged message on an
    authenticated connection; the fit's timeout is 120 s."""
    secret, listener = b"k" * 32, socket.create_server(("127.0.0.1", 0))
    silent = socket.create_connection(listener.getsockname())
    results: dict[int, object] = {}

    def rank(r: int) -> None:
        if r == 0:
            comm = StarCollective.serve(listener, 3, secret, FIT_TIMEOUT)
        else:
            comm = StarCollective.join(listener.getsockname(), r, 3, secret, FIT_TIMEOUT)
        with comm:
            results[r] = comm.allgather(r)

    started = time.monotonic()
    threads = [threading.Thread(target=rank, args=(r,), daemon=True) for r in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(FIT_TIMEOUT)
    gathered = time.monotonic() - started
    silent.close()

    listener = socket.create_server(("127.0.0.1", 0))
    errors: list[Exception] = []

    def serve_one() -> None:
        try:
            with StarCollective.serve(listener, 2, secret, FIT_TIMEOUT) as comm:
                comm.allgather(0)
        except CollectiveError as exc:
            errors.append(exc)

    server = threading.Thread(target=serve_one, daemon=True)
    server.start()
    peer = StarCollective.join(listener.getsockname(), 1, 2, secret, FIT_TIMEOUT)
    started = time.monotonic()
    peer._peers[0].sock.sendall(struct.pack("!Q", 4) + b"\0" * MAC_BYTES + b"evil")
    server.join(FIT_TIMEOUT)
    refused = time.monotonic() - started
    peer.close()
    intact = results == {r: [0, 1, 2] for r in range(3)} and gathered < 30 and bool(errors) and refused < 30
    message = f"CollectiveError: {errors[0]}" if errors else "forged message accepted"
    note = f"all-gather beside a silent stranger {gathered:.2f} s; forged message refused in {refused:.2f} s"
    return Outcome(0 if intact else 1, message, intact, note)


CASES: list[Case] = [
    Case(
        "train SIGTERM while working",
        "SIGTERM after `prepare features`",
        lambda c: _stopped(c, "train: prepare features", None),
    ),
    Case(
        "train SIGTERM during registration",
        "SIGTERM between the new version and its alias",
        lambda c: _stopped(c, "segcore: paused at register", "register"),
    ),
    Case(
        "train SIGKILL after registering",
        "SIGKILL between the new version and its alias; then a train",
        _killed_after_registering,
    ),
    Case(
        "two first trains at once", "two trains start together on a new SQLite store", _first_trains_at_once
    ),
    Case(
        "collective strangers",
        "a silent stranger, then a forged message, at a spark-engine fit's all-gather",
        _strangers_at_the_collective,
    ),
]
