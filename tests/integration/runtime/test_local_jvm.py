"""The local session's JVM as segcore starts it, in a fresh interpreter: the parallel garbage
collector by default, and a collector chosen in JAVA_TOOL_OPTIONS is used instead of refusing to
start (a JVM given two collectors exits at once)."""

import os
import subprocess
import sys

import pytest
from conftest import ROOT

COLLECTORS = """
from segcore.runtime.spark import get_spark
beans = get_spark("collectors").sparkContext._jvm.java.lang.management.ManagementFactory
print(sorted(bean.getName() for bean in beans.getGarbageCollectorMXBeans()))
"""


@pytest.mark.parametrize(
    "java_tool_options, collectors",
    [(None, "['PS MarkSweep', 'PS Scavenge']"), ("-XX:+UseSerialGC", "['Copy', 'MarkSweepCompact']")],
)
def test_the_local_jvm_runs_the_parallel_collector_unless_the_environment_chose_one(
    java_tool_options, collectors
):
    env = {key: value for key, value in os.environ.items() if key != "PYSPARK_SUBMIT_ARGS"}
    if java_tool_options:
        env["JAVA_TOOL_OPTIONS"] = java_tool_options
    done = subprocess.run(
        [sys.executable, "-c", COLLECTORS], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == collectors
