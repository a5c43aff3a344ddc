"""The example Airflow DAG runs the README's cluster commands, on jobs and a config that exist
(read from the DAG file without Airflow)."""

from __future__ import annotations

import ast
import shlex

from cluster_readme import README_MASTER, readme_lines, readme_submit_words
from conftest import ROOT

DAG_FILE = ROOT / "scripts" / "airflow_segcore_dag.py"


def dag_constants() -> dict:
    """The DAG file's constants, read without Airflow (parsing it also checks its syntax)."""
    tree = ast.parse(DAG_FILE.read_text(), str(DAG_FILE))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id in ("JOBS", "CONFIG", "SUBMIT")
    }


def test_airflow_dag_runs_the_readme_commands_on_existing_jobs():
    constants = dag_constants()
    assert list(constants["JOBS"]) == ["features", "train", "score"]
    assert all((ROOT / job).is_file() for job in constants["JOBS"].values())
    assert (ROOT / constants["CONFIG"]).is_file()
    command = constants["SUBMIT"].format(
        home=ROOT, master=README_MASTER, job="jobs/build_features.py", config=constants["CONFIG"]
    )
    # Airflow renders the run's date into the template before bash runs the line.
    command = command.replace("{{ data_interval_end | ds }}", "2026-06-30")
    export_spark_home = next(line for line in readme_lines() if line.startswith("export SPARK_HOME="))
    assert f"&& {export_spark_home} &&" in command
    words = shlex.split(command.rsplit("&& ", 1)[1])
    assert words[: len(readme_submit_words())] == readme_submit_words()
    assert words[len(readme_submit_words()) :] == [
        "jobs/build_features.py",
        "--config",
        "conf/cluster.yaml",
        "--set",
        "as_of=2026-06-30",
    ]
