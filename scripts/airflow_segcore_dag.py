"""Airflow example (copy it into your DAG folder and adapt it): segcore's jobs, daily, on a Spark cluster.

features -> train -> score, each the README's client-mode spark-submit line ("Running on a
cluster"), run from a segcore checkout on the Airflow worker that holds `.venv` and the package
built by `scripts/package`. A drift task follows score once segcore has a drift job.
The date is the end of Airflow's data interval: features as of that day use every row before it.
Exit codes a task ends with: 0 ok, 2 bad input or config (fix, then clear the task), 3 environment
(Java, an unreachable service, an unwritable output: a retry may pass), 4 an alert, 1 a bug.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow import DAG

try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

SEGCORE_HOME = os.environ.get("SEGCORE_HOME", "/opt/segcore")
SPARK_MASTER = os.environ.get("SEGCORE_SPARK_MASTER", "spark://master:7077")
CONFIG = "conf/cluster.yaml"
JOBS = {
    "features": "jobs/build_features.py",
    "train": "jobs/train_segments.py",
    "score": "jobs/score_segments.py",
}
SUBMIT = (
    "cd {home} && "
    'export SPARK_HOME="$(.venv/bin/python -c '
    "'import os, pyspark; print(os.path.dirname(pyspark.__file__))')\" && "
    ".venv/bin/spark-submit --master {master} "
    "--archives dist/segcore-env.tar.gz#env "
    "--conf spark.pyspark.driver.python=.venv/bin/python "
    "--conf spark.pyspark.python=./env/bin/python "
    "{job} --config {config} --set as_of={{{{ data_interval_end | ds }}}}"
)


def submit_command(job: str) -> str:
    """The README's spark-submit line for ``job``, dated by the run's data interval."""
    return SUBMIT.format(home=SEGCORE_HOME, master=SPARK_MASTER, job=job, config=CONFIG)


with DAG(
    dag_id="segcore",
    schedule="0 3 * * *",
    start_date=dt.datetime(2026, 6, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=10)},
    tags=["segcore"],
) as dag:
    features, train, score = (
        BashOperator(task_id=name, bash_command=submit_command(job)) for name, job in JOBS.items()
    )
    features >> train >> score
