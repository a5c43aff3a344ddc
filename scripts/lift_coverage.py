#!/usr/bin/env python
"""How often `segcore lift`'s 95% intervals cover the truth, over seeded lakes.

One sample lake is generated, featured, trained and scored once. Then for each seed 1..N: the
audience "everyone" is exported with its own salt (so a new half of the customers is held back),
two copies of the lake are extended by --days days with that seed, one where the treatment group
orders (1 + --effect) times as often and one without a campaign, and `segcore lift` runs on both.
Counted: the planted lakes whose relative lift interval of orders (and of revenue) per customer
covers --effect, and the unplanted lakes whose lift interval of orders covers 0.

With --simulate N, first the same design without Spark: the generated lake's per-customer order
rates over its last 180 days, N random half splits and Poisson months (NumPy), the delta-method
interval of the relative orders lift: its coverage, and the spread of the estimates against the
intervals' standard error.

Usage: scripts/lift_coverage.py [--customers 3000] [--lakes 20] [--first-seed 1] [--effect 0.2]
       [--days 30] [--simulate N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from segcore.audiences.stage import audience_partition, export_audiences  # noqa: E402
from segcore.config import build_config  # noqa: E402
from segcore.features.stage import run_features  # noqa: E402
from segcore.lift.stage import measure_lift  # noqa: E402
from segcore.runtime.logs import quiet_spark, setup_logging  # noqa: E402
from segcore.runtime.spark import get_spark  # noqa: E402
from segcore.sample.extend import RATE_DAYS, extend_lake  # noqa: E402
from segcore.sample.lake import generate_lake  # noqa: E402
from segcore.score.stage import score_segments  # noqa: E402
from segcore.train.stage import train_segments  # noqa: E402

AS_OF = dt.date(2026, 6, 30)


def _config(workdir: Path, lake: Path, seed: int | None = None):
    data = {
        "workdir": str(workdir),
        "as_of": AS_OF.isoformat(),
        "lake": {table: {"path": str(lake / table)} for table in ("customers", "orders", "events")},
        "kmeans": {"k": 5},
        "value": {"backtest": False},
    }
    if seed is not None:
        data["audiences"] = {"everyone": {"where": "true", "control_share": 0.5, "salt": f"seed-{seed}"}}
        data["campaigns"] = {"audiences_output": f"audiences-{seed}"}
    return build_config(data)


def _overall(table: pd.DataFrame, metric: str) -> pd.Series:
    return table[(table.segment_id == "all") & (table.metric == metric)].iloc[0]


def _simulate(lake: Path, draws: int, effect: float, days: int) -> None:
    """Coverage of the relative orders interval when only the split and the Poisson month vary."""
    orders = pd.read_parquet(lake / "orders", columns=["customer_id", "order_ts"])
    customers = pd.read_parquet(lake / "customers", columns=["customer_id"]).customer_id.to_numpy()
    recent = orders[orders.order_ts >= pd.Timestamp(AS_OF - dt.timedelta(days=RATE_DAYS))]
    rate = recent.groupby("customer_id").size().reindex(customers, fill_value=0).to_numpy() / RATE_DAYS * days
    rng = np.random.default_rng(0)
    estimates, errors, covered = [], [], 0
    for _ in range(draws):
        treated = rng.random(len(rate)) < 0.5
        counts = rng.poisson(rate * np.where(treated, 1 + effect, 1.0)).astype(float)
        a, b = counts[treated], counts[~treated]
        ratio = a.mean() / b.mean() - 1
        se = np.sqrt(
            a.var(ddof=1) / len(a) / b.mean() ** 2 + a.mean() ** 2 * b.var(ddof=1) / len(b) / b.mean() ** 4
        )
        covered += abs(ratio - effect) <= 1.96 * se
        estimates.append(ratio)
        errors.append(se)
    print(
        f"simulation, {draws} draws: the relative orders interval covers {effect:+.0%} {covered / draws:.1%} "
        f"of the time; estimates' SD {np.std(estimates):.4f}, mean standard error {np.mean(errors):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--lakes", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1, help="seeds --first-seed .. + --lakes - 1")
    parser.add_argument("--effect", type=float, default=0.2)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--simulate", type=int, default=0, metavar="N", help="NumPy draws first (no Spark)")
    parser.add_argument("--workdir", help="default: a temporary folder, removed at the end")
    args = parser.parse_args()
    setup_logging(False)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lift-coverage-"))
    lake = workdir / "lake"
    generate_lake(lake, args.customers, seed=7, end=AS_OF)
    if args.simulate:
        _simulate(lake, args.simulate, args.effect, args.days)
    if not args.lakes:
        return
    spark = get_spark("segcore-lift-coverage")
    quiet_spark(spark, False)
    base = _config(workdir, lake)
    run_features(spark, base)
    score_segments(spark, base, train_segments(spark, base).model.version)
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.lakes):
        config = _config(workdir, lake, seed)
        export_audiences(spark, config)
        export = audience_partition(config, "everyone")
        figures = {"seed": seed}
        for kind, effect in (("planted", args.effect), ("none", 0.0)):
            copy = workdir / f"lake-{kind}-{seed}"
            shutil.copytree(lake, copy, copy_function=os.link)
            extend_lake(copy, args.days, seed, export if effect else None, effect)
            table = measure_lift(spark, _config(workdir, copy, seed), "everyone", AS_OF, args.days).table
            orders, revenue = _overall(table, "orders"), _overall(table, "revenue")
            if kind == "planted":
                figures["orders_relative"] = orders.relative_lift
                figures["orders_covers_effect"] = orders.relative_low <= effect <= orders.relative_high
                figures["revenue_covers_effect"] = revenue.relative_low <= effect <= revenue.relative_high
            else:
                figures["orders_lift_no_campaign"] = orders.lift
                figures["no_campaign_covers_0"] = orders.lift_low <= 0 <= orders.lift_high
            shutil.rmtree(copy)
        rows.append(figures)
        print(pd.DataFrame([figures]).to_string(index=False, header=seed == args.first_seed), flush=True)
    result = pd.DataFrame(rows)
    print(
        f"\n{args.lakes} lakes of {args.customers:,} customers, effect {args.effect:+.0%} over "
        f"{args.days} days, half of each audience held back:"
    )
    for column, what in (
        ("orders_covers_effect", "orders per customer, relative interval covers the effect"),
        ("revenue_covers_effect", "revenue per customer, relative interval covers the effect"),
        ("no_campaign_covers_0", "without a campaign, the orders lift interval covers 0"),
    ):
        print(f"  {what}: {result[column].mean():.0%}")
    print(f"  mean relative orders lift found: {result.orders_relative.mean():+.1%}")
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
