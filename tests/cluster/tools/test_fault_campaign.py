"""The fault campaign's cases of several processes at once, on one small campaign workdir, with
real `segcore` processes and real signals: SIGTERM and SIGINT at instants spread over `train` and
`score` (the signal sweep, with fewer instants), two writers of one partition with a reader
during both, a scheduler's retry beside its first attempt, and two trains creating new segment
ids at the same time."""

from __future__ import annotations

import pytest

from segcore.tools.faults.campaign import Campaign
from segcore.tools.faults.cases import all_cases
from segcore.tools.faults.sweep import sweep_command


@pytest.fixture(scope="module")
def campaign(tmp_path_factory) -> Campaign:
    return Campaign(tmp_path_factory.mktemp("fault-campaign") / "workdir", customers=600)


@pytest.mark.parametrize(
    ("args", "shots"),
    [(["train", "--force", "--set", "kmeans.k=3"], 3), (["score"], 2)],
    ids=["train", "score"],
)
def test_a_signal_at_any_instant_ends_the_command_cleanly(campaign, args, shots):
    """After each signal: exit 0 or 128 + the signal, no traceback, no run RUNNING, every KILLED
    run with its reason, no version without a finished run, both aliases set, outputs as before.
    The aims follow the command's logged steps, and one past its end is aimed again, earlier: the
    sweep shares the cores with the other workers."""
    sweep = sweep_command(campaign, args, extra=1, seed=11, limit=shots)
    assert sweep.problems == []
    assert sweep.signals == shots  # every signal came while the command ran, not after it
    print(f"segcore {args[0]}: {sweep.signals} signals, landed {sorted(sweep.landed)}")


@pytest.mark.parametrize(
    "name", ["two writers and a reader", "retry during the first attempt", "trains creating ids at once"]
)
def test_processes_at_once_never_crash_nor_lose_data(campaign, name):
    case = next(case for case in all_cases() if case.name == name)
    outcome = case.run(campaign)
    assert outcome.intact, outcome
    assert "Traceback" not in outcome.message
    print(f"{name}: exit {outcome.exit_code}, {outcome.message}; {outcome.note}")
