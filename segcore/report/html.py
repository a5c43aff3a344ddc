"""The self-contained HTML report of a training run.

Training draws the plots (:mod:`segcore.report.plots`) and logs them under ``plots/``; the report
embeds those PNGs (base64) and the profile table in one HTML file that opens without network
access. ``segcore report`` rebuilds it from a run's artifacts and adds the segments over time
(:mod:`segcore.report.history`).
"""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING

import pandas as pd

from segcore.report.plots import PLOT_TITLES, history_plot, kpi_plot, migration_plot

if TYPE_CHECKING:
    from segcore.report.history import History
    from segcore.tracking.artifacts import LiftRecord, ValueReportInputs

# The page may show inline (data:) images and its own styles, and load nothing else.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _image(name: str, title: str, data: bytes) -> str:
    return (
        f"<h2>{html.escape(title)}</h2>"
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
    )


def _table(
    frame: pd.DataFrame,
    formats: dict[str, str] | None = None,
    index: bool = False,
    headings: dict[str, str] | None = None,
) -> str:
    """``frame`` as an HTML table, columns formatted by ``formats`` (column -> format spec) and
    headed by ``headings`` (column -> heading) where given."""
    shown = frame.copy()
    for column, spec in (formats or {}).items():
        if column in shown:
            shown[column] = shown[column].map(lambda v, spec=spec: "" if pd.isna(v) else format(v, spec))
    shown = shown.rename(columns=headings or {})
    table = shown.to_html(
        index=index, border=0, classes="profile", na_rep="", float_format=lambda v: f"{v:,.3f}"
    )
    return f'<div style="overflow-x:auto">{table}</div>'


def _by_scoring(frame: pd.DataFrame, column: str) -> str:
    """``column`` (a share) per segment and scoring date, as a percentage table."""
    table = frame.pivot_table(index=["segment_id", "segment_name"], columns="as_of", values=column)
    html_table = table.to_html(float_format=lambda v: f"{v:.1%}", border=0, classes="profile", na_rep="")
    return f'<div style="overflow-x:auto">{html_table}</div>'


def version_scorings(history: History, version: str | None) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The history's segment rows and KPIs of the scorings made with ``version`` (segment ids name
    the same segments only within one version), and how many scorings of other versions were left out."""
    segments, kpis = history.segments, history.kpis
    if version is None:
        return segments.iloc[:0], kpis.iloc[:0], segments.as_of.nunique()
    chosen = segments[segments.model_version == version]
    dates = set(chosen.as_of)
    return chosen, kpis[kpis.as_of.isin(dates)], segments.as_of.nunique() - len(dates)


def _in_words(row: pd.Series, horizon: int) -> str:
    """One sentence about a segment from the overview's figures (those it has)."""
    parts = [f"{row['share']:.0%} of customers"]
    if pd.notna(row.get("revenue_share")):
        parts[0] += f" bringing {row['revenue_share']:.0%} of revenue"
    if pd.notna(row.get("high_risk_share")):
        parts.append(f"{row['high_risk_share']:.0%} at high churn risk")
    if pd.notna(row.get("mean_expected_value")):
        parts.append(f"worth {row['mean_expected_value']:,.0f} each over the next {horizon} days")
    if pd.notna(row.get("retention")):
        parts.append(f"{row['retention']:.0%} of the month before's buyers bought again")
    if pd.notna(row.get("revenue_growth")):
        growth = row["revenue_growth"]
        parts.append(f"revenue {'up' if growth >= 0 else 'down'} {abs(growth):.0%} on the month before")
    return "; ".join(parts) + "."


OVERVIEW_COLUMNS = {  # column -> heading, in the overview's order
    "segment_id": "id",
    "segment_name": "segment",
    "customers": "customers",
    "share": "share",
    "revenue_share": "revenue share",
    "high_risk_share": "high churn risk",
    "mean_expected_value": "expected value",
    "retention": "retention",
    "churn_rate": "churn",
    "new_conversion": "new-customer conversion",
    "revenue": "revenue (30 days)",
    "average_order_value": "avg order",
    "revenue_growth": "revenue growth",
}
OVERVIEW_FORMATS = {
    "share": ".1%",
    "revenue_share": ".1%",
    "high_risk_share": ".1%",
    "mean_expected_value": ",.2f",
    "retention": ".1%",
    "churn_rate": ".1%",
    "new_conversion": ".1%",
    "revenue": ",.0f",
    "average_order_value": ",.2f",
    "revenue_growth": "+.1%",
}


def overview_section(segments: pd.DataFrame, kpis: pd.DataFrame, fallback: pd.DataFrame, horizon: int) -> str:
    """The page's first screen, for a marketer: per segment of the latest scoring with this
    version, its size, revenue share, high-risk share, expected value, KPIs and a sentence. Before
    any scoring, the training's sizes (``fallback``: the training profile)."""
    if segments.empty:
        latest = fallback.reindex(
            columns=["segment_id", "segment_name", "customers", "share", "revenue_share"]
        )
        note = "<p>Not scored yet: churn risk, value and KPIs appear after <code>segcore score</code>.</p>"
        heading = "Segments at a glance (training sample)"
    else:
        as_of = max(segments.as_of)
        latest = segments[segments.as_of == as_of].drop(columns=["as_of", "model_version"])
        month = kpis[kpis.as_of == as_of].drop(
            columns=["as_of", "segment_name", "customers"], errors="ignore"
        )
        latest = latest.merge(month, on="segment_id", how="left") if len(month) else latest
        note = ""
        heading = f"Segments at a glance (scoring of {as_of})"
    latest = latest.sort_values("customers", ascending=False)
    words = "".join(
        f"<li><b>{html.escape(str(row['segment_name']))}</b>: {html.escape(_in_words(row, horizon))}</li>"
        for _, row in latest.iterrows()
    )
    shown = latest.reindex(columns=list(OVERVIEW_COLUMNS)).dropna(axis=1, how="all")
    table = _table(shown, OVERVIEW_FORMATS, headings=OVERVIEW_COLUMNS)
    return f'<h2 id="overview">{heading}</h2>{note}{table}<ul>{words}</ul>'


def history_section(history: History, version: str | None, source: str) -> str:
    """The report's "Segments over time" section: the scorings made with ``version`` (under
    ``source``), their shares and KPIs, and the migration between the two latest scorings."""
    segments, kpis, others = version_scorings(history, version)
    left_out = ""
    if others:
        left_out = (
            f"<p>{others} scoring(s) with other model versions left out: their ids name other segments.</p>"
        )
    if segments.empty:
        where = html.escape(source)
        return f"<h2>Segments over time</h2><p>No scorings with this version yet in {where}.</p>{left_out}"
    dates = sorted(segments.as_of.unique())
    parts = [
        f"<h2>Segments over time</h2>{left_out}",
        _image(
            "history.png",
            f"Segment sizes ({len(dates)} scorings, {dates[0]} to {dates[-1]})",
            history_plot(segments),
        ),
    ]
    if len(kpis):
        parts.append(_image("kpis.png", "KPIs per segment over time", kpi_plot(kpis)))
        parts.append(f"<h3>Retention by scoring</h3>{_by_scoring(kpis, 'retention')}")
    if history.migration is not None and history.migration_dates is not None:
        before, after = (d.isoformat() for d in history.migration_dates)
        parts.append(
            _image(
                "migration.png",
                f"Migration from {before} to {after}",
                migration_plot(history.migration, before, after),
            )
        )
    else:
        parts.append("<p>The migration between scorings needs two scorings.</p>")
    parts.append(f"<h3>Share of customers by scoring</h3>{_by_scoring(segments, 'share')}")
    return "".join(parts)


def lift_section(lifts: list[LiftRecord]) -> str:
    """The latest lift of each audience (``segcore lift``), all customers together."""
    if not lifts:
        return "<h2>Campaign lift</h2><p>No lift measured yet: run segcore lift after a campaign.</p>"
    parts = ["<h2>Campaign lift</h2>"]
    columns = ["metric", "treatment", "control", "lift", "lift_low", "lift_high", "relative_lift", "p_value"]
    for lift in lifts:
        overall = lift.table[lift.table.segment_id.astype(str) == "all"][columns]
        window = f"{lift.audience}: from {lift.start} until {lift.end} (run {lift.run_id})"
        parts.append(
            f"<h3>{html.escape(window)}</h3>" + _table(overall, {"relative_lift": "+.1%", "p_value": ".3g"})
        )
    return "".join(parts)


def value_section(
    value: ValueReportInputs | None, segments: pd.DataFrame, high_band: str, horizon: int
) -> str:
    """The report's "Churn risk and value" section: the value model's backtest against the naive
    baseline, and the share of customers at high churn risk per segment in each scoring of
    ``segments`` (the history's rows of one model version)."""
    if value is None:
        return "<h2>Churn risk and value</h2><p>This training run has no value model (value.enabled).</p>"
    m = value.metrics
    parts = [f"<h2>Churn risk and value (customer_value version {html.escape(value.version)})</h2>"]
    if value.calibration_plot is not None:
        rows = pd.DataFrame(
            {
                "figure": ["repeat purchases, total", "MAE per customer", "churn AUC"],
                "BG/NBD": [
                    m["backtest_model_purchases"],
                    m["backtest_model_mae"],
                    m["backtest_model_churn_auc"],
                ],
                "naive (past rate)": [
                    m["backtest_naive_purchases"],
                    m["backtest_naive_mae"],
                    m["backtest_naive_churn_auc"],
                ],
                "actual": [m["backtest_actual_purchases"], None, None],
            }
        )
        table = rows.to_html(
            index=False, float_format=lambda v: f"{v:,.3f}", border=0, classes="profile", na_rep=""
        )
        parts.append(f"<h3>Backtest over the last {horizon} days before as_of</h3>{table}")
        parts.append(
            _image("value_calibration.png", "Backtest by decile of prediction", value.calibration_plot)
        )
    if segments["high_risk_share"].notna().any():
        table = _by_scoring(segments, "high_risk_share")
        parts.append(f"<h3>Share of customers at {html.escape(high_band)} churn risk, by scoring</h3>{table}")
    return "".join(parts)


def build_html(
    title: str,
    summary: str,
    images: dict[str, bytes],
    profile: pd.DataFrame,
    sections: list[str] | None = None,
) -> str:
    """One HTML page, images inline, no external resources (a Content-Security-Policy that allows
    only inline images and styles): ``sections`` (HTML) first, then the training's technical
    plots and its whole profile table, folded."""
    technical = "".join(
        _image(name, title, images[name]) for name, title in PLOT_TITLES.items() if name in images
    )
    table = profile.to_html(index=False, float_format=lambda v: f"{v:,.3f}", border=0, classes="profile")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} img{{max-width:100%}}
table.profile{{border-collapse:collapse;font-size:12px}}
.profile td,.profile th{{padding:2px 6px;border-bottom:1px solid #ddd}}
</style></head><body>
<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>
{"".join(sections or [])}
<h2 id="technical">How the segments were found</h2>
{technical}
<details><summary>Segment profiles: every statistic of the training</summary>
<div style="overflow-x:auto">{table}</div></details>
</body></html>
"""
