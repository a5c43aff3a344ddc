"""Cases of the campaign with several processes at once: the signal sweep, two writers of one
partition with a reader during both, a scheduler's retry started while the first attempt still
runs, and two trains that create new segment ids at the same time."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from segcore.config import build_config
from segcore.storage.lease import LEASE
from segcore.storage.versions import local_partition
from segcore.tools.faults.campaign import AS_OF, Campaign, Case, Outcome
from segcore.tools.faults.sweep import commands, sweep_commands
from segcore.tools.faults.tracking import MODEL, Store
from segcore.tracking.registry import load_version
from segcore.tracking.store import open_tracking


def _at_once(campaign: Campaign, commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    """Run the ``segcore`` commands at the same time; their results in order."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: campaign.segcore(*args), commands))


class Reader(threading.Thread):
    """Reads a partition through its pointer, again and again, as a pandas user does, until
    stopped: every read must see one complete version (``rows`` rows). A read that finds the
    version it resolved already replaced and deleted is read again, from the pointer."""

    def __init__(self, partition: Path, rows: int) -> None:
        super().__init__(daemon=True)
        self.partition, self.rows, self.stop = partition, rows, threading.Event()
        self.reads, self.rereads, self.wrong = 0, 0, []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                frame = pd.read_parquet(local_partition(self.partition))
            except (FileNotFoundError, OSError):
                self.rereads += 1
                continue
            self.reads += 1
            if len(frame) != self.rows:
                self.wrong.append(len(frame))
            time.sleep(0.05)


def _two_writers(campaign: Campaign) -> Outcome:
    """Two `segcore features` at once, then two `segcore score` at once, a reader on each
    partition meanwhile: each pair ends 0 and 0, or 0 and 3 naming the holder."""
    codes, messages, readers = [], [], []
    for stage, table in (("features", "features"), ("score", "segments")):
        partition = campaign.workdir / table / f"as_of={AS_OF}"
        reader = Reader(partition, len(pd.read_parquet(local_partition(partition))))
        reader.start()
        results = [done.returncode for done in _at_once(campaign, [[stage], [stage]])]
        reader.stop.set()
        reader.join(60)
        readers.append(reader)
        codes.append(sorted(results))
        messages.append(f"{stage}: exit codes {sorted(results)}")
        if (partition / LEASE).exists():
            messages.append(f"{stage}: a lease left behind")
    wrong = [r.wrong for r in readers if r.wrong]
    intact = all(pair in ([0, 0], [0, 3]) for pair in codes) and not wrong and campaign.intact()
    intact = intact and not any("lease left" in m for m in messages)
    note = ", ".join(f"{r.partition.parent.name}: {r.reads} reads, {r.rereads} re-read" for r in readers)
    return Outcome(max(max(pair) for pair in codes), "; ".join(messages), intact, note)


def _retry_during_first_attempt(campaign: Campaign) -> Outcome:
    """A scheduler's retry of `segcore score` started as soon as the first attempt logs its
    start, so that both reach the output partition at about the same time."""
    first = campaign.spawn("score")
    first.stderr.readline()
    retry = campaign.segcore("score")
    first.communicate(timeout=600)
    first_code = first.returncode
    partition = campaign.workdir / "segments" / f"as_of={AS_OF}"
    intact = first_code == 0 and retry.returncode in (0, 3) and campaign.intact()
    intact = intact and "Traceback" not in retry.stderr and not (partition / LEASE).exists()
    note = f"first attempt exit {first_code}, retry exit {retry.returncode}"
    return Outcome(retry.returncode, Campaign.last_line(retry), intact, note)


def _trains_creating_ids(campaign: Campaign) -> Outcome:
    """Two trains at once (k=4 and k=6) that give a new id to every segment not at a champion's
    centre: no new id may be one that another version used, or that the other train gave."""
    store, tracking = Store(campaign), open_tracking(build_config({"workdir": str(campaign.workdir)}))
    earlier = {str(v.version) for v in store.client.search_model_versions(f"name = '{MODEL}'")}
    trains = [
        ["train", "--force", "--set", f"kmeans.k={k}", "--set", "segments.max_match_distance=1e-9"]
        for k in (4, 6)
    ]
    results = [done.returncode for done in _at_once(campaign, trains)]
    ids = {
        str(v.version): set(load_version(tracking, str(v.version)).segment_ids)
        for v in store.client.search_model_versions(f"name = '{MODEL}'")
    }
    champion = ids[store.aliases()["champion"]]
    new = [ids[v] - champion for v in ids if v not in earlier]
    used_before = set().union(*(ids[v] for v in earlier))
    once = len(new) == 2 and not (new[0] & new[1]) and not ((new[0] | new[1]) & used_before)
    intact = results == [0, 0] and once and store.tidy() and campaign.intact()
    note = f"exit codes {results}; new ids {[sorted(s) for s in new]}; ids before {sorted(used_before)}"
    return Outcome(
        max(results), "every new id handed out once" if once else "an id handed out twice", intact, note
    )


CASES: list[Case] = [
    Case(
        "signal sweep",
        "SIGTERM/SIGINT at the middle of every step and at seeded instants of train, score, drift, promote",
        lambda c: sweep_commands(c, commands(c)),
    ),
    Case(
        "two writers and a reader",
        "two features, then two scores, at once; a pandas reader meanwhile",
        _two_writers,
    ),
    Case(
        "retry during the first attempt",
        "a second score started as the first starts",
        _retry_during_first_attempt,
    ),
    Case(
        "trains creating ids at once",
        "two trains (k=4, k=6) whose segments all need new ids",
        _trains_creating_ids,
    ),
]
