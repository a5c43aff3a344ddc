"""The class archive's build where it cannot write: one line naming the archive, exit 1, and an
archive already there left as it was (the build replaces one only when its JVM wrote a new one)."""

import os
import subprocess
import sys

BUILD = [sys.executable, "-m", "segcore.tools.build_class_archive"]


def test_an_archive_path_that_cannot_be_written_is_named_with_exit_1(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive's folder should be")
    archive = blocker / "spark-classes.jsa"
    done = subprocess.run([*BUILD, str(archive)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith(f"segcore: no class archive at {archive}: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "a file where the archive's folder should be"


def test_a_failed_workload_leaves_the_archive_there_as_it_was(tmp_path):
    archive = tmp_path / "spark-classes.jsa"
    archive.write_bytes(b"the archive built before")
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java")}  # its Spark cannot start
    done = subprocess.run([*BUILD, str(archive)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith(f"segcore: no class archive at {archive}: its workload failed: ")
    assert "install Java 17" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert archive.read_bytes() == b"the archive built before"
    assert [path.name for path in tmp_path.iterdir()] == [archive.name]  # no partial archive left
