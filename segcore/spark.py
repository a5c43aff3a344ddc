"""The SparkSession every Spark stage uses: the cluster's when run under spark-submit, a local
one with the embedded defaults otherwise."""

from __future__ import annotations

import os
import sys

from pyspark import SparkConf
from pyspark.sql import SparkSession

LOCAL_DEFAULTS = {
    "spark.master": "local[*]",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "2g",
}


def get_spark(app_name: str = "segcore") -> SparkSession:
    """Return the active session, or build one; UTC session time zone either way."""
    configured = SparkConf()
    builder = SparkSession.builder.appName(app_name)
    if not configured.contains("spark.master"):
        # Local mode: the Python workers are this interpreter, with segcore's dependencies.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        for key, value in LOCAL_DEFAULTS.items():
            builder = builder.config(key, value)
    spark = builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
