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

from segcore.report.plots import PLOT_TITLES, history_plot, migration_plot

if TYPE_CHECKING:
    from segcore.report.history import History
    from segcore.tracking.artifacts import ValueReportInputs

# The page may show inline (data:) images and its own styles, and load nothing else.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _image(name: str, title: str, data: bytes) -> str:
    return (
        f"<h2>{html.escape(title)}</h2>"
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
    )


def history_section(history: History, source: str) -> str:
    """The report's "Segments over time" section for the scorings under ``source``."""
    if history.segments.empty:
        return (
            f"<h2>Segments over time</h2><p>No scorings yet in {html.escape(source)}: run segcore score.</p>"
        )
    dates = sorted(history.segments.as_of.unique())
    parts = [
        _image(
            "history.png",
            f"Segments over time ({len(dates)} scorings, {dates[0]} to {dates[-1]})",
            history_plot(history.segments),
        )
    ]
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
    shares = history.segments.pivot_table(
        index=["segment_id", "segment_name"], columns="as_of", values="share"
    )
    table = shares.to_html(float_format=lambda v: f"{v:.1%}", border=0, classes="profile", na_rep="")
    return (
        "".join(parts) + f'<h3>Share of customers by scoring</h3><div style="overflow-x:auto">{table}</div>'
    )


def value_section(value: ValueReportInputs | None, history: History, high_band: str, horizon: int) -> str:
    """The report's "Churn risk and value" section: the value model's backtest against the naive
    baseline, and each scoring's share of customers at high churn risk per segment."""
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
    if history.segments["high_risk_share"].notna().any():
        shares = history.segments.pivot_table(
            index=["segment_id", "segment_name"], columns="as_of", values="high_risk_share"
        )
        table = shares.to_html(float_format=lambda v: f"{v:.1%}", border=0, classes="profile", na_rep="")
        parts.append(f"<h3>Share of customers at {html.escape(high_band)} churn risk, by scoring</h3>{table}")
    return "".join(parts)


def build_html(
    title: str,
    summary: str,
    images: dict[str, bytes],
    profile: pd.DataFrame,
    history: str = "",
    value: str = "",
) -> str:
    """One HTML page, images inline, no external resources (a Content-Security-Policy that allows
    only inline images and styles); ``history`` and ``value`` are :func:`history_section`'s and
    :func:`value_section`'s HTML, if any."""
    sections = [_image(name, title, images[name]) for name, title in PLOT_TITLES.items() if name in images]
    table = profile.to_html(index=False, float_format=lambda v: f"{v:,.3f}", border=0, classes="profile")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} img{{max-width:100%}}
table.profile{{border-collapse:collapse;font-size:12px}}
.profile td,.profile th{{padding:2px 6px;border-bottom:1px solid #ddd}}
</style></head><body>
<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>
{"".join(sections)}
<h2>Segment profiles</h2><div style="overflow-x:auto">{table}</div>
{history}
{value}
</body></html>
"""
