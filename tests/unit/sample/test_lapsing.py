"""The sample lake's lapsing share: loyal customers planted as lapsed have no activity in the last
month."""

import datetime as dt

import pandas as pd

from segcore.sample.lake import LAPSE_DAYS, generate_lake


def test_the_lapsing_share_of_loyal_customers_has_no_activity_in_the_last_month(tmp_path):
    end = dt.date(2026, 6, 30)
    generate_lake(tmp_path / "lake", 600, seed=4, end=end, lapsing=0.25)
    planted = pd.read_parquet(tmp_path / "lake" / "planted_segments.parquet")
    loyal = planted[planted.segment == "high_value_loyal"]
    assert (
        loyal.lapsed.sum() == round(0.25 * len(loyal))
        and not planted.lapsed[planted.segment != "high_value_loyal"].any()
    )
    cutoff = pd.Timestamp(end - dt.timedelta(days=LAPSE_DAYS))
    for table, column in (("orders", "order_ts"), ("events", "event_ts")):
        frame = pd.read_parquet(tmp_path / "lake" / table, columns=["customer_id", column])
        last = frame.groupby("customer_id")[column].max()
        assert (last[loyal.customer_id[loyal.lapsed]] < cutoff).all()
        assert (last[loyal.customer_id[~loyal.lapsed]] >= cutoff).mean() > 0.25  # orders 75%, events 38%
