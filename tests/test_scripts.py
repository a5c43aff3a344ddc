"""The project's own scripts."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bootstrap_refuses_an_old_java(tmp_path):
    fake = tmp_path / "jdk" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    (fake / "java").chmod(0o755)
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "jdk")}
    result = subprocess.run([ROOT / "scripts" / "bootstrap"], capture_output=True, text=True, env=env)
    assert result.returncode == 3
    assert "Spark 4 needs Java 17 or newer, found 11" in result.stderr
