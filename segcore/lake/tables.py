"""Reading the lake's input tables.

An input table is a folder of Parquet or CSV files (``lake.<table>.path``) or a Spark SQL query
over ``lake.sources`` (``lake.<table>.query``); ``lake.<table>.columns`` maps segcore's canonical
names to a column or a Spark SQL expression, and ``lake.<table>.filter`` keeps the rows a predicate
accepts. Every file is checked before Spark reads it (:mod:`segcore.lake.files`), and unusable rows are
dropped and counted (:mod:`segcore.lake.bad_rows`). Every failure raises :class:`LakeError` in one line,
naming the table, the column or config key, and what to do.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segcore.config import Config, SourceConfig, TableConfig
from segcore.errors import LakeError
from segcore.lake.bad_rows import RowChecks, apply_policy, count_orphans, row_checks
from segcore.lake.files import Folder, check_files, referenced
from segcore.lake.schema import FLAG, KEY, NUMERIC, SCHEMAS, STRING, TEMPORAL

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
    TEMPORAL: "a date, timestamp or timestamp string",
    NUMERIC: "a number",
    STRING: "a string",
    FLAG: "a boolean (or 0/1 integer)",
}
_HINT = {
    KEY: "map it with an expression, e.g. CAST(<column> AS BIGINT)",
    NUMERIC: "map it with an expression, e.g. CAST(<column> AS DOUBLE)",
}
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUERY_CONTEXT_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


@dataclass(frozen=True)
class InputTable:
    """An input table ready for the feature builders: canonical columns, only usable rows before
    ``as_of``, and flat row counts (``<table>``: rows used; ``<table>_dropped_<reason>``,
    ``<table>_after_as_of``, ``<table>_orphan_customer``)."""

    frame: DataFrame
    counts: dict[str, int]


def spark_reason(exc: BaseException) -> str:
    """Spark's reason for a failure in one line, without SQL state, plan, stack or final period."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    line = lines[0] if lines else type(exc).__name__
    line = re.sub(r"\s*SQLSTATE: \w+", "", line)
    return re.sub(r";?\s*line \d+ pos \d+;?$", "", line).strip().rstrip(".")


# Held while user SQL is analysed: threads of one process take turns, so that none takes another's
# ANSI setting for the session's own and leaves it off.
_ONE_ANALYSIS_AT_A_TIME = threading.RLock()


@contextmanager
def _user_sql(spark: SparkSession) -> Iterator[None]:
    """Analyse user-written SQL (expressions, filters, queries): a value that does not parse or cast
    becomes null, to be dropped and counted, rather than failing the job (ANSI mode off while
    analysing: Spark fixes that choice into the plan); and no Java stack on the console, since the
    error is reported as :class:`LakeError`."""
    from pyspark.logger import PySparkLogger

    loggers = [PySparkLogger.getLogger(name) for name in _QUERY_CONTEXT_LOGGERS]
    with _ONE_ANALYSIS_AT_A_TIME:
        saved = spark.conf.get("spark.sql.ansi.enabled")
        spark.conf.set("spark.sql.ansi.enabled", "false")
        for logger in loggers:
            logger.disabled = True
        try:
            yield
        finally:
            spark.conf.set("spark.sql.ansi.enabled", saved)
            for logger in loggers:
                logger.disabled = False


def _folder(label: str, key: str, path: str, settings: SourceConfig | TableConfig, config: Config) -> Folder:
    options = {
        name: str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in settings.options.items()
    }
    if settings.format == "csv":
        options.setdefault("header", "true")
    return Folder(label, key, config.path(path), settings.format, options)


def _read(spark: SparkSession, folder: Folder, texts: list[str]) -> DataFrame:
    """Check every file of ``folder`` against the columns ``texts`` refer to, then read it."""
    check_files(spark, folder, texts)
    try:
        with _user_sql(spark):
            return spark.read.format(folder.format).options(**folder.options).load(folder.path)
    except PySparkException as exc:
        raise LakeError(f"{folder.label}: cannot read {folder.path}: {spark_reason(exc)}") from None


def _source(spark: SparkSession, config: Config, table: str, texts: list[str]) -> DataFrame:
    """The table as the lake holds it: its files, or its query over the sources it names."""
    settings = getattr(config.lake, table)
    if settings.query is None:
        folder = _folder(f"table '{table}'", f"lake.{table}", settings.path, settings, config)
        return _read(spark, folder, texts)
    named = referenced([settings.query])
    for name, source in config.lake.sources.items():
        if name.lower() in named:
            folder = _folder(f"source '{name}'", f"lake.sources.{name}", source.path, source, config)
            _read(spark, folder, [settings.query]).createOrReplaceTempView(name)
    try:
        with _user_sql(spark):
            return spark.sql(settings.query)
    except PySparkException as exc:
        raise LakeError(f"table '{table}': lake.{table}.query fails: {spark_reason(exc)}") from None


def _column(
    frame: DataFrame, origin: str, table: str, name: str, source: str, optional: bool
) -> Column | None:
    """Segcore's column ``name`` from ``source`` (a column of ``frame`` or a SQL expression); None
    for an optional column the lake does not have."""
    present = {column.lower(): column for column in frame.columns}
    if source.lower() in present:
        return F.col(f"`{present[source.lower()]}`")
    if _PLAIN_NAME.fullmatch(source):
        if optional and source == name:
            return None
        raise LakeError(
            f"table '{table}': column '{source}' (segcore's '{name}') not found in {origin}; it has "
            f"{sorted(frame.columns)}. Map it with --set lake.{table}.columns.{name}=<column or SQL "
            "expression>"
        )
    try:
        with _user_sql(frame.sparkSession):
            frame.select(F.expr(source))
    except PySparkException as exc:
        raise LakeError(f"lake.{table}.columns.{name}: cannot use '{source}': {spark_reason(exc)}") from None
    return F.expr(source)


def _typed(field: T.StructField, table: str, name: str, source: str) -> Column:
    """The mapped column with a type segcore accepts; timestamp strings are parsed (null when
    unparsable)."""
    kind = SCHEMAS[table][name]
    column = F.col(name)
    if kind == TEMPORAL and isinstance(field.dataType, T.StringType):
        return F.try_to_timestamp(column).alias(name)
    if not isinstance(field.dataType, _ACCEPTED[kind]):
        what = f"column '{source}' (segcore's '{name}')" if source != name else f"column '{name}'"
        raise LakeError(
            f"table '{table}': {what} has type {field.dataType.simpleString()}, expected "
            f"{_EXPECTED_TEXT[kind]}: {_HINT.get(kind, 'convert it in the lake or map another column')} "
            f"in lake.{table}.columns.{name}"
        )
    return column


def _map(
    frame: DataFrame,
    origin: str,
    table: str,
    settings: TableConfig,
    columns: Sequence[str],
    optional: Sequence[str],
) -> tuple[DataFrame, dict[str, str]]:
    """``frame`` with segcore's column names and types, and the mapping used (name -> source)."""
    selected, used = [], {}
    for name in dict.fromkeys([*columns, *optional]):
        source = settings.columns.get(name, name)
        if source is None:
            if name in columns:
                raise LakeError(
                    f"lake.{table}.columns.{name} is null (no such column) but the configured features need "
                    f"it: map it to a column or expression"
                )
            continue
        column = _column(frame, origin, table, name, source, optional=name not in columns)
        if column is not None:
            selected.append(column.alias(name))
            used[name] = source
    spark = frame.sparkSession
    with _user_sql(spark):
        mapped = frame.select(*selected)
        mapped = mapped.select(*[_typed(f, table, f.name, used[f.name]) for f in mapped.schema.fields])
    return mapped, used


def _checked(
    spark: SparkSession, config: Config, table: str, columns: Sequence[str], optional: Sequence[str]
) -> tuple[DataFrame, RowChecks] | None:
    """The table read and mapped to canonical columns, with its bad-rows policy (None when
    ``lake.<table>`` is null)."""
    settings = getattr(config.lake, table)
    if settings is None:
        return None
    wanted = [n for n in dict.fromkeys([*columns, *optional]) if settings.columns.get(n, n) is not None]
    texts = [settings.columns.get(n, n) for n in wanted] + ([settings.filter] if settings.filter else [])
    frame = _source(spark, config, table, texts)
    if settings.filter:
        try:
            with _user_sql(spark):
                frame = frame.where(F.expr(settings.filter))
        except PySparkException as exc:
            raise LakeError(
                f"lake.{table}.filter: cannot use '{settings.filter}': {spark_reason(exc)}"
            ) from None
    origin = f"the result of lake.{table}.query" if settings.query else config.path(settings.path)
    mapped, mapping = _map(frame, origin, table, settings, columns, optional)
    lake, features = config.lake, config.features
    checks = row_checks(
        mapped, table, config.as_of, lake.max_dropped_fraction, features.max_order_amount, mapping
    )
    return mapped, checks


def load_table(
    spark: SparkSession,
    config: Config,
    table: str,
    columns: Sequence[str],
    optional: Sequence[str] = (),
    customers: DataFrame | None = None,
) -> InputTable | None:
    """Read, map, check and filter one input table (None when ``lake.<table>`` is null).

    ``columns`` are required, ``optional`` ones are left out where the lake lacks them (a name
    mapped to itself that the table does not have, or mapped to null). With ``customers`` (the
    customer master's frame), rows of customers not in it are counted as
    ``<table>_orphan_customer`` (not dropped)."""
    checked = _checked(spark, config, table, columns, optional)
    if checked is None:
        return None
    try:
        kept, counts = apply_policy(*checked)
    except (PySparkException, Py4JJavaError) as exc:
        raise LakeError(f"table '{table}': cannot read its rows: {spark_reason(exc)}") from None
    if customers is not None and "customer_id" in kept.columns and table != "customers":
        counts.update(count_orphans(kept, table, customers))
    return InputTable(kept, counts)


@dataclass(frozen=True)
class ObservedTable:
    """An input table whose rows are checked while the one Spark job that uses ``frame`` runs:
    :meth:`counts` afterwards gives :class:`InputTable`'s counts, or the error :func:`load_table`
    would have raised (orphans are the user's to count)."""

    frame: DataFrame
    checks: RowChecks
    observation: Observation

    def counts(self) -> dict[str, int]:
        return self.checks.judge(self.observation.get)


def observe_table(
    spark: SparkSession, config: Config, table: str, columns: Sequence[str], optional: Sequence[str] = ()
) -> ObservedTable | None:
    """:func:`load_table` without a Spark job of its own: the policy's counts are observed in the
    job that uses the rows (None when ``lake.<table>`` is null)."""
    checked = _checked(spark, config, table, columns, optional)
    if checked is None:
        return None
    mapped, checks = checked
    observation = Observation(f"segcore_rows_{table}")
    observed = mapped.observe(observation, *checks.aggregates)
    return ObservedTable(observed.where(checks.keep), checks, observation)


def kept_rows(
    spark: SparkSession, config: Config, table: str, columns: Sequence[str], optional: Sequence[str] = ()
) -> DataFrame | None:
    """The rows of the table the bad-rows policy keeps, without counting them (for a stage reading a
    lake the feature job has checked; None when ``lake.<table>`` is null)."""
    checked = _checked(spark, config, table, columns, optional)
    return None if checked is None else checked[0].where(checked[1].keep)


def customer_columns(spark: SparkSession, config: Config, columns: Sequence[str], key: str) -> DataFrame:
    """customer_id and ``columns`` of the customers table as the lake holds them (contact columns
    such as an e-mail, outside segcore's canonical names), one row per customer; ``key`` is the
    config key that asks for them, named in errors."""
    settings = config.lake.customers
    if settings is None:
        raise LakeError(f"{key} asks for columns of table 'customers', but lake.customers is null")
    source = settings.columns.get("customer_id", "customer_id")
    if source is None:
        raise LakeError(f"{key} needs the customers table's lake.customers.columns.customer_id")
    frame = _source(spark, config, "customers", [source, *columns])
    if settings.filter:
        frame = frame.where(F.expr(settings.filter))
    present = {column.lower(): column for column in frame.columns}
    missing = [column for column in columns if column.lower() not in present]
    if missing:
        raise LakeError(
            f"{key}: table 'customers' has no column(s) {missing}; it has {sorted(frame.columns)}. "
            "Name columns of the customers table as the lake holds them"
        )
    origin = "the result of lake.customers.query" if settings.query else config.path(settings.path)
    customer_id = _column(frame, origin, "customers", "customer_id", source, optional=False)
    extra = [F.col(f"`{present[column.lower()]}`").alias(column) for column in columns]
    return frame.select(customer_id.alias("customer_id"), *extra).dropDuplicates(["customer_id"])
