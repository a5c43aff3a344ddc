"""The ``segcore`` command: one thin function per subcommand over the stage functions, and
``main``, which maps their errors to exit codes (0 ok, 2 input, 3 environment, 4 alert)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import select
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from segcore.cli.parser import build_parser
from segcore.config import Config, load_config
from segcore.errors import EnvironmentProblem, SegcoreError
from segcore.runtime.logs import log, quiet_spark, setup_logging, step
from segcore.runtime.stopping import exit_on_signals, raise_on_signals, stopped_by


@contextmanager
def _refused_paths(what_to_do: str) -> Iterator[None]:
    """A path the file system refuses (not a folder, no permission, a full disk) is an environment
    error that names it and ``what_to_do``, not a traceback."""
    try:
        yield
    except OSError as exc:
        path = f": {exc.filename}" if exc.filename else ""
        raise EnvironmentProblem(f"{exc.strerror or exc}{path}; {what_to_do}") from None


def _writable(lake: str) -> str:
    """What to do about a lake folder the file system refuses; ``lake`` names where the user gave it."""
    return f"give {lake} a folder that can be created and written, with room for the lake"


def run_extend(
    out: str, days: int, seed: int, campaign: str | None, effect: float, given_as: str | None = None
) -> None:
    """Extend the lake at ``out``; ``given_as`` names where the user gave that folder (default ``--out``)."""
    from segcore.sample.extend import extend_lake

    readable = f", and --campaign {campaign} a treatment list it can read" if campaign else ""
    with _refused_paths(_writable(given_as or f"--out {out}") + readable):
        extension = extend_lake(out, days, seed, campaign, effect)
    treated = f"; {extension.treated:,} treated customers order at {1 + effect:g}x" if campaign else ""
    print(
        f"lake {extension.path}: {extension.start} to {extension.end} added, {extension.orders:,} orders, "
        f"{extension.events:,} events{treated}"
    )


def run_generate(
    out: str,
    customers: int,
    seed: int,
    end: dt.date,
    shape: str = "sample",
    lapsing: float = 0.0,
    lapse_from: dt.date | None = None,
    given_as: str | None = None,
) -> None:
    """Write a lake at ``out``; ``given_as`` names where the user gave that folder (default ``--out``)."""
    from segcore.sample.lake import generate_lake
    from segcore.sample.shapes import SHAPES

    if customers < 1:
        raise SegcoreError(f"--customers must be at least 1, got {customers}")
    if not 0 <= lapsing <= 1:
        raise SegcoreError(f"--lapsing must be a share between 0 and 1, got {lapsing}")
    if lapsing and shape != "sample":
        raise SegcoreError(f"--lapsing applies to --shape sample only, not {shape}")
    if lapse_from is not None and not (lapsing and lapse_from < end):
        raise SegcoreError(f"--lapse-from needs --lapsing and a date before --end {end}, got {lapse_from}")
    refused = _writable(given_as or f"--out {out}")
    if shape != "sample":
        with _refused_paths(refused):
            shaped = SHAPES[shape](out, customers, seed, end)
        tables = ", ".join(f"{table} {rows:,} rows" for table, rows in shaped.rows.items())
        print(f"lake {shaped.path} ({shape}): {tables}")
        return
    with _refused_paths(refused):
        summary = generate_lake(out, customers, seed, end, lapsing, lapse_from=lapse_from)
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


def _check_tracking(config: Config, creates: bool = False) -> None:
    """The tracking store answers (exit 3 otherwise), asked before a stage imports its modules:
    a wrong tracking URI then fails in about 2 s instead of 4."""
    from segcore.tracking.store import check_tracking

    check_tracking(config, creates)


def run_train(config: Config, verbose: bool = False, force: bool = False):
    _check_tracking(config, creates=True)
    from segcore.report.console import value_line
    from segcore.train.stage import train_segments, unchanged_version

    spark = _spark("segcore-train", verbose)
    existing = None if force else unchanged_version(spark, config)
    if existing is not None:
        print(
            f"unchanged: version {existing.version} of {existing.name} was trained on this feature "
            f"partition with this config; not registering a duplicate (--force trains again)"
        )
        return None
    result = train_segments(spark, config)
    role = " and champion (the model had none)" if result.model.is_champion else ""
    print(
        f"run {result.run_id}: k={result.k}, registered {result.model.name} "
        f"version {result.model.version} as challenger{role}"
    )
    print(", ".join(f"{name}={value:.4g}" for name, value in result.metrics.items()))
    if result.value is not None:
        print(value_line(result.value))
    print(f"\nsegments as of {config.as_of}: k={result.k} ({result.k_reason})")
    print(result.summary.to_string(index=False))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return result


def run_report(config: Config, run_id: str | None, out: str | None, verbose: bool = False) -> None:
    _check_tracking(config)
    from segcore.report.stage import build_report
    from segcore.tracking.artifacts import check_run
    from segcore.tracking.registry import resolve_version, version_run_id
    from segcore.tracking.store import open_tracking

    tracking = open_tracking(config)
    if run_id is None:
        version = resolve_version(tracking, config.score)
        run_id = version_run_id(tracking, version)
    check_run(tracking, run_id)  # an unknown run is found before Spark starts
    path = build_report(_spark("segcore-report", verbose), config, tracking, run_id, out)
    print(f"report {path.absolute()}")


def run_score(config: Config, model_version: str | None = None, verbose: bool = False) -> None:
    _check_tracking(config)
    from segcore.report.console import kpi_table, value_table
    from segcore.score.stage import score_segments
    from segcore.tracking.registry import resolve_version
    from segcore.tracking.store import open_tracking

    # A missing model is found before Spark starts; the version found is the one scored.
    version = resolve_version(open_tracking(config), config.score, model_version)
    result = score_segments(_spark("segcore-score", verbose), config, version)
    print(f"segments {result.path}: {result.customers:,} customers scored with {result.model_uri}")
    if result.value_version is not None:
        print(
            f"churn risk and value: {config.value.registered_model} version {result.value_version}, "
            f"next {config.value.horizon_days} days"
        )
        print(value_table(result.profile, config.value).to_string(index=False))
    if result.kpis is not None:
        kpis = config.partition(config.score.kpis_output)
        print(f"KPIs per segment over the 30 days before {config.as_of} ({kpis}):")
        print(kpi_table(result.kpis).to_string(index=False))


def run_promote(config: Config, version: str | None, force: bool) -> None:
    _check_tracking(config)
    from segcore.promote.stage import PromotionRefused, promote_version

    try:
        result = promote_version(config, version, force)
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
    _check_tracking(config)
    from segcore.tracking.run_table import compare_runs, training_runs

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


def run_drift(config: Config, start: dt.date, end: dt.date, verbose: bool = False) -> None:
    """Compare two scorings, print the migration table; raise :class:`Alert` (exit 4) above a
    threshold, once the partition and the MLflow run are written."""
    from segcore.drift.stage import check_dates, compare_scorings
    from segcore.errors import Alert
    from segcore.report.console import drift_report
    from segcore.tracking.store import check_tracking

    check_dates(start, end)
    check_tracking(config, creates=True)
    result = compare_scorings(_spark("segcore-drift", verbose), config, start, end)
    print(drift_report(result))
    if result.alerts:
        raise Alert(
            f"drift {start} -> {end} above threshold (run {result.run_id} tagged 'alert'):\n  "
            + "\n  ".join(result.alerts)
        )
    print(
        "\nno drift threshold crossed (drift.max_psi, max_segment_psi, max_share_shift, max_risk_shift, "
        "max_retention_drop)"
    )


def run_audiences(config: Config, names: list[str] | None, verbose: bool = False) -> None:
    from segcore.audiences.stage import audience_file, chosen_audiences, export_audiences
    from segcore.report.console import audiences_table
    from segcore.tracking.store import check_tracking

    chosen_audiences(config, names)  # a config mistake is reported before Spark starts
    check_tracking(config, creates=True)
    spark = _spark("segcore-audiences", verbose)
    exports, run_id = export_audiences(spark, config, names)
    print(f"audiences as of {config.as_of} (run {run_id}):")
    print(audiences_table(exports).to_string(index=False))
    for export in exports:
        print(f"{export.name}: CRM file {audience_file(spark, export.path)}")


def run_lift(config: Config, audience: str, start: dt.date, days: int, verbose: bool = False) -> None:
    _check_tracking(config, creates=True)
    from segcore.lift.stage import measure_lift
    from segcore.report.console import lift_report

    print(lift_report(measure_lift(_spark("segcore-lift", verbose), config, audience, start, days)))


def _run(args: argparse.Namespace) -> None:
    """Run the subcommand ``args.command``."""
    if args.command == "generate":
        if args.extend_days is not None:
            return run_extend(args.out, args.extend_days, args.seed, args.campaign, args.effect)
        if args.campaign or args.effect:
            raise SegcoreError("--campaign and --effect apply with --extend-days only")
        return run_generate(
            args.out, args.customers, args.seed, args.end, args.shape, args.lapsing, args.lapse_from
        )
    if args.command == "demo":
        from segcore.cli.demo import run_demo

        return run_demo(args)
    config = load_config(args.config, args.overrides)
    commands = {
        "features": lambda: run_features(config, args.verbose),
        "train": lambda: run_train(config, args.verbose, args.force),
        "score": lambda: run_score(config, args.model_version, args.verbose),
        "runs": lambda: run_runs(config, args.as_of, args.engine, args.compare),
        "promote": lambda: run_promote(config, args.version, args.force),
        "report": lambda: run_report(config, args.run_id, args.out, args.verbose),
        "drift": lambda: run_drift(config, args.start, args.end, args.verbose),
        "audiences": lambda: run_audiences(config, args.names, args.verbose),
        "lift": lambda: run_lift(config, args.audience, args.start, args.days, args.verbose),
    }
    commands[args.command]()


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow prints "View run ... at: <server URL>" on stdout as each run ends: amid the results.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from segcore.tools.bench import main as bench

        return bench(argv[1:])
    args = build_parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    raise_on_signals()
    try:
        return _outcome(args)
    finally:
        exit_on_signals()  # the outcome is decided: a late signal ends the process, quietly


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (``segcore runs | head -1``)."""
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLOUT)
    return any(event & select.POLLERR for _, event in poller.poll(0))


def _outcome(args: argparse.Namespace) -> int:
    """Run the command; its exit code, the error or the stop printed on stderr."""
    try:
        _run(args)
        sys.stdout.flush()  # a reader gone is found here, not in the interpreter's exit
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        # As a pipe's writer ends when its reader goes (what was committed stays committed):
        # quietly, with 128 + SIGPIPE, and nothing left to flush into the broken pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except SegcoreError as exc:
        print(f"segcore {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BaseException as exc:
        stopped = stopped_by(exc)
        if stopped is None:
            raise
        if "pyspark" in sys.modules:  # a Spark session may be running
            from segcore.runtime.spark import silence_spark

            silence_spark()
        print(f"segcore {args.command}: {stopped}", file=sys.stderr)
        return stopped.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
