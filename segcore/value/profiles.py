"""Value figures per segment, aggregated in Spark from scored customers."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from segcore.config import ValueConfig

# Columns each segment gets in the profiles, in order.
VALUE_PROFILE_COLUMNS = (
    "high_risk_share",
    "mean_churn_risk",
    "mean_expected_purchases",
    "mean_expected_value",
    "expected_value",
)


def value_aggregates(settings: ValueConfig, scores: str) -> dict[str, Column]:
    """Per segment (in a groupBy by segment), :data:`VALUE_PROFILE_COLUMNS` (name -> aggregate)
    from the struct column ``scores`` of :func:`segcore.value.scoring.value_scores`: the share of
    customers in the highest risk band (of all the segment's customers), mean churn risk, expected
    purchases and value (of those with a purchase) and the segment's total expected value over the
    horizon."""

    def score(name: str) -> Column:
        return F.col(f"{scores}.{name}")

    high = (score("churn_risk_band") == F.lit(settings.high_risk_band())).cast("double")
    return {
        "high_risk_share": F.avg(high),
        "mean_churn_risk": F.avg(score("churn_risk")),
        "mean_expected_purchases": F.avg(score("expected_purchases")),
        "mean_expected_value": F.avg(score("expected_value")),
        "expected_value": F.coalesce(F.sum(score("expected_value")), F.lit(0.0)),
    }
