"""The report's plots, drawn as PNG bytes: k choice, segment sizes, profiles, a 2-D projection,
segments over time and migration between scorings."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

PLOT_TITLES = {  # in the report's order
    "k_selection.png": "Choosing k",
    "segment_sizes.png": "Segment size and revenue",
    "profile_heatmap.png": "Standardized profiles",
    "projection.png": "2-D projection (PCA of a sample)",
}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def k_selection_plot(table: pd.DataFrame, chosen_k: int) -> bytes:
    metrics = [m for m in ("inertia", "silhouette", "davies_bouldin", "calinski_harabasz") if m in table]
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        ax.plot(table["k"], table[metric], marker="o")
        ax.axvline(chosen_k, color="tab:red", linestyle="--", label=f"chosen k={chosen_k}")
        ax.set_xlabel("k")
        ax.set_title(metric)
    np.atleast_1d(axes)[0].legend()
    return _png(figure)


def sizes_plot(profile: pd.DataFrame) -> bytes:
    labels = profile["segment_name"]
    figure, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(profile)))
    y = np.arange(len(profile))
    ax.barh(y - 0.2, profile["share"], height=0.4, label="share of customers")
    if "revenue_share" in profile:
        ax.barh(y + 0.2, profile["revenue_share"], height=0.4, label="share of revenue")
    ax.set_yticks(y, labels)
    ax.legend()
    return _png(figure)


def heatmap_plot(profile: pd.DataFrame, features: list[str]) -> bytes:
    z = profile[[f"z_{f}" for f in features]].to_numpy()
    figure, ax = plt.subplots(figsize=(1 + 0.7 * len(features), 0.8 + 0.45 * len(profile)))
    image = ax.imshow(z, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=45, ha="right")
    ax.set_yticks(range(len(profile)), profile["segment_name"])
    figure.colorbar(image, ax=ax, label="standardized difference")
    return _png(figure)


def projection_plot(points: np.ndarray, segment_ids: np.ndarray, names: dict[int, str], seed: int) -> bytes:
    """The sample in its first two principal components, coloured by segment."""
    projected = PCA(n_components=2, random_state=seed).fit_transform(points)
    figure, ax = plt.subplots(figsize=(6, 4.5))
    for sid in sorted(np.unique(segment_ids)):
        member = segment_ids == sid
        ax.scatter(projected[member, 0], projected[member, 1], s=4, alpha=0.5, label=names.get(int(sid), sid))
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(markerscale=4, fontsize=7)
    return _png(figure)


def _lines_over_time(frame: pd.DataFrame, panels: dict[str, str]) -> bytes:
    """One panel per column of ``panels`` (column -> title): a line per segment over the scorings."""
    ordered = frame.sort_values("as_of")
    names = ordered.groupby("segment_id").segment_name.last()
    figure, axes = plt.subplots(1, len(panels), figsize=(13, 3.8), sharex=True)
    for sid, group in ordered.groupby("segment_id"):
        dates = pd.to_datetime(group["as_of"])
        for ax, column in zip(axes, panels, strict=True):
            ax.plot(dates, group[column], marker="o", label=f"{sid} {names[sid]}")
    ticks = sorted(pd.to_datetime(ordered["as_of"]).unique())
    for ax, title in zip(axes, panels.values(), strict=True):
        ax.set_title(title)
        ax.set_xticks(ticks, [t.strftime("%Y-%m-%d") for t in ticks], rotation=30, ha="right")
    axes[0].legend(fontsize=7)
    return _png(figure)


def history_plot(segments: pd.DataFrame) -> bytes:
    """Customers, share and revenue share of each segment per scoring date."""
    panels = {"customers": "customers", "share": "share of customers", "revenue_share": "share of revenue"}
    return _lines_over_time(segments, panels)


def kpi_plot(kpis: pd.DataFrame) -> bytes:
    """Retention, revenue and average order value of each segment per scoring date."""
    panels = {
        "retention": "retention (last month's buyers who bought again)",
        "revenue": "revenue, last 30 days",
        "average_order_value": "average order value",
    }
    return _lines_over_time(kpis, panels)


def _label(segment_id: int, name: str) -> str:
    return name if segment_id == -1 else f"{segment_id} {name}"


def migration_plot(matrix: pd.DataFrame, before: str, after: str) -> bytes:
    """Heatmap of the migration matrix: row shares (of each earlier segment, or of the new
    customers) by later segment (or departed), annotated with share and customers."""
    rows = sorted(matrix.from_segment.unique(), key=lambda s: (s == -1, s))
    columns = sorted(matrix.to_segment.unique(), key=lambda s: (s == -1, s))
    shares = matrix.pivot(index="from_segment", columns="to_segment", values="share").reindex(
        rows, columns=columns
    )
    counts = matrix.pivot(index="from_segment", columns="to_segment", values="customers")
    counts = counts.reindex(rows, columns=columns).fillna(0).astype(int)
    row_names = matrix.drop_duplicates("from_segment").set_index("from_segment").from_name
    column_names = matrix.drop_duplicates("to_segment").set_index("to_segment").to_name
    figure, ax = plt.subplots(figsize=(2.5 + 1.1 * len(columns), 1.2 + 0.55 * len(rows)))
    image = ax.imshow(shares.fillna(0).to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i, j in np.ndindex(shares.shape):
        if counts.iat[i, j]:
            colour = "white" if shares.iat[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{shares.iat[i, j]:.0%}\n{counts.iat[i, j]:,}",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    ax.set_xticks(range(len(columns)), [_label(c, column_names[c]) for c in columns], rotation=35, ha="right")
    ax.set_yticks(range(len(rows)), [_label(r, row_names[r]) for r in rows])
    ax.set_xlabel(f"segment on {after}")
    ax.set_ylabel(f"segment on {before}")
    figure.colorbar(image, ax=ax, label="share of the row's customers")
    return _png(figure)


def value_calibration_plot(deciles: pd.DataFrame, cutoff: str, end: str) -> bytes:
    """The backtest by decile of predicted purchases: mean predicted (model, naive) and actual."""
    figure, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(deciles["decile"], deciles["actual"], marker="o", color="black", label="actual")
    ax.plot(deciles["decile"], deciles["predicted"], marker="s", label="BG/NBD")
    ax.plot(deciles["decile"], deciles["naive"], marker="^", linestyle="--", label="naive (past rate)")
    ax.set_xlabel("decile of predicted purchases")
    ax.set_ylabel(f"purchase days {cutoff} .. {end}")
    ax.legend()
    return _png(figure)
