"""Lakes shaped like real retail exports, mapped by an example config alone: `segcore generate
--shape`, then `segcore features`, `train` and `score` through the command line's entry point (in
this process, on the tests' Spark session; the commands' own processes are tested in
tests/cluster/cli), and every RFM feature of every customer against an independent pandas
computation from the raw files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from segcore.cli.commands import main
from segcore.storage.versions import local_partition

CUSTOMERS = 300
SEED = 21
END = "2026-06-30"  # the examples' as_of is a month earlier: later rows must be ignored
RFM = ["frequency", "monetary_total", "monetary_mean", "recency_days", "tenure_days"]
RFM_ALL = [*RFM, "order_interval_cv", "spend_trend"]


@pytest.fixture(scope="module", params=["transactions", "normalized"])
def shaped(request, spark, tmp_path_factory):
    """A generated lake of the shape, and the three stages run on it with the example config."""
    shape = request.param
    workdir = tmp_path_factory.mktemp(shape)
    example = ROOT / "conf" / "examples" / f"{shape}.yaml"
    lake = ["--out", str(workdir / "lake"), "--customers", str(CUSTOMERS), "--seed", str(SEED), "--end", END]
    assert main(["generate", "--shape", shape, *lake]) == 0
    settings = ["--config", str(example), "--set", f"workdir={workdir}"]
    previous = mlflow.get_tracking_uri()  # train and score point MLflow's process-wide API at their store
    try:  # the stages' exit codes; what they print is in pytest's captured output of the first test
        stages = {stage: main([stage, *settings]) for stage in ("features", "train", "score")}
    finally:
        mlflow.set_tracking_uri(previous)
    as_of = pd.Timestamp(yaml.safe_load(example.read_text())["as_of"])
    return {"shape": shape, "workdir": workdir, "stages": stages, "as_of": as_of}


def _partition(shaped, table: str) -> str:
    """The committed data folder of ``table``'s partition."""
    return local_partition(shaped["workdir"] / table / f"as_of={shaped['as_of'].date().isoformat()}")


def _transaction_lines(lake, as_of: pd.Timestamp) -> tuple[pd.DataFrame, int]:
    """Usable invoice lines before as_of (guests dropped), and how many guest lines there were."""
    raw = pd.read_parquet(lake / "transactions")
    raw["ts"] = pd.to_datetime(raw.InvoiceDate, format="%m/%d/%Y %H:%M")
    raw = raw[raw.ts < as_of]
    guests = raw.CustomerID.isna()
    lines = raw[~guests]
    return (
        pd.DataFrame(
            {
                "customer_id": lines.CustomerID.astype("int64"),
                "order_id": lines.InvoiceNo,
                "ts": lines.ts,
                "amount": lines.Quantity * lines.UnitPrice,
                "net": lines.Quantity * lines.UnitPrice,  # cancellations are negative lines
            }
        ),
        int(guests.sum()),
    )


def _normalized_lines(lake, as_of: pd.Timestamp) -> tuple[pd.DataFrame, int]:
    """Order lines of orders not cancelled, before as_of, with the customer key (guests dropped)."""
    headers = pd.read_parquet(lake / "order_headers")
    lines = pd.read_parquet(lake / "order_lines").merge(headers, on="order_id")
    keys = pd.read_parquet(lake / "order_customers").drop_duplicates()
    lines = lines[(lines.status != "cancelled") & (lines.placed_at < as_of)].merge(
        keys, on="order_id", how="left"
    )
    guests = lines.customer_key.isna()
    lines = lines[~guests]
    amount = lines.qty * lines.unit_price
    return (
        pd.DataFrame(
            {
                "customer_id": lines.customer_key,
                "order_id": lines.order_id,
                "ts": lines.placed_at,
                "amount": amount,
                "net": amount.where(lines.line_status != "returned", 0.0),  # a returned line is refunded
            }
        ),
        int(guests.sum()),
    )


def expected_rfm(lines: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The RFM features by their README definitions, from usable lines before as_of."""
    orders = (
        lines.groupby(["customer_id", "order_id"])
        .agg(ts=("ts", "min"), net=("net", "sum"), purchase=("amount", lambda a: bool((a >= 0).any())))
        .reset_index()
    )
    orders["day"] = orders.ts.dt.normalize()
    rows = {}
    for customer, own in orders.groupby("customer_id"):
        purchases = own[own.purchase].sort_values("ts")
        tenure = (as_of - own.day.min()).days
        frequency = len(purchases)
        total = own.net.sum()
        recent = max(round(own.net[own.day >= as_of - pd.Timedelta(days=90)].sum(), 6), 0.0)
        prior_days = (own.day < as_of - pd.Timedelta(days=90)) & (own.day >= as_of - pd.Timedelta(days=180))
        prior = max(round(own.net[prior_days].sum(), 6), 0.0)
        gaps = purchases.ts.diff().dt.total_seconds().dropna() / 86_400
        rows[customer] = {
            "frequency": frequency,
            "monetary_total": total,
            "monetary_mean": total / frequency if frequency else 0.0,
            "recency_days": (as_of - purchases.day.max()).days if frequency else tenure,
            "tenure_days": tenure,
            "order_interval_cv": gaps.std(ddof=0) / gaps.mean() if len(gaps) and gaps.mean() else 0.0,
            "spend_trend": (recent - prior) / (recent + prior) if recent + prior else 0.0,
        }
    return pd.DataFrame.from_dict(rows, orient="index").astype(float).sort_index()


def _expected(shaped) -> tuple[pd.DataFrame, int]:
    reader = _transaction_lines if shaped["shape"] == "transactions" else _normalized_lines
    lines, guests = reader(shaped["workdir"] / "lake", shaped["as_of"])
    return expected_rfm(lines, shaped["as_of"]), guests


def test_example_config_runs_features_train_and_score_with_exit_0(shaped):
    assert shaped["stages"] == {"features": 0, "train": 0, "score": 0}
    features = pd.read_parquet(_partition(shaped, "features"))
    segments = pd.read_parquet(_partition(shaped, "segments"))
    assert sorted(segments.customer_id) == sorted(features.customer_id)


def test_every_rfm_feature_of_every_customer_equals_pandas(shaped):
    expected, _ = _expected(shaped)
    table = pd.read_parquet(_partition(shaped, "features")).set_index("customer_id").sort_index()
    assert list(table.index) == list(expected.index)  # exactly the customers with orders before as_of
    pd.testing.assert_frame_equal(table[RFM_ALL], expected[RFM_ALL], check_names=False, rtol=1e-9, atol=1e-6)


def test_guests_are_dropped_and_counted(shaped):
    _, guests = _expected(shaped)
    counts = json.loads(Path(_partition(shaped, "features"), "_segcore_input_rows.json").read_text())
    assert guests > 0
    assert counts["orders_dropped_null_customer_id"] == guests


def test_segment_names_are_unique_words_without_numbers(shaped):
    segments = pd.read_parquet(_partition(shaped, "segments"))
    names = segments.groupby("segment_id").segment_name.first()
    assert names.is_unique
    assert not any(re.search(r"\d", name) for name in names), names.tolist()


def _whale(shaped) -> int | str:
    """The planted customer whose 80,000-unit order was cancelled."""
    lake = shaped["workdir"] / "lake"
    if shaped["shape"] == "transactions":
        raw = pd.read_parquet(lake / "transactions")
        return int(raw[raw.Quantity == 80_000].CustomerID.iloc[0])
    lines = pd.read_parquet(lake / "order_lines")
    keys = pd.read_parquet(lake / "order_customers")
    return keys[keys.order_id == lines[lines.qty == 80_000].order_id.iloc[0]].customer_key.iloc[0]


def test_cancelled_wholesale_order_nets_out(shaped):
    """The planted customer whose £166,400 order was cancelled has net spend £2.90, not the top
    spend. Transactions: the cancellation is a separate invoice (no order), the cancelled invoice
    still counts as an order placed. Normalized: the query leaves the cancelled order out."""
    table = pd.read_parquet(_partition(shaped, "features")).set_index("customer_id")
    whale = table.loc[_whale(shaped)]
    assert whale.monetary_total == pytest.approx(2.90)
    assert whale.frequency == (2.0 if shaped["shape"] == "transactions" else 1.0)
    assert table.monetary_total.idxmax() != _whale(shaped)


def test_customers_whose_orders_were_all_cancelled(shaped):
    """Transactions: an order cancelled by a later invoice leaves net spend 0 (one order placed); a
    customer with nothing but a cancellation has no order, negative net spend, and counts as lapsed
    since that row. Normalized: a customer whose orders were all cancelled is no customer."""
    table = pd.read_parquet(_partition(shaped, "features")).set_index("customer_id")
    if shaped["shape"] == "transactions":
        assert ((table.monetary_total.abs() < 1e-9) & (table.frequency == 1)).any()
        no_order = table[table.frequency == 0]
        assert len(no_order) == 1 and no_order.monetary_total.iloc[0] < 0
        assert no_order.recency_days.iloc[0] == no_order.tenure_days.iloc[0]
        assert no_order.monetary_mean.iloc[0] == 0.0
    else:
        keys = pd.read_parquet(shaped["workdir"] / "lake" / "order_customers")
        headers = pd.read_parquet(shaped["workdir"] / "lake" / "order_headers").merge(keys, on="order_id")
        status = headers[headers.placed_at < shaped["as_of"]].groupby("customer_key").status
        all_cancelled = status.apply(lambda s: (s == "cancelled").all())
        assert all_cancelled.sum() >= 2
        assert not set(all_cancelled[all_cancelled].index) & set(table.index)
