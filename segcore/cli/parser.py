"""The ``segcore`` command line: one subcommand per stage, plus ``demo`` for the whole job."""

from __future__ import annotations

import argparse
import datetime as dt

DEFAULT_LAKE_END = dt.date(2026, 6, 30)


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
        "--lapse-from",
        type=_date,
        metavar="DATE",
        help="with --lapsing: the lapsing customers have no activity from DATE on (default: the last month)",
    )
    generate.add_argument(
        "--shape",
        choices=["sample", "transactions", "normalized"],
        default="sample",
        help="sample: customers, orders, events with planted segments; transactions: one invoice-line "
        "table (conf/examples/transactions.yaml); normalized: order headers, lines, customer keys, "
        "products (conf/examples/normalized.yaml)",
    )
    generate.add_argument(
        "--extend-days",
        type=int,
        metavar="N",
        help="extend the sample lake at --out by N days after its last order instead of writing a new one",
    )
    generate.add_argument(
        "--campaign",
        metavar="AUDIENCE_DIR",
        help="with --extend-days: an audience export (or its treatment.csv) whose customers order more",
    )
    generate.add_argument(
        "--effect",
        type=float,
        default=0.0,
        help="with --campaign: the treatment list's order rate is (1 + effect) times its own",
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

    audiences = commands.add_parser(
        "audiences", help="export the configured audiences of the as_of scoring for a CRM (Spark)"
    )
    audiences.add_argument(
        "--name", dest="names", action="append", metavar="AUDIENCE", help="only this audience (repeatable)"
    )
    _add_config_arguments(audiences)

    lift = commands.add_parser(
        "lift", help="an audience's treatment against its control group after a campaign (Spark)"
    )
    lift.add_argument(
        "--audience", required=True, help="a configured audience, exported on or before --start"
    )
    lift.add_argument("--start", type=_date, required=True, metavar="DATE", help="the campaign's first day")
    lift.add_argument("--days", type=int, required=True, metavar="N", help="days measured from --start")
    _add_config_arguments(lift)

    drift = commands.add_parser(
        "drift", help="migration and drift between the scorings of two dates (exit 4 above drift.*)"
    )
    for flag, dest, which in (("--from", "start", "earlier"), ("--to", "end", "later")):
        drift.add_argument(flag, dest=dest, type=_date, required=True, metavar="DATE", help=f"{which} as_of")
    _add_config_arguments(drift)
    return parser
