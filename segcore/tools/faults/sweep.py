"""The signal sweep: SIGTERM or SIGINT sent to `segcore train`, `score`, `drift` and `promote` at
instants spread over the whole command, not at pause points. Each command is first run once
undisturbed; its logged steps (``<stage>: <step> done in <s> s``) split its run time into spans —
start-up, every step, the ending — and a signal is aimed at the middle of each span, plus seeded
random instants. After each signal: exit 0 or 128 + the signal, no traceback, no run RUNNING,
every KILLED run with its reason, every version registered by a FINISHED run and both aliases on
a version, and the outputs as they were."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from segcore.tools.faults.campaign import AS_OF, Campaign, Outcome
from segcore.tools.faults.tracking import MODEL, Store
from segcore.tracking.lifecycle import FAILURE_TAG

EARLIER = "2026-05-31"  # a second scoring for drift
STEP_DONE = re.compile(r"segcore: (\w+): (.+?) done in ([\d.]+) s")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
RETRIES = 2  # a signal aimed past the command's end is aimed again this often, each time earlier


@dataclass(frozen=True)
class Aim:
    """When to signal: ``delay`` seconds after the command logged its ``steps_done``-th step
    (0: after its start), so that an aim follows the command's progress, not the clock."""

    steps_done: int
    delay: float

    def __str__(self) -> str:
        return (
            f"{self.delay:.1f} s after step {self.steps_done}" if self.steps_done else f"{self.delay:.1f} s"
        )


@dataclass(frozen=True)
class Timed:
    """A command's stderr with the time of each line, from its start; and its exit code."""

    exit_code: int
    lines: list[tuple[float, str]]
    signalled_at: float | None = None

    def steps(self) -> list[tuple[str, float, float]]:
        """Each logged step as (name, start, end) in seconds from the command's start."""
        found = []
        for at, line in self.lines:
            match = STEP_DONE.search(line)
            if match:
                found.append((f"{match[1]}: {match[2]}", max(0.0, at - float(match[3])), at))
        return found

    def landed(self) -> str:
        """Where the signal landed: after which logged step (a step cut short logs nothing)."""
        if self.signalled_at is None:
            return "after the command ended"
        done = [name for name, _, end in self.steps() if end <= self.signalled_at]
        return f"after {done[-1]}" if done else "before the first step"

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)


def run_timed(campaign: Campaign, args: list[str], aim: Aim | None, signum: int) -> Timed:
    """Run ``segcore *args``, sending ``signum`` at ``aim`` if it still runs then."""
    process = campaign.spawn(*args)
    started, lines, anchored = time.monotonic(), [], threading.Event()
    if aim is None or aim.steps_done == 0:
        anchored.set()

    def read() -> None:
        done = 0
        for line in process.stderr:
            lines.append((time.monotonic() - started, line))
            done += bool(STEP_DONE.search(line))
            if aim is not None and done >= aim.steps_done:
                anchored.set()
        anchored.set()  # the command ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    signalled = None
    if aim is not None:
        anchored.wait(timeout=600)
        try:
            process.wait(timeout=aim.delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signum)
            signalled = time.monotonic() - started
    code = process.wait(timeout=600)
    reader.join(60)
    return Timed(code, lines, signalled)


def shoot(campaign: Campaign, args: list[str], aim: Aim, signum: int) -> Timed:
    """Run ``segcore *args`` signalled at ``aim``. A command that ended before the signal came (it
    ran faster than the undisturbed run, on a machine less busy) runs again, the signal aimed at
    half the delay, :data:`RETRIES` times at most."""
    shot = run_timed(campaign, args, aim, signum)
    for _ in range(RETRIES):
        if shot.signalled_at is not None:
            break
        aim = Aim(aim.steps_done, aim.delay / 2)
        shot = run_timed(campaign, args, aim, signum)
    return shot


def aims(reference: Timed, extra: int, seed: int, limit: int | None = None) -> list[Aim]:
    """The middle of the start-up, of every logged step and of the ending of ``reference``, each
    counted from the step before it; and ``extra`` seeded random instants over its whole run
    (``limit``: a seeded choice of that many of them)."""
    steps = reference.steps()
    end = reference.lines[-1][0] if reference.lines else 1.0
    spans = [(0.0, steps[0][1] if steps else end)] + [(start, stop) for _, start, stop in steps]
    spans.append((steps[-1][2] if steps else 0.0, end))
    anchors = [0.0, *(stop for _, _, stop in steps)]  # when the n-th step ended
    chosen = [Aim(0, spans[0][1] / 2)]
    chosen += [Aim(done, (start + stop) / 2 - anchors[done]) for done, (start, stop) in enumerate(spans[1:])]
    rng = random.Random(seed)
    chosen += [Aim(0, rng.uniform(0.1, end)) for _ in range(extra)]
    return chosen if limit is None else rng.sample(chosen, min(limit, len(chosen)))


def problems(campaign: Campaign, store: Store, shot: Timed, signum: int, normal_exit: int) -> list[str]:
    """What a signalled command broke (empty: nothing)."""
    found = []
    if shot.exit_code not in (normal_exit, 128 + signum, -signum):  # -signum: ended by it during exit
        found.append(f"exit {shot.exit_code}")
    if "Traceback" in shot.stderr:
        found.append("a traceback")
    runs = store.client.search_runs([store.experiment], max_results=5000)
    if any(run.info.status == "RUNNING" for run in runs):
        found.append("a run left RUNNING")
    if any(run.info.status == "KILLED" and FAILURE_TAG not in run.data.tags for run in runs):
        found.append("a KILLED run without its reason")
    if not store.tidy():
        found.append("a version registered by a run that did not finish")
    versions = {str(v.version) for v in store.client.search_model_versions(f"name = '{MODEL}'")}
    if not set(store.aliases().values()) <= versions or set(store.aliases()) != {"champion", "challenger"}:
        found.append(f"aliases {store.aliases()}")
    if not campaign.intact():
        found.append("outputs changed")
    return found


@dataclass(frozen=True)
class Sweep:
    """What a sweep of one command found."""

    problems: list[str]  # each with the signal and the aim
    landed: set[str]  # where the signals landed (after which step)
    signals: int  # signals sent while the command ran
    steps: int  # logged steps of the undisturbed run


def sweep_command(
    campaign: Campaign, args: list[str], extra: int, seed: int, limit: int | None = None
) -> Sweep:
    """Signal ``segcore *args`` at every aim (or at ``limit`` of them), alternating SIGTERM and SIGINT."""
    store = Store(campaign)
    champion = store.aliases()["champion"]
    reference = run_timed(campaign, args, None, signal.SIGTERM)
    store.client.set_registered_model_alias(MODEL, "champion", champion)  # promote moves it
    if "Traceback" in reference.stderr or reference.exit_code not in (0, 4):  # 4: drift's alert
        raise RuntimeError(f"segcore {args[0]} failed undisturbed:\n{reference.stderr[-3000:]}")
    found, landed, signals = [], set(), 0
    for n, aim in enumerate(aims(reference, extra, seed, limit)):
        signum = SIGNALS[n % 2]
        shot = shoot(campaign, args, aim, signum)
        if shot.signalled_at is not None:
            signals += 1
            landed.add(shot.landed())
        broken = problems(campaign, store, shot, signum, reference.exit_code)
        name = f"{args[0]} {signal.Signals(signum).name} at {aim}"
        if broken:  # what the command printed, for the one who reads the table
            log = campaign.workdir / f"sweep-{args[0]}-{n}.log"
            log.write_text(shot.stderr)
            broken.append(f"its stderr: {log}")
        print(
            f"  {name}: exit {shot.exit_code}, {shot.landed()}{''.join(f'; {b}' for b in broken)}",
            file=sys.stderr,
        )
        found += [f"{name}: {b}" for b in broken]
        store.client.set_registered_model_alias(MODEL, "champion", champion)
    return Sweep(found, landed, signals, len(reference.steps()))


def sweep_commands(
    campaign: Campaign, commands: dict[str, list[str]], extra: int = 2, seed: int = 7
) -> Outcome:
    """The sweep over ``commands`` (name: the command's arguments) as one outcome of the campaign."""
    found, counts = [], []
    for n, args in enumerate(commands.values()):
        sweep = sweep_command(campaign, args, extra, seed + n)
        found += sweep.problems
        counts.append(f"{args[0]}: {sweep.signals} signals, {len(sweep.landed)} places ({sweep.steps} steps)")
    message = found[0] if found else "every signal ended the command cleanly"
    return Outcome(0 if not found else 1, message, not found, "; ".join(counts))


def commands(campaign: Campaign) -> dict[str, list[str]]:
    """train, score, drift and promote as the sweep runs them (drift on a second, earlier scoring)."""
    for stage in ("features", "score"):
        done = campaign.segcore(stage, "--set", f"as_of={EARLIER}")
        if done.returncode:
            raise RuntimeError(f"segcore {stage} at {EARLIER} failed:\n{done.stderr[-3000:]}")
    return {
        "train": ["train", "--force", "--set", "kmeans.k=3"],
        "score": ["score"],
        "drift": ["drift", "--from", EARLIER, "--to", AS_OF],
        "promote": ["promote", "--force"],  # the challenger; the champion is put back after each
    }
