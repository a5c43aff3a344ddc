#!/usr/bin/env python
"""The whole chain's cost: `segcore features`, `train` and `score` on a generated lake, with a
straightforward hand-written Spark SQL job of the same aggregates as the reference, side by side.

For each --customers N it generates a sample lake once (kept in --workdir), then runs, each in a
process of its own and one at a time:

- the reference: one Spark SQL query over the lake (RFM, category and channel shares, discount and
  return rates, order-interval CV, event rates, device and OS shares, the customer attributes),
  written as Parquet, as a data engineer would write it by hand;
- this tree's `segcore features`, `train --set kmeans.engine=spark --set kmeans.k=5` and `score`,
  with a fresh MLflow store;
- with --before COMMIT, the same three commands of that commit (checked out in a `git worktree`).

It prints a table per N: wall time and peak resident memory of each command (the whole process
tree: Python driver, Spark's JVM, Python workers), each sub-step segcore logs ("<stage>: <what>
done in X s"), the feature job against the reference, and the whole chain.

    scripts/bench_chain.py --customers 200000 1000000 [--before COMMIT]

Run it on a quiet machine: every command starts Spark (local[*]).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
# segcore's step lines ("<stage>: <what> done in X s") and Spark stage lines ("<stage>: spark stage
# N: <what> in X s (Y s of tasks)").
STEP = re.compile(
    r"INFO segcore: (?P<stage>[a-z]+): (?P<what>spark stage \d+: .*?|.*?)(?: done)? in "
    r"(?P<seconds>[\d.]+) s(?: \(|,|$)",
    re.MULTILINE,
)
CHAIN = (
    ("features", ()),
    ("train", ("--set", "kmeans.engine=spark", "--set", "kmeans.k=5")),
    ("score", ()),
)
SAMPLE_SECONDS = 0.2


@dataclass
class Measured:
    """One command: wall seconds, peak resident bytes of its process tree, its logged steps."""

    wall: float
    peak: int
    steps: list[tuple[str, float]] = field(default_factory=list)


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # ended between listing and reading
            total += member.memory_info().rss
    return total


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> Measured:
    """Run ``command``; its wall time and the peak of its process tree's resident memory."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True
        )
        watched, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, _tree_rss(watched))
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - started
        errors.seek(0)
        log = errors.read()
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} failed (exit {child.returncode}):\n{log[-3000:]}")
    steps = [(f"{m['stage']}: {m['what']}", float(m["seconds"])) for m in STEP.finditer(log)]
    return Measured(wall, peak, steps)


def reference_sql(as_of: str) -> str:
    """The feature aggregates as one hand-written Spark SQL query over views customers, orders and
    events (the default config's categories, channels, devices and OS)."""
    from segcore.config import Config

    features = Config().features

    def shares(column: str, values: list[str]) -> str:
        return ", ".join(f"avg(CAST({column} = '{v}' AS DOUBLE)) AS {column}_{v}_share" for v in values)

    return f"""
    WITH o AS (SELECT * FROM orders WHERE order_ts < DATE'{as_of}'),
    gaps AS (
      SELECT customer_id, (unix_timestamp(order_ts)
        - unix_timestamp(lag(order_ts) OVER (PARTITION BY customer_id ORDER BY order_ts))) / 86400 AS gap
      FROM o WHERE amount >= 0),
    intervals AS (
      SELECT customer_id, coalesce(stddev_pop(gap) / avg(gap), 0) AS order_interval_cv
      FROM gaps GROUP BY customer_id),
    rfm AS (
      SELECT customer_id,
        datediff(DATE'{as_of}', max(to_date(order_ts))) AS recency_days,
        count(DISTINCT order_id) AS frequency, sum(amount) AS monetary_total,
        sum(amount) / count(DISTINCT order_id) AS monetary_mean,
        {shares("category", features.categories)}, {shares("channel", features.channels)},
        avg(CAST(discount > 0 AS DOUBLE)) AS discount_rate,
        avg(CAST(returned OR amount < 0 AS DOUBLE)) AS return_rate
      FROM o GROUP BY customer_id),
    e AS (
      SELECT customer_id,
        count(*) / count(DISTINCT date_trunc('month', event_ts)) AS events_per_active_month,
        count(DISTINCT session_id) / count(DISTINCT date_trunc('month', event_ts))
          AS sessions_per_active_month,
        {shares("device", features.devices)}, {shares("os", features.os)}
      FROM events WHERE event_ts < DATE'{as_of}' GROUP BY customer_id)
    SELECT c.customer_id, datediff(DATE'{as_of}', to_date(c.signup_date)) AS tenure_days,
      year(DATE'{as_of}') - c.birth_year AS age, c.income_band, c.region,
      rfm.* EXCEPT (customer_id), intervals.order_interval_cv, e.* EXCEPT (customer_id)
    FROM customers c LEFT JOIN rfm USING (customer_id) LEFT JOIN intervals USING (customer_id)
      LEFT JOIN e USING (customer_id)
    WHERE c.signup_date < DATE'{as_of}'
    """


def reference_job(lake: Path, out: Path, as_of: str) -> None:
    """Run :func:`reference_sql` on the lake and write the result (this process, its own Spark)."""
    from segcore.runtime.spark import get_spark

    spark = get_spark("bench-reference", False)
    spark.sparkContext.setLogLevel("ERROR")
    for table in ("customers", "orders", "events"):
        spark.read.parquet(str(lake / table)).createOrReplaceTempView(table)
    spark.sql(reference_sql(as_of)).write.mode("overwrite").parquet(str(out))


SEGCORE = [sys.executable, "-m", "segcore.cli.commands"]


def run_chain(tree: Path, workdir: Path, lake: Path, env: dict[str, str]) -> dict[str, Measured]:
    """features, train and score of ``tree`` in a fresh ``workdir`` (its lake a link to ``lake``)."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "lake").symlink_to(lake)
    env = {**env, "PYTHONPATH": str(tree)}  # Spark's Python workers import this tree too
    chain = {}
    for command, extra in CHAIN:
        measured = measure([*SEGCORE, command, "--set", f"workdir={workdir}", *extra], workdir, env)
        measured.steps = [(what.replace(str(workdir), "<workdir>"), s) for what, s in measured.steps]
        chain[command] = measured
    return chain


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _gb(value: int) -> str:
    return f"{value / 2**30:.2f}"


def print_table(customers: int, reference: Measured, chains: dict[str, dict[str, Measured]]) -> None:
    names = list(chains)
    print(
        f"\n{customers:,} customers: wall s and peak GB (process tree) of each command, sub-steps as logged"
    )
    print(" | ".join(["step", *[f"{n} s" for n in names], *[f"{n} peak GB" for n in names]]))
    print(" | ".join("---" for _ in range(1 + 2 * len(names))))
    print(
        " | ".join(
            [
                "reference Spark SQL job",
                *[f"{reference.wall:.1f}"] * len(names),
                *[_gb(reference.peak)] * len(names),
            ]
        )
    )
    for command, _ in CHAIN:
        runs = [chains[n][command] for n in names]
        print(" | ".join([f"**{command}**", *[f"{r.wall:.1f}" for r in runs], *[_gb(r.peak) for r in runs]]))
        for what in dict.fromkeys(what for r in runs for what, _ in r.steps):
            cells = [next((f"{seconds:.1f}" for step, seconds in r.steps if step == what), "") for r in runs]
            print(" | ".join([f"  {what}", *cells, *[""] * len(names)]))
    totals = {n: sum(m.wall for m in chains[n].values()) for n in names}
    print(
        " | ".join(
            [
                "**whole chain**",
                *[f"{totals[n]:.1f}" for n in names],
                *[_gb(max(m.peak for m in chains[n].values())) for n in names],
            ]
        )
    )
    for n in names:
        print(
            f"{n}: reference / features = {reference.wall / chains[n]['features'].wall:.2f}x; "
            f"whole chain {totals[n]:.1f} s"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[200_000])
    parser.add_argument("--before", help="a commit to run beside this tree")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "segcore-bench-chain")
    parser.add_argument("--reference-job", nargs=3, metavar=("LAKE", "OUT", "AS_OF"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PYSPARK_PYTHON": sys.executable}
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.reference_job:
        lake, out, as_of = args.reference_job
        reference_job(Path(lake), Path(out), as_of)
        return 0
    from segcore.config import Config

    as_of = str(Config().as_of)
    trees = {"after": ROOT}
    scratch = Path(tempfile.mkdtemp(prefix="segcore-bench-trees-"))
    try:
        if args.before:
            trees = {"before": scratch / "before", **trees}
            _git("worktree", "add", "--detach", str(trees["before"]), args.before)
        for customers in args.customers:
            base = args.workdir.resolve() / str(customers)
            lake = base / "lake"
            if not lake.exists():
                generated = measure(
                    [
                        *SEGCORE,
                        "generate",
                        "--out",
                        str(lake),
                        "--customers",
                        str(customers),
                        "--seed",
                        str(args.seed),
                    ],
                    ROOT,
                    env,
                )
                print(
                    f"generate {customers:,} customers: {generated.wall:.1f} s, peak {_gb(generated.peak)} GB"
                )
            reference = measure(
                [sys.executable, __file__, "--reference-job", str(lake), str(base / "reference"), as_of],
                ROOT,
                env,
            )
            chains = {name: run_chain(tree, base / name, lake, env) for name, tree in trees.items()}
            print_table(customers, reference, chains)
    finally:
        if args.before:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(trees["before"])], check=False
            )
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
