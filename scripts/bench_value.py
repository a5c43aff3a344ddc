#!/usr/bin/env python
"""Cost of the customer value model at lake scale, against one Spark pass over the same table.

For each size, customers' value inputs (repeat_purchases, repeat_span_days, observed_days,
repeat_spend_mean, in days) are simulated from BG/NBD and Gamma-Gamma with CDNOW-like parameters
and written as Parquet (a child process, not timed). Then, side by side in this process:

- one Spark pass: read the table and aggregate every column (the reference);
- segcore's value fit (:func:`segcore.value.fit.fit_value_model`: Spark aggregates the distinct
  (x, t_x, T) triples and a Gamma-Gamma sample, the driver maximises);
- up to ``--lifetimes-max`` customers, the `lifetimes` package's own fit (BetaGeoFitter and
  GammaGammaFitter on a pandas frame of every customer), with its parameters.

The driver's peak resident memory (this Python process; Spark's JVM is another) is printed after
the fits. Usage: scripts/bench_value.py [--customers 1000000 10000000] [--lifetimes-max 1000000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# r, alpha (days), a, b of BG/NBD; p, q, gamma of Gamma-Gamma.
TRUE_BGNBD = (0.25, 30.0, 0.8, 2.5)
TRUE_GAMMA_GAMMA = (6.0, 3.7, 15.0)
CHUNK = 1_000_000
HISTORY_DAYS = 730


def _simulate(rng: np.random.Generator, n: int) -> pa.Table:
    """n customers drawn from BG/NBD (purchase rate, drop-out after a purchase) and Gamma-Gamma."""
    r, alpha, a, b = TRUE_BGNBD
    T = rng.integers(1, HISTORY_DAYS, n).astype(float)
    rate = rng.gamma(r, 1 / alpha, n)
    arrivals = rng.poisson(rate * T)
    survived = rng.geometric(rng.beta(a, b, n))  # purchases until the customer drops out
    x = np.minimum(arrivals, survived).astype(float)
    # The x-th of `arrivals` uniform arrival times in (0, T].
    t_x = np.where(x > 0, np.floor(T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1))), 0.0)
    p, q, gamma = TRUE_GAMMA_GAMMA
    nu = rng.gamma(q, 1 / gamma, n)
    spend = np.where(x > 0, rng.gamma(p * np.maximum(x, 1), 1 / (nu * np.maximum(x, 1))), 0.0)
    return pa.table(
        {
            "customer_id": np.arange(n, dtype=np.int64),
            "repeat_purchases": x,
            "repeat_span_days": t_x,
            "observed_days": T,
            "repeat_spend_mean": spend,
        }
    )


def _write_table(folder: str, customers: int) -> None:
    rng = np.random.default_rng(7)
    os.makedirs(folder, exist_ok=True)
    for part, start in enumerate(range(0, customers, CHUNK)):
        table = _simulate(rng, min(CHUNK, customers - start))
        pq.write_table(table, f"{folder}/part-{part:03d}.parquet")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lifetimes_fit(folder: str) -> tuple[float, dict[str, float]]:
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    frame = pd.read_parquet(folder)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BetaGeoFitter().fit(frame.repeat_purchases, frame.repeat_span_days, frame.observed_days)
        repeat = frame[(frame.repeat_purchases > 0) & (frame.repeat_spend_mean > 0)]
        gg = GammaGammaFitter().fit(repeat.repeat_purchases, repeat.repeat_spend_mean)
    return time.perf_counter() - started, {**bg.params_.to_dict(), **gg.params_.to_dict()}


def main(sizes: list[int], lifetimes_max: int) -> None:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from segcore.config import build_config
    from segcore.value.fit import fit_value_model

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    config = build_config({})
    print(f"true BG/NBD (days) r, alpha, a, b = {TRUE_BGNBD}; Gamma-Gamma p, q, gamma = {TRUE_GAMMA_GAMMA}")
    with tempfile.TemporaryDirectory(prefix="segcore-value-bench-") as tmp:
        for customers in sizes:
            folder = str(Path(tmp, f"inputs-{customers}"))
            spawn = multiprocessing.get_context("spawn")
            child = spawn.Process(target=_write_table, args=(folder, customers))
            child.start()
            child.join()
            frame = spark.read.parquet(folder)
            started = time.perf_counter()
            frame.agg(*[F.sum(c) for c in frame.columns]).collect()
            one_pass = time.perf_counter() - started
            started = time.perf_counter()
            fit = fit_value_model(frame, config)
            fitted = time.perf_counter() - started
            bg, gg = fit.model.bgnbd, fit.model.gamma_gamma
            print(
                f"\n{customers:,} customers: one Spark pass {one_pass:.1f} s; value fit {fitted:.1f} s "
                f"({fitted / one_pass:.1f}x the pass, +{fitted:.1f} s); {fit.distinct_triples:,} distinct "
                f"triples, {fit.bgnbd.iterations} L-BFGS-B iterations, Gamma-Gamma on "
                f"{fit.gamma_gamma.customers:,} of {fit.repeat_customers:,} repeat customers; driver peak "
                f"RSS {_peak_rss_mb():,.0f} MB"
            )
            print(
                f"  segcore:   r={bg.r:.4f} alpha={bg.alpha:.3f} a={bg.a:.4f} b={bg.b:.4f}  "
                f"p={gg.p:.3f} q={gg.q:.3f} gamma={gg.gamma:.3f}"
            )
            if customers <= lifetimes_max:
                seconds, params = _lifetimes_fit(folder)
                print(
                    f"  lifetimes: r={params['r']:.4f} alpha={params['alpha']:.3f} a={params['a']:.4f} "
                    f"b={params['b']:.4f}  p={params['p']:.3f} q={params['q']:.3f} gamma={params['v']:.3f}  "
                    f"({seconds:.1f} s on one pandas frame, {seconds / fitted:.1f}x segcore's fit)"
                )
            else:
                print(f"  lifetimes: not run (above --lifetimes-max {lifetimes_max:,})")
    spark.stop()


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--lifetimes-max", type=int, default=1_000_000)
    args = parser.parse_args()
    main(args.customers, args.lifetimes_max)
