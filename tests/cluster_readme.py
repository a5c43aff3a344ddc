"""The README's "Running on a cluster" commands, as the tests read them, and a user's shell to run
them in."""

from __future__ import annotations

import os
import re
import shlex

from conftest import ROOT

README_MASTER = "spark://master:7077"


def readme_lines() -> list[str]:
    """The command lines of the first bash block of the README's "Running on a cluster"."""
    section = (ROOT / "README.md").read_text().split("## Running on a cluster", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return block.replace("\\\n", " ").splitlines()


def readme_submit_words() -> list[str]:
    """The README's client-mode spark-submit line, up to the job file (excluded)."""
    words = shlex.split(next(line for line in readme_lines() if line.startswith(".venv/bin/spark-submit")))
    return words[: next(i for i, word in enumerate(words) if word.startswith("jobs/"))]


def user_env(**extra: str) -> dict[str, str]:
    """A user's shell: no Python chosen for Spark, no SPARK_HOME, no tracking URI."""
    unset = ("PYSPARK_", "MLFLOW_", "SPARK_HOME")
    env = {key: value for key, value in os.environ.items() if not key.startswith(unset)}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", **extra}
