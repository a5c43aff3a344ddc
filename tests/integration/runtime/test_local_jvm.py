"""The local session's JVM as segcore starts it, in a fresh interpreter: the parallel garbage
collector by default, and a collector chosen in JAVA_TOOL_OPTIONS is used instead of refusing to
start (a JVM given two collectors exits at once); Spark's classes come from the class archive
where one was built (this test session's, built by `segcore.tools.build_class_archive`)."""

import os
import re
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
    assert _python(COLLECTORS, env).strip().splitlines()[-1] == collectors


MAPS = """
import sys
from pathlib import Path
from segcore.runtime import class_archive
class_archive.ARCHIVE = Path(sys.argv[1])
from segcore.runtime.spark import get_spark
get_spark("class-archive").range(3).count()
"""


def test_the_local_jvm_maps_a_built_class_archive(_class_archive_build, tmp_path):
    assert _class_archive_build is not None and _class_archive_build.wait(timeout=300), "no archive built"
    loaded = tmp_path / "loaded-classes.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYSPARK_SUBMIT_ARGS", "SPARK_SUBMIT_OPTS")
    }
    env["JAVA_TOOL_OPTIONS"] = f"-Xlog:class+load=info:file={loaded}"
    archive = tmp_path / "a folder" / "spark-classes.jsa"  # a space: the option is quoted
    archive.parent.mkdir()
    archive.symlink_to(_class_archive_build.archive)
    _python(MAPS, env, str(archive))
    assert re.search(r"org\.apache\.spark\.SparkContext source: shared objects file", loaded.read_text())


def _python(code: str, env: dict[str, str], *args: str) -> str:
    """The stdout of ``code`` run in a fresh interpreter with ``env``, which must succeed."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
