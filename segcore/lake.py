"""Reading and validating the lake's input tables, and atomic partition writes.

Input tables may use any column names: ``lake.<table>.columns`` maps segcore's canonical names to
the lake's. Every check that fails raises :class:`LakeError` naming the table, the column and what
to do.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segcore.config import Config
from segcore.errors import EnvironmentProblem, LakeError
from segcore.schema import FLAG, KEY, NUMERIC, SCHEMAS, STRING, TEMPORAL

INPUT_ROWS_FILE = "_segcore_input_rows.json"
_ACCEPTED: dict[str, tuple[type, ...]] = {
    KEY: (T.IntegralType, T.StringType),
    TEMPORAL: (T.DateType, T.TimestampType, T.TimestampNTZType),
    NUMERIC: (T.NumericType,),
    STRING: (T.StringType,),
    FLAG: (T.BooleanType, T.IntegralType),
}
_EXPECTED_TEXT = {
    KEY: "an integer or string id",
    TEMPORAL: "a date or timestamp",
    NUMERIC: "a number",
    STRING: "a string",
    FLAG: "a boolean (or 0/1 integer)",
}


def read_table(spark: SparkSession, config: Config, table: str, columns: Iterable[str]) -> DataFrame:
    """Read one input table, check the mapped columns exist with usable types, and return them
    under segcore's canonical names."""
    settings = getattr(config.lake, table)
    unknown = set(settings.columns) - set(SCHEMAS[table])
    if unknown:
        raise LakeError(
            f"lake.{table}.columns maps unknown name(s) {sorted(unknown)}: "
            f"the names segcore knows for table '{table}' are {sorted(SCHEMAS[table])}"
        )
    path = config.path(settings.path)
    try:
        frame = spark.read.parquet(path)
    except Exception as exc:  # Spark raises AnalysisException for a missing or non-Parquet path
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            raise LakeError(
                f"table '{table}': path {path} does not exist: set lake.{table}.path to the "
                "folder holding its Parquet files"
            ) from None
        raise LakeError(f"table '{table}': cannot read Parquet at {path}: {exc}") from None

    fields = {field.name: field.dataType for field in frame.schema.fields}
    selected = []
    for name in columns:
        source = settings.columns.get(name, name)
        kind = SCHEMAS[table][name]
        if source not in fields:
            raise LakeError(
                f"table '{table}': column '{source}' (segcore's '{name}') not found in {path}; "
                f"it has {sorted(fields)}. Map it with --set lake.{table}.columns.{name}=<column>"
            )
        if not isinstance(fields[source], _ACCEPTED[kind]):
            raise LakeError(
                f"table '{table}': column '{source}' (segcore's '{name}') has type "
                f"{fields[source].simpleString()}, expected {_EXPECTED_TEXT[kind]}: "
                "convert it in the lake or map another column"
            )
        selected.append(F.col(f"`{source}`").alias(name))
    return frame.select(*selected)


def check_customers(frame: DataFrame) -> int:
    """The customer table must be non-empty with unique, non-null ids; returns its row count."""
    stats = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_distinct("customer_id").alias("distinct"),
        F.sum(F.col("customer_id").isNull().cast("int")).alias("null_ids"),
    ).first()
    if stats["rows"] == 0:
        raise LakeError("table 'customers' is empty: point lake.customers.path at a table with rows")
    if stats["null_ids"]:
        raise LakeError(
            f"table 'customers': column 'customer_id' has {stats['null_ids']} null value(s); "
            "every customer needs an id: fix or drop those rows"
        )
    if stats["distinct"] != stats["rows"]:
        raise LakeError(
            f"table 'customers': column 'customer_id' has {stats['rows'] - stats['distinct']} "
            "duplicate id(s); the table must hold one row per customer: deduplicate it"
        )
    return stats["rows"]


def check_orders(frame: DataFrame, as_of: dt.date, max_amount: float) -> int:
    """Orders must exist before ``as_of``, with customer ids and sane amounts; returns the row
    count."""
    stats = frame.agg(
        F.count(F.lit(1)).alias("rows"),
        F.min(F.to_date("order_ts")).alias("first_day"),
        F.sum(F.col("customer_id").isNull().cast("int")).alias("null_ids"),
        F.sum((F.col("amount") < 0).cast("int")).alias("negative"),
        F.sum((F.col("amount") > max_amount).cast("int")).alias("absurd"),
        F.sum(F.isnan("amount").cast("int")).alias("nan"),
    ).first()
    if stats["rows"] == 0:
        raise LakeError("table 'orders' is empty: point lake.orders.path at a table with rows")
    if stats["null_ids"]:
        raise LakeError(
            f"table 'orders': column 'customer_id' has {stats['null_ids']} null value(s): "
            "orders must name their customer"
        )
    if stats["negative"] or stats["nan"]:
        raise LakeError(
            f"table 'orders': column 'amount' has {stats['negative']} negative and {stats['nan']} "
            "NaN value(s): record returns with the 'returned' flag and fix the amounts"
        )
    if stats["absurd"]:
        raise LakeError(
            f"table 'orders': column 'amount' has {stats['absurd']} value(s) above "
            f"features.max_order_amount={max_amount:g}: fix them or raise that limit"
        )
    if stats["first_day"] >= as_of:
        raise LakeError(
            f"as_of {as_of} is on or before the first order ({stats['first_day']}) in table "
            "'orders': there is no history to build features from; choose a later as_of"
        )
    return stats["rows"]


def _filesystem(spark: SparkSession, path: str):
    """The Hadoop FileSystem of ``path`` (local, HDFS, S3 ...) and the path as a Hadoop Path."""
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path


def read_text(spark: SparkSession, path: str) -> str | None:
    """A small text file's content, or None where it does not exist."""
    fs, file = _filesystem(spark, path)
    if not fs.exists(file):
        return None
    stream = fs.open(file)
    try:
        return bytes(spark._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)).decode()
    finally:
        stream.close()


def _ensure_writable(fs, folder, target: str) -> None:
    """The output's folder exists (created if need be) and takes a new file: else exit code 3."""
    probe = folder.suffix(f"/_segcore_probe_{uuid.uuid4().hex[:8]}")
    try:
        fs.mkdirs(folder)
        fs.create(probe, True).close()
        fs.delete(probe, False)
    except Exception as exc:  # py4j wraps the Hadoop IOException
        reason = str(exc).split("\n")[0][-300:]
        raise EnvironmentProblem(
            f"cannot write output {target}: {reason}. Point the output at a writable folder or URI"
        ) from None


def write_partition(frame: DataFrame, target: str, sidecar: dict[str, str] | None = None) -> None:
    """Write ``frame`` as Parquet to ``target`` atomically: readers see the old partition or the
    new one, never half of one, and a failed write leaves the old one in place. ``sidecar`` maps
    file names (starting with ``_``, which Spark readers skip) to text written beside the data."""
    spark = frame.sparkSession
    jvm = spark._jvm
    fs, target_path = _filesystem(spark, target)
    parent = target_path.getParent()
    _ensure_writable(fs, parent, target)
    token = uuid.uuid4().hex[:8]
    staging = jvm.org.apache.hadoop.fs.Path(parent, f"_tmp_{target_path.getName()}_{token}")
    retired = jvm.org.apache.hadoop.fs.Path(parent, f"_old_{target_path.getName()}_{token}")
    try:
        frame.write.mode("error").parquet(staging.toString())
        for name, text in (sidecar or {}).items():
            stream = fs.create(jvm.org.apache.hadoop.fs.Path(staging, name), True)
            stream.write(text.encode())
            stream.close()
        if fs.exists(target_path) and not fs.rename(target_path, retired):
            raise OSError(f"could not move the previous partition {target} aside")
        if not fs.rename(staging, target_path):
            if fs.exists(retired):
                fs.rename(retired, target_path)
            raise OSError(f"could not move the new partition into {target}")
    finally:
        fs.delete(staging, True)
    fs.delete(retired, True)


def read_partition(spark: SparkSession, path: str, what: str, hint: str) -> DataFrame:
    """Read an output partition written by an earlier stage, with a clear error if it is missing."""
    try:
        return spark.read.parquet(path)
    except Exception as exc:
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            raise LakeError(f"{what} {path} does not exist: {hint}") from None
        raise
