"""The harness of the fault campaign: a fresh workdir with every stage run once, the ``segcore``
command run or killed against it, and a digest of its outputs read through their pointers."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from segcore.errors import SegcoreError
from segcore.storage.versions import local_partition

AS_OF = "2026-06-30"
OUTPUTS = ("features", "value_backtest", "segments", "profiles")
K_RANGE = "kmeans.k={min: 3, max: 8}"


@dataclass(frozen=True)
class Outcome:
    """What a case saw: ``exit_code`` None when the case killed the process; ``message`` the one
    line the user saw; ``intact`` whether every output is complete and as before."""

    exit_code: int | None
    message: str
    intact: bool
    note: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    run: Callable[[Campaign], Outcome]


class Campaign:
    """One fresh workdir: a sample lake, its features, a trained (champion) model and a scoring."""

    def __init__(self, workdir: Path, customers: int) -> None:
        if workdir.exists() and any(workdir.iterdir()):
            raise SegcoreError(f"--workdir {workdir} is not empty: the campaign needs a fresh folder")
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.settings = ["--set", f"workdir={workdir}", "--set", f"as_of={AS_OF}", "--set", K_RANGE]
        self.tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
        self._run_checked("generate", "--out", str(workdir / "lake"), "--customers", str(customers))
        for stage in ("features", "train", "score"):
            self._run_checked(stage, *self.settings)
        self.baseline = self.outputs()

    def _command(self, args: tuple[str, ...]) -> list[str]:
        return [str(Path(sys.executable).parent / "segcore"), *args]

    def _env(self, env: dict[str, str] | None) -> dict[str, str]:
        environment = {**os.environ, "PYSPARK_PYTHON": sys.executable, **(env or {})}
        environment.pop("MLFLOW_TRACKING_URI", None)
        return environment

    def _run_checked(self, *args: str) -> None:
        done = subprocess.run(self._command(args), capture_output=True, text=True, env=self._env(None))
        if done.returncode != 0:
            raise RuntimeError(f"preparing the campaign: segcore {args[0]} failed:\n{done.stderr[-3000:]}")

    def segcore(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600):
        """The ``segcore`` command ``args[0]`` with the campaign's settings, then ``args[1:]`` (which win)."""
        return subprocess.run(
            self._command((args[0], *self.settings, *args[1:])),
            capture_output=True,
            text=True,
            env=self._env(env),
            timeout=timeout,
        )

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            self._command((args[0], *self.settings, *args[1:])),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self._env(env),
        )

    def kill_at(self, process: subprocess.Popen, marker: str, timeout: float = 600) -> str:
        """Read ``process``'s stderr up to a line holding ``marker``, SIGKILL it there, and return
        the stderr seen; raise if it ended or ran ``timeout`` seconds without that line."""
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in process.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        seen, deadline = [], time.monotonic() + timeout
        try:
            while True:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                if line is None:
                    raise RuntimeError(f"the process ended before '{marker}':\n{''.join(seen)[-3000:]}")
                seen.append(line)
                if marker in line:
                    return "".join(seen)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def outputs(self) -> dict[str, str]:
        """A digest of each output partition's committed rows (``missing`` where there is none)."""
        digests = {}
        for table in OUTPUTS:
            try:
                frame = pd.read_parquet(local_partition(self.workdir / table / f"as_of={AS_OF}"))
            except SegcoreError:
                digests[table] = "missing"
                continue
            ordered = frame.sort_values(list(frame.columns)).reset_index(drop=True)
            digests[table] = f"{len(frame)} rows {pd.util.hash_pandas_object(ordered).sum() & 0xFFFFFFFF:08x}"
        return digests

    def intact(self) -> bool:
        """Every output partition holds exactly what the campaign started with."""
        return self.outputs() == self.baseline

    @staticmethod
    def last_line(result: subprocess.CompletedProcess) -> str:
        """The last line of stderr (what the user saw), or ``Traceback …`` where there is one."""
        if "Traceback" in result.stderr:
            return "Traceback: " + result.stderr.strip().splitlines()[-1]
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run_cases(campaign: Campaign, cases: list[Case]) -> list[tuple[Case, Outcome]]:
    results = []
    for case in cases:
        started = time.monotonic()
        print(f"case {case.name} ...", file=sys.stderr, flush=True)
        try:
            outcome = case.run(campaign)
        except Exception as exc:  # a case that could not run is a row of the table, not the end of it
            outcome = Outcome(None, f"case failed: {type(exc).__name__}: {str(exc)[:200]}", False)
        print(f"case {case.name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        results.append((case, outcome))
    return results


def table(results: list[tuple[Case, Outcome]]) -> str:
    """The results as a Markdown table."""
    rows = ["| case | exit code | message | outputs intact | note |", "|---|---|---|---|---|"]
    for case, outcome in results:
        code = "killed (SIGKILL)" if outcome.exit_code is None else str(outcome.exit_code)
        message = outcome.message.replace("|", "\\|") or "—"
        rows.append(
            f"| {case.name} | {code} | {message} | {'yes' if outcome.intact else 'NO'} | {outcome.note} |"
        )
    return "\n".join(rows)


def failed(results: list[tuple[Case, Outcome]]) -> bool:
    return any(not outcome.intact or "Traceback" in outcome.message for _, outcome in results)
