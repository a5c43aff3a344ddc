"""The SparkSession every Spark stage uses.

Whatever ``spark-submit``, ``PYSPARK_SUBMIT_ARGS`` or ``spark-defaults.conf`` set wins; segcore's
embedded local defaults fill in only what none of them set, and the local master only where nothing
set a master.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import threading
from contextlib import suppress
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.errors import PySparkRuntimeError
from pyspark.find_spark_home import _find_spark_home
from pyspark.sql import SparkSession

from segcore.errors import EnvironmentProblem
from segcore.runtime import class_archive

LOCAL_DEFAULTS = {
    "spark.master": "local[*]",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "2g",
}
QUIET_LOG_CONFIG = Path(__file__).with_name("log4j2-quiet.properties")
# The local JVM's garbage collector: the parallel one, built for throughput, rather than G1, whose
# concurrent threads take CPU from the tasks on a machine of few cores (the feature job at 1M
# customers on 2 cores: 76.2-82.0 s in 7 runs against 83.1-86.8 s in 5 with G1; README, Results).
LOCAL_COLLECTOR = "-XX:+UseParallelGC"
# Where the JVM or Spark's launcher read options of their own; one of them choosing a collector
# or a class archive wins, since a JVM given two collectors refuses to start.
_JVM_OPTION_VARIABLES = ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "SPARK_SUBMIT_OPTS")
_COLLECTOR_OPTION = re.compile(r"-XX:[+-]Use\w*GC\b")
_ARCHIVE_OPTION = re.compile(r"-XX:(SharedArchiveFile|ArchiveClassesAtExit)=|-Xshare:")
# Always wanted, unless set elsewhere: feature dates are computed in UTC.
SESSION_DEFAULTS = {"spark.sql.session.timeZone": "UTC"}
# spark-submit options that are Spark settings under another name.
_SUBMIT_OPTIONS = {
    "--master": "spark.master",
    "--driver-memory": "spark.driver.memory",
    "--driver-java-options": "spark.driver.extraJavaOptions",
    "--executor-memory": "spark.executor.memory",
    "--executor-cores": "spark.executor.cores",
    "--total-executor-cores": "spark.cores.max",
    "--num-executors": "spark.executor.instances",
    "--deploy-mode": "spark.submit.deployMode",
    "--name": "spark.app.name",
}


def _defaults_file() -> Path:
    conf_dir = os.environ.get("SPARK_CONF_DIR") or os.path.join(_find_spark_home(), "conf")
    return Path(conf_dir, "spark-defaults.conf")


def _read_defaults_file(path: Path) -> dict[str, str]:
    settings = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.strip().split(None, 1)
            if parts and not parts[0].startswith("#"):
                settings[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return settings


def _parse_submit_args(text: str) -> dict[str, str]:
    settings, words = {}, shlex.split(text)
    for option, value in zip(words, words[1:], strict=False):
        if option == "--conf" and "=" in value:
            key, _, setting = value.partition("=")
            settings[key] = setting
        elif option in _SUBMIT_OPTIONS:
            settings[_SUBMIT_OPTIONS[option]] = value
    return settings


def configured_settings() -> dict[str, str]:
    """The Spark settings the environment already chose, before segcore adds any.

    Under ``spark-submit`` the JVM exists and holds them as system properties; otherwise they are
    what ``PYSPARK_SUBMIT_ARGS`` and ``spark-defaults.conf`` would give the JVM segcore launches.
    """
    if os.environ.get("PYSPARK_GATEWAY_PORT") or SparkContext._gateway is not None:
        SparkContext._ensure_initialized()  # connects to spark-submit's JVM
        return dict(SparkConf().getAll())
    return {
        **_read_defaults_file(_defaults_file()),
        **_parse_submit_args(os.environ.get("PYSPARK_SUBMIT_ARGS", "")),
    }


def session_settings(configured: dict[str, str], verbose: bool = False) -> dict[str, str]:
    """What segcore adds: the local defaults where no master is set (the parallel collector and
    the class archive where built, unless the environment chose them; Spark's log at ERROR unless
    ``verbose``), UTC where no time zone is."""
    added = dict(SESSION_DEFAULTS)
    if "spark.master" not in configured:
        added.update(LOCAL_DEFAULTS)
        options = [] if _chosen(_COLLECTOR_OPTION) else [LOCAL_COLLECTOR]
        options += [] if _chosen(_ARCHIVE_OPTION) else class_archive.archive_options()
        if not verbose:
            options.append(f"-Dlog4j2.configurationFile={QUIET_LOG_CONFIG.as_uri()}")
        if options:
            added["spark.driver.extraJavaOptions"] = " ".join(options)
    return {key: value for key, value in added.items() if key not in configured}


def _chosen(option: re.Pattern[str]) -> bool:
    """Whether JVM options in the environment set ``option``."""
    return any(option.search(os.environ.get(name, "")) for name in _JVM_OPTION_VARIABLES)


def get_spark(app_name: str = "segcore", verbose: bool = False) -> SparkSession:
    """The active session, or a new one that keeps every setting the environment chose."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    configured = configured_settings()
    added = session_settings(configured, verbose)
    if "spark.master" in added:
        # Local mode: the Python workers are this interpreter, with segcore's dependencies.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = SparkConf()  # what spark-submit and spark-defaults.conf set, as the builder reads it
    if "spark.app.name" not in configured:
        conf.setAppName(app_name)
    for key, value in added.items():
        conf.set(key, value)
    try:
        _start_context(conf)
    except PySparkRuntimeError as exc:
        raise EnvironmentProblem(
            f"Spark could not start its Java process ({exc.getCondition()}): install Java 17 or newer "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or point JAVA_HOME at one"
        ) from None
    return SparkSession.builder.getOrCreate()  # on the context just started


def _start_context(conf: SparkConf) -> None:
    """Start the SparkContext, keeping this process's SIGINT handler: PySpark installs one that
    cancels the jobs through py4j from inside the py4j call it interrupts (tracebacks of a
    reentrant call), where segcore's own unwinds the stage as for SIGTERM."""
    sigint = signal.getsignal(signal.SIGINT)
    try:
        SparkContext.getOrCreate(conf)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)


def silence_spark() -> None:
    """Turn the JVM's logging off, once a stage was stopped: Spark's shutdown would log every
    cancelled job as an ERROR with its stack."""
    with suppress(Exception):  # the session may be gone, or its gateway cut by the signal
        active = SparkSession.getActiveSession()
        if active is not None:
            active.sparkContext.setLogLevel("OFF")
