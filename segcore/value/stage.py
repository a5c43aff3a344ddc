"""Training the customer value model inside ``segcore train``: fit on the feature table, backtest
on the lake's orders, record both in a child run and register the model as ``value.registered_model``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from segcore.config import Config
from segcore.errors import Alert, TrainingError
from segcore.report.plots import value_calibration_plot
from segcore.runtime.logs import step
from segcore.tracking.lifecycle import TrackedRun, tracked_run
from segcore.tracking.registry import RegisteredModel, log_value_model, register
from segcore.tracking.store import Tracking
from segcore.value.backtest import Backtest, run_backtest, stored_or_computed_inputs
from segcore.value.fit import ValueFit, fit_value_model
from segcore.value.inputs import INPUT_COLUMNS

# Tag of a segment model's training run: the value model version registered beside it.
VALUE_VERSION_TAG = "value_model_version"


@dataclass(frozen=True)
class ValueResult:
    fit: ValueFit
    backtest: Backtest | None
    model: RegisteredModel


def value_tracking(tracking: Tracking, config: Config) -> Tracking:
    """The store opened for the value model (``value.registered_model``)."""
    return dataclasses.replace(tracking, model_name=config.value.registered_model)


def train_value(
    spark: SparkSession,
    config: Config,
    tracking: Tracking,
    features: tuple[DataFrame, str],
    lineage: dict[str, str],
    version_tags: dict[str, str],
) -> ValueResult:
    """Fit on ``features`` (the feature table and its partition's folder), backtest, record and
    register the value model in a child run of the active train run, tagged with ``lineage``; its
    version with ``version_tags``."""
    frame, folder = features
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise TrainingError(
            f"the value model needs column(s) {missing} of table 'features', built by feature group 'rfm': "
            "add 'rfm' to features.groups and rerun `segcore features`, or set value.enabled: false"
        )
    with tracked_run(tracking, f"value-{config.as_of}", nested=True) as run:
        run.set_tags(lineage)
        with step("value", "fit BG/NBD and Gamma-Gamma") as figures:
            fit = fit_value_model(frame, config)
            figures["customers"] = fit.bgnbd.customers
        backtest = None
        if config.value.backtest:
            with step("value", "backtest on the last horizon"):
                backtest = run_backtest(config, stored_or_computed_inputs(spark, config, folder))
        _record(run, config, fit, backtest)
        if backtest is not None and backtest.worse_than_naive and config.value.gate:
            raise Alert(f"value model: {_verdict(backtest)} (value.gate is on)")
        model_uri = log_value_model(fit.model)
        registered = register(
            value_tracking(tracking, config), model_uri, version_tags, run, pause_at="register-value"
        )
    return ValueResult(fit, backtest, registered)


def _verdict(backtest: Backtest) -> str:
    m = backtest.metrics
    worse = "worse" if backtest.worse_than_naive else "no worse"
    return (
        f"backtest {backtest.cutoff}: {worse} than the naive baseline (MAE {m['model_mae']:.3f} vs "
        f"{m['naive_mae']:.3f}, churn AUC {m['model_churn_auc']:.3f} vs {m['naive_churn_auc']:.3f})"
    )


def _record(run: TrackedRun, config: Config, fit: ValueFit, backtest: Backtest | None) -> None:
    run.log_params({f"value.{k}": v for k, v in config.value.model_dump().items()})
    run.log_metrics(fit.metrics())
    run.log_text(fit.model.to_json(), "value/value_model.json")
    if backtest is None:
        return
    run.log_metrics({f"backtest_{k}": v for k, v in backtest.metrics.items()})
    run.log_metrics({f"backtest_{k}": v for k, v in backtest.fit.metrics().items() if k.startswith("bgnbd_")})
    run.set_tags(
        {"backtest.cutoff": str(backtest.cutoff), "backtest.worse_than_naive": str(backtest.worse_than_naive)}
    )
    run.log_table(backtest.deciles, "value/backtest_deciles.csv")
    run.log_bytes(
        value_calibration_plot(backtest.deciles, str(backtest.cutoff), str(config.as_of)),
        "value/backtest_calibration.png",
    )
    verdict = _verdict(backtest)
    if backtest.worse_than_naive:
        run.set_tags({"warning.value_backtest": verdict})
