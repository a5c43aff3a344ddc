"""The tracking store a command opens: the commands that read trained versions or runs refuse a
SQLite store that does not exist (a wrong workdir or URI), not make an empty one on the way."""

import pytest

from segcore.cli.commands import main


@pytest.mark.parametrize(
    "command",
    [["runs"], ["score"], ["report"], ["promote"]],
    ids=lambda command: command[0],
)
def test_a_command_that_reads_runs_refuses_a_sqlite_store_that_does_not_exist(tmp_path, capsys, command):
    store = tmp_path / "typo" / "mlflow.db"
    settings = ["--set", f"workdir={tmp_path}", "--set", f"mlflow.tracking_uri=sqlite:///{store}"]
    assert main([*command, *settings]) == 2
    error = capsys.readouterr().err
    assert f"no MLflow tracking store at sqlite:///{store}: run `segcore train` first" in error
    assert "spark application" not in error  # refused before Spark starts
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_file_mlflow_cannot_use_is_an_environment_problem_naming_it(tmp_path, capsys):
    store = tmp_path / "mlflow.db"
    store.write_text("not a database")
    assert main(["runs", "--set", f"workdir={tmp_path}"]) == 3
    error = capsys.readouterr().err
    assert f"MLflow tracking store sqlite:///{store} is not usable: " in error
    assert "Set mlflow.tracking_uri (or MLFLOW_TRACKING_URI) to a usable store" in error
    assert "Start it" not in error and "Traceback" not in error
