"""Promotion: move the ``champion`` alias to a challenger version once it passes the gate
(:mod:`segcore.promote.gate`), recording the decision and its figures as tags of that version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from segcore.config import Config
from segcore.errors import Alert, ModelError
from segcore.promote.gate import Check, GateResult, run_gate
from segcore.runtime.logs import quiet_spark, step
from segcore.storage.partitions import read_partition
from segcore.tracking.store import CHALLENGER, CHAMPION, alias_version, load_segment_model, use_tracking

TAG = "promotion"


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    champion: str | None  # the champion's version before
    decision: str  # promoted, refused, forced, first champion, already champion
    gate: GateResult | None

    @property
    def promoted(self) -> bool:
        return self.decision in ("promoted", "forced", "first champion")

    def table(self) -> pd.DataFrame:
        """The gate's checks as a printable table (empty without a gate)."""
        checks = self.gate.checks if self.gate else []
        return pd.DataFrame(
            [
                {
                    "check": c.name,
                    "value": f"{c.value:.4f}",
                    "threshold": c.threshold,
                    "result": "pass" if c.passed else "FAIL",
                    "detail": c.detail,
                }
                for c in checks
            ],
            columns=["check", "value", "threshold", "result", "detail"],
        )


def _challenger(client: MlflowClient, name: str, version: str | None) -> str:
    """The version to promote: ``version``, else the one with alias ``challenger``, else the latest."""
    if version is not None:
        try:
            return str(client.get_model_version(name, version).version)
        except MlflowException:
            raise ModelError(f"registered model '{name}' has no version {version}") from None
    found = alias_version(name, CHALLENGER)
    if found is not None:
        return found
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise ModelError(f"registered model '{name}' has no versions: run `segcore train` first")
    return str(max(int(v.version) for v in versions))


def _record(client: MlflowClient, promotion: Promotion, config: Config) -> None:
    tags = {
        "decision": promotion.decision,
        "champion_before": promotion.champion or "none",
        "as_of": config.as_of.isoformat(),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if promotion.decision == "forced":
        tags["gate"] = "skipped (--force)"
    elif promotion.gate is None:
        tags["gate"] = "none: there was no champion"
    else:
        tags["gate"] = "passed" if not promotion.gate.failed else "failed"
        tags["failed"] = ",".join(c.name for c in promotion.gate.failed)
        tags["customers"] = str(promotion.gate.customers)
        for check in promotion.gate.checks:
            tags[check.name] = f"{check.value:.6g}"
    for key, value in tags.items():
        client.set_model_version_tag(promotion.name, promotion.version, f"{TAG}.{key}", value)


def _gate(spark: SparkSession, config: Config, champion: str, challenger: str, name: str) -> GateResult:
    frame = read_partition(
        spark,
        config.partition(config.features.output),
        "feature table",
        f"run `segcore features` for as_of={config.as_of} first, or set as_of to a built partition",
    )
    models = {v: load_segment_model(f"models:/{name}/{v}") for v in (champion, challenger)}
    missing = sorted({f for m in models.values() for f in m.features} - set(frame.columns))
    if missing:
        raise ModelError(
            f"table 'features' ({config.partition(config.features.output)}) lacks column(s) {missing} "
            f"that version {champion} or {challenger} of '{name}' needs: rebuild the features"
        )
    with step("promote", f"gate: version {challenger} against champion {champion}") as figures:
        result = run_gate(config, frame, models[champion], models[challenger])
        figures.update(customers=result.customers, failed=",".join(c.name for c in result.failed) or "none")
    return result


def promote(
    config: Config, version: str | None = None, force: bool = False, spark: SparkSession | None = None
) -> Promotion:
    """Make ``version`` (default: the challenger, else the latest) the champion if it passes the
    gate on the feature partition for ``config.as_of``; raise :class:`PromotionRefused` (exit 4),
    moving nothing, if it does not. ``force`` skips the gate; with no champion yet there is none.
    The decision and its figures become tags ``promotion.*`` of the version."""
    client = use_tracking(config)
    name = config.mlflow.registered_model
    challenger = _challenger(client, name, version)
    champion = alias_version(name, CHAMPION)
    gate = None
    if champion == challenger:
        decision = "already champion"
    elif champion is None:
        decision = "first champion"
    elif force:
        decision = "forced"
    else:
        if spark is None:  # only the gate needs Spark
            from segcore.runtime.spark import get_spark

            spark = get_spark("segcore-promote")
            quiet_spark(spark)
        gate = _gate(spark, config, champion, challenger, name)
        decision = "refused" if gate.failed else "promoted"
    promotion = Promotion(name, challenger, champion, decision, gate)
    if decision == "already champion":
        return promotion
    _record(client, promotion, config)
    if not promotion.promoted:
        raise PromotionRefused(promotion)
    client.set_registered_model_alias(name, CHAMPION, challenger)
    return promotion


class PromotionRefused(Alert):
    """A refused promotion (exit 4): names every failed check; carries the :class:`Promotion`."""

    def __init__(self, promotion: Promotion):
        failed: list[Check] = promotion.gate.failed if promotion.gate else []
        reasons = "; ".join(f"{c.name}={c.value:.4f} (needs {c.threshold}: {c.detail})" for c in failed)
        super().__init__(
            f"version {promotion.version} of '{promotion.name}' was not promoted, champion stays "
            f"version {promotion.champion}: {reasons}. Pass --force to promote without the gate, or "
            "change promote.* in the config if the thresholds do not fit"
        )
        self.promotion = promotion
