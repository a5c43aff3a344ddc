"""The audiences stage (Spark): export the configured audiences of the as_of scoring.

Each audience becomes the partition ``<campaigns.audiences_output>/as_of=<as_of>/<name>/``, whose
committed version holds

- ``treatment.csv``: the file a CRM uploads (the treatment group: customer_id, the audience's
  ``columns``, segment_id, segment_name), and ``control.csv``, the group held back;
- ``members/``, ``entered/``, ``left/``: Parquet of every member with its group, and the customers
  who joined or left since the audience's previous export (an earlier as_of);
- ``_audience.json``: the counts and the definition.

All audiences of one export are committed together (:mod:`segcore.storage.versions`): a failed
export leaves every previous one as it was. The MLflow run (``stage=audiences``) gets the
definitions and the counts, never customer rows or contact columns.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segcore.audiences.definition import CONTROL, TREATMENT, members
from segcore.config import Config
from segcore.errors import ConfigError, LakeError
from segcore.lake.tables import customer_columns
from segcore.runtime.logs import step
from segcore.storage.partitions import (
    Outputs,
    commit_partitions,
    partition_dates,
    read_partition,
    resolve_partition,
)
from segcore.tracking.lifecycle import tracked_run
from segcore.tracking.store import open_tracking

CRM_FILE, CONTROL_FILE, SUMMARY_FILE = "treatment.csv", "control.csv", "_audience.json"
MEMBERS, ENTERED, LEFT = "members", "entered", "left"


@dataclass(frozen=True)
class AudienceExport:
    name: str
    path: str  # the audience's partition
    customers: int
    treatment: int
    control: int
    entered: int
    left: int
    previous: str | None  # as_of of the previous export the deltas compare with

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}


def audience_partition(config: Config, name: str, as_of: dt.date | None = None) -> str:
    return f"{config.partition(config.campaigns.audiences_output, as_of)}/{name}"


def audience_file(spark: SparkSession, partition: str, name: str = CRM_FILE) -> str:
    """The committed file (or folder) ``name`` of an audience's export."""
    folder = resolve_partition(spark, partition, "audience export", "run `segcore audiences` first")
    return f"{folder}/{name}"


def chosen_audiences(config: Config, names: list[str] | None) -> list[str]:
    """``names`` (default: every configured audience), each checked against the config."""
    if not config.audiences:
        raise ConfigError(
            "no audiences configured: add one as audiences.<name>.where (a Spark SQL predicate over the "
            "scoring's columns), e.g. --set \"audiences.winback.where=churn_risk_band = 'high'\""
        )
    unknown = [name for name in names or [] if name not in config.audiences]
    if unknown:
        raise ConfigError(f"audience(s) {unknown} not configured: the config has {sorted(config.audiences)}")
    return list(dict.fromkeys(names or config.audiences))


def export_audiences(
    spark: SparkSession, config: Config, names: list[str] | None = None
) -> tuple[list[AudienceExport], str]:
    """Write the audiences ``names`` (default all) of the as_of scoring, committed together, then
    record the MLflow run; returns the exports and the run id."""
    chosen = chosen_audiences(config, names)
    scoring = read_partition(
        spark,
        config.partition(config.score.output),
        "scoring",
        f"run `segcore score --set as_of={config.as_of}` (with the same --config) first",
    )
    targets = {name: audience_partition(config, name) for name in chosen}
    with commit_partitions(spark, list(targets.values())) as outputs:
        exports = [_stage(spark, config, outputs, scoring, name, targets[name]) for name in chosen]
    with step("audiences", "record the MLflow run"):
        return exports, _record(config, scoring, exports)


def _with_contacts(spark: SparkSession, config: Config, frame: DataFrame, name: str) -> DataFrame:
    columns = config.audiences[name].columns
    if not columns:
        return frame
    clash = sorted(set(columns) & set(frame.columns))
    if clash:
        raise ConfigError(f"audiences.{name}.columns: {clash} are already columns of the scoring")
    contacts = customer_columns(spark, config, columns, f"audiences.{name}.columns")
    key = frame.schema["customer_id"].dataType
    return frame.join(
        contacts.withColumn("customer_id", F.col("customer_id").cast(key)), "customer_id", "left"
    )


def _export_dates(spark: SparkSession, config: Config, name: str) -> list[dt.date]:
    """The as_of dates of the audience's committed exports, oldest first."""
    return partition_dates(spark, config.path(config.campaigns.audiences_output), name)


def _previous_members(spark: SparkSession, config: Config, name: str) -> tuple[str | None, DataFrame | None]:
    """The as_of and the members of the audience's latest export before as_of (None, None if none)."""
    earlier = [day for day in _export_dates(spark, config, name) if day < config.as_of]
    if not earlier:
        return None, None
    folder = audience_file(spark, audience_partition(config, name, earlier[-1]), MEMBERS)
    return earlier[-1].isoformat(), spark.read.parquet(folder)


def _stage(
    spark: SparkSession, config: Config, outputs: Outputs, scoring: DataFrame, name: str, target: str
) -> AudienceExport:
    """Stage one audience's files in ``target``'s new version; its counts."""
    definition = config.audiences[name]
    with step("audiences", f"select and write {name}") as figures:
        frame = _with_contacts(spark, config, members(scoring, name, definition), name)
        written = outputs.write(frame, target, folder=MEMBERS)
        previous, before = _previous_members(spark, config, name)
        if before is None:
            entered, left = written, written.select("customer_id", "group").limit(0)
        else:
            entered = written.join(before.select("customer_id"), "customer_id", "left_anti")
            left = before.select("customer_id", "group").join(
                written.select("customer_id"), "customer_id", "left_anti"
            )
        entered = outputs.write(entered, target, folder=ENTERED)
        left = outputs.write(left, target, folder=LEFT)
        crm_columns = ["customer_id", *definition.columns, "segment_id", "segment_name"]
        for group, file in ((TREATMENT, CRM_FILE), (CONTROL, CONTROL_FILE)):
            outputs.write_csv(written.where(F.col("group") == group).select(*crm_columns), target, file)
        sizes = written.agg(
            F.count(F.lit(1)).alias("customers"),
            F.coalesce(F.sum((F.col("group") == CONTROL).cast("long")), F.lit(0)).alias("control"),
        ).first()
        export = AudienceExport(
            name,
            target,
            sizes["customers"],
            sizes["customers"] - sizes["control"],
            sizes["control"],
            entered.count(),
            left.count(),
            previous,
        )
        figures.update(export.counts())
    summary = {"as_of": config.as_of.isoformat(), "definition": definition.model_dump(), **asdict(export)}
    outputs.write_text(target, SUMMARY_FILE, json.dumps(summary, indent=1))
    return export


def _record(config: Config, scoring: DataFrame, exports: list[AudienceExport]) -> str:
    """The export's MLflow run: each audience's definition as params and its counts as metrics."""
    with tracked_run(open_tracking(config), f"audiences-{config.as_of}") as run:
        versions = sorted(row[0] for row in scoring.select("model_version").distinct().collect())
        run.set_tags(
            {"stage": "audiences", "as_of": config.as_of.isoformat(), "model_version": ",".join(versions)}
        )
        params: dict[str, object] = {"output": config.path(config.campaigns.audiences_output)}
        metrics: dict[str, float] = {}
        for export in exports:
            definition = config.audiences[export.name]
            params.update(
                {
                    f"{export.name}.where": definition.where,
                    f"{export.name}.columns": ",".join(definition.columns),
                    f"{export.name}.control_share": definition.control_share,
                    f"{export.name}.salt": definition.salt or export.name,
                }
            )
            metrics.update({f"{export.name}.{key}": value for key, value in export.counts().items()})
        run.log_params(params)
        run.log_metrics(metrics)
    return run.run_id


def latest_export(spark: SparkSession, config: Config, name: str, day: dt.date) -> str:
    """The partition of the audience's latest export on or before ``day`` (exit 2 if none)."""
    dates = [d for d in _export_dates(spark, config, name) if d <= day]
    if not dates:
        known = sorted(config.audiences)
        configured = "" if name in known else f" (it is not configured; the config's audiences: {known})"
        raise LakeError(
            f"audience '{name}' has no export on or before {day} under "
            f"{config.path(config.campaigns.audiences_output)}{configured}: run `segcore audiences "
            f"--name {name}` on a scoring before the campaign starts"
        )
    return audience_partition(config, name, dates[-1])
