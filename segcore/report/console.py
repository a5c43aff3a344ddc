"""Tables printed on the console: the segments of a training, their churn risk and value, the
migration between scorings, audience exports and campaign lift."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from segcore.config import ValueConfig
from segcore.drift.figures import DEPARTED, IDS_NOTE, NEW

if TYPE_CHECKING:
    from segcore.audiences.stage import AudienceExport
    from segcore.drift.stage import DriftResult
    from segcore.lift.stage import LiftResult
    from segcore.value.stage import ValueResult


def summary_table(profile: pd.DataFrame, names: dict[int, str]) -> pd.DataFrame:
    """The table the demo prints: name, size, share, average spend, recency."""
    return pd.DataFrame(
        {
            "segment_id": profile["segment_id"],
            "segment_name": profile["segment_id"].map(names),
            "customers": profile["customers"],
            "share": profile["share"].round(3),
            "avg_spend": profile.get("mean_monetary_total", pd.Series(np.nan, index=profile.index)).round(2),
            "avg_recency_days": profile.get(
                "mean_recency_days", pd.Series(np.nan, index=profile.index)
            ).round(1),
        }
    ).sort_values("customers", ascending=False, ignore_index=True)


def value_table(profile: pd.DataFrame, settings: ValueConfig) -> pd.DataFrame:
    """Per segment: customers, the share at high churn risk, expected purchases and value per
    customer over the horizon, the segment's expected value."""
    return pd.DataFrame(
        {
            "segment_id": profile["segment_id"],
            "segment_name": profile["segment_name"],
            "customers": profile["customers"],
            f"{settings.high_risk_band()}_risk_share": profile["high_risk_share"].round(3),
            "mean_churn_risk": profile["mean_churn_risk"].round(3),
            "expected_purchases": profile["mean_expected_purchases"].round(2),
            "expected_value": profile["mean_expected_value"].round(2),
            "segment_value": profile["expected_value"].round(0),
        }
    ).sort_values("customers", ascending=False, ignore_index=True)


def kpi_table(kpis: pd.DataFrame) -> pd.DataFrame:
    """A scoring's KPIs per segment, rounded for reading: shares to 3 places, money to cents."""
    shares = ("retention", "churn_rate", "new_conversion", "revenue_growth")
    return kpis.round({**dict.fromkeys(shares, 3), "revenue": 2, "average_order_value": 2, "orders": 0})


def value_line(value: ValueResult) -> str:
    """The value model's training in a few lines: its version, parameters and the backtest."""
    fit = value.fit
    bg, gg = fit.model.bgnbd, fit.model.gamma_gamma
    lines = [
        f"customer value: registered {value.model.name} version {value.model.version}; BG/NBD "
        f"r={bg.r:.4g} alpha={bg.alpha:.4g} a={bg.a:.4g} b={bg.b:.4g} (per {fit.model.time_unit}, "
        f"{fit.bgnbd.customers:,} customers), Gamma-Gamma p={gg.p:.4g} q={gg.q:.4g} gamma={gg.gamma:.4g} "
        f"({fit.gamma_gamma.customers:,} repeat customers)"
    ]
    if value.backtest is not None:
        m = value.backtest.metrics
        lines.append(
            f"backtest from {value.backtest.cutoff}: purchases predicted {m['model_purchases']:,.0f} "
            f"(naive {m['naive_purchases']:,.0f}) vs actual {m['actual_purchases']:,.0f}; MAE per customer "
            f"{m['model_mae']:.3f} (naive {m['naive_mae']:.3f}); churn AUC {m['model_churn_auc']:.3f} "
            f"(naive {m['naive_churn_auc']:.3f})"
        )
        if value.backtest.worse_than_naive:
            lines.append("warning: the value model did worse than the naive baseline in the backtest")
    return "\n".join(lines)


def _label(segment: int, name: str | None) -> str:
    return name if segment == NEW else f"{segment} {name or ''}".strip()


def migration_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """The matrix as the console shows it: a row per earlier segment (and new customers), a column
    per later segment id (and departed), each cell the percentage of the row's customers."""
    rows = matrix.assign(
        row=[_label(s, n) for s, n in zip(matrix.from_segment, matrix.from_name, strict=True)],
        column=["departed" if s == DEPARTED else str(s) for s in matrix.to_segment],
    )
    order = sorted(matrix.from_segment.unique(), key=lambda s: (s == NEW, s))
    labels = rows.drop_duplicates("from_segment").set_index("from_segment")["row"]
    columns = [str(s) for s in sorted(matrix.to_segment.unique()) if s != DEPARTED]
    columns += ["departed"] if (matrix.to_segment == DEPARTED).any() else []
    table = rows.pivot_table(index="row", columns="column", values="share", aggfunc="sum", fill_value=0.0)
    table = (100 * table).round(1).reindex(index=[labels[s] for s in order], columns=columns, fill_value=0.0)
    table["customers"] = rows.groupby("row")["customers"].sum().reindex(table.index)
    table.index.name, table.columns.name = None, "from \\ to"
    return table


def drift_report(result: DriftResult) -> str:
    """The console report: versions, migration table, segment shares, the largest feature PSIs."""
    start, end = result.start, result.end
    versions = result.versions
    lines = [f"drift {start} -> {end}: {result.path} (MLflow run {result.run_id})"]
    if versions[0] == versions[1]:
        lines.append(f"both scorings used model version {versions[0]}")
    else:
        lines.append(f"scorings used model versions {versions[0]} and {versions[1]}: {IDS_NOTE}")
    lines += ["", "migration (each row's customers, % going to each later segment id):"]
    lines.append(migration_table(result.matrix).to_string())
    segments = result.segments.assign(
        share_from=(100 * result.segments.share_from).round(1),
        share_to=(100 * result.segments.share_to).round(1),
        share_shift_pp=(100 * result.segments.share_shift).round(1),
        revenue_shift_pp=(100 * result.segments.revenue_share_shift).round(1),
        high_risk_shift_pp=(100 * result.segments.risk_shift).round(1),
        retention_shift_pp=(100 * result.segments.retention_shift).round(1),
    )
    columns = ["segment_id", "segment_name", "share_from", "share_to", "share_shift_pp", "revenue_shift_pp"]
    if result.segments.risk_shift.notna().any():
        columns.append("high_risk_shift_pp")
    if result.segments.retention_shift.notna().any():
        columns.append("retention_shift_pp")
    lines += ["", f"segment shares (%), PSI of the shares {result.segment_psi:.3f}:"]
    lines.append(segments[columns].to_string(index=False))
    top = result.features.head(5)[["feature", "psi", "mean_from", "mean_to"]]
    lines += ["", f"largest feature PSI (all {len(result.features)} in _features.csv):"]
    lines.append(top.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if result.centres is not None:
        centres = result.centres[["segment_id", "name_from", "name_to", "centre_distance"]]
        lines += ["", "centre change between the versions (distance in the later model's scaled space):"]
        lines.append(centres.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return "\n".join(lines)


def audiences_table(exports: list[AudienceExport]) -> pd.DataFrame:
    """Per exported audience: its counts and the export's previous date."""
    return pd.DataFrame(
        [{"audience": e.name, **e.counts(), "compared_with": e.previous or "-"} for e in exports]
    )


def lift_report(result: LiftResult) -> str:
    """The lift table: per segment and metric, control and treatment means and the lift with its
    interval (absolute and relative) and p-value."""
    from segcore.lift.statistics import ALL_SEGMENTS  # loaded with the result already

    table = result.table
    shown = pd.DataFrame(
        {
            "segment": table["segment_name"].where(
                table["segment_id"] == ALL_SEGMENTS, table["segment_id"] + " " + table["segment_name"]
            ),
            "metric": table["metric"],
            "n_treat": table["treatment_customers"],
            "n_ctrl": table["control_customers"],
            "treatment": table["treatment"].round(4),
            "control": table["control"].round(4),
            "lift": table["lift"].round(4),
            "interval": [
                _interval(low, high, 4)
                for low, high in zip(table["lift_low"], table["lift_high"], strict=True)
            ],
            "relative": table["relative_lift"].map(lambda v: "-" if np.isnan(v) else f"{v:+.1%}"),
            "relative_interval": [
                _interval(100 * low, 100 * high, 1, "%")
                for low, high in zip(table["relative_low"], table["relative_high"], strict=True)
            ],
            "p_value": table["p_value"].map(lambda v: "-" if np.isnan(v) else f"{v:.3g}"),
        }
    )
    days = (result.end - result.start).days
    return (
        f"lift of audience '{result.audience}' over {days} days from {result.start} "
        f"(groups of {result.export}; run {result.run_id}):\n{shown.to_string(index=False)}\n"
        f"intervals: {result.confidence:.0%} (campaigns.confidence); '-': a group below "
        "campaigns.min_group_customers, or a control mean of 0"
    )


def _interval(low: float, high: float, digits: int, unit: str = "") -> str:
    if np.isnan(low):
        return "-"
    return f"[{low:.{digits}f}{unit}, {high:.{digits}f}{unit}]"
