"""A config the command can check is refused before Spark starts: `segcore` run as a user runs it."""

import subprocess
import sys
from pathlib import Path


def test_checkable_config_stops_the_command_before_spark_starts(tmp_path):
    segcore = Path(sys.executable).parent / "segcore"
    for args in (["features", "--set", "as_of=2026-02-30"], ["train", "--set", "select.rule=fixed"]):
        if args[0] == "train":
            args += ["--set", "kmeans.k={min: 3, max: 5}"]
        result = subprocess.run(
            [segcore, *args, "--set", f"workdir={tmp_path}"], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "config key '" in result.stderr
        assert "spark application" not in result.stderr
