"""Who is in an audience and in which group, in Spark.

The control group is drawn from a hash of the audience's salt and the customer id, not from a
random stream: a customer keeps their group in every export while they stay in the audience (and
gets it back on returning), and the groups of audiences with different salts are independent.
"""

from __future__ import annotations

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segcore.config import AudienceConfig
from segcore.errors import ConfigError
from segcore.lake.tables import spark_reason

TREATMENT, CONTROL = "treatment", "control"
_BUCKETS = 1_000_000  # resolution of control_share


def control_bucket(salt: str) -> Column:
    """A number in [0, 1) per customer, uniform over customers and fixed by ``salt`` and the id."""
    digest = F.xxhash64(F.lit(salt), F.col("customer_id").cast("string"))
    return F.pmod(digest, F.lit(_BUCKETS)) / F.lit(float(_BUCKETS))


def group(salt: str, control_share: float) -> Column:
    """``control`` for the customers whose bucket falls below ``control_share``, else ``treatment``."""
    return F.when(control_bucket(salt) < F.lit(control_share), F.lit(CONTROL)).otherwise(F.lit(TREATMENT))


def members(scoring: DataFrame, name: str, definition: AudienceConfig) -> DataFrame:
    """The rows of ``scoring`` that ``definition.where`` accepts, with their ``group``."""
    try:
        chosen = scoring.where(F.expr(definition.where))
        _ = chosen.schema  # analysed now: an unknown column is reported here, not in a Spark job
    except PySparkException as exc:
        raise ConfigError(
            f"audiences.{name}.where: cannot use {definition.where!r}: {spark_reason(exc)}. The scoring's "
            f"columns are {scoring.columns}"
        ) from None
    return chosen.withColumn("group", group(definition.salt or name, definition.control_share))
