"""The settings segcore adds to a Spark session: local defaults only where no master is set, the
parallel garbage collector and the class archive (where built) unless JVM options in the
environment choose their own (a JVM given two collectors refuses to start), and the environment's
own settings always win."""

import pytest

from segcore.runtime import class_archive
from segcore.runtime.spark import LOCAL_COLLECTOR, QUIET_LOG_CONFIG, _parse_submit_args, session_settings

QUIET = f"-Dlog4j2.configurationFile={QUIET_LOG_CONFIG.as_uri()}"


@pytest.fixture(autouse=True)
def no_jvm_options(monkeypatch, tmp_path):
    for name in ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS", "_JAVA_OPTIONS", "SPARK_SUBMIT_OPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(class_archive, "ARCHIVE", tmp_path / "not-built.jsa")


@pytest.fixture
def archive(monkeypatch, tmp_path):
    built = tmp_path / "spark-classes.jsa"
    built.write_bytes(b"an archive")
    monkeypatch.setattr(class_archive, "ARCHIVE", built)
    return f'"-XX:SharedArchiveFile={built}" -Xlog:cds=off,cds+dynamic=off'


def test_local_sessions_get_the_parallel_collector_and_the_quiet_log():
    added = session_settings({})
    assert added["spark.master"] == "local[*]"
    assert added["spark.driver.extraJavaOptions"] == f"{LOCAL_COLLECTOR} {QUIET}"
    assert session_settings({}, verbose=True)["spark.driver.extraJavaOptions"] == LOCAL_COLLECTOR


@pytest.mark.parametrize(
    "variable, options",
    [
        ("JAVA_TOOL_OPTIONS", "-XX:+UseSerialGC"),
        ("JDK_JAVA_OPTIONS", "-Xss4m -XX:+UseG1GC"),
        ("_JAVA_OPTIONS", "-XX:+UseZGC"),
        ("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseShenandoahGC"),
    ],
)
def test_a_collector_chosen_in_the_environment_is_left_alone(monkeypatch, variable, options):
    monkeypatch.setenv(variable, options)
    assert session_settings({})["spark.driver.extraJavaOptions"] == QUIET
    assert "spark.driver.extraJavaOptions" not in session_settings({}, verbose=True)


def test_other_jvm_options_in_the_environment_keep_the_collector(monkeypatch):
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", "-XX:TieredStopAtLevel=1")
    assert LOCAL_COLLECTOR in session_settings({})["spark.driver.extraJavaOptions"]


def test_the_environments_settings_win():
    configured = _parse_submit_args("--driver-java-options '-Dmine=1 -Xss4m' --driver-memory 6g")
    assert configured == {"spark.driver.extraJavaOptions": "-Dmine=1 -Xss4m", "spark.driver.memory": "6g"}
    added = session_settings(configured)
    assert "spark.driver.extraJavaOptions" not in added and "spark.driver.memory" not in added
    assert session_settings({"spark.master": "yarn"}) == {"spark.sql.session.timeZone": "UTC"}


def test_a_built_class_archive_is_mapped(archive):
    assert session_settings({})["spark.driver.extraJavaOptions"] == f"{LOCAL_COLLECTOR} {archive} {QUIET}"


@pytest.mark.parametrize(
    "options", ["-XX:SharedArchiveFile=/tests/spark.jsa", "-XX:ArchiveClassesAtExit=/new.jsa", "-Xshare:off"]
)
def test_a_class_archive_chosen_in_the_environment_is_left_alone(monkeypatch, archive, options):
    monkeypatch.setenv("SPARK_SUBMIT_OPTS", options)
    assert session_settings({})["spark.driver.extraJavaOptions"] == f"{LOCAL_COLLECTOR} {QUIET}"
