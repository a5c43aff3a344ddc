"""The `segcore` command's stdout read by a pipe whose reader stops early (`segcore runs | head -1`)."""

import io
import os
import sys

import pytest

from segcore.cli.commands import main


@pytest.mark.parametrize("buffer_size", [io.DEFAULT_BUFFER_SIZE, 16])
def test_a_reader_that_goes_away_ends_the_command_quietly_with_141(tmp_path, monkeypatch, buffer_size):
    """As `git log | head` ends: exit 128 + SIGPIPE, nothing on stderr, the lake written. Output
    within stdout's buffer meets the broken pipe when stdout is flushed at the end, longer output
    while it is printed."""
    read, write = os.pipe()
    os.close(read)
    stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write, "w"), buffer_size))
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["generate", "--out", str(tmp_path / "lake"), "--customers", "10"]) == 141
    assert stderr.getvalue() == ""
    assert (tmp_path / "lake" / "orders").is_dir()
    stdout.write("flushed at exit: into /dev/null now, not into the broken pipe")
    stdout.flush()
    stdout.close()
