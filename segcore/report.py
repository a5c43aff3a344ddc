"""Plots (PNG) and the self-contained HTML report of a training run.

Training draws the plots and logs them under ``plots/``; the report embeds those PNGs (base64)
and the profile table in one HTML file that opens without network access. ``segcore report
--run-id`` rebuilds it from a run's artifacts alone.
"""

from __future__ import annotations

import base64
import html
import io
import tempfile
from pathlib import Path

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


def build_html(title: str, summary: str, images: dict[str, bytes], profile: pd.DataFrame) -> str:
    """One HTML page, images inline, no external resources."""
    sections = [
        f"<h2>{html.escape(title)}</h2>"
        f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(images[name]).decode()}">'
        for name, title in PLOT_TITLES.items()
        if name in images
    ]
    table = profile.to_html(index=False, float_format=lambda v: f"{v:,.3f}", border=0, classes="profile")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} img{{max-width:100%}}
table.profile{{border-collapse:collapse;font-size:12px}}
.profile td,.profile th{{padding:2px 6px;border-bottom:1px solid #ddd}}
</style></head><body>
<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p>
{"".join(sections)}
<h2>Segment profiles</h2><div style="overflow-x:auto">{table}</div>
</body></html>
"""


def report_from_run(run_id: str, out: str | None = None) -> Path:
    """Rebuild a training run's report from its artifacts, log it to the run, write it to ``out``."""
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        plots = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="plots", dst_path=tmp))
        profile_file = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="profile/segment_profile.csv", dst_path=tmp
        )
        images = {name: (plots / name).read_bytes() for name in PLOT_TITLES if (plots / name).exists()}
        page = build_html(
            f"Customer segments — run {run.info.run_name}",
            run.data.tags.get("summary", ""),
            images,
            pd.read_csv(profile_file),
        )
    target = Path(out or f"segments_report_{run_id}.html")
    target.write_text(page)
    client.log_artifact(run_id, str(target), "report")
    return target
