"""The ``segcore`` command: one subcommand per stage, plus ``demo`` for the whole job."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence

from segcore.config import Config, load_config
from segcore.errors import SegcoreError
from segcore.runtime.logs import log, quiet_spark, setup_logging, step
from segcore.runtime.stopping import raise_on_signals, stopped_by

DEFAULT_LAKE_END = dt.date(2026, 6, 30)
DEMO_K_RANGE = "kmeans.k={min: 3, max: 8}"
# In the demo's lake this share of the loyal customers lapse in the last month (segcore.sample.lake).
DEMO_LAPSING = 0.2


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config file (default: the embedded defaults)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set kmeans.k=6 (repeatable)",
    )
    parser.add_argument("--verbose", action="store_true", help="keep Spark's and MLflow's warnings")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segcore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write a sample lake with planted segments")
    generate.add_argument("--out", required=True, help="folder of the lake")
    generate.add_argument("--customers", type=int, default=50_000)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--end", type=_date, default=DEFAULT_LAKE_END, help="last day of data")
    generate.add_argument(
        "--lapsing",
        type=float,
        default=0.0,
        help="sample shape: share of the high-value loyal customers with no activity in the last month",
    )
    generate.add_argument(
        "--shape",
        choices=["sample", "transactions", "normalized"],
        default="sample",
        help="sample: customers, orders, events with planted segments; transactions: one invoice-line "
        "table (conf/examples/transactions.yaml); normalized: order headers, lines, customer keys, "
        "products (conf/examples/normalized.yaml)",
    )

    for name, text in (
        ("features", "build the feature table for as_of (Spark)"),
        ("train", "train segments and register a model version (MLflow)"),
        ("score", "assign every customer to a segment (Spark)"),
    ):
        stage = commands.add_parser(name, help=text)
        _add_config_arguments(stage)
        if name == "score":
            stage.add_argument("--model-version", help="registered version (default: the champion)")
        if name == "train":
            stage.add_argument(
                "--force",
                action="store_true",
                help="train even if this partition and config already have a version",
            )

    promote = commands.add_parser(
        "promote", help="make a version the champion if it passes the gate against the champion"
    )
    promote.add_argument("--version", help="registered version (default: the challenger, else the latest)")
    promote.add_argument("--force", action="store_true", help="skip the gate (recorded on the version)")
    _add_config_arguments(promote)

    runs = commands.add_parser("runs", help="the experiment's training runs, or two of them compared")
    runs.add_argument("--as-of", type=_date, help="only runs trained on this feature partition")
    runs.add_argument("--engine", help="only runs of this k-means engine")
    runs.add_argument(
        "--compare", nargs=2, metavar="RUN", help="two run ids: params and metrics side by side"
    )
    _add_config_arguments(runs)

    bench = commands.add_parser(
        "bench", help="k-means benchmark of every engine (segcore bench --help)", add_help=False
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)

    report = commands.add_parser(
        "report", help="a training run's HTML report from MLflow, with the segments over time"
    )
    report.add_argument("--run-id", help="training run (default: the champion's)")
    report.add_argument("--out", help="HTML file to write (default: segments_report_<run>.html)")
    _add_config_arguments(report)

    demo = commands.add_parser("demo", help="generate a sample lake and run every stage on it")
    demo.add_argument("--workdir", default="segcore-demo")
    demo.add_argument("--customers", type=int, default=50_000)
    demo.add_argument("--seed", type=int, default=7)
    _add_config_arguments(demo)

    drift = commands.add_parser(
        "drift", help="migration and drift between the scorings of two dates (exit 4 above drift.*)"
    )
    for flag, dest, which in (("--from", "start", "earlier"), ("--to", "end", "later")):
        drift.add_argument(flag, dest=dest, type=_date, required=True, metavar="DATE", help=f"{which} as_of")
    _add_config_arguments(drift)
    return parser


def run_generate(
    out: str, customers: int, seed: int, end: dt.date, shape: str = "sample", lapsing: float = 0.0
) -> None:
    from segcore.sample.lake import generate_lake
    from segcore.sample.shapes import SHAPES

    if customers < 1:
        raise SegcoreError(f"--customers must be at least 1, got {customers}")
    if not 0 <= lapsing <= 1:
        raise SegcoreError(f"--lapsing must be a share between 0 and 1, got {lapsing}")
    if lapsing and shape != "sample":
        raise SegcoreError(f"--lapsing applies to --shape sample only, not {shape}")
    if shape != "sample":
        shaped = SHAPES[shape](out, customers, seed, end)
        tables = ", ".join(f"{table} {rows:,} rows" for table, rows in shaped.rows.items())
        print(f"lake {shaped.path} ({shape}): {tables}")
        return
    summary = generate_lake(out, customers, seed, end, lapsing)
    print(
        f"lake {summary.path}: {summary.customers:,} customers, {summary.orders:,} orders, "
        f"{summary.events:,} events"
    )


def _spark(app_name: str, verbose: bool):
    from segcore.runtime.spark import get_spark

    spark = get_spark(app_name, verbose)
    quiet_spark(spark, verbose)
    context = spark.sparkContext
    log.info("spark application %s on %s", context.applicationId, context.master)
    return spark


def run_features(config: Config, verbose: bool = False) -> None:
    from segcore.features.stage import run_features as build

    spark = _spark("segcore-features", verbose)
    with step("features", f"build and write as_of={config.as_of}") as figures:
        result = build(spark, config)
        figures.update(customers=result.customers, **{f"rows_{t}": n for t, n in result.input_rows.items()})
    print(f"features {result.path}: {result.customers:,} customers, {len(result.feature_columns)} features")


def run_train(config: Config, verbose: bool = False, force: bool = False):
    from segcore.tracking.store import check_tracking
    from segcore.train.stage import train, unchanged_version

    check_tracking(config)
    spark = _spark("segcore-train", verbose)
    existing = None if force else unchanged_version(spark, config)
    if existing is not None:
        print(
            f"unchanged: version {existing.version} of {existing.name} was trained on this feature "
            f"partition with this config; not registering a duplicate (--force trains again)"
        )
        return None
    result = train(spark, config)
    role = " (champion)" if result.model.is_champion else ""
    print(
        f"run {result.run_id}: k={result.k}, registered {result.model.name} "
        f"version {result.model.version} as challenger{role}"
    )
    print(", ".join(f"{name}={value:.4g}" for name, value in result.metrics.items()))
    print(f"\nsegments as of {config.as_of}: k={result.k} ({result.k_reason})")
    print(result.summary.to_string(index=False))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return result


def run_report(config: Config, run_id: str | None, out: str | None, verbose: bool = False) -> None:
    from mlflow.exceptions import MlflowException

    from segcore.report.history import segment_history
    from segcore.report.html import history_section, report_from_run
    from segcore.tracking.store import check_tracking, resolve_model, use_tracking

    check_tracking(config)
    client = use_tracking(config)
    if run_id is None:
        _, version = resolve_model(config)
        run_id = client.get_model_version(config.mlflow.registered_model, version).run_id
    try:
        client.get_run(run_id)  # an unknown run is found before Spark starts
        spark = _spark("segcore-report", verbose)
        with step("report", "read the segments over time") as figures:
            history = segment_history(spark, config)
            figures["scorings"] = history.segments.as_of.nunique()
        path = report_from_run(
            run_id, out, history_section(history, config.path(config.score.profiles_output))
        )
    except MlflowException as exc:
        raise SegcoreError(
            f"run {run_id} has no report inputs in {config.tracking_uri()}: {exc.message}"
        ) from None
    print(f"report {path}")


def run_score(config: Config, model_version: str | None = None, verbose: bool = False) -> None:
    from segcore.score.stage import score
    from segcore.tracking.store import check_tracking

    check_tracking(config)
    result = score(_spark("segcore-score", verbose), config, model_version)
    print(f"segments {result.path}: {result.customers:,} customers scored with {result.model_uri}")


def month_before(day: dt.date) -> dt.date:
    """The same day a month earlier; a month's last day gives the previous month's last day."""
    first = day.replace(day=1)
    previous_end = first - dt.timedelta(days=1)
    if (day + dt.timedelta(days=1)).day == 1:
        return previous_end
    return previous_end.replace(day=min(day.day, previous_end.day))


def run_promote(config: Config, version: str | None, force: bool) -> None:
    from segcore.promote.stage import PromotionRefused, promote
    from segcore.tracking.store import check_tracking

    check_tracking(config)
    try:
        result = promote(config, version, force)
    except PromotionRefused as refused:
        print(refused.promotion.table().to_string(index=False))
        raise
    if result.gate is not None:
        print(result.table().to_string(index=False))
    print(
        {
            "promoted": f"promoted: {result.name} version {result.version} is champion "
            f"(was {result.champion})",
            "forced": f"promoted without the gate (--force): {result.name} version {result.version} is "
            f"champion (was {result.champion})",
            "first champion": f"no champion yet: {result.name} version {result.version} is champion "
            "(no gate to pass)",
            "already champion": f"{result.name} version {result.version} is already the champion",
        }[result.decision]
    )


def run_runs(config: Config, as_of: dt.date | None, engine: str | None, compare: list[str] | None) -> None:
    from segcore.tracking.run_table import compare_runs, training_runs
    from segcore.tracking.store import check_tracking

    check_tracking(config)
    if compare:
        table = compare_runs(config, *compare)
        print(f"A = run {compare[0]}, B = run {compare[1]}")
        print(table.to_string(index=False, max_colwidth=48))
        return
    table = training_runs(config, as_of, engine)
    if table.empty:
        where = "".join(
            f" with {key} {value}" for key, value in (("as_of", as_of), ("engine", engine)) if value
        )
        print(
            f"no training runs{where} in experiment '{config.mlflow.experiment}' at {config.tracking_uri()}"
        )
        return
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def run_demo(args: argparse.Namespace) -> None:
    """Two months of the sample lake (some loyal customers lapse in the second): features, train
    and score the first; features and score the second with the first's model; drift between them;
    then train on the second month and try to promote that version through the gate."""
    from segcore.errors import Alert

    workdir = os.path.abspath(args.workdir)
    # The demo chooses k from a range; --set kmeans.k=... after it wins.
    config = load_config(args.config, [f"workdir={workdir}", DEMO_K_RANGE, *args.overrides])
    earlier = config.model_copy(update={"as_of": month_before(config.as_of)})
    run_generate(
        config.path(os.path.dirname(config.lake.orders.path or "lake/orders") or "lake"),
        args.customers,
        args.seed,
        config.as_of,
        lapsing=DEMO_LAPSING,
    )
    run_features(earlier, args.verbose)
    first = run_train(earlier, args.verbose, force=True)
    run_score(earlier, first.model.version, args.verbose)
    print()
    run_features(config, args.verbose)
    run_score(config, first.model.version, args.verbose)
    print()
    try:
        run_drift(config, earlier.as_of, config.as_of, args.verbose)
    except Alert as alert:
        print(f"drift alert (`segcore drift` exits with code 4 here): {alert}")
    print()
    result = run_train(config, args.verbose, force=True)
    print(f"\npromotion of version {result.model.version} (`segcore promote`):")
    try:
        run_promote(config, result.model.version, force=False)
    except Alert as refused:
        print(f"refused (`segcore promote` exits with code 4 here): {refused}")
    print()
    run_report(config, result.run_id, os.path.join(workdir, "segments_report.html"), args.verbose)


def run_drift(config: Config, start: dt.date, end: dt.date, verbose: bool = False) -> None:
    """Compare two scorings, print the migration table; raise :class:`Alert` (exit 4) above a
    threshold, once the partition and the MLflow run are written."""
    from segcore.drift.stage import check_dates, compare_scorings, describe
    from segcore.errors import Alert
    from segcore.tracking.store import check_tracking

    check_dates(start, end)
    check_tracking(config)
    result = compare_scorings(_spark("segcore-drift", verbose), config, start, end)
    print(describe(result))
    if result.alerts:
        raise Alert(
            f"drift {start} -> {end} above threshold (run {result.run_id} tagged 'alert'):\n  "
            + "\n  ".join(result.alerts)
        )
    print("\nno drift threshold crossed (drift.max_psi, drift.max_segment_psi, drift.max_share_shift)")


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from segcore.tools.bench import main as bench

        return bench(argv[1:])
    args = build_parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    raise_on_signals()
    try:
        if args.command == "generate":
            run_generate(args.out, args.customers, args.seed, args.end, args.shape, args.lapsing)
        elif args.command == "demo":
            run_demo(args)
        elif args.command == "drift":
            run_drift(load_config(args.config, args.overrides), args.start, args.end, args.verbose)
        else:
            config = load_config(args.config, args.overrides)
            if args.command == "features":
                run_features(config, args.verbose)
            elif args.command == "train":
                run_train(config, args.verbose, args.force)
            elif args.command == "runs":
                run_runs(config, args.as_of, args.engine, args.compare)
            elif args.command == "promote":
                run_promote(config, args.version, args.force)
            elif args.command == "report":
                run_report(config, args.run_id, args.out, args.verbose)
            else:
                run_score(config, args.model_version, args.verbose)
    except SegcoreError as exc:
        print(f"segcore {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BaseException as exc:
        stopped = stopped_by(exc)
        if stopped is None:
            raise
        print(f"segcore {args.command}: {stopped}", file=sys.stderr)
        return stopped.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
