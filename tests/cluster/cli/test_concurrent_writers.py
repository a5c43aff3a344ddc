"""Two `segcore audiences` processes on one partition at once, as overlapping scheduler runs:
one writes, the other exits 3 naming it (or both succeed one after the other); never a traceback,
and the partition is one complete version with no lease left. Repeated: timing decides who wins."""

import subprocess

import pandas as pd
from commands import BIN

from segcore.storage.lease import LEASE
from segcore.storage.versions import local_partition

ROUNDS = 3


def test_overlapping_exports_of_one_partition_never_crash(pipeline, tmp_path):
    config = pipeline["config"]
    output = tmp_path / "audiences"
    args = [str(BIN / "segcore"), "audiences", "--set", f"workdir={config.workdir}"]
    args += [
        "--set",
        f"mlflow.tracking_uri={config.tracking_uri()}",
        "--set",
        f"campaigns.audiences_output={output}",
    ]
    args += ["--set", "audiences.everyone.where=true"]
    outcomes = []
    for _ in range(ROUNDS):
        processes = [
            subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"
        ]
        results = [(p.wait(timeout=300), p.communicate()[1]) for p in processes]
        codes = sorted(code for code, _ in results)
        assert codes in ([0, 0], [0, 3]), [err[-2000:] for _, err in results]
        for code, err in results:
            if code == 3:
                assert "is being written by process" in err and "Traceback" not in err
        outcomes.append(codes)
        partition = output / "as_of=2026-06-30" / "everyone"
        assert not (partition / LEASE).exists()
        members = pd.read_parquet(local_partition(partition) + "/members")
        assert len(members) == pipeline["score"].customers
    print(f"overlapping exports, exit codes per round: {outcomes}")
