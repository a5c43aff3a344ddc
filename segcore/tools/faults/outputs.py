"""Cases of the campaign about outputs and the environment: writers killed at every step of a
commit, a killed training, an unwritable folder, a full disk, a missing Java, and config or data
that must be refused before the work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd

from segcore.runtime.crash_points import PAUSE_ENV
from segcore.storage.versions import STEPS, local_partition
from segcore.tools.faults.campaign import AS_OF, OUTPUTS, Campaign, Case, Outcome


def _killed(stage: str, marker: str, env: dict[str, str] | None = None):
    def run(campaign: Campaign) -> Outcome:
        campaign.kill_at(campaign.spawn(stage, env=env), marker)
        during = campaign.intact()
        rerun = campaign.segcore(stage)  # the next run cleans up after the killed one
        leftovers = _leftovers(campaign)
        note = f"rerun: exit {rerun.returncode}, outputs {'intact' if campaign.intact() else 'CHANGED'}"
        note += f", leftovers: {', '.join(leftovers) or 'none'}"
        return Outcome(None, "", during and rerun.returncode == 0 and not leftovers, note)

    return run


def _leftovers(campaign: Campaign) -> list[str]:
    """Anything in the output partitions besides the pointer and the committed version."""
    found = []
    for table in OUTPUTS:
        partition = campaign.workdir / table / f"as_of={AS_OF}"
        current = Path(local_partition(partition)).name
        found += [f"{table}/{name}" for name in os.listdir(partition) if name not in ("_CURRENT", current)]
        found += [f"{table}/{name}" for name in os.listdir(partition.parent) if name.startswith("_")]
    return found


def _refused(*args: str, env: dict[str, str] | None = None, expected: int = 2):
    def run(campaign: Campaign) -> Outcome:
        result = campaign.segcore(*args, env=env)
        return Outcome(
            result.returncode,
            Campaign.last_line(result),
            campaign.intact() and result.returncode == expected,
        )

    return run


def _unwritable(campaign: Campaign) -> Outcome:
    blocker = campaign.workdir / "a-file"
    blocker.write_text("not a folder")
    return _refused("features", "--set", f"features.output={blocker}/features", expected=3)(campaign)


def _full_disk(campaign: Campaign) -> Outcome:
    """Features written to a 16 MiB tmpfs, which is then filled: the rewrite must fail cleanly."""
    disk = campaign.workdir / "small-disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        return Outcome(None, "", True, f"not run: cannot mount a tmpfs ({mounted.stderr.strip()})")
    try:
        output = ["--set", f"features.output={disk}/features"]
        first = campaign.segcore("features", *output)
        before = pd.read_parquet(local_partition(disk / "features" / f"as_of={AS_OF}"))
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"x" * max(0, free - 64 * 1024))
        result = campaign.segcore("features", *output)
        after = pd.read_parquet(local_partition(disk / "features" / f"as_of={AS_OF}"))
        kept = first.returncode == 0 and after.equals(before)
        return Outcome(
            result.returncode,
            Campaign.last_line(result),
            kept and campaign.intact() and result.returncode == 3,
            "previous partition on the full disk kept"
            if kept
            else "previous partition on the full disk LOST",
        )
    finally:
        subprocess.run(["umount", "-l", disk], check=False)


def _duplicates(campaign: Campaign) -> Outcome:
    """A feature table (written by hand, in the previous layout) with a customer twice."""
    table = campaign.workdir / "features-with-duplicates" / f"as_of={AS_OF}"
    table.mkdir(parents=True)
    features = pd.read_parquet(local_partition(campaign.workdir / "features" / f"as_of={AS_OF}"))
    pd.concat([features, features.head(2)]).to_parquet(table / "part-0.parquet")
    return _refused("train", "--set", f"features.output={table.parent}")(campaign)


CASES = [
    *(
        Case(
            f"features killed at {step}",
            f"SIGKILL while a features write pauses at '{step}'",
            _killed("features", f"paused at {step}", {PAUSE_ENV: step}),
        )
        for step in STEPS
    ),
    Case(
        "score killed before its commit",
        "SIGKILL after segments and profiles are staged",
        _killed("score", "paused at staged", {PAUSE_ENV: "staged"}),
    ),
    Case(
        "score killed after its commit",
        "SIGKILL after the pointer moved",
        _killed("score", "paused at committed", {PAUSE_ENV: "committed"}),
    ),
    Case(
        "train killed while fitting", "SIGKILL once the first k is fitted", _killed("train", "train: fit k=3")
    ),
    Case("unwritable output", "features.output under a file", _unwritable),
    Case("full disk", "features rewritten on a full 16 MiB tmpfs", _full_disk),
    Case("impossible date", "as_of=2026-02-30", _refused("features", "--set", "as_of=2026-02-30")),
    Case(
        "fixed rule without fixed_k",
        "select.rule=fixed, no select.fixed_k",
        _refused("train", "--set", "select.rule=fixed"),
    ),
    Case(
        "missing Java",
        "JAVA_HOME pointing nowhere",
        _refused("features", env={"JAVA_HOME": "/nonexistent/java"}, expected=3),
    ),
    Case("duplicate customer ids", "a feature table holding two customers twice", _duplicates),
]
