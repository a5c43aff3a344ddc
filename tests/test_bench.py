"""The benchmark runs end to end and prints its table (its figures are for the README, not
asserted here)."""

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_bench_prints_a_row_per_engine_with_ratios(tmp_path):
    result = subprocess.run(
        [
            BIN / "segcore",
            "bench",
            "--rows",
            "4000",
            "--iterations",
            "5",
            "--engines",
            "sklearn,local,spark-mllib",
            "--workdir",
            tmp_path,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split(" | ")[0]: line.split(" | ") for line in result.stdout.splitlines() if " | " in line}
    assert {"sklearn", "local", "spark-mllib"} <= set(rows)
    assert rows["local"][8].endswith("× faster") and rows["local"][9].endswith("× time")
    assert float(rows["local"][10]) < 1.01  # inertia within 1% of scikit-learn's best of 10
