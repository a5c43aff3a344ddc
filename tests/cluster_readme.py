"""The README's "Running on a cluster" commands, as the tests read them, and a user's shell to run
them in."""

from __future__ import annotations

import os
import re
import shlex

from conftest import ROOT

README_MASTER = "spark://master:7077"


def _blocks() -> list[str]:
    """The bash blocks of the README's "Running on a cluster", continued lines joined."""
    section = (ROOT / "README.md").read_text().split("## Running on a cluster", 1)[1].split("\n## ", 1)[0]
    return [block.replace("\\\n", " ") for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL)]


def readme_lines() -> list[str]:
    """The command lines of the first bash block of the README's "Running on a cluster"."""
    return _blocks()[0].splitlines()


def readme_block(marker: str) -> str:
    """The bash block of the README's "Running on a cluster" that starts with the line ``# marker``."""
    return next(block for block in _blocks() if block.startswith(f"# {marker}\n"))


def readme_submit_words() -> list[str]:
    """The README's client-mode spark-submit line, up to the job file (excluded)."""
    words = shlex.split(next(line for line in readme_lines() if line.startswith(".venv/bin/spark-submit")))
    return words[: next(i for i, word in enumerate(words) if word.startswith("jobs/"))]


def user_env(**extra: str) -> dict[str, str]:
    """A user's shell: no Python chosen for Spark, no SPARK_HOME, no tracking URI."""
    unset = ("PYSPARK_", "MLFLOW_", "SPARK_HOME")
    env = {key: value for key, value in os.environ.items() if not key.startswith(unset)}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}
