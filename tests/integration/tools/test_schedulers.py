"""The README's cron line is valid bash running the README's commands on existing jobs, and
Airflow (where installed) loads the example DAG with its three stages in order."""

from __future__ import annotations

import re
import subprocess

import pytest
from cluster_readme import readme_lines, readme_submit_words
from conftest import ROOT

DAG_FILE = ROOT / "scripts" / "airflow_segcore_dag.py"


def test_readme_cron_line_runs_the_readme_commands_on_existing_jobs():
    section = (ROOT / "README.md").read_text().split("## Running on a cluster", 1)[1]
    line = re.search(r"```cron\n(.*?)\n```", section, re.DOTALL).group(1)
    command = line.split(None, 5)[5].replace("\\%", "%")  # cron passes the rest, with \% as %, to sh
    assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0
    assert " ".join(readme_submit_words()) in command
    assert next(line for line in readme_lines() if line.startswith("export SPARK_HOME=")) in command
    jobs = re.search(r"for job in ([\w ]+); do", command).group(1).split()
    assert all((ROOT / "jobs" / f"{job}.py").is_file() for job in jobs)
    assert jobs == ["build_features", "train_segments", "score_segments"]


def test_airflow_loads_the_dag_with_its_three_stages_in_order(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    pytest.importorskip("airflow")
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    dag = bag.dags["segcore"]
    assert dag.get_task("features").downstream_task_ids == {"train"}
    assert dag.get_task("train").downstream_task_ids == {"score"}
    assert "jobs/score_segments.py --config conf/cluster.yaml" in dag.get_task("score").bash_command
