"""Promotion: move the ``champion`` alias to a challenger version once it passes the gate
(:mod:`segcore.promote.gate`), recording the decision and its figures as tags of that version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import SparkSession

from segcore.config import Config
from segcore.errors import Alert, ModelError
from segcore.promote.gate import Check, GateResult, run_gate
from segcore.runtime.logs import quiet_spark, step
from segcore.runtime.stopping import signals_held
from segcore.storage.partitions import read_partition
from segcore.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    existing_version,
    latest_version,
    load_version,
    set_alias,
    tag_version,
    version_run_id,
)
from segcore.tracking.store import Tracking, open_tracking
from segcore.value.stage import VALUE_VERSION_TAG, value_tracking

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


def _challenger(tracking: Tracking, version: str | None) -> str:
    """The version to promote: ``version``, else the one with alias ``challenger``, else the latest."""
    if version is not None:
        return existing_version(tracking, version)
    return alias_version(tracking, CHALLENGER) or latest_version(tracking)


def _decision_tags(promotion: Promotion, config: Config) -> dict[str, str]:
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
    return {f"{TAG}.{key}": value for key, value in tags.items()}


def _gate(
    spark: SparkSession, config: Config, tracking: Tracking, champion: str, challenger: str
) -> GateResult:
    table = config.partition(config.features.output)
    frame = read_partition(
        spark,
        table,
        "feature table",
        f"run `segcore features` for as_of={config.as_of} first, or set as_of to a built partition",
    )
    models = {v: load_version(tracking, v) for v in (champion, challenger)}
    missing = sorted({f for m in models.values() for f in m.preparation.inputs} - set(frame.columns))
    if missing:
        raise ModelError(
            f"table 'features' ({table}) lacks column(s) {missing} that version {champion} or "
            f"{challenger} of '{tracking.model_name}' needs: rebuild the features"
        )
    with step("promote", f"gate: version {challenger} against champion {champion}") as figures:
        result = run_gate(config, frame, models[champion], models[challenger])
        figures.update(customers=result.customers, failed=",".join(c.name for c in result.failed) or "none")
    return result


def _gate_spark(spark: SparkSession | None) -> SparkSession:
    """``spark``, or a session started for the gate (the only part of promotion that needs one)."""
    if spark is not None:
        return spark
    from segcore.runtime.spark import get_spark

    spark = get_spark("segcore-promote")
    quiet_spark(spark)
    return spark


def _decide(
    config: Config, tracking: Tracking, challenger: str, champion: str | None, force: bool, spark
) -> Promotion:
    if champion == challenger:
        return Promotion(tracking.model_name, challenger, champion, "already champion", None)
    if champion is None:
        return Promotion(tracking.model_name, challenger, champion, "first champion", None)
    if force:
        return Promotion(tracking.model_name, challenger, champion, "forced", None)
    gate = _gate(_gate_spark(spark), config, tracking, champion, challenger)
    return Promotion(
        tracking.model_name, challenger, champion, "refused" if gate.failed else "promoted", gate
    )


def promote_version(
    config: Config, version: str | None = None, force: bool = False, spark: SparkSession | None = None
) -> Promotion:
    """Make ``version`` (default: the challenger, else the latest) the champion if it passes the
    gate on the feature partition for ``config.as_of``; raise :class:`PromotionRefused` (exit 4),
    moving nothing, if it does not. ``force`` skips the gate; with no champion yet there is none.
    The decision and its figures become tags ``promotion.*`` of the version."""
    tracking = open_tracking(config)
    challenger = _challenger(tracking, version)
    promotion = _decide(config, tracking, challenger, alias_version(tracking, CHAMPION), force, spark)
    if promotion.decision == "already champion":
        return promotion
    with signals_held():  # the decision's record and the alias moves go together
        tag_version(tracking, challenger, _decision_tags(promotion, config))
        if promotion.promoted:
            set_alias(tracking, CHAMPION, challenger)
            _promote_paired_value_model(tracking, config, challenger)
    if not promotion.promoted:
        raise PromotionRefused(promotion)
    return promotion


def _promote_paired_value_model(tracking: Tracking, config: Config, version: str) -> None:
    """Give ``champion`` of the value model to the version trained beside segment ``version``
    (the one ``score`` applies with it), so that serving ``customer_value@champion`` agrees."""
    paired = tracking.client.get_run(version_run_id(tracking, version)).data.tags.get(VALUE_VERSION_TAG)
    if paired is not None:
        set_alias(value_tracking(tracking, config), CHAMPION, paired)


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
